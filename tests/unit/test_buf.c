/*
 * buf: appends up to and at the cap (the failing append leaves the buffer as it was), growth
 * across the initial size, appendf into existing room and through a regrow, consume / truncate /
 * reset keeping memory and the NUL terminator, dispose and reuse, zero-size edge cases.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf.h"

Test(buf, init_is_empty_and_allocates_nothing)
{
    struct tbp_buf b;

    tbp_buf_init(&b, 100);
    cr_expect_null(b.p);
    cr_expect_eq(b.len, 0);
    cr_expect_eq(b.cap, 0);
    cr_expect_eq(b.max, 100);
    tbp_buf_dispose(&b);
    tbp_buf_dispose(&b); /* twice is harmless */
}

Test(buf, append_and_nul_terminated)
{
    struct tbp_buf b;

    tbp_buf_init(&b, 100);
    cr_assert_eq(tbp_buf_append(&b, "abc", 3), 0);
    cr_assert_eq(tbp_buf_append_str(&b, "def"), 0);
    cr_expect_eq(b.len, 6);
    cr_expect_str_eq(b.p, "abcdef");
    cr_expect_eq(b.p[b.len], '\0');
    tbp_buf_dispose(&b);
    cr_expect_null(b.p);
    cr_expect_eq(b.len, 0);
}

Test(buf, append_exactly_to_cap_then_one_more_fails_unchanged)
{
    struct tbp_buf b;
    char big[10];

    memset(big, 'x', sizeof(big));
    tbp_buf_init(&b, 10);
    cr_assert_eq(tbp_buf_append(&b, big, 7), 0);
    cr_expect_eq(tbp_buf_append(&b, big, 4), TBP_EBUF);
    cr_expect_eq(b.len, 7);
    cr_expect_str_eq(b.p, "xxxxxxx");
    cr_assert_eq(tbp_buf_append(&b, "abc", 3), 0);
    cr_expect_eq(b.len, 10);
    cr_expect_str_eq(b.p, "xxxxxxxabc");
    cr_expect_leq(b.cap, 10);
    cr_expect_eq(tbp_buf_append(&b, "z", 1), TBP_EBUF);
    cr_expect_eq(b.len, 10);
    cr_expect_eq(tbp_buf_append(&b, "", 0), 0);
    tbp_buf_dispose(&b);
}

Test(buf, huge_length_cannot_wrap)
{
    struct tbp_buf b;

    tbp_buf_init(&b, 64);
    cr_assert_eq(tbp_buf_append(&b, "ab", 2), 0);
    cr_expect_eq(tbp_buf_append(&b, "x", SIZE_MAX), TBP_EBUF);
    cr_expect_eq(tbp_buf_append(&b, "x", SIZE_MAX - 1), TBP_EBUF);
    cr_expect_eq(b.len, 2);
    tbp_buf_dispose(&b);

    tbp_buf_init(&b, SIZE_MAX); /* an unlimited cap still cannot overflow cap + 1 */
    cr_expect_lt(b.max, SIZE_MAX);
    cr_assert_eq(tbp_buf_append(&b, "ab", 2), 0);
    cr_expect_neq(tbp_buf_append(&b, "x", SIZE_MAX - 1), 0);
    cr_expect_eq(b.len, 2);
    tbp_buf_dispose(&b);
}

Test(buf, zero_cap_refuses_everything_but_nothing)
{
    struct tbp_buf b;

    tbp_buf_init(&b, 0);
    cr_expect_eq(tbp_buf_append(&b, NULL, 0), 0);
    cr_expect_eq(tbp_buf_append(&b, "a", 1), TBP_EBUF);
    cr_expect_eq(tbp_buf_appendf(&b, "%s", ""), 0);
    cr_expect_eq(tbp_buf_appendf(&b, "%d", 1), TBP_EBUF);
    cr_expect_eq(b.len, 0);
    tbp_buf_dispose(&b);
}

Test(buf, grows_past_initial_size_and_keeps_content)
{
    struct tbp_buf b;
    char chunk[100];
    size_t i;

    tbp_buf_init(&b, 1 << 20);
    for (i = 0; i < 100; i++) {
        memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
        cr_assert_eq(tbp_buf_append(&b, chunk, sizeof(chunk)), 0);
    }
    cr_expect_eq(b.len, 10000);
    cr_expect_geq(b.cap, 10000);
    cr_expect_leq(b.cap, 1 << 20);
    for (i = 0; i < 10000; i++)
        cr_assert_eq(b.p[i], 'a' + (int)((i / 100) % 26), "byte %zu", i);
    cr_expect_eq(b.p[b.len], '\0');
    tbp_buf_dispose(&b);
}

Test(buf, cap_not_a_power_of_two_is_reachable_exactly)
{
    struct tbp_buf b;
    char chunk[1000];

    memset(chunk, 'q', sizeof(chunk));
    tbp_buf_init(&b, 1500);
    cr_assert_eq(tbp_buf_append(&b, chunk, 1000), 0);
    cr_assert_eq(tbp_buf_append(&b, chunk, 500), 0);
    cr_expect_eq(b.len, 1500);
    cr_expect_eq(b.cap, 1500);
    cr_expect_eq(tbp_buf_append(&b, chunk, 1), TBP_EBUF);
    tbp_buf_dispose(&b);
}

