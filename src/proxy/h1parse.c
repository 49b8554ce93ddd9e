/*
 * h1parse: incremental HTTP/1.1 request/response parser over llhttp 8.1 strict (see h1parse.h).
 *
 * Design. llhttp runs the byte-level state machine; this file owns everything around it. Our
 * llhttp callbacks copy the spans of the start line and fields into the parser's fixed buffer
 * and PAUSE llhttp at every point where the nature of the following bytes changes: after the
 * header section (on_headers_complete), at the last chunk (where the trailer section starts) and
 * at the end of each message. tbp_h1_feed therefore always knows whether the bytes llhttp just
 * consumed belonged to a header/trailer section or to a body, which gives exact raw-byte limits
 * and a raw scan of section bytes (obs-fold, protocol name). The checks run and on_head / on_end
 * are called from tbp_h1_feed itself, outside llhttp; only on_body runs inside an llhttp callback.
 *
 * What llhttp 8.1 strict mode already rejects (verified in tests/unit/test_h1parse.c):
 * Content-Length together with Transfer-Encoding (either order), any repeated Content-Length
 * (even with equal values), a non-numeric / empty / overflowing Content-Length, "chunked" not
 * last in Transfer-Encoding (a request whose coding list has no chunked at all gets through to
 * our check first), NUL / CTLs / bare CR in field values, bare LF line endings, whitespace
 * between a field name and the colon, whitespace before the first field line, an empty
 * request-target, spaces in the target, control bytes in the target, lower-case methods, HTTP/x.y
 * with unknown digits (1.2), malformed chunk sizes and chunk-data CRLF, bytes after a message
 * that ended the connection. What it accepts and we reject: see h1parse.h.
 *
 * Surprises in llhttp 8.1 worth knowing: obs-fold is accepted in strict mode; an empty field
 * name (": v") is accepted; HTTP/0.9 and HTTP/2.0 start lines parse; "GET / RTSP/1.0" parses as
 * a 1.0 request; status codes 000-999 parse; a 204 with Content-Length reads a body; and
 * "1;a=b;c=d" (an unquoted chunk-extension value followed by another extension) is rejected.
 */
#include "h1parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Why llhttp last paused (set by our llhttp callbacks, read by step()). */
enum {
    WHY_NONE = 0, /* not paused by us */
    WHY_HEAD,     /* the header section is complete */
    WHY_TRAILERS, /* the last chunk: a trailer section follows */
    WHY_USER,     /* on_body returned TBP_H1_PAUSE */
    WHY_END       /* the message is complete */
};

/* Where the field being copied is. */
enum {
    PH_NONE = 0, /* between fields */
    PH_NAME,     /* copying the name */
    PH_VALUE     /* name done; copying the value */
};

/* step() results besides a negative error. */
enum { STEP_STOP = 0, STEP_CONTINUE = 1 };

static const char EMPTY[] = "";

static int fail(struct tbp_h1_parser *p, int err)
{
    if (p->state != TBP_H1_FAILED) {
        p->state = TBP_H1_FAILED;
        p->err = err;
    }
    return p->err;
}

static int in_section(enum tbp_h1_state s)
{
    return s == TBP_H1_IDLE || s == TBP_H1_HEAD || s == TBP_H1_TRAILERS;
}

/* An llhttp callback failed for a reason of ours: remember it, make llhttp stop. */
static int ll_fail(struct tbp_h1_parser *p, int err)
{
    p->pending = err;
    return HPE_USER;
}

static int syntax_error(const struct tbp_h1_parser *p)
{
    return p->is_request ? TBP_H1_EBAD_REQUEST : TBP_H1_EBAD_RESPONSE;
}

/* --- copying spans into the header buffer ------------------------------------------------- */

/* The copy area and the field array are allocated when a message begins, small, and grow by
 * doubling up to the limits (max_header_bytes, max_headers): most heads fit the first allocation.
 * tbp_h1_parser_release frees them between messages. */
#define BUF_MIN 4096  /* bytes: a page */
#define FIELDS_MIN 32 /* fields */

/* Frees the head's buffer and field array that a trailer section outgrew (see grow_buf). */
static void drop_retired(struct tbp_h1_parser *p)
{
    free(p->old_buf);
    free(p->old_fields);
    p->old_buf = NULL;
    p->old_fields = NULL;
    p->old_buf_cap = p->old_fields_cap = 0;
}

/* A slice pointing into [old, old + used] (the end included: an empty slice may sit there) now
 * points to the same offset in q. */
