/*
 * h1parse: the proxy's incremental HTTP/1.1 parser, for requests (from clients) and responses
 * (from origins). It wraps llhttp 8.1 in strict mode (no lenient flag is ever set) and adds the
 * checks a front-line proxy needs that llhttp does not make. It does no I/O: the caller feeds
 * bytes, and gets callbacks.
 *
 * One message at a time. tbp_h1_feed() returns at every message boundary (after on_end, and after
 * an interim 1xx head), so the caller handles pipelined requests one by one: it keeps the bytes
 * not consumed and feeds them again when it is ready for the next message.
 *
 * Head. The start line and the header fields are copied into the parser's buffer (llhttp hands
 * out spans of the caller's input, which do not survive the feed). on_head receives a struct
 * tbp_http_head whose slices point into that buffer (the method points to a static string): they
 * stay valid until the next message starts, i.e. until the next tbp_h1_feed / tbp_h1_feed_eof /
 * tbp_h1_parser_reset / tbp_h1_parser_release call after the message's on_end (or after the
 * boundary that follows a 1xx head).
 *
 * Memory. The parser allocates nothing at init. When a message begins it allocates its buffer
 * (4 KiB) and field array (32 fields), which grow by doubling as the header section needs, up to
 * max_header_bytes and max_headers; a trailer section that outgrows them gets new ones and the
 * head keeps the old ones until the message ends (the head never moves once delivered). They are
 * kept from one message to the next until tbp_h1_parser_release, which a caller with many idle
 * parsers (a kept-alive client connection between requests) calls once a message is over.
 *
 * Framing: Content-Length: 0 gives TBP_BODY_LENGTH with content_length 0; TBP_BODY_NONE means no
 * body by the message's own rules (request without Content-Length / Transfer-Encoding, 1xx, 204,
 * 304, or a response after tbp_h1_expect_no_body), content_length 0.
 *
 * Body bytes are passed to on_body as they arrive (de-chunked), never buffered: the pointers are
 * into the caller's input and valid only during the call.
 *
 * Trailers of a chunked message are collected (subject to the same limits as the head) and can
 * be read with tbp_h1_trailers() from on_end until the next message starts (or the release).
 *
 * What is rejected, beyond llhttp strict mode (see h1parse.c for the full list of what llhttp
 * already rejects): header section (raw bytes, counted from the first byte after the previous
 * message up to the empty line; head + trailers together) over max_header_bytes; more than
 * max_headers fields (head + trailers); a request-target over tbp_h1_set_max_uri; obs-fold; an
 * empty field name; HTTP versions other than 1.0 and 1.1 and protocols other than HTTP (llhttp also
 * accepts RTSP/ICE); in a request: no Host (HTTP/1.1) or more than one Host, a Host with characters
 * outside uri-host[:port], CONNECT, a target containing '#', '*' with a method other than OPTIONS,
 * Transfer-Encoding other than exactly "chunked"; Transfer-Encoding in any HTTP/1.0 message; in a
 * response: status outside 100..599, 101 Switching Protocols; chunk extensions over
 * TBP_H1_MAX_CHUNK_EXT bytes per chunk.
 *
 * Upgrade is never honoured: a request carrying Upgrade is parsed as plain HTTP (the caller must
 * not forward Upgrade, which is hop-by-hop), and a 101 response is an error (TBP_H1_EUPGRADE).
 *
 * Thread safety: none; one parser per connection direction, used by one thread.
 */
#ifndef TBP_H1PARSE_H
#define TBP_H1PARSE_H

#include <stddef.h>

#include "http.h"
#include "llhttp.h"

/* Callback return value asking the parser to stop (backpressure); see tbp_h1_feed. */
#define TBP_H1_PAUSE 1

/* Upper bound on the chunk-extension bytes (names and values) of one chunk-size line. */
#define TBP_H1_MAX_CHUNK_EXT 4096

/* Errors. Every error but TBP_H1_EPAUSED is sticky: the parser then returns it from every call
 * until tbp_h1_parser_reset. The names (tbp_h1_strerror) are stable: used as metric labels. */
