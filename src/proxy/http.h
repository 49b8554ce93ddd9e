/*
 * The HTTP message model shared by the HTTP/1.1 parser (h1parse), the header rewrite (forward),
 * the front ends and the upstream client.
 *
 * A parsed head is a set of slices into a buffer owned by whoever parsed it (the h1 parser's
 * header buffer): valid until that parser is reset or fed the next message. Names keep the
 * case they arrived in; comparisons are case-insensitive (tbp_http_name_eq).
 */
#ifndef TBP_HTTP_H
#define TBP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define TBP_MAX_HEADERS_DEFAULT 100
#define TBP_MAX_HEADER_BYTES_DEFAULT (64 * 1024)

struct tbp_str {
    const char *p;
    size_t len;
};

struct tbp_header {
    struct tbp_str name;
    struct tbp_str value; /* surrounding whitespace removed */
};

/* How a message body is delimited. */
enum tbp_body_framing {
    TBP_BODY_NONE = 0,       /* no body (no Content-Length / Transfer-Encoding, or HEAD/304) */
    TBP_BODY_LENGTH = 1,     /* Content-Length: content_length bytes */
    TBP_BODY_CHUNKED = 2,    /* Transfer-Encoding: chunked */
    TBP_BODY_UNTIL_CLOSE = 3 /* responses only: read until the origin closes */
};

struct tbp_http_head {
    int is_request;
    /* request */
    struct tbp_str method;
    struct tbp_str target; /* request-target as sent */
    /* response */
    int status;
    struct tbp_str reason;
    /* both */
    int version_major, version_minor;
    enum tbp_body_framing framing;
    uint64_t content_length; /* when framing == TBP_BODY_LENGTH */
    int keep_alive;          /* the sender allows another message on this connection */
    int expect_continue;     /* request carried "Expect: 100-continue" */
    size_t n_headers;
    struct tbp_header *headers; /* n_headers entries, in arrival order */
};

/* Case-insensitive equality of a header name with a NUL-terminated lower-case name. */
int tbp_http_name_eq(struct tbp_str name, const char *lower);

/* The first header called `lower` (case-insensitive), or NULL. */
const struct tbp_header *tbp_http_find(const struct tbp_http_head *h, const char *lower);

/*
 * Is this request path (the target up to '?') in normal form, i.e. one that every origin reads
 * the same way, so that prefix routing cannot be sidestepped? "*" (OPTIONS) and any path not
 * starting with '/' are left to other checks (1). 0 when it has an empty segment ("//"), a "." or
 * ".." segment, a backslash, a malformed %-escape, or a %-escape of an unreserved character, '/',
 * '\\' or '.' (RFC 3986 6.2.2: those must not be encoded).
 */
int tbp_http_path_normal(const char *p, size_t n);

/* How many headers are called `lower`. */
size_t tbp_http_count(const struct tbp_http_head *h, const char *lower);

#endif
