/*
 * tbh and Sec-Other-Token-Binding-ID items, and the stable error names of tb_strerror.
 * Expected hashes are computed here with OpenSSL and base64url-encoded by hand.
 */
#include <limits.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "tb/error.h"
#include "tb/tbh.h"

/* base64url without padding, written independently of the library. */
static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = t[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = t[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return o;
}

static void expected_tbh(const uint8_t *id, size_t len, char *out)
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    cr_assert_eq(EVP_Digest(id, len, md, &md_len, EVP_sha256(), NULL), 1);
    cr_assert_eq(md_len, 32u);
    b64url(md, md_len, out);
}

/* The provided TBID and tbh of the first draft vector (spec/vectors/draft.json, p256_provided). */
static const char vector_id_b64[] =
    "BAMAF0EEDcFwhUgcqIF-W0-"
    "rQ4ZeTNmj5CkkgXQqUXS4Fcz0clZ2Wn3ycEcqTaUDKdMUXAzU1EBUqnZGMKLRzNIc1dAv7g";
static const char vector_tbh[] = "w0upVocr9wJr55zkC0T3jSJTtYW3SWn3l3Fc_vIocPA";

/* A fixed draft p256 TBID: hash 4, ecdsa 3, curve 23, 0x04 || X || Y. */
static void known_id(uint8_t id[70])
{
    id[0] = 4;
    id[1] = 3;
    id[2] = 0;
    id[3] = 23;
    id[4] = 65;
    id[5] = 0x04;
    for (int i = 0; i < 64; i++)
        id[6 + i] = (uint8_t)(i * 7 + 1);
}

Test(tbh, tbh_is_base64url_of_sha256)
{
    uint8_t id[70];
    char want[64], got[64];

    known_id(id);
    expected_tbh(id, sizeof(id), want);
    int n = tb_tbh(id, sizeof(id), got, sizeof(got));
    cr_assert_eq(n, TB_TBH_LEN);
    cr_expect_eq(strlen(got), (size_t)TB_TBH_LEN);
    cr_expect_str_eq(got, want);
    cr_expect_null(strchr(got, '='));
}

Test(tbh, tbh_of_spec_vector)
{
    uint8_t id[128];
    char got[64], want[64];
    size_t len = 0;

    /* decode the vector's ID with the independent table (input is unpadded, canonical) */
    {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint32_t acc = 0;
        int bits = 0;
        for (const char *p = vector_id_b64; *p; p++) {
            acc = acc << 6 | (uint32_t)(strchr(t, *p) - t);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                id[len++] = (uint8_t)(acc >> bits);
            }
        }
    }
    cr_assert_eq(len, 70u);
    cr_assert_eq(tb_tbh(id, len, got, sizeof(got)), TB_TBH_LEN);
    cr_expect_str_eq(got, vector_tbh);
    expected_tbh(id, len, want);
    cr_expect_str_eq(got, want);
}

Test(tbh, tbh_various_lengths)
{
    uint8_t id[600];
    char want[64], got[64];

    for (size_t i = 0; i < sizeof(id); i++)
        id[i] = (uint8_t)(i ^ 0x5a);
    for (size_t len = 0; len <= sizeof(id); len += 37) {
        expected_tbh(id, len, want);
        cr_assert_eq(tb_tbh(id, len, got, sizeof(got)), TB_TBH_LEN, "length %zu", len);
        cr_expect_str_eq(got, want, "length %zu", len);
    }
}

Test(tbh, tbh_buffer_too_small)
{
    uint8_t id[70];
    char out[TB_TBH_LEN + 1];

    known_id(id);
    cr_expect_eq(tb_tbh(id, sizeof(id), out, 0), TB_EINVAL);
    cr_expect_eq(tb_tbh(id, sizeof(id), out, TB_TBH_LEN), TB_EINVAL, "no room for the NUL");
    cr_expect_eq(tb_tbh(id, sizeof(id), out, TB_TBH_LEN + 1), TB_TBH_LEN);
    cr_expect_eq(out[TB_TBH_LEN], '\0');
}