static void rebase(struct tbp_str *s, const char *old, size_t used, char *q)
{
    uintptr_t a = (uintptr_t)s->p, o = (uintptr_t)old;

    if (s->p != NULL && a >= o && a - o <= used)
        s->p = q + (a - o);
}

/* Makes room for n more bytes in buf; the caller checked buf_used + n <= max_header_bytes. The
 * bytes move to a larger allocation. In a header section every slice moves with them (nobody has
 * seen them yet). In a trailer section only the trailers' slices move: the head was delivered, so
 * its buffer stays where it is (old_buf) until the message is over, and the head given to on_head
 * never changes. */
static int grow_buf(struct tbp_h1_parser *p, size_t n)
{
    size_t need = p->buf_used + n, cap = p->buf_cap > 0 ? p->buf_cap : BUF_MIN, first = 0, count;
    int trailers = p->state == TBP_H1_TRAILERS;
    char *q;

    if (p->buf != NULL && need <= p->buf_cap)
        return 0;
    while (cap < need)
        cap *= 2; /* need <= 64 MiB: no overflow */
    if (cap > p->max_header_bytes)
        cap = p->max_header_bytes;
    if ((q = malloc(cap)) == NULL)
        return TBP_H1_ENOMEM;
    if (p->buf != NULL) {
        if (p->buf_used > 0)
            memcpy(q, p->buf, p->buf_used);
        if (trailers) {
            first = p->head.n_headers;
        } else {
            rebase(&p->head.target, p->buf, p->buf_used, q);
            rebase(&p->head.reason, p->buf, p->buf_used, q);
        }
        count = p->head.n_headers + p->n_trailers + (p->field_phase != PH_NONE);
        for (; first < count; first++) {
            rebase(&p->fields[first].name, p->buf, p->buf_used, q);
            rebase(&p->fields[first].value, p->buf, p->buf_used, q);
        }
        if (trailers && p->old_buf == NULL) {
            p->old_buf = p->buf; /* the head's: kept until the message is over */
            p->old_buf_cap = p->buf_cap;
        } else {
            free(p->buf);
        }
    }
    p->buf = q;
    p->buf_cap = cap;
    return 0;
}

/* Makes room for one more field; the caller checked the count against max_headers. Like
 * grow_buf, a trailer section leaves the head's array in place (old_fields) for head.headers. */
static int grow_fields(struct tbp_h1_parser *p)
{
    size_t count = p->head.n_headers + p->n_trailers;
    size_t cap = p->fields_cap > 0 ? p->fields_cap * 2 : FIELDS_MIN;
    int trailers = p->state == TBP_H1_TRAILERS;
    struct tbp_header *f;

    if (p->fields != NULL && count < p->fields_cap)
        return 0;
    if (cap > p->max_headers)
        cap = p->max_headers; /* > count: checked by the caller */
    if ((f = malloc(cap * sizeof(*f))) == NULL)
        return TBP_H1_ENOMEM;
    if (p->fields != NULL) {
        if (count > 0)
            memcpy(f, p->fields, count * sizeof(*f));
        if (trailers && p->old_fields == NULL) {
            p->old_fields = p->fields; /* head.headers points into it */
            p->old_fields_cap = p->fields_cap;
        } else {
            free(p->fields);
        }
    }
    p->fields = f;
    p->fields_cap = cap;
    if (!trailers)
        p->head.headers = f;
    return 0;
}

/* A message may begin: the buffer and the field array exist (first sizes when released), and
 * what a trailer section left behind is freed (the previous message's head is invalid now). */
static int prepare(struct tbp_h1_parser *p)
{
    int rc;

    drop_retired(p);
    p->buf_used = 0;
    if ((rc = grow_buf(p, 0)) != 0)
        return rc;
    if (p->fields == NULL && (rc = grow_fields(p)) != 0)
        return rc;
    return 0;
}

/* Append a span to s, which must be the last thing in the buffer (llhttp delivers the spans of
 * one element back to back, and we copy nothing else in between). */
static int append(struct tbp_h1_parser *p, struct tbp_str *s, const char *at, size_t n)
{
    int rc;

    if (n > p->max_header_bytes - p->buf_used)
        return ll_fail(p, TBP_H1_EHEADER_TOO_LARGE);
    if (s->p != NULL && s->p + s->len != p->buf + p->buf_used)
        return ll_fail(p, syntax_error(p));
    if ((rc = grow_buf(p, n)) != 0) /* moves s too */
        return ll_fail(p, rc);
    if (s->p == NULL)
        s->p = p->buf + p->buf_used;
    if (n > 0)
        memcpy(p->buf + p->buf_used, at, n);
    p->buf_used += n;
    s->len += n;
    return 0;
}