enum tbp_h1_error {
    TBP_H1_OK = 0,
    TBP_H1_EBAD_REQUEST = -1,       /* "bad_request": request syntax (llhttp, or an empty name) */
    TBP_H1_EBAD_RESPONSE = -2,      /* "bad_response": response syntax, status out of 100..599 */
    TBP_H1_EHEADER_TOO_LARGE = -3,  /* "header_too_large": head (+ trailers) > max_header_bytes */
    TBP_H1_ETOO_MANY_HEADERS = -4,  /* "too_many_headers": > max_headers fields */
    TBP_H1_EOBS_FOLD = -5,          /* "obs_fold": a field line starting with SP or HTAB */
    TBP_H1_EMISSING_HOST = -6,      /* "missing_host": HTTP/1.1 request without Host */
    TBP_H1_EDUPLICATE_HOST = -7,    /* "duplicate_host": more than one Host field */
    TBP_H1_EBAD_HOST = -8,          /* "bad_host": Host value not uri-host [ ":" port ] chars */
    TBP_H1_ETE_IN_HTTP10 = -9,      /* "te_in_http10": Transfer-Encoding in an HTTP/1.0 message */
    TBP_H1_EBAD_FRAMING = -10,      /* "bad_framing": CL+TE, bad/duplicate CL, chunk syntax */
    TBP_H1_EUNSUPPORTED_TE = -11,   /* "unsupported_te": request coding other than chunked */
    TBP_H1_EBAD_VERSION = -12,      /* "bad_version": not HTTP/1.0 or HTTP/1.1 (or h2 preface) */
    TBP_H1_EBAD_TARGET = -13,       /* "bad_target": empty, '#', '*' without OPTIONS */
    TBP_H1_EBAD_METHOD = -14,       /* "bad_method": CONNECT (a reverse proxy has no tunnels) */
    TBP_H1_EUPGRADE = -15,          /* "upgrade": 101 Switching Protocols from an origin */
    TBP_H1_ECHUNK_EXT = -16,        /* "chunk_ext_too_large": > TBP_H1_MAX_CHUNK_EXT per chunk */
    TBP_H1_EDATA_AFTER_CLOSE = -17, /* "data_after_close": bytes after a keep_alive == 0 message
                                       or after tbp_h1_feed_eof */
    TBP_H1_ETRUNCATED = -18,        /* "truncated": EOF in the middle of a message */
    TBP_H1_ECALLBACK = -19,         /* "callback": a callback returned a negative value */
    TBP_H1_EPAUSED = -20,           /* "paused": fed while paused, without tbp_h1_resume (misuse;
                                       not sticky) */
    TBP_H1_EINVAL = -21,            /* "invalid_argument": bad limits at init */
    TBP_H1_ENOMEM = -22,            /* "no_memory": an allocation failed */
    TBP_H1_EURI_TOO_LONG = -23      /* "uri_too_long": request-target > max_uri_bytes */
};

struct tbp_h1_limits {
    size_t max_header_bytes; /* raw bytes of the header section (and of head + trailers); 0:
                                TBP_MAX_HEADER_BYTES_DEFAULT; at most 64 MiB */
    size_t max_headers;      /* fields per message (head + trailers); 0:
                                TBP_MAX_HEADERS_DEFAULT; at most 65536 */
};

/* Each callback returns 0 to continue, TBP_H1_PAUSE to make tbp_h1_feed return as soon as it
 * can (backpressure: the caller calls tbp_h1_resume later and feeds the rest), or a negative
 * value to fail the parse with TBP_H1_ECALLBACK (any other value counts as negative). A pause
 * never holds back an on_end that needs no more input: after on_head paused for a message without
 * body, or on_body paused on the last bytes of a Content-Length body, on_end still comes before
 * tbp_h1_feed returns (the pause then lasts until tbp_h1_resume). From on_end, TBP_H1_PAUSE means
 * the same as 0: the parser stops at the message boundary anyway, and needs no resume.
 * A NULL callback means "return 0". Callbacks must not call tbp_h1_feed, tbp_h1_feed_eof or
 * tbp_h1_parser_reset/dispose on the parser that called them; they may call tbp_h1_trailers,
 * tbp_h1_expect_no_body and the accessors. */
