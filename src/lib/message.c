/*
 * The Token Binding message codec, both versions.
 *
 * Decoding follows picotls: a cursor over [p, end) and helpers that read a fixed-size integer or
 * carve a length-prefixed block out of the cursor, failing if the prefix points past the end.
 * Every block is then walked with its own cursor and must be consumed exactly (block_done).
 * There is no pointer arithmetic outside these helpers.
 *
 * Draft TokenBindingID' (hash, signature algorithm, key) has no overall length, so the key layout
 * comes from the signature algorithm byte; rfc TokenBindingID carries key_length, so an unknown
 * key_parameters value can be skipped.
 */
#include <string.h>

#include "tb/error.h"
#include "tb/message.h"
#include "internal.h"

#define DRAFT_HASH_SHA256 4
#define DRAFT_SIG_RSA 1
#define DRAFT_SIG_ECDSA 3
#define DRAFT_CURVE_P256 23
#define RSA2048_MODULUS_LEN 256
#define P256_POINT_LEN 64
#define RSA_MAX_EXPONENT_LEN 4

struct cursor {
    const uint8_t *p;
    const uint8_t *end;
};

static size_t left(const struct cursor *c)
{
    return (size_t)(c->end - c->p);
}

static int get_u8(struct cursor *c, uint8_t *v)
{
    if (left(c) < 1)
        return TB_EPARSE;
    *v = c->p[0];
    c->p += 1;
    return 0;
}

static int get_u16(struct cursor *c, uint16_t *v)
{
    if (left(c) < 2)
        return TB_EPARSE;
    *v = (uint16_t)(c->p[0] << 8 | c->p[1]);
    c->p += 2;
    return 0;
}

static int get_bytes(struct cursor *c, size_t n, struct tb_slice *s)
{
    if (left(c) < n)
        return TB_EPARSE;
    s->p = c->p;
    s->len = n;
    c->p += n;
    return 0;
}

/* Reads a 1- or 2-byte length prefix and carves that many bytes into *inner. */
static int get_block(struct cursor *c, int prefix_bytes, struct cursor *inner)
{
    struct tb_slice s;
    uint16_t n16;
    uint8_t n8;
    int ret = prefix_bytes == 1 ? get_u8(c, &n8) : get_u16(c, &n16);

    if (ret != 0)
        return ret;
    if ((ret = get_bytes(c, prefix_bytes == 1 ? n8 : n16, &s)) != 0)
        return ret;
    inner->p = s.p;
    inner->end = s.p + s.len;
    return 0;
}

static int block_done(const struct cursor *c)
{
    return left(c) == 0 ? 0 : TB_EPARSE;
}

/* Extensions: (uint8 type, uint16 len, data)*, each within the list; contents ignored. */
static int parse_extensions(struct cursor *c, struct tb_slice *out)
{
    struct cursor list, data;
    uint8_t type;
    int ret;

    if ((ret = get_block(c, 2, &list)) != 0)
        return ret;
    out->p = list.p;
    out->len = left(&list);
    while (left(&list) > 0) {
        if ((ret = get_u8(&list, &type)) != 0 || (ret = get_block(&list, 2, &data)) != 0)
            return ret;
    }
    return 0;
}

/* RSA public key: uint16 modulus length, modulus, uint8 exponent length, exponent. */
static int parse_rsa_key(struct cursor *c, struct tb_binding *b)
{
    struct cursor mod, exp;
    int ret;

    if ((ret = get_block(c, 2, &mod)) != 0 || (ret = get_block(c, 1, &exp)) != 0)
        return ret;
    if (left(&mod) == 0 || left(&exp) == 0)
        return TB_EPARSE;
    b->modulus = (struct tb_slice){mod.p, left(&mod)};
    b->exponent = (struct tb_slice){exp.p, left(&exp)};
    return 0;
}

/*
 * RSA keys we verify: a 2048-bit modulus and an exponent of at most 32 bits. A huge exponent
 * verifies correctly but costs up to 40 times the work: a cheap way to burn the server's CPU.
 */
static int rsa_supported(const struct tb_binding *b)
{
    return b->modulus.len == RSA2048_MODULUS_LEN && b->exponent.len <= RSA_MAX_EXPONENT_LEN;
}

