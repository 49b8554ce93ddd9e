/*
 * libFuzzer target: tb_jwt_check on arbitrary tokens, and the public key parser on arbitrary text.
 *
 * The keys and the policy are fixed and are those of tests/data/jwt (jwks.json: EC "ec-1" and RSA
 * "rsa-1"; es256.pub.pem; hs256.secret), so seeds made from tests/data/jwt/vectors.json reach the
 * signature and claims checks; "now" is the vectors' fixed time. Each input is checked under three
 * policies (JWKS with ES256 + RS256 and issuer / audience required; the PEM key with ES256 alone;
 * the HMAC secret with HS256) and must give 0 or one of the documented codes; a success must come
 * with a printable sub. The same bytes are then parsed as a PEM / JWKS key text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tb/error.h"
#include "tb/jwt.h"
#include "tb/tbh.h"

#define NOW 1700000100

static const char jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec-1\",\"use\":\"sig\",\"alg\":\"ES"
    "256\",\"x\":\"hdEE34wOZ5WnsSJzqCCC6B1WDxUK72Sb-q8v3-2_yp0\",\"y\":\"GVLT3M9piYyeZmCBDGzxiV"
    "aQHjYxTAuFpCD7kbKxLuw\"},{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":\"RS25"
    "6\",\"n\":\"uv7E6HlGQwtD_C4jHiL5Z_n9pZvyVyUWmr5r3T9VdWHPk_78KstUahnJ4zZROYoTQlOetbsiUij795"
    "ZUwdXmwADFkwce07yfNkGTcnvLeKnCWLVkFiZkU5Q1a_6AVhw2JNItNg859PjnyrR-_A7ikr_c4bW1Xay8gat0F1Ov"
    "wPKwzEUVo_thQxUg1A_ohlV0kQJvHWWeKFBMnZvP563-JV5fID_1DCkMtr_mm3qNsaQrFuuAm1ErqIDTan96x4KB4a"
    "SuyBBpBBSt5RnDRRyXgt2lMKh0h3kJV7uVTImhVguGlEywoHvPtoMx7gaknqZg8H2-ansIfqDlCukis5IQgQ\",\"e"
    "\":\"AQAB\"}]}";

static const char pem[] = "-----BEGIN PUBLIC KEY-----\n"
                          "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhdEE34wOZ5WnsSJzqCCC6B1WDxUK\n"
                          "72Sb+q8v3+2/yp0ZUtPcz2mJjJ5mYIEMbPGJVpAeNjFMC4WkIPuRsrEu7A==\n"
                          "-----END PUBLIC KEY-----\n";

static const char secret[] = "vSEA1uzQyoTfjfkqvLXVD9gLEiJrDGArPnfxLS_qOCT2UcGT";

static const char tbh[] = "3-sBN79mNmcCh-jFk_PFsyrAvN8zRGnLCL8Y9acIsPw";

static struct tb_jwt_keys *k_jwks, *k_pem, *k_secret;

static void init(void)
{
    if (tb_jwt_keys_parse_public(jwks, sizeof(jwks) - 1, &k_jwks, NULL, 0) != 0 ||
        tb_jwt_keys_parse_public(pem, sizeof(pem) - 1, &k_pem, NULL, 0) != 0 ||
        tb_jwt_keys_parse_secret((const uint8_t *)secret, sizeof(secret) - 1, &k_secret, NULL, 0) !=
            0)
        abort();
}

static int documented(int r)
{
    switch (r) {
    case 0:
    case TB_EPARSE:
    case TB_EALG:
    case TB_EKEYID:
    case TB_ESIGNATURE:
    case TB_EEXPIRED:
    case TB_ENOTYET:
    case TB_ECLAIM:
    case TB_EUNBOUND:
    case TB_EMISMATCH:
        return 1;
    default:
        return 0;
    }
}

static void check(const char *token, size_t size, const struct tb_jwt_policy *p)
{
    struct tb_jwt_result res;
    size_t i;
    int r = tb_jwt_check(token, size, p, tbh, &res);

    if (!documented(r))
        abort();
    if (r != 0)
        return;
    for (i = 0; res.sub[i] != '\0'; i++)
        if (i >= sizeof(res.sub) - 1 || res.sub[i] < 0x20 || res.sub[i] > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tb_jwt_policy p_jwks = {.algs = TB_JWT_ES256 | TB_JWT_RS256,
                                   .issuer = "https://idp.example",
                                   .audience = "https://rp.example",
                                   .now = NOW};
    struct tb_jwt_policy p_pem = {.algs = TB_JWT_ES256, .leeway_s = 60, .now = NOW};
    struct tb_jwt_policy p_secret = {.algs = TB_JWT_HS256, .now = NOW};
    struct tb_jwt_keys *k = NULL;
    char *copy;

    if (k_jwks == NULL)
        init();
    p_jwks.keys = k_jwks;
    p_pem.keys = k_pem;
    p_secret.keys = k_secret;
    /* a heap copy of exactly size bytes: ASan sees any read past the end */
    if ((copy = malloc(size > 0 ? size : 1)) == NULL)
        abort();
    memcpy(copy, data, size);
    check(copy, size, &p_jwks);
    check(copy, size, &p_pem);
    check(copy, size, &p_secret);
    if (tb_jwt_keys_parse_public(copy, size, &k, NULL, 0) == 0 && k == NULL)
        abort();
    if (k != NULL && (tb_jwt_keys_algs(k) & ~(unsigned)(TB_JWT_ES256 | TB_JWT_RS256)) != 0)
        abort();
    tb_jwt_keys_free(k);
    free(copy);
    return 0;
}
