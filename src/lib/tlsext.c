/*
 * The token_binding TLS extension (see tb/tlsext.h).
 */
#include <string.h>

#include "tb/error.h"
#include "tb/tlsext.h"

int tb_ext_parse(const uint8_t *p, size_t len, struct tb_ext_params *out)
{
    size_t n;

    if (p == NULL || out == NULL || len < 3)
        return TB_EPARSE;
    n = p[2];
    if (n == 0 || len != 3 + n)
        return TB_EPARSE;
    out->major = p[0];
    out->minor = p[1];
    out->n = n;
    memcpy(out->key_params, p + 3, n);
    return 0;
}

int tb_ext_encode(const struct tb_ext_params *in, uint8_t *out, size_t cap)
{
    if (in == NULL || out == NULL || in->n == 0 || in->n > TB_EXT_MAX_KEY_PARAMS || cap < 3 + in->n)
        return TB_EINVAL;
    out[0] = in->major;
    out[1] = in->minor;
    out[2] = (uint8_t)in->n;
    memcpy(out + 3, in->key_params, in->n);
    return (int)(3 + in->n);
}

int tb_ext_version_ok(uint8_t major, uint8_t minor)
{
    if (major == TB_EXT_MAJOR)
        return minor == TB_EXT_MINOR;
    return major == 0 && minor >= TB_EXT_MIN_DRAFT_MINOR && minor <= TB_EXT_MAX_DRAFT_MINOR;
}

/* 1 if v occurs in the n values at list. */
static int has(const uint8_t *list, size_t n, int v)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (list[i] == v)
            return 1;
    return 0;
}

int tb_ext_server_select(const struct tb_ext_params *offer, const int *prefs, size_t n_prefs,
                         struct tb_ext_params *answer)
{
    size_t i;

    if (offer == NULL || answer == NULL || offer->n == 0 || offer->n > TB_EXT_MAX_KEY_PARAMS)
        return TB_EUNSUPPORTED;
    if (offer->major >= TB_EXT_MAJOR) {
        answer->major = TB_EXT_MAJOR; /* ours is the lower: 1.0 */
        answer->minor = TB_EXT_MINOR;
    } else if (tb_ext_version_ok(offer->major, offer->minor)) {
        answer->major = 0; /* the client's is the lower, and one we speak */
        answer->minor = offer->minor;
    } else {
        return TB_EUNSUPPORTED;
    }
    for (i = 0; prefs != NULL && i < n_prefs; i++) {
        if (prefs[i] >= 0 && prefs[i] <= 255 && has(offer->key_params, offer->n, prefs[i])) {
            answer->n = 1;
            answer->key_params[0] = (uint8_t)prefs[i];
            return 0;
        }
    }
    return TB_EUNSUPPORTED;
}

int tb_ext_client_check(const struct tb_ext_params *offer, const struct tb_ext_params *answer)
{
    /* an offer's n out of range is the caller's bug: refused, never read past key_params */
    if (offer == NULL || answer == NULL || answer->n != 1 || offer->n == 0 ||
        offer->n > TB_EXT_MAX_KEY_PARAMS ||
        !has(offer->key_params, offer->n, answer->key_params[0]))
        return TB_EPARSE;
    if (answer->major > offer->major ||
        (answer->major == offer->major && answer->minor > offer->minor))
        return TB_EPARSE;
    return tb_ext_version_ok(answer->major, answer->minor) ? 0 : TB_EUNSUPPORTED;
}
