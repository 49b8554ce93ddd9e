/*
 * The message codec: round trips for both versions and every key type, every truncation (outer
 * and inner), trailing bytes, size and count bounds, extensions, the layouts of both TokenBindingID
 * forms, validation of roles, and the names of key parameters and versions.
 *
 * Messages are built with tb_builder from fixed PEM keys (no key generation). Parsed inputs are
 * copied into heap buffers of exactly their length so that ASan sees any read past the end.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "bytes.h"
#include "keys.h"
#include "tb/error.h"
#include "tb/message.h"
#include "tb/sign.h"

#define NONE (-2) /* no referred binding */

static struct tbt_keyset fixed; /* the fixed keys, by the names the tests use */
#define p256_a (fixed.p256_a)
#define p256_b (fixed.p256_b)
#define rsa_a (fixed.rsa_a)
#define rsa_b (fixed.rsa_b)

static void setup(void)
{
    tbt_keyset_load(&fixed);
}

static void teardown(void)
{
    tbt_keyset_free(&fixed);
}

TestSuite(message, .init = setup, .fini = teardown);

/* The provided binding uses the "a" key of its type, the referred one the "b" key. */
static EVP_PKEY *key_for(int kp, int referred)
{
    if (kp == TB_KP_ECDSAP256)
        return referred ? p256_b : p256_a;
    return referred ? rsa_b : rsa_a;
}

static const uint8_t channel_draft[12] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6,
                                          0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c};
static const uint8_t channel_rfc[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static const uint8_t *channel_of(enum tb_version v, size_t *len)
{
    *len = v == TB_VERSION_DRAFT ? sizeof(channel_draft) : sizeof(channel_rfc);
    return v == TB_VERSION_DRAFT ? channel_draft : channel_rfc;
}

struct combo {
    enum tb_version version;
    int provided, referred; /* key params; referred may be NONE */
};

/* Every key type of each version as provided, alone and with a referred binding of another. */
static const struct combo combos[] = {
    {TB_VERSION_DRAFT, TB_KP_ECDSAP256, NONE},
    {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, NONE},
    {TB_VERSION_DRAFT, TB_KP_ECDSAP256, TB_KP_RSA2048_PKCS1},
    {TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256},
    {TB_VERSION_RFC, TB_KP_ECDSAP256, NONE},
    {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, NONE},
    {TB_VERSION_RFC, TB_KP_RSA2048_PSS, NONE},
    {TB_VERSION_RFC, TB_KP_ECDSAP256, TB_KP_RSA2048_PSS},
    {TB_VERSION_RFC, TB_KP_RSA2048_PSS, TB_KP_RSA2048_PKCS1},
    {TB_VERSION_RFC, TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256},
};
#define N_COMBOS (sizeof(combos) / sizeof(combos[0]))

static void build_combo(struct tb_builder *b, const struct combo *c)
{
    size_t ch_len;
    const uint8_t *ch = channel_of(c->version, &ch_len);

    tb_builder_init(b, c->version);
    cr_assert_eq(tb_builder_add_signed(b, TB_TYPE_PROVIDED, c->provided, key_for(c->provided, 0),
                                       ch, ch_len),
                 0);
    if (c->referred != NONE)
        cr_assert_eq(tb_builder_add_signed(b, TB_TYPE_REFERRED, c->referred,
                                           key_for(c->referred, 1), ch, ch_len),
                     0);
}

static int parse_copy(enum tb_version v, const uint8_t *p, size_t len, struct tb_message *m)
{
    uint8_t *d = tbt_dup_exact(p, len);
    int ret = tb_message_parse(v, d, len, m);

    free(d);
    return ret;
}

static const char *vname(enum tb_version v)
{
    return tb_version_name(v);
}

/* A binding from raw parts (id, sig, ext as given). */
static struct tb_binding raw_binding(uint8_t type, const uint8_t *id, size_t id_len,
                                     const uint8_t *sig, size_t sig_len, const uint8_t *ext,
                                     size_t ext_len)
{
    struct tb_binding b;

    memset(&b, 0, sizeof(b));
    b.type = type;
    b.id = (struct tb_slice){id, id_len};
    b.sig = (struct tb_slice){sig, sig_len};
    b.ext = (struct tb_slice){ext, ext_len};
    return b;
}

static const uint8_t fake_sig[4] = {0xde, 0xad, 0xbe, 0xef};
static const uint8_t no_ext[1] = {0};

/* rfc TokenBindingID with an unknown key_parameters value and a 3-byte key. */
static const uint8_t rfc_unknown_id[] = {0x09, 0x00, 0x03, 0xaa, 0xbb, 0xcc};

/* --- round trips --------------------------------------------------------------------------- */

Test(message, serialize_of_parse_is_identity_for_every_version_and_key_type)
{
    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        struct tb_builder b;
        struct tb_message m;
        uint8_t out[TB_MAX_MESSAGE];
        size_t len;

        build_combo(&b, c);
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        cr_assert_eq(parse_copy(c->version, wire, len, &m), 0, "combo %zu parses", i);
        /* parse again in place: slices must point into the caller's buffer */
        cr_assert_eq(tb_message_parse(c->version, wire, len, &m), 0);
        cr_expect_eq(m.version, c->version);
        cr_assert_eq(m.count, c->referred == NONE ? 1u : 2u, "combo %zu count", i);
        cr_expect_eq(m.b[0].type, TB_TYPE_PROVIDED);
        cr_expect_eq(m.b[0].key_params, c->provided, "combo %zu (%s) provided key params", i,
                     vname(c->version));
        if (c->referred != NONE) {
            cr_expect_eq(m.b[1].type, TB_TYPE_REFERRED);
            cr_expect_eq(m.b[1].key_params, c->referred);
        }
        for (size_t j = 0; j < m.count; j++) {
            const struct tb_binding *x = &m.b[j];
            uint8_t id[600];
            int kp = x->key_params;
            int n = tb_id_encode(c->version, kp, key_for(kp, j == 1), id, sizeof(id));
            cr_assert_gt(n, 0);
            cr_expect_eq(x->id.len, (size_t)n, "combo %zu binding %zu id length", i, j);
            cr_expect_eq(memcmp(x->id.p, id, (size_t)n), 0);
            cr_expect(x->id.p > wire && x->id.p + x->id.len <= wire + len, "slice into input");
            cr_expect_eq(x->ext.len, 0u);
            if (kp == TB_KP_ECDSAP256) {
                cr_expect_eq(x->point.len, 64u);
                if (c->version == TB_VERSION_RFC)
                    cr_expect_eq(x->sig.len, 64u, "rfc ECDSA signature is R||S");
                else
                    cr_expect_eq(x->sig.p[0], 0x30, "draft ECDSA signature is DER");
            } else {
                cr_expect_eq(x->modulus.len, 256u);
                cr_expect_eq(x->exponent.len, 3u);
                cr_expect_eq(x->sig.len, 256u);
            }
        }
        int n = tb_message_serialize(&m, out, sizeof(out));
        cr_assert_eq(n, (int)len, "combo %zu serialized length", i);
        cr_expect_eq(memcmp(out, wire, len), 0, "combo %zu byte-for-byte", i);
    }
}

