/*
 * h1client (see h1client.h): request writing and response reading for HTTP/1.1.
 *
 * The response side is a tbp_h1_parser fed from a 16 KiB read buffer. Its callbacks turn the
 * parser's head (slices into the parser's buffer) into a struct tbc_response whose fields are
 * copies, valid during the caller's on_head, and pass body bytes straight through. A callback
 * error is kept in the exchange state and returned as is, so the caller's own codes (--fail's
 * TBC_EHTTP, a write error) come back unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h1parse.h"
#include "errors.h"
#include "h1client.h"

#define READ_BUF 16384
#define CHUNK_PREFIX 12 /* room for "%zx\r\n" of a chunk size before the data */

struct exchange {
    struct tbc_tls *c;
    const struct tbc_response_cb *cb;
    void *ctx;
    struct tbc_headers fields; /* the final head's fields, for on_head */
    int cb_err;                /* what a callback returned, when one failed */
    int got_head, done, keep_alive;
};

/* --- the request ----------------------------------------------------------------------------- */

static int token_ok(const char *s)
{
    return tbc_header_valid(s, strlen(s), "", 0);
}

static int target_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* The request head, malloc'd into *out. 0, TBC_EUSAGE (a field that does not fit HTTP/1.1),
 * TBC_ENOMEM. */
static int build_head(const struct tbc_request *rq, int chunked, char **out, size_t *len)
{
    FILE *f;
    size_t i;
    int bad;

    *out = NULL;
    if (!token_ok(rq->method) || !target_ok(rq->target) ||
        !tbc_header_valid("Host", 4, rq->authority, strlen(rq->authority)))
        return TBC_EUSAGE;
    for (i = 0; i < rq->headers->n; i++) {
        const struct tbc_header *h = &rq->headers->h[i];

        if (!tbc_header_valid(h->name, strlen(h->name), h->value, strlen(h->value)))
            return TBC_EUSAGE;
    }
    if ((f = open_memstream(out, len)) == NULL)
        return TBC_ENOMEM;
    fprintf(f, "%s %s HTTP/1.1\r\nHost: %s\r\n", rq->method, rq->target, rq->authority);
    for (i = 0; i < rq->headers->n; i++)
        fprintf(f, "%s: %s\r\n", rq->headers->h[i].name, rq->headers->h[i].value);
    if (chunked)
        fputs("Transfer-Encoding: chunked\r\n", f);
    fputs("\r\n", f);
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(*out);
        *out = NULL;
        return TBC_ENOMEM;
    }
    return 0;
}

/* Streams the body, chunked when its length is unknown. 0, TBC_EREAD or a send error. */
static int send_body(struct tbc_tls *c, struct tbc_body *b, long long deadline)
{
    char *buf = malloc(CHUNK_PREFIX + TBC_BODY_BLOCK + 2);
    int chunked = b->len < 0, rc = 0;
    ssize_t n;

    if (buf == NULL)
        return TBC_ENOMEM;
    while (rc == 0 && (n = tbc_body_read(b, buf + CHUNK_PREFIX, TBC_BODY_BLOCK)) != 0) {
        char *start = buf + CHUNK_PREFIX;
        size_t len = (size_t)n;

        if (n < 0) {
            rc = (int)n;
            snprintf(c->err, sizeof(c->err), "cannot read the request body");
            break;
        }
        if (chunked) {
            char pre[CHUNK_PREFIX + 1];
            int plen = snprintf(pre, sizeof(pre), "%zx\r\n", len);

            start -= plen;
            memcpy(start, pre, (size_t)plen);
            memcpy(buf + CHUNK_PREFIX + len, "\r\n", 2);
            len += (size_t)plen + 2;
        }
        rc = tbc_tls_write(c, start, len, deadline);
    }
    if (rc == 0 && chunked)
        rc = tbc_tls_write(c, "0\r\n\r\n", 5, deadline);
    free(buf);
    return rc;
}

/* --- the response ---------------------------------------------------------------------------- */

static int on_head(void *arg, const struct tbp_http_head *head)
{
    struct exchange *x = arg;
    struct tbc_response r;
    char *reason;
    size_t i;
    int rc;

    if (head->status < 200)
        return 0; /* interim: 100 Continue, 103 Early Hints */
    tbc_headers_dispose(&x->fields);
    for (i = 0; i < head->n_headers; i++) {
        const struct tbp_header *h = &head->headers[i];

        rc = tbc_headers_add(&x->fields, h->name.p, h->name.len, h->value.p, h->value.len);
        if (rc != 0) {
            x->cb_err = rc == TBC_EUSAGE ? TBC_EPROTO : rc;
            return -1;
        }
    }
    if ((reason = strndup(head->reason.p != NULL ? head->reason.p : "", head->reason.len)) ==
        NULL) {
        x->cb_err = TBC_ENOMEM;
        return -1;
    }
    r.status = head->status;
    r.version = head->version_major * 10 + head->version_minor;
    r.reason = reason;
    r.headers = &x->fields;
    x->got_head = 1;
    x->keep_alive = head->keep_alive;
    rc = x->cb->on_head != NULL ? x->cb->on_head(x->ctx, &r) : 0;
    free(reason);
    if (rc < 0) {
        x->cb_err = rc;
        return -1;
    }
    return 0;
}

