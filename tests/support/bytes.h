/*
 * Test support: byte buffers for parser tests.
 */
#ifndef TBT_BYTES_H
#define TBT_BYTES_H

#include <stddef.h>

/* A heap copy of exactly n bytes of p (1 byte allocated if n is 0), so that ASan flags any read
 * past n: how a parser test feeds truncated and split input. Fails the test (Criterion) when the
 * allocation fails. Free with free(). */
void *tbt_dup_exact(const void *p, size_t n);

#endif