Test(message, draft_id_is_without_type_byte_and_same_for_provided_and_referred)
{
    struct tb_builder b;
    struct tb_message m;
    size_t len, ch_len;
    const uint8_t *ch = channel_of(TB_VERSION_DRAFT, &ch_len);

    tb_builder_init(&b, TB_VERSION_DRAFT);
    cr_assert_eq(tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, ch, ch_len),
                 0);
    cr_assert_eq(tb_builder_add_signed(&b, TB_TYPE_REFERRED, TB_KP_ECDSAP256, p256_a, ch, ch_len),
                 0);
    const uint8_t *wire = tb_builder_bytes(&b, &len);
    cr_assert_eq(tb_message_parse(TB_VERSION_DRAFT, wire, len, &m), 0);
    cr_assert_eq(m.count, 2u);
    /* TokenBindingID' = hash(4) sig(3) curve(0, 23) point_len(65) 0x04 X Y */
    cr_assert_eq(m.b[0].id.len, 2u + 2 + 1 + 65);
    cr_expect_eq(m.b[0].id.p, wire + 3, "the ID starts after the type byte");
    cr_expect_eq(m.b[0].id.p[0], 4);
    cr_expect_eq(m.b[0].id.p[1], 3);
    cr_expect_eq(m.b[0].id.p[4], 65);
    cr_expect_eq(m.b[0].id.p[5], 0x04);
    cr_expect_eq(m.b[0].point.p, m.b[0].id.p + 6, "point is X||Y without 0x04");
    cr_assert_eq(m.b[1].id.len, m.b[0].id.len);
    cr_expect_eq(memcmp(m.b[0].id.p, m.b[1].id.p, m.b[0].id.len), 0);
}

Test(message, rfc_ecdsa_id_layout)
{
    struct tb_builder b;
    struct tb_message m;
    size_t len, ch_len;
    const uint8_t *ch = channel_of(TB_VERSION_RFC, &ch_len);

    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, ch, ch_len),
                 0);
    const uint8_t *wire = tb_builder_bytes(&b, &len);
    cr_assert_eq(tb_message_parse(TB_VERSION_RFC, wire, len, &m), 0);
    /* key_parameters(2) key_length(0, 65) point_len(64) X Y */
    cr_assert_eq(m.b[0].id.len, 1u + 2 + 1 + 64);
    cr_expect_eq(m.b[0].id.p[0], TB_KP_ECDSAP256);
    cr_expect_eq(m.b[0].id.p[1], 0);
    cr_expect_eq(m.b[0].id.p[2], 65);
    cr_expect_eq(m.b[0].id.p[3], 64);
    cr_expect_eq(m.b[0].point.p, m.b[0].id.p + 4);
}

/* --- truncation and trailing bytes -------------------------------------------------------- */

Test(message, every_truncation_fails_with_eparse)
{
    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        struct tb_builder b;
        struct tb_message m;
        size_t len;

        build_combo(&b, c);
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        for (size_t cut = 0; cut < len; cut++) {
            int ret = parse_copy(c->version, wire, cut, &m);
            cr_assert_eq(ret, TB_EPARSE, "combo %zu (%s): prefix of %zu/%zu bytes gave %d", i,
                         vname(c->version), cut, len, ret);
        }
    }
}