Test(buf, appendf_formats_and_regrows)
{
    struct tbp_buf b;
    size_t i;

    tbp_buf_init(&b, 4096);
    cr_assert_eq(tbp_buf_appendf(&b, "%s %d %zx", "abc", 42, (size_t)255), 0);
    cr_expect_str_eq(b.p, "abc 42 ff");
    /* a long format result that does not fit the current allocation: regrow, format again */
    for (i = 0; i < 3; i++)
        cr_assert_eq(tbp_buf_appendf(&b, "%0300d", 7), 0);
    cr_expect_eq(b.len, 9 + 900);
    cr_expect_eq(b.p[9], '0');
    cr_expect_eq(b.p[9 + 299], '7');
    cr_expect_eq(b.p[b.len - 1], '7');
    cr_expect_eq(b.p[b.len], '\0');
    tbp_buf_dispose(&b);
}

Test(buf, appendf_over_cap_fails_and_leaves_buffer_unchanged)
{
    struct tbp_buf b;

    tbp_buf_init(&b, 10);
    cr_assert_eq(tbp_buf_appendf(&b, "%s", "12345"), 0);
    cr_expect_eq(tbp_buf_appendf(&b, "%s", "678901"), TBP_EBUF);
    cr_expect_eq(b.len, 5);
    cr_expect_str_eq(b.p, "12345"); /* the truncated attempt is not visible */
    cr_assert_eq(tbp_buf_appendf(&b, "%s", "67890"), 0);
    cr_expect_str_eq(b.p, "1234567890");
    cr_expect_eq(tbp_buf_appendf(&b, "%c", 'x'), TBP_EBUF);
    cr_expect_str_eq(b.p, "1234567890");
    tbp_buf_dispose(&b);
}

Test(buf, appendf_fails_in_existing_room_beyond_cap)
{
    struct tbp_buf b;
    char big[300];

    /* the text is measured against max even while it is being formatted into existing room */
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tbp_buf_init(&b, 20);
    cr_assert_eq(tbp_buf_append(&b, "x", 1), 0);
    cr_expect_eq(tbp_buf_appendf(&b, "%s", big), TBP_EBUF);
    cr_expect_eq(tbp_buf_appendf(&b, "%.19s", big), 0);
    cr_expect_eq(b.len, 20);
    cr_expect_eq(tbp_buf_appendf(&b, "%s", ""), 0);
    tbp_buf_dispose(&b);
}

Test(buf, consume_front)
{
    struct tbp_buf b;
    size_t cap;

    tbp_buf_init(&b, 100);
    cr_assert_eq(tbp_buf_append_str(&b, "hello world"), 0);
    cap = b.cap;
    tbp_buf_consume(&b, 6);
    cr_expect_eq(b.len, 5);
    cr_expect_str_eq(b.p, "world");
    tbp_buf_consume(&b, 0);
    cr_expect_str_eq(b.p, "world");
    tbp_buf_consume(&b, 99);
    cr_expect_eq(b.len, 0);
    cr_expect_str_eq(b.p, "");
    cr_expect_eq(b.cap, cap); /* memory kept */
    cr_assert_eq(tbp_buf_append_str(&b, "again"), 0);
    cr_expect_str_eq(b.p, "again");
    tbp_buf_dispose(&b);
}

Test(buf, consume_on_empty_buffer)
{
    struct tbp_buf b;

    tbp_buf_init(&b, 100);
    tbp_buf_consume(&b, 5);
    tbp_buf_reset(&b);
    tbp_buf_truncate(&b, 0);
    cr_expect_null(b.p);
    cr_expect_eq(b.len, 0);
}

Test(buf, consume_frees_room_under_cap)
{
    struct tbp_buf b;

    tbp_buf_init(&b, 8);
    cr_assert_eq(tbp_buf_append_str(&b, "abcdefgh"), 0);
    cr_expect_eq(tbp_buf_append_str(&b, "i"), TBP_EBUF);
    tbp_buf_consume(&b, 3);
    cr_assert_eq(tbp_buf_append_str(&b, "ijk"), 0);
    cr_expect_str_eq(b.p, "defghijk");
    tbp_buf_dispose(&b);
}

Test(buf, truncate_and_reset)
{
    struct tbp_buf b;
    size_t cap;

    tbp_buf_init(&b, 100);
    cr_assert_eq(tbp_buf_append_str(&b, "abcdef"), 0);
    tbp_buf_truncate(&b, 10); /* longer than the content: no-op */
    cr_expect_str_eq(b.p, "abcdef");
    tbp_buf_truncate(&b, 2);
    cr_expect_eq(b.len, 2);
    cr_expect_str_eq(b.p, "ab");
    cap = b.cap;
    tbp_buf_reset(&b);
    cr_expect_eq(b.len, 0);
    cr_expect_str_eq(b.p, "");
    cr_expect_eq(b.cap, cap);
    tbp_buf_dispose(&b);
    /* reusable after dispose, same cap */
    cr_assert_eq(tbp_buf_append_str(&b, "x"), 0);
    cr_expect_str_eq(b.p, "x");
    cr_expect_eq(b.max, 100);
    tbp_buf_dispose(&b);
}

Test(buf, binary_content_with_nul_bytes)
{
    struct tbp_buf b;
    const char data[] = {'a', '\0', 'b', '\0'};

    tbp_buf_init(&b, 100);
    cr_assert_eq(tbp_buf_append(&b, data, sizeof(data)), 0);
    cr_expect_eq(b.len, 4);
    cr_expect_eq(memcmp(b.p, data, 4), 0);
    tbp_buf_consume(&b, 1);
    cr_expect_eq(b.len, 3);
    cr_expect_eq(memcmp(b.p, data + 1, 3), 0);
    tbp_buf_dispose(&b);
}
