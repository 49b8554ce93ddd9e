/*
 * Forward: the one request model shared by the HTTP/1.1 and HTTP/2 front ends.
 *
 * A front end parses a message into a struct tbp_http_head (http.h), decides what it knows about
 * the connection (struct tbp_fwd_info) and asks this module for the head to send on: the request
 * head for the origin, the response head for the client. Nothing is passed through as raw bytes:
 * every line is written again from the parsed fields, and a field that could not be written safely
 * (a name that is not a token, a value with CR, LF or NUL) fails the whole head, even though the
 * parsers already reject those: defence in depth.
 *
 * Toward the origin (spec "Forwarding to the origin", RFC 9110 section 7.6.1, RFC 7239):
 *   - the six Token Binding names are always stripped, whatever was negotiated, and the verified
 *     IDs added back (Sec-Provided-, Sec-Referred-, Sec-Other-Token-Binding-ID), with the proxy's
 *     own Sec-Token-Binding-Context when the caller gives one (an incoming one never passes);
 *   - hop-by-hop fields (Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade
 *     and every field a Connection header names) and Content-Length are dropped; the framing and
 *     Connection are written from what the caller decided;
 *   - X-Forwarded-*, Forwarded and X-Real-IP from an untrusted peer are dropped; from a trusted
 *     proxy, X-Forwarded-For and Forwarded are extended with this hop and the others kept;
 *   - HTTP/2 cookie crumbs (several Cookie fields) become one "Cookie: a; b" (RFC 9113 8.2.3).
 *
 * All functions append to a caller-owned struct tbp_buf and, on failure, leave it as it was
 * (len restored), so the caller can answer with tbp_forward_error_response() into the same buffer.
 *
 * A head the companion module changes (bound cookies, a JWT's sub header, Set-Cookie binding) is
 * an edited copy (struct tbp_head_edit, at the end of this file) that goes through the same
 * functions: edits never bypass the checks and the rewrite.
 */
#ifndef TBP_FORWARD_H
#define TBP_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"

/* A field or argument could not be written safely: header name not a token, value with CR, LF or
 * NUL, an ID that is not base64url, an unknown status, a framing that cannot be used here. The
 * other failures are the buffer's: TBP_EBUF (cap reached), TBP_ENOMEM. */
#define TBP_EFWD_INVALID (-3)

/* The last chunk of a chunked body with no trailers, and the CRLF that ends every chunk's data. */
#define TBP_CHUNK_LAST "0\r\n\r\n"
#define TBP_CHUNK_END "\r\n"

/* What the front end knows about a request, beyond its head. Pointers are borrowed for the call. */
struct tbp_fwd_info {
    const char *client_ip;        /* peer address as text: IPv4 dotted quad or IPv6 (no brackets) */
    uint16_t client_port;         /* peer port: for logs, not written toward the origin */
    bool peer_trusted;            /* peer is a configured trusted proxy (the caller decides) */
    const char *scheme;           /* scheme the client used: "https" (NULL means that) */
    struct tbp_str host;          /* Host (HTTP/1.1) or :authority (HTTP/2) the client used */
    const char *provided_id;      /* verified provided TBID, base64url; NULL when none */
    const char *referred_id;      /* verified referred TBID, base64url; NULL when none */
    const char *const *other_ids; /* n_other_ids verified other bindings, each "09.<base64url>" */
    size_t n_other_ids;
    const char *tb_context;        /* Sec-Token-Binding-Context value, base64url (rfc bindings on
                                      routes with token_binding_context); NULL when none */
    enum tbp_body_framing framing; /* body toward the origin: NONE, LENGTH or CHUNKED */
    uint64_t content_length;       /* when framing == TBP_BODY_LENGTH */
    bool keep_alive;               /* ask the origin to keep the connection open */
    const char *authserv_id;       /* the proxy's: incoming Authentication-Results claiming it (also
                                      spelled with '_') are dropped (results.h); NULL: none dropped */
    const char *authres;           /* the proxy's own Authentication-Results value, written first of
                                      that name (right after Host); NULL: none */
};