Test(message, every_inner_truncation_with_patched_length_fails_with_eparse)
{
    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        struct tb_builder b;
        struct tb_message whole, m;
        size_t len, end_of_first;

        build_combo(&b, c);
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        cr_assert_eq(tb_message_parse(c->version, wire, len, &whole), 0);
        /* cutting exactly after the first binding leaves a valid one-binding message */
        end_of_first = (size_t)(whole.b[0].ext.p + whole.b[0].ext.len - wire);
        for (size_t cut = 2; cut < len; cut++) {
            uint8_t *d = tbt_dup_exact(wire, cut);
            d[0] = (uint8_t)((cut - 2) >> 8);
            d[1] = (uint8_t)(cut - 2);
            int ret = tb_message_parse(c->version, d, cut, &m);
            if (cut == end_of_first && whole.count == 2) {
                cr_assert_eq(ret, 0, "combo %zu: first binding alone parses", i);
                cr_assert_eq(m.count, 1u);
            } else {
                cr_assert_eq(ret, TB_EPARSE, "combo %zu (%s): inner cut at %zu/%zu gave %d", i,
                             vname(c->version), cut, len, ret);
            }
            free(d);
        }
    }
}

Test(message, trailing_byte_rejected)
{
    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        struct tb_builder b;
        struct tb_message m;
        uint8_t buf[TB_MAX_MESSAGE + 1];
        size_t len;

        build_combo(&b, c);
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        memcpy(buf, wire, len);
        for (int v = 0; v < 256; v += 85) {
            buf[len] = (uint8_t)v;
            /* after the length-prefixed list */
            cr_expect_eq(parse_copy(c->version, buf, len + 1, &m), TB_EPARSE, "combo %zu", i);
            /* inside the list: the prefix counts it, a lone byte is no binding */
            buf[0] = (uint8_t)((len - 1) >> 8);
            buf[1] = (uint8_t)(len - 1);
            cr_expect_eq(parse_copy(c->version, buf, len + 1, &m), TB_EPARSE, "combo %zu", i);
            memcpy(buf, wire, 2);
        }
    }
}

Test(message, empty_list_and_bad_arguments)
{
    static const uint8_t empty[2] = {0, 0};
    struct tb_message m;

    cr_expect_eq(tb_message_parse(TB_VERSION_DRAFT, empty, 2, &m), TB_EPARSE);
    cr_expect_eq(tb_message_parse(TB_VERSION_RFC, empty, 2, &m), TB_EPARSE);
    cr_expect_eq(tb_message_parse(TB_VERSION_RFC, empty, 0, &m), TB_EPARSE);
    cr_expect_eq(tb_message_parse(TB_VERSION_RFC, empty, 2, NULL), TB_EINVAL);
    cr_expect_eq(tb_message_parse(TB_VERSION_RFC, NULL, 2, &m), TB_EINVAL);
    cr_expect_eq(tb_message_parse((enum tb_version)7, empty, 2, &m), TB_EINVAL);
}

/* --- bounds -------------------------------------------------------------------------------- */

/*
 * One rfc binding (unknown key parameters) whose single extension pads the whole message to
 * `total` bytes, length prefix included. Returns the buffer (caller frees).
 */
static uint8_t *message_of_size(size_t total)
{
    uint8_t *buf = calloc(1, total);
    size_t body = total - 2, ext_len, n = 0;

    cr_assert_not_null(buf);
    buf[n++] = (uint8_t)(body >> 8);
    buf[n++] = (uint8_t)body;
    buf[n++] = TB_TYPE_PROVIDED;
    memcpy(buf + n, rfc_unknown_id, sizeof(rfc_unknown_id));
    n += sizeof(rfc_unknown_id);
    buf[n++] = 0; /* sig_len 0 */
    buf[n++] = 0;
    ext_len = total - n - 2;
    buf[n++] = (uint8_t)(ext_len >> 8);
    buf[n++] = (uint8_t)ext_len;
    buf[n++] = 0x42; /* one extension filling the list */
    buf[n++] = (uint8_t)((ext_len - 3) >> 8);
    buf[n++] = (uint8_t)(ext_len - 3);
    cr_assert_eq(n + ext_len - 3, total);
    return buf;
}

Test(message, message_of_max_size_parses_and_one_byte_more_is_too_large)
{
    struct tb_message m;
    uint8_t *at_max = message_of_size(TB_MAX_MESSAGE);
    uint8_t *over = message_of_size(TB_MAX_MESSAGE + 1);

    cr_expect_eq(tb_message_parse(TB_VERSION_RFC, at_max, TB_MAX_MESSAGE, &m), 0);
    cr_expect_eq(m.count, 1u);
    cr_expect_eq(m.b[0].ext.len, TB_MAX_MESSAGE - 13u);
    cr_expect_eq(tb_message_parse(TB_VERSION_RFC, over, TB_MAX_MESSAGE + 1, &m), TB_ETOOLARGE);
    cr_expect_eq(tb_message_parse(TB_VERSION_DRAFT, over, TB_MAX_MESSAGE + 1, &m), TB_ETOOLARGE);
    free(at_max);
    free(over);
}

