/*
 * libFuzzer target: base64url encode / decode.
 *
 * The input is used twice:
 *  - as text to decode: into heap buffers of exactly `cap` bytes (so ASan catches any write past
 *    cap), once with the documented upper bound and once with a smaller cap derived from the
 *    input. A too-small cap must give TB_EINVAL, a sufficient one the same bytes. When decoding
 *    succeeds, encoding the result must give back the input without its '=' padding, and the
 *    padded spelling of the same bytes must decode too.
 *  - as bytes to encode: into a buffer of exactly the needed size (and one byte short, which must
 *    be refused untouched), only alphabet characters, then decoding must give the bytes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tb/base64url.h"
#include "tb/error.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Decodes into a fresh buffer of exactly cap bytes; returns the result, copies out on success. */
static int decode_exact(const char *in, size_t n, size_t cap, uint8_t *copy)
{
    uint8_t *out = malloc(cap);
    int rc;

    if (out == NULL && cap > 0)
        abort();
    rc = tb_base64url_decode(in, n, out, cap);
    if (rc > 0 && (size_t)rc > cap)
        abort();
    if (rc > 0)
        memcpy(copy, out, (size_t)rc);
    free(out);
    return rc;
}

static void check_decode(const char *in, size_t n)
{
    size_t max = tb_base64url_decoded_max(n), small, stripped = n, enc_cap;
    uint8_t *dec = malloc(max + 1), *dec2 = malloc(max + 1);
    char *enc = NULL, *padded = NULL;
    int rc, rc2;

    if (dec == NULL || dec2 == NULL)
        abort();
    rc = decode_exact(in, n, max, dec);
    if (rc != TB_EBASE64 && rc < 0)
        abort(); /* the documented bound was not enough */

    /* a smaller cap: refused when too small, otherwise the same result */
    small = max ? (n * 7 + 3) % max : 0;
    rc2 = decode_exact(in, n, small, dec2);
    if (rc >= 0) {
        if ((size_t)rc > small ? rc2 != TB_EINVAL : rc2 != rc || memcmp(dec, dec2, (size_t)rc) != 0)
            abort();
    } else if (rc2 != TB_EBASE64 && rc2 != TB_EINVAL) {
        abort();
    }
    if (rc < 0)
        goto Exit;

    /* canonical: encoding the result gives the input back, minus its padding */
    while (stripped > 0 && in[stripped - 1] == '=')
        stripped--;
    enc_cap = tb_base64url_encoded_len((size_t)rc) + 1;
    if ((enc = malloc(enc_cap + 2)) == NULL || (padded = malloc(enc_cap + 2)) == NULL)
        abort();
    if (tb_base64url_encode(dec, (size_t)rc, enc, enc_cap) != (int)stripped ||
        memcmp(enc, in, stripped) != 0)
        abort();
    /* the other accepted spelling: padded to a multiple of 4 */
    memcpy(padded, enc, stripped);
    while (stripped % 4 != 0)
        padded[stripped++] = '=';
    if (decode_exact(padded, stripped, max, dec2) != rc || memcmp(dec, dec2, (size_t)rc) != 0)
        abort();
Exit:
    free(padded);
    free(enc);
    free(dec2);
    free(dec);
}

static void check_encode(const uint8_t *in, size_t n)
{
    size_t need = tb_base64url_encoded_len(n), i;
    char *enc = malloc(need + 1), *short_buf = malloc(need);
    uint8_t *dec = malloc(n);
    int rc;

    if (enc == NULL || short_buf == NULL || (dec == NULL && n > 0))
        abort();
    if (tb_base64url_encode(in, n, short_buf, need) != TB_EINVAL)
        abort(); /* no room for the NUL: refused (and ASan checks nothing was written) */
    rc = tb_base64url_encode(in, n, enc, need + 1);
    if (rc != (int)need || enc[need] != '\0')
        abort();
    for (i = 0; i < need; i++) {
        if (enc[i] == '\0' || strchr(alphabet, enc[i]) == NULL)
            abort();
    }
    if (n % 3 == 1 && strchr("AQgw", enc[need - 1]) == NULL)
        abort(); /* last char carries 2 bits: the low 4 must be zero */
    rc = tb_base64url_decode(enc, need, dec, n);
    if (rc != (int)n || (n > 0 && memcmp(dec, in, n) != 0))
        abort();
    free(dec);
    free(short_buf);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decode((const char *)data, size);
    check_encode(data, size);
    return 0;
}