Test(tbh, other_id_item_format)
{
    uint8_t id[70];
    char b64[128], want[160], got[160];

    known_id(id);
    size_t b = b64url(id, sizeof(id), b64);

    int n = tb_other_id_item(9, id, sizeof(id), got, sizeof(got));
    cr_assert_eq(n, (int)(3 + b));
    memcpy(want, "09.", 3);
    memcpy(want + 3, b64, b + 1);
    cr_expect_str_eq(got, want);

    n = tb_other_id_item(255, id, sizeof(id), got, sizeof(got));
    cr_assert_eq(n, (int)(3 + b));
    cr_expect_eq(strncmp(got, "ff.", 3), 0, "got \"%.3s\"", got);
    cr_expect_str_eq(got + 3, b64);

    /* two lower-case hex digits for every type */
    for (unsigned t = 0; t < 256; t++) {
        char hex[3];
        hex[0] = "0123456789abcdef"[t >> 4];
        hex[1] = "0123456789abcdef"[t & 15];
        hex[2] = '\0';
        n = tb_other_id_item((uint8_t)t, id, 3, got, sizeof(got));
        cr_assert_eq(n, 7);
        cr_expect_eq(strncmp(got, hex, 2), 0, "type %u gave \"%s\"", t, got);
        cr_expect_eq(got[2], '.');
    }
}

Test(tbh, other_id_item_buffer_too_small)
{
    uint8_t id[70];
    char out[160];

    known_id(id);
    int need = tb_other_id_item(0x42, id, sizeof(id), out, sizeof(out));
    cr_assert_gt(need, 3);
    for (size_t cap = 0; cap <= (size_t)need; cap++)
        cr_expect_eq(tb_other_id_item(0x42, id, sizeof(id), out, cap), TB_EINVAL, "cap %zu", cap);
    cr_expect_eq(tb_other_id_item(0x42, id, sizeof(id), out, (size_t)need + 1), need);
    /* an empty ID still has the type and the dot */
    cr_expect_eq(tb_other_id_item(0x42, id, 0, out, 4), 3);
    cr_expect_str_eq(out, "42.");
}

Test(tbh, strerror_names)
{
    cr_expect_str_eq(tb_strerror(TB_EBASE64), "base64");
    cr_expect_str_eq(tb_strerror(TB_EPARSE), "parse");
    cr_expect_str_eq(tb_strerror(TB_ETOOLARGE), "too_large");
    cr_expect_str_eq(tb_strerror(TB_ENOPROVIDED), "no_provided");
    cr_expect_str_eq(tb_strerror(TB_EDUPLICATE), "duplicate");
    cr_expect_str_eq(tb_strerror(TB_EKEYPARAMS), "key_params");
    cr_expect_str_eq(tb_strerror(TB_EUNSUPPORTED), "unsupported");
    cr_expect_str_eq(tb_strerror(TB_ESIGNATURE), "signature");
    cr_expect_str_eq(tb_strerror(TB_EUNBOUND), "unbound");
    cr_expect_str_eq(tb_strerror(TB_EMISMATCH), "mismatch");
    cr_expect_str_eq(tb_strerror(TB_EKEYID), "unknown_key");
    cr_expect_str_eq(tb_strerror(TB_EALG), "alg");
    cr_expect_str_eq(tb_strerror(TB_EEXPIRED), "expired");
    cr_expect_str_eq(tb_strerror(TB_ENOTYET), "not_yet_valid");
    cr_expect_str_eq(tb_strerror(TB_ECLAIM), "claim");
}

Test(tbh, strerror_every_code_has_a_distinct_name)
{
    const char *seen[32];
    size_t n = 0;

    for (int e = TB_ECLAIM; e <= TB_OK; e++) {
        const char *s = tb_strerror(e);
        cr_assert_not_null(s);
        cr_expect_str_neq(s, "unknown", "code %d has a name", e);
        for (size_t i = 0; i < n; i++)
            cr_expect_str_neq(s, seen[i], "code %d name \"%s\" not reused", e, s);
        seen[n++] = s;
    }
}

Test(tbh, strerror_unknown_for_others)
{
    static const int others[] = {1, 2, 100, -20, -100, INT_MIN, INT_MAX};

    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        cr_expect_str_eq(tb_strerror(others[i]), "unknown", "code %d", others[i]);
}