Test(message, over_max_size_is_too_large_whatever_the_content)
{
    uint8_t *junk = calloc(1, 65536 + 2);
    struct tb_message m;

    cr_assert_not_null(junk);
    junk[0] = 0xff;
    junk[1] = 0xff;
    cr_expect_eq(tb_message_parse(TB_VERSION_DRAFT, junk, 65537, &m), TB_ETOOLARGE);
    cr_expect_eq(tb_message_parse(TB_VERSION_RFC, junk, TB_MAX_MESSAGE + 1, &m), TB_ETOOLARGE);
    free(junk);
}

static void build_n_small(struct tb_builder *b, enum tb_version v, size_t n)
{
    /* draft: an RSA key with a 1-byte modulus (unsupported but walkable) */
    static const uint8_t draft_small_id[] = {4, 1, 0, 1, 0xab, 1, 3};

    tb_builder_init(b, v);
    for (size_t i = 0; i < n; i++) {
        struct tb_binding x = v == TB_VERSION_DRAFT
                                  ? raw_binding((uint8_t)i, draft_small_id, sizeof(draft_small_id),
                                                fake_sig, 4, no_ext, 0)
                                  : raw_binding((uint8_t)i, rfc_unknown_id, sizeof(rfc_unknown_id),
                                                fake_sig, 4, no_ext, 0);
        cr_assert_eq(tb_builder_add(b, &x), 0);
    }
}

Test(message, max_bindings_parse_and_one_more_is_too_large)
{
    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        struct tb_builder b;
        struct tb_message m;
        size_t len;

        build_n_small(&b, (enum tb_version)v, TB_MAX_BINDINGS);
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        cr_expect_eq(parse_copy((enum tb_version)v, wire, len, &m), 0, "%d bindings (%s)",
                     TB_MAX_BINDINGS, vname((enum tb_version)v));
        cr_expect_eq(m.count, (size_t)TB_MAX_BINDINGS);
        for (size_t i = 0; i < m.count; i++)
            cr_expect_eq(m.b[i].key_params, TB_KP_UNSUPPORTED);

        build_n_small(&b, (enum tb_version)v, TB_MAX_BINDINGS + 1);
        wire = tb_builder_bytes(&b, &len);
        cr_expect_eq(parse_copy((enum tb_version)v, wire, len, &m), TB_ETOOLARGE,
                     "%d bindings (%s)", TB_MAX_BINDINGS + 1, vname((enum tb_version)v));
    }
}

/* --- extensions ---------------------------------------------------------------------------- */

Test(message, unknown_extensions_are_parsed_and_kept_as_is)
{
    static const uint8_t ext[] = {0x42, 0x00, 0x03, 'a',  'b',  'c', 0xff,
                                  0x00, 0x00, 0x00, 0x00, 0x01, 0x7f};

    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        struct tb_builder b, b2;
        struct tb_message m, m2;
        struct tb_roles roles;
        uint8_t out[TB_MAX_MESSAGE];
        size_t len;

        build_combo(&b, c);
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        cr_assert_eq(tb_message_parse(c->version, wire, len, &m), 0);
        /* the same bindings, each now carrying the extensions */
        tb_builder_init(&b2, c->version);
        for (size_t j = 0; j < m.count; j++) {
            struct tb_binding x = m.b[j];
            x.ext = (struct tb_slice){ext, sizeof(ext)};
            cr_assert_eq(tb_builder_add(&b2, &x), 0);
        }
        const uint8_t *wire2 = tb_builder_bytes(&b2, &len);
        cr_assert_eq(parse_copy(c->version, wire2, len, &m2), 0, "combo %zu with extensions", i);
        cr_assert_eq(tb_message_parse(c->version, wire2, len, &m2), 0);
        cr_assert_eq(m2.count, m.count);
        for (size_t j = 0; j < m2.count; j++) {
            cr_expect_eq(m2.b[j].ext.len, sizeof(ext));
            cr_expect_eq(memcmp(m2.b[j].ext.p, ext, sizeof(ext)), 0);
            cr_expect_eq(m2.b[j].key_params, m.b[j].key_params);
        }
        cr_expect_eq(tb_message_validate(&m2, c->provided, &roles), 0);
        cr_assert_eq(tb_message_serialize(&m2, out, sizeof(out)), (int)len);
        cr_expect_eq(memcmp(out, wire2, len), 0);
    }
}

