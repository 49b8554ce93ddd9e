/*
 * base64url: RFC 4648 vectors in the URL-safe alphabet, the strict decoder's rejections (wrong
 * alphabet, whitespace, bad padding, impossible lengths, non-canonical trailing bits), buffer
 * bounds on both sides, and random round trips checked against OpenSSL's standard base64.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "tb/base64url.h"
#include "tb/error.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Decodes a NUL-terminated string with a generous output buffer. */
static int decode_str(const char *s, uint8_t *out, size_t cap)
{
    return tb_base64url_decode(s, strlen(s), out, cap);
}

static void expect_reject(const char *s)
{
    uint8_t out[64];
    int n = decode_str(s, out, sizeof(out));

    cr_expect_eq(n, TB_EBASE64, "decode(\"%s\") = %d, want TB_EBASE64", s, n);
}

static void expect_decodes(const char *s, const char *want)
{
    uint8_t out[64];
    int n = decode_str(s, out, sizeof(out));

    cr_assert_eq(n, (int)strlen(want), "decode(\"%s\") = %d, want %zu", s, n, strlen(want));
    cr_expect_eq(memcmp(out, want, (size_t)n), 0, "decode(\"%s\") bytes differ", s);
}

static const struct {
    const char *plain, *b64, *padded;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg", "Zg=="},
    {"fo", "Zm8", "Zm8="},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg", "Zm9vYg=="},
    {"fooba", "Zm9vYmE", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

Test(base64url, rfc4648_vectors_encode_without_padding)
{
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        char out[32];
        const char *p = rfc4648[i].plain;
        int n = tb_base64url_encode((const uint8_t *)p, strlen(p), out, sizeof(out));

        cr_assert_eq(n, (int)strlen(rfc4648[i].b64), "encode(\"%s\") length %d", p, n);
        cr_expect_str_eq(out, rfc4648[i].b64);
        cr_expect_null(strchr(out, '='), "no padding in \"%s\"", out);
        cr_expect_eq(tb_base64url_encoded_len(strlen(p)), strlen(rfc4648[i].b64));
    }
}

Test(base64url, rfc4648_vectors_decode_unpadded_and_padded)
{
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        expect_decodes(rfc4648[i].b64, rfc4648[i].plain);
        expect_decodes(rfc4648[i].padded, rfc4648[i].plain);
    }
}

Test(base64url, url_alphabet_used_for_62_and_63)
{
    static const uint8_t all62[] = {0xfb, 0xef, 0xbe}; /* standard "++++" */
    static const uint8_t all63[] = {0xff, 0xff, 0xff}; /* standard "////" */
    static const uint8_t mixed[] = {0xfb, 0xff};       /* standard "+/8" */
    char out[8];
    uint8_t back[8];

    cr_assert_eq(tb_base64url_encode(all62, 3, out, sizeof(out)), 4);
    cr_expect_str_eq(out, "----");
    cr_assert_eq(tb_base64url_encode(all63, 3, out, sizeof(out)), 4);
    cr_expect_str_eq(out, "____");
    cr_assert_eq(tb_base64url_encode(mixed, 2, out, sizeof(out)), 3);
    cr_expect_str_eq(out, "-_8");
    cr_assert_eq(decode_str("-_8", back, sizeof(back)), 2);
    cr_expect_eq(memcmp(back, mixed, 2), 0);
    cr_assert_eq(decode_str("____", back, sizeof(back)), 3);
    cr_expect_eq(memcmp(back, all63, 3), 0);
}

Test(base64url, rejects_standard_alphabet_plus_and_slash)
{
    expect_reject("++++");
    expect_reject("////");
    expect_reject("+_8");
    expect_reject("-/8");
    expect_reject("Zm9v+mFy");
    expect_reject("Zm9vYmF/");
}