/*
 * Appends to `out` the request head for the origin:
 *   "METHOD target HTTP/1.1", Host (from fi->host), the client's fields minus those stripped (see
 *   the top of this file), then X-Forwarded-For, X-Forwarded-Proto (unless a trusted peer sent
 *   one), Forwarded, the Token Binding IDs that are given, Sec-Token-Binding-Context when
 *   fi->tb_context is given, Content-Length or
 *   "Transfer-Encoding: chunked" per fi->framing, and "Connection: keep-alive" or "close";
 *   then the blank line.
 * Returns 0, TBP_EFWD_INVALID, TBP_EBUF or TBP_ENOMEM; on failure out is unchanged.
 */
int tbp_forward_request_head(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                             struct tbp_buf *out);

/*
 * Appends to `out` the response head for the client: "HTTP/1.1 status reason", the origin's
 * fields minus hop-by-hop ones, Content-Length and Transfer-Encoding (Include-Referer- and
 * Include-Referred-Token-Binding-ID pass untouched), then the framing toward the client:
 *   - 1xx, 204: none; 304 and answers to HEAD (head_request): the origin's Content-Length if it
 *     sent one (framing_to_client is ignored for all of these: there is no body);
 *   - otherwise framing_to_client: LENGTH "Content-Length: content_length", CHUNKED
 *     "Transfer-Encoding: chunked", NONE "Content-Length: 0", UNTIL_CLOSE nothing (only allowed
 *     with client_keep_alive == 0: the body ends when the connection does);
 * and "Connection: close" when client_keep_alive is 0 (not on 1xx); then the blank line.
 * Returns 0, TBP_EFWD_INVALID, TBP_EBUF or TBP_ENOMEM; on failure out is unchanged.
 */
int tbp_forward_response_head(const struct tbp_http_head *in, int client_keep_alive,
                              enum tbp_body_framing framing_to_client, uint64_t content_length,
                              int head_request, struct tbp_buf *out);

/*
 * Writes the head of a chunk of n bytes ("%zx\r\n") into out and returns its length (at most
 * 18). n == 0 writes nothing and returns 0: a zero-size chunk would end the body; end it with
 * TBP_CHUNK_LAST or tbp_forward_trailers(). The chunk's data is followed by TBP_CHUNK_END.
 */
int tbp_chunk_head(char out[32], size_t n);

/* Is field f of message h hop-by-hop (RFC 9110 section 7.6.1: by definition, or named by one of
 * h's Connection headers)? Such fields never cross the proxy (HTTP/2 forbids them outright). */
int tbp_forward_is_hop(const struct tbp_http_head *h, const struct tbp_header *f);

/*
 * Appends the end of a chunked body: "0\r\n", the trailer fields minus hop-by-hop ones, the
 * Token Binding names, framing and routing fields (Content-Length, Host, Trailer) and the
 * forwarding ones (X-Forwarded-*, Forwarded, X-Real-IP), then the blank line. With no fields this
 * is TBP_CHUNK_LAST.
 * Returns 0, TBP_EFWD_INVALID, TBP_EBUF or TBP_ENOMEM; on failure out is unchanged.
 */
int tbp_forward_trailers(const struct tbp_header *fields, size_t n_fields, struct tbp_buf *out);

/*
 * The end of a chunked body as the proxy sends it: tbp_forward_trailers, or, when the trailer
 * fields cannot be written (invalid, too large), the last chunk alone: trailers are advisory and
 * never worth failing a body over. Returns 0, or TBP_EBUF / TBP_ENOMEM.
 */
int tbp_forward_chunked_end(const struct tbp_header *fields, size_t n_fields, struct tbp_buf *out);