Test(message, malformed_extension_lists_rejected)
{
    static const uint8_t type_only[] = {0x42};
    static const uint8_t half_length[] = {0x42, 0x00};
    static const uint8_t data_short[] = {0x42, 0x00, 0x04, 'a', 'b', 'c'};
    static const uint8_t data_long[] = {0x42, 0x00, 0x02, 'a', 'b', 'c'};
    static const uint8_t trailing[] = {0x42, 0x00, 0x00, 0x43};
    static const uint8_t trailing2[] = {0x42, 0x00, 0x01, 'x', 0x43, 0x00};
    static const struct {
        const uint8_t *p;
        size_t len;
    } bad[] = {
        {type_only, sizeof(type_only)},   {half_length, sizeof(half_length)},
        {data_short, sizeof(data_short)}, {data_long, sizeof(data_long)},
        {trailing, sizeof(trailing)},     {trailing2, sizeof(trailing2)},
    };

    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        struct tb_builder b;
        struct tb_message m, good;
        size_t len;

        build_combo(&b, &(struct combo){(enum tb_version)v, TB_KP_ECDSAP256, NONE});
        const uint8_t *wire = tb_builder_bytes(&b, &len);
        cr_assert_eq(tb_message_parse((enum tb_version)v, wire, len, &good), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct tb_builder b2;
            struct tb_binding x = good.b[0];
            x.ext = (struct tb_slice){bad[i].p, bad[i].len};
            tb_builder_init(&b2, (enum tb_version)v);
            cr_assert_eq(tb_builder_add(&b2, &x), 0);
            const uint8_t *wire2 = tb_builder_bytes(&b2, &len);
            cr_expect_eq(parse_copy((enum tb_version)v, wire2, len, &m), TB_EPARSE,
                         "%s: malformed extension list %zu", vname((enum tb_version)v), i);
        }
    }
}

/* --- key layouts --------------------------------------------------------------------------- */

/* The last message parse_one built: the slices of its result point into it. */
static struct tb_builder one_built;

/* Parses a one-binding message (provided, id as given): first from an exact-size copy, so ASan
 * sees any over-read, then in place so the result's slices stay valid. */
static int parse_one(enum tb_version v, const uint8_t *id, size_t id_len, struct tb_message *m)
{
    struct tb_binding x = raw_binding(TB_TYPE_PROVIDED, id, id_len, fake_sig, 4, no_ext, 0);
    size_t len;
    int ret;

    tb_builder_init(&one_built, v);
    cr_assert_eq(tb_builder_add(&one_built, &x), 0);
    const uint8_t *wire = tb_builder_bytes(&one_built, &len);
    ret = parse_copy(v, wire, len, m);
    cr_assert_eq(tb_message_parse(v, wire, len, m), ret);
    return ret;
}

/* A draft ECDSA TokenBindingID' with the given hash, curve and point prefix / length. */
static size_t draft_ec_id(uint8_t *id, uint8_t hash, uint16_t curve, uint8_t point_len,
                          uint8_t prefix)
{
    size_t n = 0;

    id[n++] = hash;
    id[n++] = 3;
    id[n++] = (uint8_t)(curve >> 8);
    id[n++] = (uint8_t)curve;
    id[n++] = point_len;
    memset(id + n, 0x11, point_len);
    if (point_len)
        id[n] = prefix;
    return n + point_len;
}

Test(message, draft_key_layouts)
{
    uint8_t id[600];
    struct tb_message m;
    size_t n;

    n = draft_ec_id(id, 4, 23, 65, 0x04);
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_ECDSAP256);
    cr_expect_eq(m.b[0].id.len, n);

    n = draft_ec_id(id, 5, 23, 65, 0x04); /* hash other than sha256 */
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);

    n = draft_ec_id(id, 4, 24, 65, 0x04); /* curve other than secp256r1 */
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);

    n = draft_ec_id(id, 4, 24, 97, 0x04); /* P-384: its own point size, skipped */
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
    cr_expect_eq(m.b[0].id.len, n);

    n = draft_ec_id(id, 4, 23, 65, 0x02); /* compressed prefix */
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), TB_EPARSE);
    n = draft_ec_id(id, 4, 23, 64, 0x04); /* point without room for X||Y */
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), TB_EPARSE);
    n = draft_ec_id(id, 4, 23, 0, 0x04);
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), TB_EPARSE);

    /* unknown signature algorithm: the key layout is unknown, the message cannot be walked */
    static const uint8_t unknown_alg[] = {4, 2, 0, 0};
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, unknown_alg, sizeof(unknown_alg), &m),
                 TB_EUNSUPPORTED);

    /* RSA: modulus length decides support; empty modulus or exponent is malformed */
    n = 0;
    id[n++] = 4;
    id[n++] = 1;
    id[n++] = 0x00;
    id[n++] = 0x80; /* 128-byte modulus: RSA-1024 */
    memset(id + n, 0xc5, 128);
    n += 128;
    id[n++] = 3;
    id[n++] = 1;
    id[n++] = 0;
    id[n++] = 1;
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
    cr_expect_eq(m.b[0].modulus.len, 128u);

    /* a 2048-bit modulus with an exponent over 32 bits: too costly to verify, unsupported */
    n = 0;
    id[n++] = 4;
    id[n++] = 1;
    id[n++] = 0x01;
    id[n++] = 0x00;
    memset(id + n, 0xc5, 256);
    n += 256;
    id[n++] = 5;
    memset(id + n, 0x01, 5);
    n += 5;
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
    id[n - 6] = 4; /* the same with a 4-byte exponent: supported */
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, id, n - 1, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_RSA2048_PKCS1);

    static const uint8_t empty_mod[] = {4, 1, 0, 0, 1, 3};
    static const uint8_t empty_exp[] = {4, 1, 0, 1, 0xab, 0};
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, empty_mod, sizeof(empty_mod), &m), TB_EPARSE);
    cr_expect_eq(parse_one(TB_VERSION_DRAFT, empty_exp, sizeof(empty_exp), &m), TB_EPARSE);
}