static struct tbp_header *cur_field(struct tbp_h1_parser *p)
{
    return &p->fields[p->head.n_headers + p->n_trailers];
}

static void trim(struct tbp_str *s)
{
    while (s->len > 0 && (s->p[s->len - 1] == ' ' || s->p[s->len - 1] == '\t'))
        s->len--;
    while (s->len > 0 && (s->p[0] == ' ' || s->p[0] == '\t')) {
        s->p++;
        s->len--;
    }
}

/* --- llhttp callbacks ----------------------------------------------------------------------- */

static int ll_on_message_begin(llhttp_t *ll)
{
    struct tbp_h1_parser *p = ll->data;

    p->state = TBP_H1_HEAD;
    p->buf_used = 0;
    memset(&p->head, 0, sizeof(p->head));
    p->head.is_request = p->is_request;
    p->head.headers = p->fields;
    p->n_trailers = 0;
    p->field_phase = PH_NONE;
    p->chunk_ext_bytes = 0;
    return 0;
}

static int ll_on_url(llhttp_t *ll, const char *at, size_t n)
{
    struct tbp_h1_parser *p = ll->data;

    if (p->max_uri_bytes != 0 && n > p->max_uri_bytes - p->head.target.len)
        return ll_fail(p, TBP_H1_EURI_TOO_LONG);
    return append(p, &p->head.target, at, n);
}

static int ll_on_status(llhttp_t *ll, const char *at, size_t n)
{
    struct tbp_h1_parser *p = ll->data;

    return append(p, &p->head.reason, at, n);
}

static int ll_on_header_field(llhttp_t *ll, const char *at, size_t n)
{
    struct tbp_h1_parser *p = ll->data;
    int rc;

    if (p->field_phase == PH_VALUE)
        return ll_fail(p, syntax_error(p));
    if (p->field_phase == PH_NONE) {
        if (p->head.n_headers + p->n_trailers >= p->max_headers)
            return ll_fail(p, TBP_H1_ETOO_MANY_HEADERS);
        if ((rc = grow_fields(p)) != 0)
            return ll_fail(p, rc);
        memset(cur_field(p), 0, sizeof(struct tbp_header));
        p->field_phase = PH_NAME;
    }
    return append(p, &cur_field(p)->name, at, n);
}

static int ll_on_header_field_complete(llhttp_t *ll)
{
    struct tbp_h1_parser *p = ll->data;

    /* llhttp accepts ": value" (empty name); RFC 9110 field-name = token (1*tchar) */
    if (p->field_phase != PH_NAME || cur_field(p)->name.len == 0)
        return ll_fail(p, syntax_error(p));
    p->field_phase = PH_VALUE;
    return 0;
}

static int ll_on_header_value(llhttp_t *ll, const char *at, size_t n)
{
    struct tbp_h1_parser *p = ll->data;

    if (p->field_phase != PH_VALUE)
        return ll_fail(p, syntax_error(p));
    return append(p, &cur_field(p)->value, at, n);
}

static int ll_on_header_value_complete(llhttp_t *ll)
{
    struct tbp_h1_parser *p = ll->data;
    struct tbp_header *f;

    if (p->field_phase != PH_VALUE)
        return ll_fail(p, syntax_error(p));
    f = cur_field(p);
    if (f->value.p == NULL)
        f->value.p = EMPTY;
    trim(&f->value);
    if (p->state == TBP_H1_TRAILERS)
        p->n_trailers++;
    else
        p->head.n_headers++;
    p->field_phase = PH_NONE;
    return 0;
}

static int ll_on_headers_complete(llhttp_t *ll)
{
    struct tbp_h1_parser *p = ll->data;

    p->why = WHY_HEAD;
    return HPE_PAUSED;
}

static int ll_on_body(llhttp_t *ll, const char *at, size_t n)
{
    struct tbp_h1_parser *p = ll->data;
    int rc;

    if (n == 0 || p->cb.on_body == NULL)
        return 0;
    rc = p->cb.on_body(p->ctx, at, n);
    if (rc == 0)
        return 0;
    if (rc != TBP_H1_PAUSE)
        return ll_fail(p, TBP_H1_ECALLBACK);
    p->user_paused = 1;
    /* the last bytes of a Content-Length body: nothing left to hold back, and the end needs no
     * more input, so let llhttp reach on_end now (else it would wait for bytes never sent) */
    if (p->head.framing == TBP_BODY_LENGTH && ll->content_length == 0)
        return 0;
    p->why = WHY_USER;
    return HPE_PAUSED;
}