/*
 * The challenge the proxy sends with its own answers of this status: for 401 (a route's JWT
 * check failed; RFC 6750 section 3) "Bearer error=\"invalid_token\"", the value of a
 * WWW-Authenticate field; NULL for every other status.
 */
const char *tbp_forward_challenge(int status);

/*
 * Appends a complete short response for status 400, 403, 404, 408, 413, 414, 431, 500, 501, 502,
 * 503, 504 or 505: status line, "Content-Type: text/plain; charset=utf-8", Content-Length,
 * "Connection: close" when `close`, and a one-line body "<status> <phrase>[: <reason_text>]\n",
 * e.g. reason_text "token binding signature" gives "400 Bad Request: token binding signature\n".
 * reason_text (NULL for none) is the caller's own text, e.g. built from tb_strerror(): printable
 * ASCII, at most 128 bytes; never client input.
 * Returns 0, or TBP_EFWD_INVALID (other status, bad reason_text), TBP_EBUF or TBP_ENOMEM; on
 * failure out is unchanged.
 */
int tbp_forward_error_response(int status, const char *reason_text, int close, struct tbp_buf *out);

/*
 * The same for 401 Unauthorized (a route's JWT check failed), which never goes out without its
 * challenge: "WWW-Authenticate: Bearer error=\"invalid_token\"" (tbp_forward_challenge) after
 * Content-Type. Same contract and reason_text rules as tbp_forward_error_response.
 */
int tbp_forward_unauthorized(const char *reason_text, int close, struct tbp_buf *out);

/* --- edited copies of a head (the companion module: bound cookies, JWTs) -------------------- */

/*
 * An edited copy of a parsed head: `head` is the original message with a private field list the
 * caller may change (remove fields, replace values, add fields), and an arena of fixed size for
 * the new values, allocated once, so pointers into it stay valid until dispose. Fields keep
 * pointing into the original's buffer: the original must outlive the edit. The edited head then
 * goes through tbp_forward_request_head / tbp_forward_response_head like any other, so every
 * line is still checked and written again.
 *
 * Embedded by the caller: zero it (or tbp_head_edit_init it) before tbp_head_edit_dispose.
 */
struct tbp_head_edit {
    struct tbp_http_head head; /* the edited message; head.headers is owned by the edit */
    size_t cap;                /* entries head.headers has room for */
    char *arena;               /* bytes for new values (owned), fixed size */
    size_t arena_len, arena_cap;
};

/*
 * Starts an edit of `in`: head = *in with its own copy of the field list, room for `extra` more
 * fields and arena_cap bytes of new values. Returns 0 or TBP_ENOMEM (e then holds nothing to
 * free; dispose is still safe).
 */
int tbp_head_edit_init(struct tbp_head_edit *e, const struct tbp_http_head *in, size_t extra,
                       size_t arena_cap);

/* Frees the field list and the arena; e is zeroed. Safe on a zeroed edit. */
void tbp_head_edit_dispose(struct tbp_head_edit *e);

/*
 * Reserves n bytes of the arena. Returns a pointer that stays valid until dispose, or NULL when
 * the arena has no room for them (never reallocates).
 */
char *tbp_head_edit_alloc(struct tbp_head_edit *e, size_t n);

/*
 * Every field called `name` (compared case-insensitively, '_' taken as '-': "X_Auth_Sub" is
 * the same field to a CGI-style origin) is removed; when value is not NULL, one field `name`
 * (which must outlive the edit) with that value takes the place of the first one (at the end if
 * there was none). The order of the other fields is kept. Returns 0, or TBP_EBUF when a field
 * has to be added and the list is full.
 */
int tbp_head_edit_set(struct tbp_head_edit *e, const char *name, const struct tbp_str *value);

/* Appends a field; name and value must outlive the edit. 0, or TBP_EBUF when the list is full. */
int tbp_head_edit_add(struct tbp_head_edit *e, struct tbp_str name, struct tbp_str value);

#endif