Test(base64url, every_byte_value_accepted_only_if_in_alphabet)
{
    for (int c = 0; c < 256; c++) {
        char in[4] = {'A', 'A', 'A', (char)c};
        uint8_t out[8];
        int n = tb_base64url_decode(in, 4, out, sizeof(out));

        if (c != 0 && strchr(alphabet, c) != NULL)
            cr_expect_eq(n, 3, "char 0x%02x in alphabet: got %d", c, n);
        else if (c == '=')
            cr_expect_eq(n, 2, "\"AAA=\" is correctly padded: got %d", n);
        else
            cr_expect_eq(n, TB_EBASE64, "char 0x%02x outside alphabet: got %d", c, n);
    }
}

Test(base64url, rejects_whitespace_anywhere)
{
    static const char ws[] = {' ', '\t', '\n', '\r', '\v', '\f'};
    static const char *const valid[] = {"Zm9vYmFy", "Zm9vYg", "Zm9vYg==", "Zm8="};

    for (size_t v = 0; v < sizeof(valid) / sizeof(valid[0]); v++) {
        size_t len = strlen(valid[v]);
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t w = 0; w < sizeof(ws); w++) {
                char in[32];
                uint8_t out[64];
                memcpy(in, valid[v], pos);
                in[pos] = ws[w];
                memcpy(in + pos + 1, valid[v] + pos, len - pos);
                int n = tb_base64url_decode(in, len + 1, out, sizeof(out));
                cr_expect_eq(n, TB_EBASE64, "\"%s\" with 0x%02x at %zu: got %d", valid[v], ws[w],
                             pos, n);
            }
        }
    }
}

Test(base64url, rejects_wrong_padding_count)
{
    expect_reject("Zg="); /* 2 data characters need 2 '=' */
    expect_reject("Zg===");
    expect_reject("Zm8=="); /* 3 data characters need 1 '=' */
    expect_reject("Zm9v="); /* a full quantum takes no padding */
    expect_reject("Zm9v==");
    expect_reject("Zm9v===");
    expect_reject("Zm9v====");
    expect_reject("Z===");
    expect_reject("=");
    expect_reject("==");
    expect_reject("===");
    expect_reject("====");
}

Test(base64url, rejects_padding_in_the_middle)
{
    expect_reject("Zg==Zg==");
    expect_reject("Zg==Zm9v");
    expect_reject("Zm8=Zm8=");
    expect_reject("Zg=g");
    expect_reject("Z=g=");
    expect_reject("=Zg=");
    expect_reject("Zm=v");
    expect_reject("Zm9v=Zg");
}

Test(base64url, rejects_length_one_mod_four)
{
    expect_reject("Z");
    expect_reject("Zm9vY");
    expect_reject("Zm9vYmFyZ");
    expect_reject("Z===");
    expect_reject("Zm9vY===");
}

Test(base64url, rejects_noncanonical_trailing_bits)
{
    uint8_t out[8];

    /* one byte: the second character carries 2 data bits, its low 4 must be zero */
    expect_decodes("QQ", "A");
    expect_decodes("QQ==", "A");
    expect_reject("QR");
    expect_reject("QR==");
    for (size_t i = 0; i < 64; i++) {
        char in[3] = {'Q', alphabet[i], 0};
        int n = decode_str(in, out, sizeof(out));
        cr_expect_eq(n, (i & 0x0f) == 0 ? 1 : TB_EBASE64, "\"%s\": %d", in, n);
    }
    /* two bytes: the third character carries 4 data bits, its low 2 must be zero */
    expect_decodes("QUI", "AB");
    expect_decodes("QUI=", "AB");
    expect_reject("QUJ");
    expect_reject("QUJ=");
    for (size_t i = 0; i < 64; i++) {
        char in[4] = {'Q', 'U', alphabet[i], 0};
        int n = decode_str(in, out, sizeof(out));
        cr_expect_eq(n, (i & 0x03) == 0 ? 2 : TB_EBASE64, "\"%s\": %d", in, n);
    }
}

