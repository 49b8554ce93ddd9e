/*
 * Test support: byte buffers for parser tests (see bytes.h).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bytes.h"

void *tbt_dup_exact(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);

    cr_assert_not_null(d);
    if (n > 0)
        memcpy(d, p, n);
    return d;
}
