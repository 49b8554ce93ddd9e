/*
 * libFuzzer target for h1parse: the input is parsed as a request stream and as a response
 * stream, fed in pieces whose sizes come from the input, each piece a fresh heap copy freed right
 * after it is consumed (so ASan catches any pointer the parser keeps into its input).
 *
 * Input layout: byte 0 = mode bits, byte 1 = split seed, the rest = the bytes on the wire.
 *   mode & 0x03: piece sizes (0: whole, 1: 1 byte, 2: 1..8, 3: 1..256)
 *   mode & 0x04: on_body returns TBP_H1_PAUSE every other call
 *   mode & 0x08: on_head returns TBP_H1_PAUSE
 *   mode & 0x10: small limits (256 bytes, 8 fields)
 *   mode & 0x20: tbp_h1_expect_no_body before the response stream
 *   mode & 0x40: call tbp_h1_feed_eof at the end
 *
 * Asserted: no crash or sanitizer report; body bytes delivered never exceed the bytes fed and
 * always lie inside the piece being fed; heads passed to on_head satisfy the parser's promises;
 * errors are sticky; feeding always makes progress.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "h1parse.h"

struct fz {
    struct tbp_h1_parser p;
    const char *lo, *hi; /* the piece being fed */
    size_t fed, body;
    int mode, paused, body_calls, in_head_cb;
};

static void check_slice(const struct fz *f, struct tbp_str s)
{
    volatile char sink = 0;
    size_t i;

    CHECK(s.p != NULL);
    for (i = 0; i < s.len; i++) /* every byte readable (ASan) */
        sink ^= s.p[i];
    (void)sink;
    if (s.len > 0)
        CHECK(s.p >= f->p.buf && s.p + s.len <= f->p.buf + f->p.max_header_bytes);
}

static int fz_head(void *ctx, const struct tbp_http_head *h)
{
    struct fz *f = ctx;
    size_t i;

    CHECK(h->version_major == 1 && (h->version_minor == 0 || h->version_minor == 1));
    CHECK(h->framing >= TBP_BODY_NONE && h->framing <= TBP_BODY_UNTIL_CLOSE);
    CHECK(h->n_headers <= f->p.max_headers);
    for (i = 0; i < h->n_headers; i++) {
        CHECK(h->headers[i].name.len > 0);
        check_slice(f, h->headers[i].name);
        check_slice(f, h->headers[i].value);
    }
    if (h->is_request) {
        CHECK(h->target.len > 0);
        check_slice(f, h->target);
        CHECK(tbp_http_count(h, "host") <= 1);
        CHECK(h->version_minor == 0 || tbp_http_count(h, "host") == 1);
        CHECK(h->framing != TBP_BODY_UNTIL_CLOSE);
    } else {
        CHECK(h->status >= 100 && h->status <= 599 && h->status != 101);
        check_slice(f, h->reason);
        if (h->status < 200 || h->status == 204 || h->status == 304)
            CHECK(h->framing == TBP_BODY_NONE);
    }
    if (f->mode & 0x08) {
        f->paused = 1;
        return TBP_H1_PAUSE;
    }
    return 0;
}

static int fz_body(void *ctx, const char *p, size_t n)
{
    struct fz *f = ctx;

    CHECK(n > 0);
    CHECK(p >= f->lo && p + n <= f->hi);
    f->body += n;
    CHECK(f->body <= f->fed);
    if ((f->mode & 0x04) && (f->body_calls++ & 1) == 0) {
        f->paused = 1;
        return TBP_H1_PAUSE;
    }
    return 0;
}

static int fz_end(void *ctx)
{
    struct fz *f = ctx;
    const struct tbp_header *t;
    size_t n, i;

    t = tbp_h1_trailers(&f->p, &n);
    CHECK(n <= f->p.max_headers);
    for (i = 0; i < n; i++) {
        check_slice(f, t[i].name);
        check_slice(f, t[i].value);
    }
    return 0;
}

static const struct tbp_h1_callbacks fz_cb = {fz_head, fz_body, fz_end};

/* Feed one heap copy of piece[0..len) to the end, resuming after pauses. 0 or the error. */
static int feed_piece(struct fz *f, const uint8_t *piece, size_t len)
{
    char *copy = malloc(len ? len : 1);
    size_t off = 0, c;
    int rc = 0, idle = 0;

    CHECK(copy != NULL);
    memcpy(copy, piece, len);
    f->lo = copy;
    f->hi = copy + len;
    f->fed += len;
    while (off < len) {
        rc = tbp_h1_feed(&f->p, copy + off, len - off, &c);
        if (rc < 0)
            break;
        CHECK(c <= len - off);
        off += c;
        idle = c == 0 ? idle + 1 : 0;
        CHECK(idle < 4); /* a boundary may consume nothing once; never forever */
        if (f->paused) {
            CHECK(tbp_h1_feed(&f->p, copy + off, len - off, &c) == TBP_H1_EPAUSED);
            f->paused = 0;
            tbp_h1_resume(&f->p);
        }
    }
    free(copy);
    f->lo = f->hi = NULL;
    return rc;
}

static void run(const uint8_t *msg, size_t len, int is_request, int mode, uint32_t seed)
{
    static const size_t max_piece[] = {0, 1, 8, 256};
    struct tbp_h1_limits small = {256, 8};
    struct fz f;
    size_t off = 0;
    int rc = 0;

    memset(&f, 0, sizeof(f));
    f.mode = mode;
    CHECK(tbp_h1_parser_init(&f.p, is_request, (mode & 0x10) ? &small : NULL, &fz_cb, &f) == 0);
    if (!is_request && (mode & 0x20))
        tbp_h1_expect_no_body(&f.p);
    while (off < len && rc == 0) {
        size_t n = len - off;

        if (max_piece[mode & 3] != 0) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % max_piece[mode & 3];
            if (n > len - off)
                n = len - off;
        }
        rc = feed_piece(&f, msg + off, n);
        off += n;
    }
    if (rc < 0) {
        size_t c;
        CHECK(tbp_h1_state(&f.p) == TBP_H1_FAILED);
        CHECK(tbp_h1_feed(&f.p, "x", 1, &c) == rc); /* sticky */
        CHECK(tbp_h1_strerror(rc)[0] != '\0' && tbp_h1_error_status(rc) >= 400);
    } else if (mode & 0x40) {
        rc = tbp_h1_feed_eof(&f.p);
        CHECK(rc == 0 || rc == TBP_H1_ETRUNCATED || rc == TBP_H1_ECALLBACK);
    }
    CHECK(f.body <= f.fed);
    tbp_h1_parser_dispose(&f.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    run(data + 2, size - 2, 1, data[0], data[1]);
    run(data + 2, size - 2, 0, data[0], data[1]);
    return 0;
}