Test(base64url, decode_output_buffer_too_small_is_einval)
{
    uint8_t out[8];

    cr_expect_eq(decode_str("Zm9v", out, 2), TB_EINVAL);
    cr_expect_eq(decode_str("Zm9v", out, 3), 3);
    cr_expect_eq(decode_str("Zm9vYg", out, 3), TB_EINVAL);
    cr_expect_eq(decode_str("Zm9vYg==", out, 3), TB_EINVAL);
    cr_expect_eq(decode_str("Zm9vYg==", out, 4), 4);
    cr_expect_eq(decode_str("Zm9vYmE", out, 4), TB_EINVAL);
    cr_expect_eq(decode_str("Zm9vYmE", out, 5), 5);
    cr_expect_eq(decode_str("", out, 0), 0);
}

Test(base64url, encode_output_buffer_too_small_is_einval)
{
    const uint8_t *foo = (const uint8_t *)"foobar";
    char out[16];

    /* the NUL terminator counts */
    cr_expect_eq(tb_base64url_encode(foo, 3, out, 4), TB_EINVAL);
    cr_expect_eq(tb_base64url_encode(foo, 3, out, 5), 4);
    cr_expect_eq(tb_base64url_encode(foo, 1, out, 2), TB_EINVAL);
    cr_expect_eq(tb_base64url_encode(foo, 1, out, 3), 2);
    cr_expect_eq(tb_base64url_encode(foo, 0, out, 0), TB_EINVAL);
    cr_expect_eq(tb_base64url_encode(foo, 0, out, 1), 0);
    cr_expect_str_eq(out, "");
}

/* Standard base64 from OpenSSL turned into unpadded base64url: an independent oracle. */
static size_t openssl_b64url(const uint8_t *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

    for (int i = 0; i < len; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
    return (size_t)len;
}

Test(base64url, random_round_trips_lengths_0_to_300)
{
    uint8_t in[300], back[300];
    char enc[512], ref[512], padded[512];

    srand(4648);
    for (size_t len = 0; len <= 300; len++) {
        for (int rep = 0; rep < 4; rep++) {
            for (size_t i = 0; i < len; i++)
                in[i] = (uint8_t)(rand() & 0xff);
            int n = tb_base64url_encode(in, len, enc, sizeof(enc));
            cr_assert_eq(n, (int)tb_base64url_encoded_len(len), "length %zu", len);
            cr_assert_eq(strlen(enc), (size_t)n);
            cr_assert_eq(strspn(enc, alphabet), (size_t)n, "only url alphabet, no '='");
            cr_assert_eq(openssl_b64url(in, len, ref), (size_t)n);
            cr_assert_str_eq(enc, ref, "length %zu", len);

            memset(back, 0xa5, sizeof(back));
            int m = tb_base64url_decode(enc, (size_t)n, back, len);
            cr_assert_eq(m, (int)len, "decode of length %zu gave %d", len, m);
            cr_assert_eq(memcmp(back, in, len), 0);
            cr_assert_leq(len, tb_base64url_decoded_max((size_t)n));

            /* the correctly padded spelling decodes to the same bytes */
            memcpy(padded, enc, (size_t)n);
            size_t p = (size_t)n;
            while (p % 4 != 0)
                padded[p++] = '=';
            m = tb_base64url_decode(padded, p, back, len);
            cr_assert_eq(m, (int)len, "padded decode of length %zu gave %d", len, m);
            cr_assert_eq(memcmp(back, in, len), 0);
        }
    }
}

Test(base64url, decode_exact_length_buffer_no_overread)
{
    /* heap buffers sized exactly, so ASan catches a read past the input or a write past out */
    for (size_t len = 0; len <= 40; len++) {
        uint8_t *in = malloc(len + 1), *out = malloc(len + 1);
        char enc[64];
        cr_assert(in != NULL && out != NULL);
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(i * 37 + 11);
        int n = tb_base64url_encode(in, len, enc, sizeof(enc));
        char *exact = malloc((size_t)n + 1);
        cr_assert(exact != NULL);
        memcpy(exact, enc, (size_t)n);
        cr_assert_eq(tb_base64url_decode(exact, (size_t)n, out, len), (int)len);
        cr_assert_eq(memcmp(out, in, len), 0);
        free(exact);
        free(in);
        free(out);
    }
}
