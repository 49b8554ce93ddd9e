/*
 * libFuzzer target: the Token Binding message codec, validation and verification.
 *
 * Input: one selector byte, then the message.
 *   selector bit 0     version: 0 draft, 1 rfc
 *   selector bits 1-2  negotiated key parameters: 0 rsa2048 (pkcs1.5), 1 rsa2048_pss,
 *                      2 (ecdsa)p256, 3 TB_KP_UNSUPPORTED
 *   other bits         ignored
 * The channel value is fixed per version and equals the one in tests/vectors/{draft,rfc}.json,
 * so the seed corpus (the vectors' messages, decoded) reaches the accepting paths.
 *
 * Oracles (abort on violation):
 *  - a parsed message serializes back to exactly the input bytes, and its slices lie within it;
 *  - tb_message_validate's roles agree with its return value;
 *  - tb_verify_binding returns 0 or TB_ESIGNATURE for a supported key, TB_EUNSUPPORTED otherwise;
 *  - tb_verify_header on base64url(message) returns exactly what the step-by-step pipeline
 *    (parse, validate, verify provided, referred, others) gives;
 *  - tb_verify_header on the rest read as header text: if it accepts, the decoded bytes
 *    re-encode to the text minus its padding.
 * One verifier (capacity 4) lives for the whole run, so its cache sees hits, misses and
 * evictions across inputs; its state must never change a verdict.
 *
 * Custom mutator. A byte-level mutation of a signed binding almost always breaks its signature,
 * so plain mutation explores the rejecting paths and little else. After libFuzzer's own mutation,
 * three times in four the result (when it still parses, in the version its selector names) is
 * signed again: every binding with a supported key gets the ID of a fixed key of its type (one
 * P-256 and one RSA-2048 key made at start) and a fresh signature over the fixed channel, its
 * type, extensions and every other binding kept as mutated; half the time the selector's
 * negotiated key parameters are set to those of the first provided binding. Structurally valid,
 * correctly signed messages with mutated types, extensions, binding counts and key mixes then
 * reach validation and the accepting path. The inputs saved are the re-signed bytes, so a finding
 * replays without the mutator. FUZZ_MESSAGE_NO_RESIGN=1 in the environment turns re-signing off
 * (to compare); at exit the target prints how many inputs it ran and how many verified.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tb/tb.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static const uint8_t draft_channel[TB_TLS_UNIQUE_LEN] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6,
                                                         0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c};
static const uint8_t rfc_channel[TB_EKM_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const int negotiated_table[4] = {TB_KP_RSA2048_PKCS1, TB_KP_RSA2048_PSS, TB_KP_ECDSAP256,
                                        TB_KP_UNSUPPORTED};

/* Large per-input state, static to keep it off the (small, instrumented) stack. */
static struct tb_message msg;
static struct tb_verified verified;
static uint8_t wire[TB_MAX_MESSAGE];
static char text[TB_MAX_HEADER + 16];

static struct tb_verifier *verifier(void)
{
    static struct tb_verifier *v;

    if (v == NULL && (v = tb_verifier_new(4)) == NULL)
        abort();
    return v;
}

static void check_slice(const struct tb_slice *s, const uint8_t *buf, size_t len)
{
    if (s->len == 0)
        return;
    if (s->p < buf || s->len > len || s->p > buf + len - s->len)
        abort();
}

static void check_binding(const struct tb_binding *b, const uint8_t *buf, size_t len)
{
    check_slice(&b->id, buf, len);
    check_slice(&b->point, buf, len);
    check_slice(&b->modulus, buf, len);
    check_slice(&b->exponent, buf, len);
    check_slice(&b->sig, buf, len);
    check_slice(&b->ext, buf, len);
    if (b->id.len == 0)
        abort();
    switch (b->key_params) {
    case TB_KP_ECDSAP256:
        if (b->point.len != 64)
            abort();
        break;
    case TB_KP_RSA2048_PKCS1:
    case TB_KP_RSA2048_PSS:
        if (b->modulus.len != 256 || b->exponent.len == 0)
            abort();
        break;
    case TB_KP_UNSUPPORTED:
        break;
    default:
        abort();
    }
}