static int ll_on_chunk_ext(llhttp_t *ll, const char *at, size_t n)
{
    struct tbp_h1_parser *p = ll->data;

    (void)at;
    p->chunk_ext_bytes += n;
    if (p->chunk_ext_bytes > TBP_H1_MAX_CHUNK_EXT)
        return ll_fail(p, TBP_H1_ECHUNK_EXT);
    return 0;
}

static int ll_on_chunk_header(llhttp_t *ll)
{
    struct tbp_h1_parser *p = ll->data;

    p->chunk_ext_bytes = 0;
    if (ll->content_length == 0) {
        p->why = WHY_TRAILERS;
        return HPE_PAUSED;
    }
    return 0;
}

static int ll_on_message_complete(llhttp_t *ll)
{
    struct tbp_h1_parser *p = ll->data;

    p->why = WHY_END;
    return HPE_PAUSED;
}

/* --- raw scan of header-section bytes ------------------------------------------------------ */

/* Walk bytes of a header or trailer section (in order, across feeds): flag obs-fold (a line
 * starting with SP or HTAB right after a line ending), and record the protocol name of the start
 * line ("HTTP" in "HTTP/1.1"), which llhttp does not report. */
static void scan_section(struct tbp_h1_parser *p, const char *s, size_t n)
{
    unsigned proto_field = p->is_request ? 2 : 0;
    size_t i;

    for (i = 0; i < n; i++) {
        char c = s[i];

        if (p->scan.prev == '\n' && (c == ' ' || c == '\t'))
            p->scan.fold = 1;
        p->scan.prev = c;
        if (p->scan.line == 2)
            continue; /* past the start line */
        if (p->scan.line == 0) {
            if (c == '\r' || c == '\n')
                continue; /* empty lines before a message */
            p->scan.line = 1;
        }
        if (c == '\r' || c == '\n')
            p->scan.line = 2;
        else if (c == ' ')
            p->scan.field += p->scan.field < 255;
        else if (p->scan.field == proto_field && !p->scan.proto_done) {
            if (c == '/')
                p->scan.proto_done = 1;
            else if (p->scan.proto_len < sizeof(p->scan.proto))
                p->scan.proto[p->scan.proto_len++] = c;
        }
    }
}

/* --- checks on a complete header section --------------------------------------------------- */

static int is_http11_or_10(const struct tbp_h1_parser *p)
{
    if (!p->scan.proto_done || p->scan.proto_len != 4 || memcmp(p->scan.proto, "HTTP", 4) != 0)
        return 0;
    return p->ll.http_major == 1 && (p->ll.http_minor == 0 || p->ll.http_minor == 1);
}

static int lower_eq(const char *s, size_t n, const char *lower)
{
    return tbp_http_name_eq((struct tbp_str){s, n}, lower);
}

/* uri-host [ ":" port ] (RFC 3986): unreserved, pct-encoded, sub-delims, ':', '[', ']'. */
static int host_char_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("-._~%!$&'()*+,;=:[]", c) != NULL;
}

static int check_host(const struct tbp_http_head *h)
{
    size_t n = tbp_http_count(h, "host"), i;
    const struct tbp_header *host;

    if (n > 1)
        return TBP_H1_EDUPLICATE_HOST;
    if (n == 0)
        return h->version_minor == 1 ? TBP_H1_EMISSING_HOST : 0;
    host = tbp_http_find(h, "host");
    for (i = 0; i < host->value.len; i++)
        if (!host_char_ok((unsigned char)host->value.p[i]))
            return TBP_H1_EBAD_HOST;
    return 0;
}

/* A request's transfer codings (all Transfer-Encoding fields, comma lists) must be exactly
 * "chunked". llhttp already rejected "chunked" followed by anything. */
static int check_request_te(const struct tbp_http_head *h)
{
    size_t i, n_codings = 0, n_other = 0;

    for (i = 0; i < h->n_headers; i++) {
        const struct tbp_str *v = &h->headers[i].value;
        size_t start = 0, end;

        if (!tbp_http_name_eq(h->headers[i].name, "transfer-encoding"))
            continue;
        while (start <= v->len) {
            struct tbp_str c;
            const char *comma = memchr(v->p + start, ',', v->len - start);

            end = comma ? (size_t)(comma - v->p) : v->len;
            c = (struct tbp_str){v->p + start, end - start};
            trim(&c);
            if (c.len > 0) {
                n_codings++;
                n_other += !lower_eq(c.p, c.len, "chunked");
            }
            start = end + 1;
        }
    }
    if (n_other > 0)
        return TBP_H1_EUNSUPPORTED_TE;
    return n_codings == 1 ? 0 : TBP_H1_EBAD_FRAMING;
}