Test(message, rfc_unknown_key_parameters_skipped_by_key_length)
{
    struct tb_message m;
    uint8_t id[300];

    cr_assert_eq(parse_one(TB_VERSION_RFC, rfc_unknown_id, sizeof(rfc_unknown_id), &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
    cr_expect_eq(m.b[0].id.len, sizeof(rfc_unknown_id));
    cr_expect_eq(m.b[0].sig.len, 4u, "the signature after the skipped key is found");
    cr_expect_eq(memcmp(m.b[0].sig.p, fake_sig, 4), 0);

    /* a long unknown key, and an empty one */
    id[0] = 0xfe;
    id[1] = 0x01;
    id[2] = 0x00;
    memset(id + 3, 0x5a, 256);
    cr_assert_eq(parse_one(TB_VERSION_RFC, id, 3 + 256, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
    cr_expect_eq(m.b[0].id.len, 3u + 256);
    static const uint8_t empty_key[] = {0x03, 0x00, 0x00};
    cr_assert_eq(parse_one(TB_VERSION_RFC, empty_key, sizeof(empty_key), &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
}

Test(message, rfc_key_layouts)
{
    uint8_t id[600];
    struct tb_message m;
    size_t n;

    /* ECDSA: point_len must be 64 and the key block consumed exactly */
    id[0] = TB_KP_ECDSAP256;
    id[1] = 0;
    id[2] = 65;
    id[3] = 64;
    memset(id + 4, 0x22, 64);
    cr_expect_eq(parse_one(TB_VERSION_RFC, id, 68, &m), 0);
    cr_expect_eq(m.b[0].key_params, TB_KP_ECDSAP256);
    id[2] = 66; /* one byte left in the key block */
    id[68] = 0;
    cr_expect_eq(parse_one(TB_VERSION_RFC, id, 69, &m), TB_EPARSE);
    id[2] = 66;
    id[3] = 65; /* 0x04-prefixed point, as in the draft: not the rfc layout */
    cr_expect_eq(parse_one(TB_VERSION_RFC, id, 69, &m), TB_EPARSE);
    id[2] = 64;
    id[3] = 63;
    cr_expect_eq(parse_one(TB_VERSION_RFC, id, 67, &m), TB_EPARSE);

    /* RSA, both paddings: 256-byte modulus supported, others not; extra bytes malformed */
    for (int kp = TB_KP_RSA2048_PKCS1; kp <= TB_KP_RSA2048_PSS; kp++) {
        for (size_t mod = 255; mod <= 257; mod++) {
            size_t key_len = 2 + mod + 1 + 3;
            n = 0;
            id[n++] = (uint8_t)kp;
            id[n++] = (uint8_t)(key_len >> 8);
            id[n++] = (uint8_t)key_len;
            id[n++] = (uint8_t)(mod >> 8);
            id[n++] = (uint8_t)mod;
            memset(id + n, 0xc7, mod);
            n += mod;
            id[n++] = 3;
            id[n++] = 1;
            id[n++] = 0;
            id[n++] = 1;
            cr_expect_eq(parse_one(TB_VERSION_RFC, id, n, &m), 0);
            cr_expect_eq(m.b[0].key_params, mod == 256 ? kp : TB_KP_UNSUPPORTED,
                         "kp %d modulus %zu", kp, mod);
            /* key_length one more than the key: a stray byte in the block */
            id[1] = (uint8_t)((key_len + 1) >> 8);
            id[2] = (uint8_t)(key_len + 1);
            id[n] = 0;
            cr_expect_eq(parse_one(TB_VERSION_RFC, id, n + 1, &m), TB_EPARSE);
        }
    }
}

/* --- serializing --------------------------------------------------------------------------- */

Test(message, serialize_with_small_buffer_is_einval_and_stays_in_bounds)
{
    struct tb_builder b;
    struct tb_message m;
    size_t len;

    build_combo(&b, &(struct combo){TB_VERSION_RFC, TB_KP_ECDSAP256, TB_KP_RSA2048_PSS});
    const uint8_t *wire = tb_builder_bytes(&b, &len);
    cr_assert_eq(tb_message_parse(TB_VERSION_RFC, wire, len, &m), 0);
    for (size_t cap = 0; cap < len; cap++) {
        uint8_t *out = malloc(cap ? cap : 1);
        cr_assert_not_null(out);
        cr_expect_eq(tb_message_serialize(&m, out, cap), TB_EINVAL, "cap %zu of %zu", cap, len);
        free(out);
    }
    uint8_t *out = malloc(len);
    cr_assert_not_null(out);
    cr_expect_eq(tb_message_serialize(&m, out, len), (int)len);
    cr_expect_eq(memcmp(out, wire, len), 0);
    free(out);

    m.count = TB_MAX_BINDINGS + 1;
    uint8_t big[TB_MAX_MESSAGE];
    cr_expect_eq(tb_message_serialize(&m, big, sizeof(big)), TB_EINVAL);
}

/* --- validation ---------------------------------------------------------------------------- */

/* A message of signed bindings: types[i] with kps[i], key "a" for even i, "b" for odd i. */
static void build_typed(struct tb_builder *b, enum tb_version v, const uint8_t *types,
                        const int *kps, size_t n)
{
    size_t ch_len;
    const uint8_t *ch = channel_of(v, &ch_len);

    tb_builder_init(b, v);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(
            tb_builder_add_signed(b, types[i], kps[i], key_for(kps[i], (int)(i & 1)), ch, ch_len),
            0);
}

static int validate_built(struct tb_builder *b, int negotiated, struct tb_message *m,
                          struct tb_roles *roles)
{
    size_t len;
    const uint8_t *wire = tb_builder_bytes(b, &len);

    cr_assert_eq(tb_message_parse(b->version, wire, len, m), 0);
    return tb_message_validate(m, negotiated, roles);
}

Test(message, validate_provided_and_referred_roles)
{
    static const uint8_t types[] = {TB_TYPE_REFERRED, TB_TYPE_PROVIDED};
    static const int kps[] = {TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256};

    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        struct tb_builder b;
        struct tb_message m;
        struct tb_roles r;

        build_typed(&b, (enum tb_version)v, types, kps, 2);
        cr_assert_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), 0);
        cr_expect_eq(r.provided, &m.b[1], "provided found whatever its position");
        cr_expect_eq(r.referred, &m.b[0]);
        cr_expect_eq(r.n_other, 0u);
    }
}

Test(message, validate_no_provided)
{
    static const uint8_t types[] = {TB_TYPE_REFERRED};
    static const uint8_t other[] = {7};
    static const int kps[] = {TB_KP_ECDSAP256};

    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        struct tb_builder b;
        struct tb_message m;
        struct tb_roles r;

        build_typed(&b, (enum tb_version)v, types, kps, 1);
        cr_expect_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), TB_ENOPROVIDED);
        build_typed(&b, (enum tb_version)v, other, kps, 1);
        cr_expect_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), TB_ENOPROVIDED);
    }
}

