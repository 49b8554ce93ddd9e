/*
 * tbh and Sec-Other-Token-Binding-ID items: the printable forms of a Token Binding ID.
 */
#include <openssl/evp.h>

#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/tbh.h"

int tb_tbh(const uint8_t *id, size_t len, char *out, size_t cap)
{
    uint8_t md[32];
    unsigned int md_len = 0;

    if (cap < TB_TBH_LEN + 1)
        return TB_EINVAL;
    if (EVP_Digest(id, len, md, &md_len, EVP_sha256(), NULL) != 1)
        return TB_ECRYPTO;
    return tb_base64url_encode(md, md_len, out, cap);
}

int tb_other_id_item(uint8_t type, const uint8_t *id, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    int n;

    if (cap < 3)
        return TB_EINVAL;
    out[0] = hex[type >> 4];
    out[1] = hex[type & 15];
    out[2] = '.';
    if ((n = tb_base64url_encode(id, len, out + 3, cap - 3)) < 0)
        return n;
    return n + 3;
}