/* Draft TokenBindingID': hash, signature algorithm, then the key in the algorithm's layout. */
static int parse_id_draft(struct cursor *c, struct tb_binding *b)
{
    const uint8_t *start = c->p;
    struct cursor point;
    uint8_t hash, sigalg;
    uint16_t curve;
    int ret;

    if ((ret = get_u8(c, &hash)) != 0 || (ret = get_u8(c, &sigalg)) != 0)
        return ret;
    if (sigalg == DRAFT_SIG_RSA) {
        if ((ret = parse_rsa_key(c, b)) != 0)
            return ret;
        b->key_params = rsa_supported(b) ? TB_KP_RSA2048_PKCS1 : TB_KP_UNSUPPORTED;
    } else if (sigalg == DRAFT_SIG_ECDSA) {
        if ((ret = get_u16(c, &curve)) != 0 || (ret = get_block(c, 1, &point)) != 0)
            return ret;
        if (curve == DRAFT_CURVE_P256) {
            /* uncompressed point only: 0x04 || X || Y */
            if (left(&point) != P256_POINT_LEN + 1 || point.p[0] != 0x04)
                return TB_EPARSE;
            b->point = (struct tb_slice){point.p + 1, P256_POINT_LEN};
            b->key_params = TB_KP_ECDSAP256;
        } else {
            b->key_params = TB_KP_UNSUPPORTED; /* other curve: skipped by its length */
        }
    } else {
        return TB_EUNSUPPORTED; /* unknown key layout: the message cannot be walked */
    }
    if (hash != DRAFT_HASH_SHA256)
        b->key_params = TB_KP_UNSUPPORTED;
    b->id = (struct tb_slice){start, (size_t)(c->p - start)};
    return 0;
}

/* RFC TokenBindingID: key_parameters, then the key in a uint16 block consumed exactly. */
static int parse_id_rfc(struct cursor *c, struct tb_binding *b)
{
    const uint8_t *start = c->p;
    struct cursor key, point;
    uint8_t kp;
    int ret;

    if ((ret = get_u8(c, &kp)) != 0 || (ret = get_block(c, 2, &key)) != 0)
        return ret;
    switch (kp) {
    case TB_KP_RSA2048_PKCS1:
    case TB_KP_RSA2048_PSS:
        if ((ret = parse_rsa_key(&key, b)) != 0 || (ret = block_done(&key)) != 0)
            return ret;
        b->key_params = rsa_supported(b) ? kp : TB_KP_UNSUPPORTED;
        break;
    case TB_KP_ECDSAP256:
        if ((ret = get_block(&key, 1, &point)) != 0 || (ret = block_done(&key)) != 0)
            return ret;
        if (left(&point) != P256_POINT_LEN)
            return TB_EPARSE;
        b->point = (struct tb_slice){point.p, P256_POINT_LEN};
        b->key_params = TB_KP_ECDSAP256;
        break;
    default:
        b->key_params = TB_KP_UNSUPPORTED; /* skipped by its length */
        break;
    }
    b->id = (struct tb_slice){start, (size_t)(c->p - start)};
    return 0;
}

static int parse_binding(enum tb_version version, struct cursor *c, struct tb_binding *b)
{
    struct cursor sig;
    int ret;

    memset(b, 0, sizeof(*b));
    if ((ret = get_u8(c, &b->type)) != 0)
        return ret;
    ret = version == TB_VERSION_DRAFT ? parse_id_draft(c, b) : parse_id_rfc(c, b);
    if (ret != 0)
        return ret;
    if ((ret = get_block(c, 2, &sig)) != 0)
        return ret;
    b->sig = (struct tb_slice){sig.p, left(&sig)};
    return parse_extensions(c, &b->ext);
}

int tb_message_parse(enum tb_version version, const uint8_t *buf, size_t len,
                     struct tb_message *out)
{
    struct cursor whole = {buf, buf + len}, list;
    int ret;

    if (out == NULL || (buf == NULL && len > 0) ||
        (version != TB_VERSION_DRAFT && version != TB_VERSION_RFC))
        return TB_EINVAL;
    out->version = version;
    out->count = 0;
    if (len > TB_MAX_MESSAGE)
        return TB_ETOOLARGE;
    if ((ret = get_block(&whole, 2, &list)) != 0 || (ret = block_done(&whole)) != 0)
        return ret;
    if (left(&list) == 0)
        return TB_EPARSE; /* at least one binding */
    while (left(&list) > 0) {
        if (out->count == TB_MAX_BINDINGS)
            return TB_ETOOLARGE;
        if ((ret = parse_binding(version, &list, &out->b[out->count])) != 0)
            return ret;
        out->count++;
    }
    return 0;
}

/* --- serializing ------------------------------------------------------------------------- */

struct writer {
    uint8_t *p;
    size_t len;
    size_t cap;
    int err;
};

