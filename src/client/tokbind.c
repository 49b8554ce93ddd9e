/*
 * tokbind (see tokbind.h): ALPN ids, key type names, the RFC offer and header building over
 * libtb's builder.
 */
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "tb/base64url.h"
#include "tb/error.h"
#include "tb/sign.h"
#include "tokbind.h"

#define TB_INFIX "_tb_"

/* Appends one id to an ALPN wire list. 0 or -1 (cap). */
static int add_id(unsigned char *out, size_t cap, size_t *len, const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 255 || *len + 1 + n > cap)
        return -1;
    out[(*len)++] = (unsigned char)n;
    memcpy(out + *len, id, n);
    *len += n;
    return 0;
}

int tbc_tb_alpn(enum tbc_proto proto, int key_params, unsigned char *out, size_t cap)
{
    const char *kt = key_params >= 0 ? tb_key_params_name(TB_VERSION_DRAFT, key_params) : NULL;
    char id[64];
    size_t len = 0;
    int bad = 0;

    if (kt != NULL && proto != TBC_PROTO_H1) {
        snprintf(id, sizeof(id), "h2" TB_INFIX "%s", kt);
        bad |= add_id(out, cap, &len, id);
    }
    if (kt != NULL && proto != TBC_PROTO_H2) {
        snprintf(id, sizeof(id), "http/1.1" TB_INFIX "%s", kt);
        bad |= add_id(out, cap, &len, id);
    }
    if (proto != TBC_PROTO_H1)
        bad |= add_id(out, cap, &len, "h2");
    if (proto != TBC_PROTO_H2)
        bad |= add_id(out, cap, &len, "http/1.1");
    return bad ? TBC_EINTERNAL : (int)len;
}

int tbc_tb_selected(const char *alpn, int *key_params, int *is_h2)
{
    const char *infix = strstr(alpn, TB_INFIX);
    size_t plen = infix != NULL ? (size_t)(infix - alpn) : strlen(alpn);
    int kp;

    *key_params = -1;
    *is_h2 = plen == 2 && strncmp(alpn, "h2", 2) == 0;
    if (infix == NULL || !(*is_h2 || (plen == 8 && strncmp(alpn, "http/1.1", 8) == 0)))
        return 0;
    kp = tb_key_params_parse(TB_VERSION_DRAFT, infix + strlen(TB_INFIX));
    if (kp < 0)
        return 0;
    *key_params = kp;
    return 1;
}

int tbc_tb_key_type(enum tb_version version, const char *name)
{
    int kp;

    /* the draft names stay valid with rfc, so that scripts only add --tb-version rfc */
    if (strcmp(name, "p256") == 0)
        return TB_KP_ECDSAP256;
    if (strcmp(name, "rsa2048") == 0)
        return version == TB_VERSION_RFC ? TB_KP_RSA2048_PSS : TB_KP_RSA2048_PKCS1;
    if (version != TB_VERSION_RFC || (kp = tb_key_params_parse(TB_VERSION_RFC, name)) < 0)
        return TBC_EUSAGE;
    return kp;
}

const char *tbc_tb_key_name(enum tb_version version, int key_params)
{
    const char *n = tb_key_params_name(version, key_params);

    return n != NULL ? n : "?";
}

void tbc_tb_offer(int key_params, struct tb_ext_params *out)
{
    memset(out, 0, sizeof(*out));
    out->major = TB_EXT_MAJOR;
    out->minor = TB_EXT_MINOR;
    out->n = 1;
    out->key_params[0] = (uint8_t)key_params;
}

const char *tbc_tb_header_name(enum tb_version version)
{
    return version == TB_VERSION_RFC ? "Sec-Token-Binding" : "Token-Binding";
}

int tbc_tb_header(enum tb_version version, int key_params, EVP_PKEY *provided,
                  int referred_key_params, EVP_PKEY *referred, const uint8_t *channel,
                  size_t channel_len, char *out, size_t cap)
{
    struct tb_builder b;
    int rc;

    tb_builder_init(&b, version);
    rc = tb_builder_add_signed(&b, TB_TYPE_PROVIDED, key_params, provided, channel, channel_len);
    if (rc >= 0 && referred != NULL)
        rc = tb_builder_add_signed(&b, TB_TYPE_REFERRED, referred_key_params, referred, channel,
                                   channel_len);
    if (rc < 0)
        return rc == TB_EKEYPARAMS ? TBC_EKEY : TBC_EINTERNAL;
    rc = tb_builder_header(&b, out, cap);
    return rc < 0 ? TBC_EINTERNAL : rc;
}

int tbc_tb_describe(enum tb_version version, int key_params, EVP_PKEY *key,
                    char id_b64[TBC_TB_MAX_ID_B64], char tbh[TB_TBH_LEN + 1])
{
    uint8_t id[TBC_TB_MAX_ID];
    int n = tb_id_encode(version, key_params, key, id, sizeof(id));

    if (n < 0 || tb_base64url_encode(id, (size_t)n, id_b64, TBC_TB_MAX_ID_B64) < 0 ||
        tb_tbh(id, (size_t)n, tbh, TB_TBH_LEN + 1) < 0)
        return TBC_EKEY;
    return 0;
}