static int check_request(struct tbp_h1_parser *p)
{
    const struct tbp_http_head *h = &p->head;
    int rc;

    if (p->ll.method == HTTP_CONNECT)
        return TBP_H1_EBAD_METHOD;
    if (h->target.len == 0 || memchr(h->target.p, '#', h->target.len) != NULL)
        return TBP_H1_EBAD_TARGET;
    if (h->target.len == 1 && h->target.p[0] == '*' && p->ll.method != HTTP_OPTIONS)
        return TBP_H1_EBAD_TARGET;
    if ((rc = check_host(h)) != 0)
        return rc;
    if (tbp_http_count(h, "transfer-encoding") > 0) {
        if ((rc = check_request_te(h)) != 0)
            return rc;
        /* our reading says "chunked", llhttp's must too ("chunked" followed by tabs is not
         * chunked to llhttp): a request framed any other way would be read until close */
        if (!(p->ll.flags & F_CHUNKED))
            return TBP_H1_EBAD_FRAMING;
    }
    return 0;
}

static int check_response(const struct tbp_h1_parser *p)
{
    int status = p->ll.status_code;

    if (status < 100 || status > 599)
        return TBP_H1_EBAD_RESPONSE;
    if (status == 101)
        return TBP_H1_EUPGRADE;
    return 0;
}

/* Fill the head's remaining fields and decide the framing; set llhttp's flags to match. */
static void finish_head(struct tbp_h1_parser *p)
{
    struct tbp_http_head *h = &p->head;
    int status = p->ll.status_code;
    const struct tbp_header *expect;

    if (h->reason.p == NULL)
        h->reason.p = EMPTY;
    if (h->target.p == NULL)
        h->target.p = EMPTY;
    if (p->is_request) {
        h->method.p = llhttp_method_name((llhttp_method_t)p->ll.method);
        h->method.len = strlen(h->method.p);
        expect = tbp_http_find(h, "expect");
        h->expect_continue = h->version_minor == 1 && expect != NULL &&
                             lower_eq(expect->value.p, expect->value.len, "100-continue");
    } else {
        h->method.p = EMPTY;
        h->status = status;
    }
    if (!p->is_request && (status < 200 || status == 204 || status == 304 || p->skip_body)) {
        p->ll.flags |= F_SKIPBODY; /* llhttp alone would read a body after a 204 with a length */
        h->framing = TBP_BODY_NONE;
    } else if (p->ll.flags & F_CHUNKED) {
        h->framing = TBP_BODY_CHUNKED;
    } else if (p->ll.flags & F_TRANSFER_ENCODING) {
        h->framing = TBP_BODY_UNTIL_CLOSE; /* response, chunked not final (requests rejected) */
    } else if (p->ll.flags & F_CONTENT_LENGTH) {
        h->framing = TBP_BODY_LENGTH;
        h->content_length = p->ll.content_length;
    } else {
        h->framing = p->is_request ? TBP_BODY_NONE : TBP_BODY_UNTIL_CLOSE;
    }
    p->ll.upgrade = 0; /* never switch protocols: what follows is HTTP (or an error) */
    h->keep_alive = llhttp_should_keep_alive(&p->ll);
}

static int check_head(struct tbp_h1_parser *p)
{
    struct tbp_http_head *h = &p->head;
    int rc;

    if (!is_http11_or_10(p))
        return TBP_H1_EBAD_VERSION;
    h->version_major = p->ll.http_major;
    h->version_minor = p->ll.http_minor;
    if (h->version_minor == 0 && tbp_http_count(h, "transfer-encoding") > 0)
        return TBP_H1_ETE_IN_HTTP10;
    rc = p->is_request ? check_request(p) : check_response(p);
    if (rc != 0)
        return rc;
    finish_head(p);
    return 0;
}

/* --- the feed loop --------------------------------------------------------------------------- */

/* A callback's answer as a step() result. */
static int user_rc(struct tbp_h1_parser *p, int rc)
{
    if (rc == 0)
        return STEP_CONTINUE;
    if (rc == TBP_H1_PAUSE) {
        p->user_paused = 1;
        return STEP_STOP;
    }
    return fail(p, TBP_H1_ECALLBACK);
}

static void start_idle(struct tbp_h1_parser *p)
{
    p->state = TBP_H1_IDLE;
    p->section_bytes = 0;
    memset(&p->scan, 0, sizeof(p->scan));
}