struct tbp_h1_callbacks {
    /* The header section arrived and passed every check. For a response, a status 1xx head is
     * interim (framing NONE): it is followed by a boundary, no on_end, then the next head. */
    int (*on_head)(void *ctx, const struct tbp_http_head *head);
    /* Body bytes (de-chunked), n > 0; p points into the caller's input, valid during the call. */
    int (*on_body)(void *ctx, const char *p, size_t n);
    /* The message (not a 1xx) is complete; tbp_h1_trailers() tells its trailers. */
    int (*on_end)(void *ctx);
};

/* Parser states, for logs (tbp_h1_state_to_str). */
enum tbp_h1_state {
    TBP_H1_IDLE = 0,     /* between messages: nothing but optional empty lines seen */
    TBP_H1_HEAD = 1,     /* inside a header section */
    TBP_H1_BODY = 2,     /* head delivered; body (if any) being read */
    TBP_H1_TRAILERS = 3, /* last chunk seen; reading the trailer section */
    TBP_H1_CLOSED = 4,   /* EOF delivered (tbp_h1_feed_eof): nothing more may be fed */
    TBP_H1_FAILED = 5    /* an error occurred; every call returns it */
};

/* Embedded by the caller; opaque: use the functions below. Must not be moved (copied) after
 * init: llhttp's data points to it. */
struct tbp_h1_parser {
    llhttp_t ll;
    struct tbp_h1_callbacks cb;
    void *ctx;
    int is_request;
    size_t max_header_bytes, max_headers, max_uri_bytes;
    char *buf; /* copies of the head and trailers (buf_cap <= max_header_bytes); NULL when
                  released */
    size_t buf_used, buf_cap;
    struct tbp_header *fields; /* head fields, then trailer fields (fields_cap <= max_headers) */
    size_t fields_cap;
    char *old_buf;                 /* the head's buffer and field array, when the trailer section */
    struct tbp_header *old_fields; /* outgrew them (h1parse.c: grow_buf); else NULL */
    size_t old_buf_cap, old_fields_cap;
    size_t n_trailers;
    int field_phase; /* where the field being copied is (see h1parse.c) */
    struct tbp_http_head head;
    enum tbp_h1_state state;
    int err;                  /* the sticky error, when state == TBP_H1_FAILED */
    int pending;              /* error decided inside an llhttp callback */
    int why;                  /* why llhttp paused (see h1parse.c) */
    unsigned user_paused : 1; /* a callback returned TBP_H1_PAUSE; tbp_h1_resume clears it */
    unsigned ll_paused : 1;   /* llhttp is paused and must be resumed before executing */
    unsigned skip_body : 1;   /* tbp_h1_expect_no_body() for the next final response */
    unsigned interim : 1;     /* a 1xx head was delivered; the final response has not ended */
    size_t section_bytes;     /* raw bytes of the current head (+ trailers) so far */
    size_t chunk_ext_bytes;   /* chunk-extension bytes of the current chunk-size line */
    struct {                  /* raw scan of header-section bytes (h1parse.c: scan_section) */
        char prev;
        unsigned char line, field, proto_len, proto_done;
        char proto[8];
        int fold;
    } scan;
};

/* Prepare p: is_request != 0 parses requests, else responses. lim NULL (or zero fields) means the
 * defaults (64 KiB, 100 fields). cb is copied (NULL: no callbacks); ctx is passed to every
 * callback. Allocates nothing (see "Memory" above). Returns 0 or TBP_H1_EINVAL (limits too
 * large); on failure p needs no dispose (but dispose is harmless). */
int tbp_h1_parser_init(struct tbp_h1_parser *p, int is_request, const struct tbp_h1_limits *lim,
                       const struct tbp_h1_callbacks *cb, void *ctx);

/* Request parser: the request-target may be at most max bytes (0, the default after init: no
 * limit of its own, max_header_bytes bounds it). Checked as the bytes arrive, so a long target
 * fails with TBP_H1_EURI_TOO_LONG at the first byte past it, before the section limit. Set it
 * between messages (normally right after init). No effect on a response parser. */
void tbp_h1_set_max_uri(struct tbp_h1_parser *p, size_t max);

/* Free what the parser holds. Safe on a zeroed, failed or already disposed parser. */
void tbp_h1_parser_dispose(struct tbp_h1_parser *p);

/* Back to TBP_H1_IDLE as after init (errors, pauses and expect_no_body cleared), keeping the
 * buffer: e.g. for a pooled origin connection. Invalidates the last head. */
