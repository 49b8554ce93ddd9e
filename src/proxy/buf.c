/*
 * Growable byte buffer with a hard cap (see buf.h).
 *
 * The allocation is always cap + 1 bytes so the content can stay NUL-terminated; growth doubles
 * from BUF_MIN_CAP and never goes past max. Every size sum is checked against max before it is
 * computed, so a length from the network can neither wrap nor allocate past the cap.
 */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 256

void tbp_buf_init(struct tbp_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    /* the allocation is cap + 1: keep that sum from wrapping */
    b->max = max < SIZE_MAX ? max : SIZE_MAX - 1;
}

void tbp_buf_dispose(struct tbp_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

/* Makes room for `extra` more bytes of content. The caller has checked extra <= max - len. */
static int reserve(struct tbp_buf *b, size_t extra)
{
    size_t need = b->len + extra, cap;
    char *p;

    if (b->p != NULL && need <= b->cap)
        return 0;
    cap = b->cap > BUF_MIN_CAP ? b->cap : BUF_MIN_CAP;
    while (cap < need && cap <= b->max / 2)
        cap *= 2;
    if (cap < need || cap > b->max)
        cap = b->max; /* need <= max: doubling overshot the cap or could not reach need */
    p = realloc(b->p, cap + 1);
    if (p == NULL)
        return TBP_ENOMEM;
    if (b->p == NULL)
        p[0] = '\0';
    b->p = p;
    b->cap = cap;
    return 0;
}

int tbp_buf_append(struct tbp_buf *b, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    if (n > b->max - b->len)
        return TBP_EBUF;
    if ((rc = reserve(b, n)) != 0)
        return rc;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int tbp_buf_append_str(struct tbp_buf *b, const char *s)
{
    return tbp_buf_append(b, s, strlen(s));
}

int tbp_buf_vappendf(struct tbp_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, rc;

    /* first try: straight into the room already there (or just measure if nothing is) */
    va_copy(ap2, ap);
    if (b->p != NULL)
        n = vsnprintf(b->p + b->len, b->cap - b->len + 1, fmt, ap2);
    else
        n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        if (b->p != NULL)
            b->p[b->len] = '\0';
        return TBP_EBUF;
    }
    if (b->p != NULL && (size_t)n <= b->cap - b->len) {
        b->len += (size_t)n;
        return 0;
    }
    /* did not fit: undo the truncated text, grow within max, format again */
    if (b->p != NULL)
        b->p[b->len] = '\0';
    if ((size_t)n > b->max - b->len)
        return TBP_EBUF;
    if (n == 0)
        return 0;
    if ((rc = reserve(b, (size_t)n)) != 0)
        return rc;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int tbp_buf_appendf(struct tbp_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = tbp_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void tbp_buf_consume(struct tbp_buf *b, size_t n)
{
    if (n >= b->len) {
        tbp_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

void tbp_buf_truncate(struct tbp_buf *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    b->p[len] = '\0';
}

void tbp_buf_reset(struct tbp_buf *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}