Test(message, validate_duplicates)
{
    static const uint8_t two_provided[] = {TB_TYPE_PROVIDED, TB_TYPE_PROVIDED};
    static const uint8_t two_referred[] = {TB_TYPE_PROVIDED, TB_TYPE_REFERRED, TB_TYPE_REFERRED};
    static const uint8_t two_other[] = {TB_TYPE_PROVIDED, 9, 9};
    static const int kps[] = {TB_KP_ECDSAP256, TB_KP_ECDSAP256, TB_KP_ECDSAP256};

    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        struct tb_builder b;
        struct tb_message m;
        struct tb_roles r;

        build_typed(&b, (enum tb_version)v, two_provided, kps, 2);
        cr_expect_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), TB_EDUPLICATE);
        build_typed(&b, (enum tb_version)v, two_referred, kps, 3);
        cr_expect_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), TB_EDUPLICATE);
        build_typed(&b, (enum tb_version)v, two_other, kps, 3);
        cr_expect_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), TB_EDUPLICATE);
    }
}

Test(message, validate_provided_key_params_must_equal_negotiated)
{
    static const uint8_t types[] = {TB_TYPE_PROVIDED};

    for (size_t i = 0; i < N_COMBOS; i++) {
        const struct combo *c = &combos[i];
        const int kps[] = {c->provided};
        struct tb_builder b;
        struct tb_message m;
        struct tb_roles r;

        build_typed(&b, c->version, types, kps, 1);
        for (int neg = TB_KP_RSA2048_PKCS1; neg <= TB_KP_ECDSAP256; neg++) {
            if (c->version == TB_VERSION_DRAFT && neg == TB_KP_RSA2048_PSS)
                continue;
            cr_expect_eq(validate_built(&b, neg, &m, &r), neg == c->provided ? 0 : TB_EKEYPARAMS,
                         "combo %zu negotiated %d", i, neg);
        }
    }
    /* a provided key we do not support never matches */
    struct tb_builder b;
    struct tb_binding x = raw_binding(TB_TYPE_PROVIDED, rfc_unknown_id, sizeof(rfc_unknown_id),
                                      fake_sig, 4, no_ext, 0);
    struct tb_message m;
    struct tb_roles r;
    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(tb_builder_add(&b, &x), 0);
    for (int neg = TB_KP_RSA2048_PKCS1; neg <= TB_KP_ECDSAP256; neg++)
        cr_expect_eq(validate_built(&b, neg, &m, &r), TB_EKEYPARAMS);
}