static void put(struct writer *w, const void *src, size_t n)
{
    if (w->err || n > w->cap - w->len) {
        w->err = TB_EINVAL;
        return;
    }
    if (n == 0)
        return; /* an empty slice may have p == NULL, and memcpy(dst, NULL, 0) is undefined */
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u8(struct writer *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u16(struct writer *w, size_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

    if (v > 0xffff)
        w->err = TB_EINVAL;
    put(w, b, 2);
}

/* Appends type || id || sig<2> || ext<2>: the wire form of one binding in either version. */
static int put_binding(struct writer *w, const struct tb_binding *b)
{
    put_u8(w, b->type);
    put(w, b->id.p, b->id.len);
    put_u16(w, b->sig.len);
    put(w, b->sig.p, b->sig.len);
    put_u16(w, b->ext.len);
    put(w, b->ext.p, b->ext.len);
    return w->err;
}

int tb_message_serialize(const struct tb_message *m, uint8_t *out, size_t cap)
{
    struct writer w = {out, 0, cap, 0};
    size_t i;

    if (m == NULL || out == NULL || m->count > TB_MAX_BINDINGS)
        return TB_EINVAL;
    put_u16(&w, 0); /* patched below */
    for (i = 0; i < m->count; i++)
        put_binding(&w, &m->b[i]);
    if (w.err != 0 || w.len - 2 > 0xffff || w.len > TB_MAX_MESSAGE)
        return TB_EINVAL;
    out[0] = (uint8_t)((w.len - 2) >> 8);
    out[1] = (uint8_t)(w.len - 2);
    return (int)w.len;
}

/* Internal to libtb (see sign.c): appends one binding to a message body under construction. */
int tb_binding_append(uint8_t *buf, size_t *len, size_t cap, const struct tb_binding *b)
{
    struct writer w = {buf, *len, cap, 0};

    if (put_binding(&w, b) != 0)
        return TB_EINVAL;
    *len = w.len;
    return 0;
}

/* --- validation -------------------------------------------------------------------------- */

int tb_message_validate(const struct tb_message *m, int negotiated, struct tb_roles *out)
{
    size_t i, j;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < m->count; i++) {
        for (j = 0; j < i; j++)
            if (m->b[j].type == m->b[i].type)
                return TB_EDUPLICATE;
    }
    for (i = 0; i < m->count; i++) {
        const struct tb_binding *b = &m->b[i];
        if (b->type == TB_TYPE_PROVIDED)
            out->provided = b;
        else if (b->type == TB_TYPE_REFERRED)
            out->referred = b;
        else if (b->key_params != TB_KP_UNSUPPORTED)
            out->other[out->n_other++] = b;
    }
    if (out->provided == NULL)
        return TB_ENOPROVIDED;
    if (out->provided->key_params != negotiated)
        return TB_EKEYPARAMS;
    if (out->referred != NULL && out->referred->key_params == TB_KP_UNSUPPORTED)
        return TB_EUNSUPPORTED;
    return 0;
}

/* --- names ------------------------------------------------------------------------------- */

static const char *const draft_names[] = {
    [TB_KP_RSA2048_PKCS1] = "rsa2048", [TB_KP_ECDSAP256] = "p256"};
static const char *const rfc_names[] = {[TB_KP_RSA2048_PKCS1] = "rsa2048_pkcs1.5",
                                        [TB_KP_RSA2048_PSS] = "rsa2048_pss",
                                        [TB_KP_ECDSAP256] = "ecdsap256"};

const char *tb_key_params_name(enum tb_version version, int key_params)
{
    if (key_params < 0 || key_params > TB_KP_ECDSAP256 ||
        (version != TB_VERSION_DRAFT && version != TB_VERSION_RFC))
        return NULL;
    return version == TB_VERSION_DRAFT ? draft_names[key_params] : rfc_names[key_params];
}

int tb_key_params_parse(enum tb_version version, const char *name)
{
    int kp;

    for (kp = 0; name != NULL && kp <= TB_KP_ECDSAP256; kp++) {
        const char *n = tb_key_params_name(version, kp);
        if (n != NULL && strcmp(n, name) == 0)
            return kp;
    }
    return TB_EINVAL;
}

const char *tb_version_name(enum tb_version version)
{
    return version == TB_VERSION_RFC ? "rfc" : "draft";
}

int tb_version_parse(const char *name)
{
    if (name != NULL && strcmp(name, "draft") == 0)
        return TB_VERSION_DRAFT;
    if (name != NULL && strcmp(name, "rfc") == 0)
        return TB_VERSION_RFC;
    return TB_EINVAL;
}