static void check_roles(const struct tb_message *m, int rc, int negotiated,
                        const struct tb_roles *r)
{
    size_t i;

    if (rc != 0)
        return;
    if (r->provided == NULL || r->provided->type != TB_TYPE_PROVIDED ||
        r->provided->key_params != negotiated)
        abort();
    if (r->referred != NULL &&
        (r->referred->type != TB_TYPE_REFERRED || r->referred->key_params == TB_KP_UNSUPPORTED))
        abort();
    if (r->n_other > m->count)
        abort();
    for (i = 0; i < r->n_other; i++) {
        if (r->other[i]->type == TB_TYPE_PROVIDED || r->other[i]->type == TB_TYPE_REFERRED ||
            r->other[i]->key_params == TB_KP_UNSUPPORTED)
            abort();
    }
}

/* The verdict of the step-by-step pipeline, in tb_verify_header's order. */
static int pipeline(enum tb_version version, int negotiated, const uint8_t *p, size_t n,
                    const uint8_t *chan, size_t chan_len)
{
    struct tb_verifier *v = verifier();
    struct tb_roles roles;
    int rc, vr[TB_MAX_BINDINGS];
    size_t i;

    rc = tb_message_parse(version, p, n, &msg);
    if (rc != 0)
        return rc;
    if (msg.count == 0 || msg.count > TB_MAX_BINDINGS)
        abort();
    rc = tb_message_serialize(&msg, wire, sizeof(wire));
    if (rc < 0 || (size_t)rc != n || memcmp(wire, p, n) != 0)
        abort();
    for (i = 0; i < msg.count; i++) {
        check_binding(&msg.b[i], p, n);
        vr[i] = tb_verify_binding(v, version, &msg.b[i], chan, chan_len);
        if (msg.b[i].key_params == TB_KP_UNSUPPORTED ? vr[i] != TB_EUNSUPPORTED
                                                     : vr[i] != 0 && vr[i] != TB_ESIGNATURE)
            abort();
    }
    rc = tb_message_validate(&msg, negotiated, &roles);
    check_roles(&msg, rc, negotiated, &roles);
    if (rc != 0)
        return rc;
    if ((rc = vr[roles.provided - msg.b]) != 0)
        return rc;
    if (roles.referred != NULL && (rc = vr[roles.referred - msg.b]) != 0)
        return rc;
    for (i = 0; i < roles.n_other; i++) {
        if ((rc = vr[roles.other[i] - msg.b]) != 0)
            return rc;
    }
    return 0;
}

/* The rest as a header value: whatever comes back, an accepted value must round-trip. */
static void header_as_text(enum tb_version version, int negotiated, const uint8_t *p, size_t n,
                           const uint8_t *chan, size_t chan_len)
{
    size_t stripped = n;
    int rc;

    rc = tb_verify_header(verifier(), version, negotiated, (const char *)p, n, chan, chan_len,
                          &verified);
    if (rc != 0)
        return;
    while (stripped > 0 && p[stripped - 1] == '=')
        stripped--;
    rc = tb_base64url_encode(verified.buf, verified.len, text, sizeof(text));
    if (rc < 0 || (size_t)rc != stripped || memcmp(text, p, stripped) != 0)
        abort();
}

/* --- the custom mutator -------------------------------------------------------------------- */

/* The mutator's keys, made on first use: [0] P-256, [1] RSA-2048 (for both RSA parameters). */
static EVP_PKEY *signing_key(int key_params)
{
    static EVP_PKEY *keys[2];
    int i = key_params == TB_KP_ECDSAP256 ? 0 : 1;

    if (key_params != TB_KP_ECDSAP256 && key_params != TB_KP_RSA2048_PKCS1 &&
        key_params != TB_KP_RSA2048_PSS)
        return NULL;
    if (keys[i] == NULL && tb_key_generate(key_params, &keys[i]) != 0)
        abort();
    return keys[i];
}

/* Appends binding b to mb, with the fixed key of its type and a fresh signature when it has a
 * supported key and sign is set; as it is otherwise. 0 or a negative code. */