Test(message, validate_other_types_unsupported_ignored_supported_kept)
{
    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        uint8_t draft_id[80];
        size_t draft_len = draft_ec_id(draft_id, 5, 23, 65, 0x04); /* hash 5: unsupported */
        const uint8_t *bad_id = v == TB_VERSION_DRAFT ? draft_id : rfc_unknown_id;
        size_t bad_len = v == TB_VERSION_DRAFT ? draft_len : sizeof(rfc_unknown_id);
        size_t ch_len;
        const uint8_t *ch = channel_of((enum tb_version)v, &ch_len);
        struct tb_builder b;
        struct tb_message m;
        struct tb_roles r;

        tb_builder_init(&b, (enum tb_version)v);
        struct tb_binding unsup = raw_binding(0x42, bad_id, bad_len, fake_sig, 4, no_ext, 0);
        cr_assert_eq(tb_builder_add(&b, &unsup), 0);
        cr_assert_eq(
            tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, ch, ch_len), 0);
        cr_assert_eq(tb_builder_add_signed(&b, 0x05, TB_KP_RSA2048_PKCS1, rsa_b, ch, ch_len), 0);
        cr_assert_eq(tb_builder_add_signed(&b, 0xff, TB_KP_ECDSAP256, p256_b, ch, ch_len), 0);
        cr_assert_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), 0, "%s",
                     vname((enum tb_version)v));
        cr_expect_eq(m.b[0].key_params, TB_KP_UNSUPPORTED);
        cr_expect_eq(r.provided, &m.b[1]);
        cr_expect_null(r.referred);
        cr_assert_eq(r.n_other, 2u, "the unsupported other binding is ignored");
        cr_expect_eq(r.other[0], &m.b[2], "others in message order");
        cr_expect_eq(r.other[1], &m.b[3]);
    }
}

Test(message, validate_referred_with_unsupported_key)
{
    struct tb_builder b;
    struct tb_message m;
    struct tb_roles r;
    size_t ch_len;
    const uint8_t *ch = channel_of(TB_VERSION_RFC, &ch_len);
    struct tb_binding x = raw_binding(TB_TYPE_REFERRED, rfc_unknown_id, sizeof(rfc_unknown_id),
                                      fake_sig, 4, no_ext, 0);

    tb_builder_init(&b, TB_VERSION_RFC);
    cr_assert_eq(tb_builder_add_signed(&b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, p256_a, ch, ch_len),
                 0);
    cr_assert_eq(tb_builder_add(&b, &x), 0);
    cr_expect_eq(validate_built(&b, TB_KP_ECDSAP256, &m, &r), TB_EUNSUPPORTED);
}

/* --- names --------------------------------------------------------------------------------- */

Test(message, key_params_names)
{
    cr_expect_str_eq(tb_key_params_name(TB_VERSION_DRAFT, TB_KP_ECDSAP256), "p256");
    cr_expect_str_eq(tb_key_params_name(TB_VERSION_DRAFT, TB_KP_RSA2048_PKCS1), "rsa2048");
    cr_expect_null(tb_key_params_name(TB_VERSION_DRAFT, TB_KP_RSA2048_PSS));
    cr_expect_str_eq(tb_key_params_name(TB_VERSION_RFC, TB_KP_ECDSAP256), "ecdsap256");
    cr_expect_str_eq(tb_key_params_name(TB_VERSION_RFC, TB_KP_RSA2048_PSS), "rsa2048_pss");
    cr_expect_str_eq(tb_key_params_name(TB_VERSION_RFC, TB_KP_RSA2048_PKCS1), "rsa2048_pkcs1.5");
    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        cr_expect_null(tb_key_params_name((enum tb_version)v, TB_KP_UNSUPPORTED));
        cr_expect_null(tb_key_params_name((enum tb_version)v, 3));
        cr_expect_null(tb_key_params_name((enum tb_version)v, 255));
    }
}

Test(message, key_params_parse_round_trips_and_rejects_unknown)
{
    for (int v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        for (int kp = TB_KP_RSA2048_PKCS1; kp <= TB_KP_ECDSAP256; kp++) {
            const char *name = tb_key_params_name((enum tb_version)v, kp);
            if (name != NULL)
                cr_expect_eq(tb_key_params_parse((enum tb_version)v, name), kp, "%s", name);
        }
        cr_expect_eq(tb_key_params_parse((enum tb_version)v, ""), TB_EINVAL);
        cr_expect_eq(tb_key_params_parse((enum tb_version)v, NULL), TB_EINVAL);
        cr_expect_eq(tb_key_params_parse((enum tb_version)v, "rsa2048_pss "), TB_EINVAL);
    }
    /* each version knows only its own names */
    cr_expect_eq(tb_key_params_parse(TB_VERSION_DRAFT, "ecdsap256"), TB_EINVAL);
    cr_expect_eq(tb_key_params_parse(TB_VERSION_DRAFT, "rsa2048_pss"), TB_EINVAL);
    cr_expect_eq(tb_key_params_parse(TB_VERSION_RFC, "p256"), TB_EINVAL);
    cr_expect_eq(tb_key_params_parse(TB_VERSION_RFC, "rsa2048"), TB_EINVAL);
}

Test(message, version_names)
{
    cr_expect_str_eq(tb_version_name(TB_VERSION_DRAFT), "draft");
    cr_expect_str_eq(tb_version_name(TB_VERSION_RFC), "rfc");
    cr_expect_eq(tb_version_parse("draft"), TB_VERSION_DRAFT);
    cr_expect_eq(tb_version_parse("rfc"), TB_VERSION_RFC);
    cr_expect_eq(tb_version_parse(""), TB_EINVAL);
    cr_expect_eq(tb_version_parse("rfc8471"), TB_EINVAL);
    cr_expect_eq(tb_version_parse("draf"), TB_EINVAL);
    cr_expect_eq(tb_version_parse(NULL), TB_EINVAL);
}
