/*
 * libFuzzer target: the token_binding TLS extension (tb/tlsext.h, RFC 8472).
 *
 * The input, a fresh heap copy of exactly its size (so ASan catches any read past it), is read
 * two ways:
 *  - as one extension body (a client's offer): tb_ext_parse; an offer that parses is encoded
 *    again, then answered by tb_ext_server_select with a few server preference lists, and each
 *    answer is encoded, parsed and checked by the client (tb_ext_client_check);
 *  - as two bodies back to back, the first one's length taken from its own list length byte (an
 *    offer and a server's answer): when both parse, tb_ext_client_check of the pair.
 *
 * Oracles (abort on violation):
 *  - parse returns 0 exactly when the body is 3 + n bytes with 1 <= n = body[2], and then gives
 *    the body's fields; otherwise TB_EPARSE;
 *  - encode of a parsed body gives the same bytes, exactly as many, into a buffer of exactly
 *    that size, and TB_EINVAL (nothing written) into one byte less;
 *  - server_select returns 0 or TB_EUNSUPPORTED: TB_EUNSUPPORTED exactly when the offer is
 *    below 0.13, from 0.17 to 0.255, or has none of the preferences; an answer has one value,
 *    the first preference the offer holds, and version 1.0 for an offer of 1.0 or above, the
 *    offer's own for 0.13..0.16; it is a version tb_ext_version_ok accepts, encodes to 4 bytes
 *    that parse back to it, and tb_ext_client_check accepts it against the offer;
 *  - client_check of any offer and answer agrees with RFC 8472 section 4 written out here:
 *    TB_EPARSE for more than one value, one not offered or a version above the offer's, else 0
 *    for a version tb_ext_version_ok accepts and TB_EUNSUPPORTED for one it does not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tb/tb.h"

/* Server preference lists, enum tb_key_params values (and odd ones a caller could pass). */
static const int prefs_p256[] = {TB_KP_ECDSAP256, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1};
static const int prefs_rsa[] = {TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1};
static const int prefs_pkcs1[] = {TB_KP_RSA2048_PKCS1};
static const int prefs_odd[] = {-1, 256, TB_KP_ECDSAP256, 0x7f};

static const struct {
    const int *p;
    size_t n;
} pref_lists[] = {
    {prefs_p256, 3}, {prefs_rsa, 2}, {prefs_pkcs1, 1}, {prefs_odd, 4}, {NULL, 0},
};

static int has(const struct tb_ext_params *p, int v)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->key_params[i] == v)
            return 1;
    return 0;
}

/* Parses body[0..len) and checks the verdict and fields against the format. */
static int parse(const uint8_t *body, size_t len, struct tb_ext_params *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    int rc, want;

    CHECK(copy != NULL);
    memcpy(copy, body, len);
    rc = tb_ext_parse(copy, len, out);
    want = len >= 3 && copy[2] >= 1 && len == 3u + copy[2];
    CHECK(rc == (want ? 0 : TB_EPARSE));
    if (rc == 0)
        CHECK(out->major == copy[0] && out->minor == copy[1] && out->n == copy[2] &&
              memcmp(out->key_params, copy + 3, out->n) == 0);
    free(copy);
    return rc;
}

/* Encodes p into exact-size heap buffers and expects body[0..len). */
static void check_encode(const struct tb_ext_params *p, const uint8_t *body, size_t len)
{
    uint8_t *exact = malloc(len), *small = malloc(len);
    int n;

    CHECK(exact != NULL && small != NULL);
    n = tb_ext_encode(p, exact, len);
    CHECK(n >= 0 && (size_t)n == len && memcmp(exact, body, len) == 0);
    memset(small, 0xee, len);
    CHECK(tb_ext_encode(p, small, len - 1) == TB_EINVAL);
    for (size_t i = 0; i < len; i++)
        CHECK(small[i] == 0xee);
    free(small);
    free(exact);
}

/* RFC 8472 section 4, the client's side, written out. */
static int model_client_check(const struct tb_ext_params *o, const struct tb_ext_params *a)
{
    if (a->n != 1 || !has(o, a->key_params[0]))
        return TB_EPARSE;
    if (a->major > o->major || (a->major == o->major && a->minor > o->minor))
        return TB_EPARSE;
    return tb_ext_version_ok(a->major, a->minor) ? 0 : TB_EUNSUPPORTED;
}

static void check_select(const struct tb_ext_params *offer)
{
    for (size_t l = 0; l < sizeof(pref_lists) / sizeof(pref_lists[0]); l++) {
        const int *prefs = pref_lists[l].p;
        size_t n_prefs = pref_lists[l].n, i;
        struct tb_ext_params a, back;
        uint8_t enc[3 + 1];
        int rc, first = -1, low;

        for (i = 0; i < n_prefs && first < 0; i++)
            if (prefs[i] >= 0 && prefs[i] <= 255 && has(offer, prefs[i]))
                first = prefs[i];
        low = offer->major == 0 && (offer->minor < TB_EXT_MIN_DRAFT_MINOR ||
                                    offer->minor > TB_EXT_MAX_DRAFT_MINOR);
        memset(&a, 0x5a, sizeof(a));
        rc = tb_ext_server_select(offer, prefs, n_prefs, &a);
        CHECK(rc == 0 || rc == TB_EUNSUPPORTED);
        CHECK((rc == TB_EUNSUPPORTED) == (low || first < 0));
        if (rc != 0)
            continue;
        CHECK(a.n == 1 && a.key_params[0] == first);
        if (offer->major >= TB_EXT_MAJOR)
            CHECK(a.major == TB_EXT_MAJOR && a.minor == TB_EXT_MINOR);
        else
            CHECK(a.major == 0 && a.minor == offer->minor);
        CHECK(tb_ext_version_ok(a.major, a.minor));
        CHECK(tb_ext_encode(&a, enc, sizeof(enc)) == 4);
        CHECK(parse(enc, sizeof(enc), &back) == 0);
        CHECK(back.major == a.major && back.minor == a.minor && back.n == 1 &&
              back.key_params[0] == a.key_params[0]);
        CHECK(tb_ext_client_check(offer, &back) == 0);
        CHECK(tb_ext_client_check(offer, &back) == model_client_check(offer, &back));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tb_ext_params offer, answer;
    size_t first;

    /* one body: the offer */
    if (parse(data, size, &offer) == 0) {
        check_encode(&offer, data, size);
        check_select(&offer);
    }

    /* two bodies: an offer and an answer */
    if (size >= 3) {
        first = 3u + data[2];
        if (first <= size && parse(data, first, &offer) == 0 &&
            parse(data + first, size - first, &answer) == 0)
            CHECK(tb_ext_client_check(&offer, &answer) == model_client_check(&offer, &answer));
    }
    return 0;
}