void tbp_h1_parser_reset(struct tbp_h1_parser *p);

/* Between messages (tbp_h1_in_message() == 0): frees the buffer and the field array, which the
 * next message allocates again; invalidates the last head and trailers. Does nothing while a
 * message is in progress. Not from a callback. In any state (failed or closed too) the parser
 * goes on as before, only without that memory. */
void tbp_h1_parser_release(struct tbp_h1_parser *p);

/* Bytes of heap the parser holds now (buffers and field arrays): 0 after init and release. */
size_t tbp_h1_memory(const struct tbp_h1_parser *p);

/* Parse up to len bytes of data (data may be NULL when len is 0). Returns 0 and sets *consumed:
 *  - *consumed == len: everything was parsed (the message may be unfinished);
 *  - *consumed < len (or == len): the parser stopped at a message boundary (after on_end, or
 *    after a 1xx head) or because a callback returned TBP_H1_PAUSE. The caller keeps
 *    data[*consumed..] and feeds it again: right away after a boundary, after tbp_h1_resume()
 *    after a pause. Feeding zero bytes is allowed (and harmless) but never required.
 * After a message with keep_alive == 0 the caller should stop feeding (more bytes fail with
 * TBP_H1_EDATA_AFTER_CLOSE).
 * Returns a negative TBP_H1_E* on error (*consumed: how far parsing got; the connection is then
 * unusable: answer tbp_h1_error_status(err) and close), or TBP_H1_EPAUSED (nothing done, not
 * sticky) if called while a callback's pause is in force. */
int tbp_h1_feed(struct tbp_h1_parser *p, const char *data, size_t len, size_t *consumed);

/* The peer closed its side. Returns 0 if that is a clean end: between messages (on_end already
 * called; not after a 1xx head without its final response), or at the end of a body delimited by
 * close (framing TBP_BODY_UNTIL_CLOSE: on_end is called now). Returns TBP_H1_ETRUNCATED if a
 * message was unfinished, the sticky error if failed, TBP_H1_EPAUSED if paused inside a message
 * (resume and feed the kept bytes first; a pause in force between messages does not matter here).
 * Afterwards only tbp_h1_feed_eof (returns 0 again), reset and dispose are useful. */
int tbp_h1_feed_eof(struct tbp_h1_parser *p);

/* Lift a pause a callback asked for (TBP_H1_PAUSE from on_head or on_body); then feed the kept
 * bytes, if any. Calls no callback. Harmless when not paused. */
void tbp_h1_resume(struct tbp_h1_parser *p);

/* Response parser: the next final response answers a HEAD request, so it has no body whatever
 * its Content-Length / Transfer-Encoding say. Call before that response's header section
 * completes (normally: before feeding it); lasts past 1xx heads until that response ends.
 * (1xx, 204 and 304 responses never have a body; no call needed.) No effect on a request parser. */
void tbp_h1_expect_no_body(struct tbp_h1_parser *p);

/* The trailer fields of the message just completed (chunked messages only), *n of them, in
 * arrival order, names and values trimmed; NULL with *n == 0 when none. Valid from on_end until
 * the next message starts. Not checked beyond syntax and the limits: the caller decides which (if
 * any) to forward. */
const struct tbp_header *tbp_h1_trailers(const struct tbp_h1_parser *p, size_t *n);

/* 1 while a message is in progress (bytes of it seen, or a 1xx head delivered, and on_end not yet
 * called), else 0. */
int tbp_h1_in_message(const struct tbp_h1_parser *p);

enum tbp_h1_state tbp_h1_state(const struct tbp_h1_parser *p);
const char *tbp_h1_state_to_str(enum tbp_h1_state s);

/* Stable lower-case name of a TBP_H1_E* code ("ok" for 0, "unknown" otherwise). */
const char *tbp_h1_strerror(int err);

/* The HTTP status the proxy answers a client whose request failed with err: 400, 414 (target
 * too long), 431 (header size/count), 501 (unsupported transfer coding, CONNECT), 505 (version),
 * 500 (callback and internal errors), 502 (response-only errors). For an origin's response that
 * failed to parse, the proxy answers 502 whatever this says. 0 for TBP_H1_OK. */
int tbp_h1_error_status(int err);

#endif