/* A pause from on_head does not hold back the end of a message that has no body: it needs no
 * more input, and a caller waiting for bytes before feeding again would wait forever. */
static int deliver_head(struct tbp_h1_parser *p)
{
    const struct tbp_http_head *h = &p->head;
    int rc = check_head(p);

    if (rc != 0)
        return fail(p, rc);
    p->state = TBP_H1_BODY;
    rc = user_rc(p, p->cb.on_head ? p->cb.on_head(p->ctx, h) : 0);
    if (rc == STEP_STOP &&
        (h->framing == TBP_BODY_NONE || (h->framing == TBP_BODY_LENGTH && h->content_length == 0)))
        return STEP_CONTINUE;
    return rc;
}

/* End of a message: a boundary, where the parser stops anyway, so a TBP_H1_PAUSE from on_end
 * means the same as 0. A 1xx head has no on_end. */
static int deliver_end(struct tbp_h1_parser *p)
{
    int interim = !p->is_request && p->head.status < 200;
    int rc;

    start_idle(p);
    p->interim = interim;
    if (interim)
        return STEP_STOP;
    p->skip_body = 0;
    rc = p->cb.on_end ? p->cb.on_end(p->ctx) : 0;
    if (rc != 0 && rc != TBP_H1_PAUSE)
        return fail(p, TBP_H1_ECALLBACK);
    return STEP_STOP;
}

static int map_llhttp_error(struct tbp_h1_parser *p, llhttp_errno_t e)
{
    switch (e) {
    case HPE_USER:
        return p->pending != 0 ? p->pending : TBP_H1_ECALLBACK;
    case HPE_CLOSED_CONNECTION:
        return TBP_H1_EDATA_AFTER_CLOSE;
    case HPE_INVALID_VERSION:
    case HPE_PAUSED_H2_UPGRADE: /* "PRI * HTTP/2.0": an h2 preface */
        return TBP_H1_EBAD_VERSION;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_INVALID_TRANSFER_ENCODING:
    case HPE_INVALID_CHUNK_SIZE:
        return TBP_H1_EBAD_FRAMING;
    default:
        return p->state == TBP_H1_BODY || p->state == TBP_H1_TRAILERS ? TBP_H1_EBAD_FRAMING
                                                                      : syntax_error(p);
    }
}

static int on_pause(struct tbp_h1_parser *p)
{
    p->ll_paused = 1;
    switch (p->why) {
    case WHY_HEAD:
        return deliver_head(p);
    case WHY_TRAILERS:
        p->state = TBP_H1_TRAILERS;
        p->scan.line = 2;
        p->scan.prev = '\n'; /* a trailer line starting with SP/HTAB is a fold too */
        return STEP_CONTINUE;
    case WHY_USER: /* on_body set user_paused */
        return STEP_STOP;
    case WHY_END:
        return deliver_end(p);
    default:
        return fail(p, syntax_error(p));
    }
}

/* How many bytes llhttp consumed before stopping with an error or a pause. */
static size_t stop_offset(const struct tbp_h1_parser *p, const char *data, size_t n)
{
    uintptr_t pos = (uintptr_t)llhttp_get_error_pos(&p->ll), start = (uintptr_t)data;

    return pos >= start && pos - start <= n ? (size_t)(pos - start) : 0;
}

/* Run llhttp once over data (at most up to the header-section limit). */
static int step(struct tbp_h1_parser *p, const char *data, size_t len, size_t *used)
{
    int section = in_section(p->state), rc;
    size_t n = len;
    llhttp_errno_t e;

    *used = 0;
    if (n == 0 && !p->ll_paused)
        return STEP_STOP;
    if (p->state == TBP_H1_IDLE && n > 0 && (rc = prepare(p)) != 0)
        return fail(p, rc);
    if (section && n > p->max_header_bytes - p->section_bytes) {
        n = p->max_header_bytes - p->section_bytes;
        if (n == 0)
            return fail(p, TBP_H1_EHEADER_TOO_LARGE);
    }
    if (p->ll_paused) {
        llhttp_resume(&p->ll);
        p->ll_paused = 0;
    }
    p->why = WHY_NONE;
    p->pending = 0;
    e = llhttp_execute(&p->ll, data, n);
    *used = e == HPE_OK ? n : stop_offset(p, data, n);
    if (section) {
        scan_section(p, data, *used);
        p->section_bytes += *used;
        if (p->scan.fold)
            return fail(p, TBP_H1_EOBS_FOLD);
    }
    if (e == HPE_OK) {
        /* the section is unfinished and already at the limit: one more byte would exceed it */
        if (section && in_section(p->state) && p->section_bytes >= p->max_header_bytes)
            return fail(p, TBP_H1_EHEADER_TOO_LARGE);
        return n < len ? STEP_CONTINUE : STEP_STOP;
    }
    if (e == HPE_PAUSED)
        return on_pause(p);
    return fail(p, map_llhttp_error(p, e));
}