static int add_signed(struct tb_builder *mb, const struct tb_binding *b, int sign,
                      const uint8_t *chan, size_t chan_len)
{
    static uint8_t id[TB_MAX_MESSAGE], sig[TB_MAX_MESSAGE];
    EVP_PKEY *key = sign ? signing_key(b->key_params) : NULL;
    struct tb_binding nb = *b;
    int n;

    if (key == NULL)
        return tb_builder_add(mb, b);
    if ((n = tb_id_encode(mb->version, b->key_params, key, id, sizeof(id))) < 0)
        return n;
    nb.id = (struct tb_slice){id, (size_t)n};
    n = tb_sign(mb->version, b->type, b->key_params, key, chan, chan_len, sig, sizeof(sig));
    if (n < 0)
        return n;
    nb.sig = (struct tb_slice){sig, (size_t)n};
    return tb_builder_add(mb, &nb);
}

/* data[0..size) re-signed in place (see the top of this file); returns the new size, or size
 * when the message does not parse or the result would not fit max_size. */
static size_t resign(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    static uint8_t copy[TB_MAX_MESSAGE];
    static struct tb_message m;
    static struct tb_builder mb;
    enum tb_version version = (data[0] & 1) ? TB_VERSION_RFC : TB_VERSION_DRAFT;
    const uint8_t *chan = version == TB_VERSION_DRAFT ? draft_channel : rfc_channel;
    size_t chan_len = version == TB_VERSION_DRAFT ? sizeof(draft_channel) : sizeof(rfc_channel);
    uint8_t selector = data[0];
    const uint8_t *out;
    size_t i, len;
    int provided = TB_KP_UNSUPPORTED, seen = 0;

    if (size - 1 > sizeof(copy))
        return size;
    memcpy(copy, data + 1, size - 1);
    if (tb_message_parse(version, copy, size - 1, &m) != 0)
        return size;
    tb_builder_init(&mb, version);
    for (i = 0; i < m.count; i++) {
        /* one binding in eight keeps its (probably broken) signature */
        if (add_signed(&mb, &m.b[i], ((seed >> (3 * i)) & 7) != 0, chan, chan_len) != 0)
            return size;
        if (!seen && m.b[i].type == TB_TYPE_PROVIDED) {
            seen = 1;
            provided = m.b[i].key_params;
        }
    }
    if ((seed & 0x80000000u) && provided != TB_KP_UNSUPPORTED) {
        selector &= (uint8_t)~0x06;
        selector |= (uint8_t)(provided << 1); /* the negotiated_table index of provided */
    }
    out = tb_builder_bytes(&mb, &len);
    if (len + 1 > max_size)
        return size;
    data[0] = selector;
    memcpy(data + 1, out, len);
    return len + 1;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    static int off = -1;

    if (off < 0)
        off = getenv("FUZZ_MESSAGE_NO_RESIGN") != NULL;
    size = LLVMFuzzerMutate(data, size, max_size);
    if (off || size < 2 || (seed & 0x60000000u) == 0)
        return size;
    return resign(data, size, max_size, seed);
}

/* --- the target ---------------------------------------------------------------------------- */

static unsigned long long n_inputs, n_verified;

static void print_stats(void)
{
    fprintf(stderr, "fuzz_message: %llu inputs, %llu verified (%.1f%%)\n", n_inputs, n_verified,
            n_inputs ? 100.0 * (double)n_verified / (double)n_inputs : 0.0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum tb_version version;
    const uint8_t *chan;
    size_t chan_len, n;
    int negotiated, expect, rc;

    if (size < 1)
        return 0;
    version = (data[0] & 1) ? TB_VERSION_RFC : TB_VERSION_DRAFT;
    negotiated = negotiated_table[(data[0] >> 1) & 3];
    chan = version == TB_VERSION_DRAFT ? draft_channel : rfc_channel;
    chan_len = version == TB_VERSION_DRAFT ? sizeof(draft_channel) : sizeof(rfc_channel);
    data++;
    n = size - 1;

    if (n_inputs++ == 0)
        atexit(print_stats);
    expect = pipeline(version, negotiated, data, n, chan, chan_len);
    n_verified += expect == 0;

    /* the same bytes through the full header path must give the same verdict */
    if (tb_base64url_encoded_len(n) < sizeof(text)) {
        rc = tb_base64url_encode(data, n, text, sizeof(text));
        if (rc < 0)
            abort();
        rc = tb_verify_header(verifier(), version, negotiated, text, (size_t)rc, chan, chan_len,
                              &verified);
        if (rc != expect)
            abort();
        if (rc == 0 && (verified.len != n || memcmp(verified.buf, data, n) != 0))
            abort();
    }

    header_as_text(version, negotiated, data, n, chan, chan_len);
    return 0;
}
