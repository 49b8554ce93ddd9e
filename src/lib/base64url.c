/*
 * base64url without padding, strict on input.
 *
 * The decoder is table driven: one lookup per character, 0xff for anything outside the URL-safe
 * alphabet. Padding is accepted only as the exact '=' count a padded encoding of the same bytes
 * has, and the unused low bits of the last character must be zero, so every byte string has
 * exactly two accepted spellings (unpadded and padded).
 */
#include "tb/base64url.h"
#include "tb/error.h"

static const char enc_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define X 0xff
/* 0xff marks characters outside the alphabet (generated from enc_table) */
static const uint8_t dec_table[256] = {
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x00 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x10 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,  /* 0x20 */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,  /* 0x30 */
    X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, /* 0x40 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63, /* 0x50 */
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 0x60 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,  /* 0x70 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x80 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x90 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xa0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xb0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xc0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xd0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xe0 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0xf0 */
};
#undef X

int tb_base64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need = tb_base64url_encoded_len(n);
    size_t i = 0, o = 0;

    if (cap < need + 1)
        return TB_EINVAL;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = enc_table[v >> 18];
        out[o++] = enc_table[(v >> 12) & 63];
        out[o++] = enc_table[(v >> 6) & 63];
        out[o++] = enc_table[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = enc_table[v >> 18];
        out[o++] = enc_table[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = enc_table[v >> 18];
        out[o++] = enc_table[(v >> 12) & 63];
        out[o++] = enc_table[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

/* Strips correct padding: n' = n - pads where n % 4 == 0 and pads matches the data length. */
static int strip_padding(const char *in, size_t *n)
{
    size_t pads = 0;

    while (pads < *n && pads < 3 && in[*n - 1 - pads] == '=')
        pads++;
    if (pads == 0)
        return 0;
    if (*n % 4 != 0 || pads > 2)
        return TB_EBASE64;
    *n -= pads;
    /* 2 data characters take 2 pads, 3 take 1: the remainder must agree */
    if ((*n % 4 == 2 && pads != 2) || (*n % 4 == 3 && pads != 1) || *n % 4 < 2)
        return TB_EBASE64;
    return 0;
}

int tb_base64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t i = 0, o = 0, need;

    if (strip_padding(in, &n) != 0 || n % 4 == 1)
        return TB_EBASE64;
    need = (n / 4) * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return TB_EINVAL;
    for (; i + 4 <= n; i += 4) {
        uint8_t a = dec_table[s[i]], b = dec_table[s[i + 1]];
        uint8_t c = dec_table[s[i + 2]], d = dec_table[s[i + 3]];
        if ((a | b | c | d) & 0xc0)
            return TB_EBASE64;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (n - i >= 2) {
        uint8_t a = dec_table[s[i]], b = dec_table[s[i + 1]];
        uint8_t c = n - i == 3 ? dec_table[s[i + 2]] : 0;
        if ((a | b | c) & 0xc0)
            return TB_EBASE64;
        if (n - i == 2 && (b & 0x0f))
            return TB_EBASE64; /* non-canonical: unused bits set */
        if (n - i == 3 && (c & 0x03))
            return TB_EBASE64;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        if (n - i == 3)
            out[o++] = (uint8_t)(b << 4 | c >> 2);
    }
    return (int)o;
}