int tbp_h1_feed(struct tbp_h1_parser *p, const char *data, size_t len, size_t *consumed)
{
    size_t off = 0, used;
    int rc;

    *consumed = 0;
    if (p->state == TBP_H1_FAILED)
        return p->err;
    if (p->user_paused)
        return TBP_H1_EPAUSED;
    if (p->state == TBP_H1_CLOSED)
        return len == 0 ? 0 : fail(p, TBP_H1_EDATA_AFTER_CLOSE);
    if (data == NULL) {
        data = EMPTY;
        len = 0;
    }
    do {
        rc = step(p, data + off, len - off, &used);
        off += used;
    } while (rc == STEP_CONTINUE);
    *consumed = off;
    return rc < 0 ? rc : 0;
}

int tbp_h1_feed_eof(struct tbp_h1_parser *p)
{
    size_t unused;
    int rc;

    if (p->state == TBP_H1_FAILED)
        return p->err;
    if (p->state == TBP_H1_CLOSED)
        return 0;
    if (p->user_paused) {
        /* between messages nothing is held back; elsewhere kept bytes may wait to be fed */
        if (p->state != TBP_H1_IDLE || p->interim)
            return TBP_H1_EPAUSED;
        p->user_paused = 0;
    }
    /* let llhttp finish transitions it was paused before (e.g. right after a head) */
    if (p->ll_paused && (rc = tbp_h1_feed(p, NULL, 0, &unused)) != 0)
        return rc;
    if (p->state == TBP_H1_BODY && p->head.framing == TBP_BODY_UNTIL_CLOSE && !p->user_paused) {
        p->why = WHY_NONE;
        (void)llhttp_finish(&p->ll); /* calls ll_on_message_complete: WHY_END */
        if (p->why != WHY_END)
            return fail(p, TBP_H1_ETRUNCATED);
        if ((rc = deliver_end(p)) < 0)
            return rc;
    }
    if (p->state != TBP_H1_IDLE || p->interim)
        return fail(p, TBP_H1_ETRUNCATED);
    p->state = TBP_H1_CLOSED;
    p->user_paused = 0;
    return 0;
}

/* --- setup and accessors ------------------------------------------------------------------- */

/* The same for every parser: llhttp only reads it. */
static const llhttp_settings_t SETTINGS = {
    .on_message_begin = ll_on_message_begin,
    .on_url = ll_on_url,
    .on_status = ll_on_status,
    .on_header_field = ll_on_header_field,
    .on_header_field_complete = ll_on_header_field_complete,
    .on_header_value = ll_on_header_value,
    .on_header_value_complete = ll_on_header_value_complete,
    .on_headers_complete = ll_on_headers_complete,
    .on_body = ll_on_body,
    .on_chunk_extension_name = ll_on_chunk_ext,
    .on_chunk_extension_value = ll_on_chunk_ext,
    .on_chunk_header = ll_on_chunk_header,
    .on_message_complete = ll_on_message_complete,
};

int tbp_h1_parser_init(struct tbp_h1_parser *p, int is_request, const struct tbp_h1_limits *lim,
                       const struct tbp_h1_callbacks *cb, void *ctx)
{
    size_t max_bytes =
        lim && lim->max_header_bytes ? lim->max_header_bytes : TBP_MAX_HEADER_BYTES_DEFAULT;
    size_t max_headers = lim && lim->max_headers ? lim->max_headers : TBP_MAX_HEADERS_DEFAULT;

    memset(p, 0, sizeof(*p));
    if (max_bytes > (size_t)64 * 1024 * 1024 || max_headers > 65536)
        return TBP_H1_EINVAL;
    p->max_header_bytes = max_bytes;
    p->max_headers = max_headers;
    p->is_request = is_request != 0;
    if (cb != NULL)
        p->cb = *cb;
    p->ctx = ctx;
    llhttp_init(&p->ll, p->is_request ? HTTP_REQUEST : HTTP_RESPONSE, &SETTINGS);
    p->ll.data = p;
    tbp_h1_parser_reset(p);
    return 0;
}

