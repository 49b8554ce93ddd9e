/*
 * A growable byte buffer with a hard cap.
 *
 * Every buffer in the daemon that grows with network input has a ceiling (`max`) fixed when it
 * is set up: an append that would take the content past it fails with TBP_EBUF and leaves the
 * buffer exactly as it was, so a caller can turn "too big" into a 413/431/502 without cleaning up
 * a half-written message. Memory grows by doubling up to `max` and is kept across
 * tbp_buf_reset() / tbp_buf_consume(), so a buffer reused per message allocates once.
 *
 * The buffer is embedded by its owner (tbp_buf_init / tbp_buf_dispose). Whenever `p` is not NULL
 * the content is followed by a NUL byte that is not counted in `len` (handy for logs and tests;
 * the content itself may contain NULs). `p` may move on any append: do not keep pointers into it
 * across appends.
 */
#ifndef TBP_BUF_H
#define TBP_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* Error codes of the buffer (returned negated style, like libtb's TB_E*). */
#define TBP_EBUF (-1)   /* the append would take the content past `max` */
#define TBP_ENOMEM (-2) /* allocation failed (below `max`) */

struct tbp_buf {
    char *p;    /* content, NUL-terminated when not NULL; NULL until the first append */
    size_t len; /* bytes of content */
    size_t cap; /* bytes of content `p` can hold without growing (the NUL not counted) */
    size_t max; /* hard cap on len */
};

/* Sets up an empty buffer that will never hold more than `max` bytes. Allocates nothing. */
void tbp_buf_init(struct tbp_buf *b, size_t max);

/* Frees the memory; the buffer is empty afterwards (and may be used again with the same max). */
void tbp_buf_dispose(struct tbp_buf *b);

/* Appends n bytes. Returns 0, or TBP_EBUF if len + n would exceed max, or TBP_ENOMEM; on failure
 * the buffer is unchanged. n == 0 always succeeds (p may be NULL then). p must not point into b. */
int tbp_buf_append(struct tbp_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string (tbp_buf_append of its bytes, without the NUL). */
int tbp_buf_append_str(struct tbp_buf *b, const char *s);

/* Appends printf-formatted text (vsnprintf, never more than max - len bytes). Returns 0,
 * TBP_EBUF if the text would not fit under max (or the format fails), or TBP_ENOMEM; on failure
 * the buffer is unchanged. */
int tbp_buf_appendf(struct tbp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tbp_buf_vappendf(struct tbp_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drops the first n bytes (all of them if n >= len); the rest moves to the front. */
void tbp_buf_consume(struct tbp_buf *b, size_t n);

/* Shortens the content to its first len bytes (no-op if len >= b->len): undoes appends. */
void tbp_buf_truncate(struct tbp_buf *b, size_t len);

/* Empties the buffer, keeping its memory. */
void tbp_buf_reset(struct tbp_buf *b);

#endif