static int on_body(void *arg, const char *p, size_t n)
{
    struct exchange *x = arg;
    int rc = x->cb->on_body != NULL ? x->cb->on_body(x->ctx, p, n) : 0;

    if (rc < 0) {
        x->cb_err = rc;
        return -1;
    }
    return 0;
}

static int on_end(void *arg)
{
    struct exchange *x = arg;

    x->done = x->got_head; /* the end of a final response, not of an interim one */
    return 0;
}

/* A parser error as a TBC_E* code, with the reason in c->err. */
static int parse_error(struct exchange *x, int err)
{
    if (err == TBP_H1_ECALLBACK && x->cb_err != 0)
        return x->cb_err;
    if (err == TBP_H1_ETRUNCATED && x->got_head) {
        snprintf(x->c->err, sizeof(x->c->err), "the connection closed inside the response body");
        return TBC_EPARTIAL;
    }
    snprintf(x->c->err, sizeof(x->c->err), "bad HTTP/1.1 response: %s", tbp_h1_strerror(err));
    return TBC_EPROTO;
}

/* Reads and parses until the final response ended. 0 (extra bytes after it set *extra) or an
 * error code. */
static int read_response(struct exchange *x, struct tbp_h1_parser *p, long long deadline,
                         int *extra)
{
    char *buf = malloc(READ_BUF);
    size_t received = 0;
    int rc = 0;

    if (buf == NULL)
        return TBC_ENOMEM;
    while (!x->done && rc == 0) {
        size_t off = 0, used;
        int n = tbc_tls_read(x->c, buf, READ_BUF, deadline);

        if (n < 0) {
            rc = n;
            break;
        }
        if (n == 0) { /* end of stream */
            int e = tbp_h1_feed_eof(p);

            if (received == 0) {
                snprintf(x->c->err, sizeof(x->c->err), "empty reply from server");
                rc = TBC_EEMPTY;
            } else if (e != 0 || !x->done) {
                rc = parse_error(x, e != 0 ? e : TBP_H1_ETRUNCATED);
            }
            break;
        }
        received += (size_t)n;
        while (off < (size_t)n && !x->done && rc == 0) {
            int e = tbp_h1_feed(p, buf + off, (size_t)n - off, &used);

            if (e != 0)
                rc = parse_error(x, e);
            off += used;
        }
        *extra = off < (size_t)n;
    }
    free(buf);
    return rc;
}

int tbc_h1_exchange(struct tbc_tls *c, const struct tbc_request *rq,
                    const struct tbc_response_cb *cb, void *ctx, long long deadline, int *reusable)
{
    static const struct tbp_h1_limits limits = {TBP_MAX_HEADER_BYTES_DEFAULT, TBC_MAX_FIELDS};
    static const struct tbp_h1_callbacks pcb = {on_head, on_body, on_end};
    struct tbc_body *body = rq->body != NULL && rq->body->kind != TBC_BODY_NONE ? rq->body : NULL;
    struct exchange x = {.c = c, .cb = cb, .ctx = ctx};
    struct tbp_h1_parser p;
    char *head = NULL;
    size_t head_len = 0;
    int rc, send_rc, extra = 0;

    *reusable = 0;
    memset(&p, 0, sizeof(p));
    if ((rc = build_head(rq, body != NULL && body->len < 0, &head, &head_len)) != 0) {
        snprintf(c->err, sizeof(c->err), "the request cannot be written as HTTP/1.1");
        return rc;
    }
    if (tbp_h1_parser_init(&p, 0, &limits, &pcb, &x) != 0) {
        free(head);
        return TBC_ENOMEM;
    }
    if (strcasecmp(rq->method, "HEAD") == 0)
        tbp_h1_expect_no_body(&p);
    send_rc = tbc_tls_write(c, head, head_len, deadline);
    if (send_rc == 0 && body != NULL)
        send_rc = send_body(c, body, deadline);
    if (send_rc == TBC_EREAD || send_rc == TBC_ENOMEM || send_rc == TBC_ETIMEOUT) {
        rc = send_rc; /* our side failed: the request is incomplete, do not wait */
        goto Exit;
    }
    rc = read_response(&x, &p, deadline, &extra);
    if (rc == TBC_EEMPTY && send_rc != 0)
        rc = send_rc; /* closed on us while sending, and nothing came back */
    *reusable = rc == 0 && send_rc == 0 && x.keep_alive && !extra;
Exit:
    tbp_h1_parser_dispose(&p);
    tbc_headers_dispose(&x.fields);
    free(head);
    return rc;
}