/* Frees the buffer and the field array; the last head and trailers are gone with them. */
static void free_storage(struct tbp_h1_parser *p)
{
    drop_retired(p);
    free(p->buf);
    free(p->fields);
    p->buf = NULL;
    p->fields = NULL;
    p->buf_used = p->buf_cap = p->fields_cap = 0;
    memset(&p->head, 0, sizeof(p->head));
    p->n_trailers = 0;
}

void tbp_h1_parser_dispose(struct tbp_h1_parser *p)
{
    free_storage(p);
    p->max_header_bytes = 0;
    p->max_headers = 0;
}

void tbp_h1_parser_release(struct tbp_h1_parser *p)
{
    if (!tbp_h1_in_message(p))
        free_storage(p);
}

size_t tbp_h1_memory(const struct tbp_h1_parser *p)
{
    size_t n = p->buf != NULL ? p->buf_cap : 0;

    if (p->fields != NULL)
        n += p->fields_cap * sizeof(*p->fields);
    if (p->old_buf != NULL)
        n += p->old_buf_cap;
    if (p->old_fields != NULL)
        n += p->old_fields_cap * sizeof(*p->fields);
    return n;
}

void tbp_h1_parser_reset(struct tbp_h1_parser *p)
{
    llhttp_reset(&p->ll);
    start_idle(p);
    drop_retired(p);
    p->err = 0;
    p->pending = 0;
    p->why = WHY_NONE;
    p->user_paused = 0;
    p->ll_paused = 0;
    p->skip_body = 0;
    p->interim = 0;
    p->buf_used = 0;
    memset(&p->head, 0, sizeof(p->head));
    p->head.headers = p->fields;
    p->n_trailers = 0;
    p->field_phase = PH_NONE;
    p->chunk_ext_bytes = 0;
}

void tbp_h1_set_max_uri(struct tbp_h1_parser *p, size_t max)
{
    p->max_uri_bytes = p->is_request ? max : 0;
}

void tbp_h1_resume(struct tbp_h1_parser *p)
{
    p->user_paused = 0;
}

void tbp_h1_expect_no_body(struct tbp_h1_parser *p)
{
    if (!p->is_request)
        p->skip_body = 1;
}

const struct tbp_header *tbp_h1_trailers(const struct tbp_h1_parser *p, size_t *n)
{
    *n = p->n_trailers;
    return p->n_trailers > 0 ? p->fields + p->head.n_headers : NULL;
}

int tbp_h1_in_message(const struct tbp_h1_parser *p)
{
    return p->state == TBP_H1_HEAD || p->state == TBP_H1_BODY || p->state == TBP_H1_TRAILERS ||
           p->interim;
}

enum tbp_h1_state tbp_h1_state(const struct tbp_h1_parser *p)
{
    return p->state;
}

const char *tbp_h1_state_to_str(enum tbp_h1_state s)
{
    switch (s) {
    case TBP_H1_IDLE:
        return "idle";
    case TBP_H1_HEAD:
        return "head";
    case TBP_H1_BODY:
        return "body";
    case TBP_H1_TRAILERS:
        return "trailers";
    case TBP_H1_CLOSED:
        return "closed";
    case TBP_H1_FAILED:
        return "failed";
    }
    return "unknown";
}

/* name and status of each error, indexed by -err */
static const struct {
    const char *name;
    int status;
} ERRORS[] = {
    {"ok", 0},
    {"bad_request", 400},
    {"bad_response", 502},
    {"header_too_large", 431},
    {"too_many_headers", 431},
    {"obs_fold", 400},
    {"missing_host", 400},
    {"duplicate_host", 400},
    {"bad_host", 400},
    {"te_in_http10", 400},
    {"bad_framing", 400},
    {"unsupported_te", 501},
    {"bad_version", 505},
    {"bad_target", 400},
    {"bad_method", 501},
    {"upgrade", 502},
    {"chunk_ext_too_large", 400},
    {"data_after_close", 400},
    {"truncated", 400},
    {"callback", 500},
    {"paused", 500},
    {"invalid_argument", 500},
    {"no_memory", 500},
    {"uri_too_long", 414},
};

const char *tbp_h1_strerror(int err)
{
    if (err > 0 || -(long)err >= (long)(sizeof(ERRORS) / sizeof(ERRORS[0])))
        return "unknown";
    return ERRORS[-err].name;
}

int tbp_h1_error_status(int err)
{
    if (err > 0 || -(long)err >= (long)(sizeof(ERRORS) / sizeof(ERRORS[0])))
        return 500;
    return ERRORS[-err].status;
}
