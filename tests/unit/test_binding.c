/*
 * The proxy's per-connection Token Binding state (src/proxy/binding.c).
 *
 * binding::vector runs every case of tests/vectors/{draft,rfc}.json through the proxy's path:
 * tbp_binding_init_channel with the vector's negotiated key parameters, version (rfc: 1.0) and
 * channel value, a request head carrying the header under the version's name (draft
 * "Token-Binding", rfc "Sec-Token-Binding"), tbp_binding_check. An ok case must pass and leave
 * exactly the vector's provided / referred / other IDs and provided tbh in the binding (and a
 * second check of the same value must be a cache hit); an error case must fail with the reason
 * the vector names (tb_strerror names, after the errata of tests/support/vectors.c), leaving no
 * IDs behind. test_vectors.c runs the same cases against libtb directly: a case failing here
 * only is the proxy's bug.
 *
 * The other tests: the header cache, which header name each version reads, the headers a
 * connection without Token Binding refuses (by listener versions), tbp_binding_header and
 * tbp_binding_context.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "binding.h"
#include "heads.h"
#include "tb/tb.h"
#include "vectors.h"

#define N_FILES 2

static const char *const file_names[N_FILES] = {"draft", "rfc"};

static struct tbt_vectors *vec[N_FILES];

static void setup(void)
{
    int f;

    for (f = 0; f < N_FILES; f++) {
        vec[f] = tbt_vectors_load_name(file_names[f]);
        cr_assert_not_null(vec[f], "%s/%s.json does not load (see stderr)", tbt_vector_dir(),
                           file_names[f]);
    }
}

static void teardown(void)
{
    int f;

    for (f = 0; f < N_FILES; f++) {
        tbt_vectors_free(vec[f]);
        vec[f] = NULL;
    }
    tb_verifier_thread_release();
}

TestSuite(binding, .init = setup, .fini = teardown, .timeout = 30);

/* --- bindings from vectors ----------------------------------------------------------------- */

/* The header name a version's clients send. */
static const char *header_name(int version)
{
    return version == TB_VERSION_RFC ? "Sec-Token-Binding" : "Token-Binding";
}

/* Sets b up for case c as tls.c would after a handshake that negotiated its version and key
 * parameters, on a listener speaking both versions. */
static void init_case(struct tbp_binding *b, const struct tbt_case *c, const char *file)
{
    uint8_t channel[TB_MAX_CHANNEL];
    struct tbp_tls_info info;
    int version = tb_version_parse(c->version), kp, n;

    cr_assert_geq(version, 0, "%s/%s: unknown version \"%s\"", file, c->name, c->version);
    kp = tb_key_params_parse((enum tb_version)version, c->negotiated);
    cr_assert_geq(kp, 0, "%s/%s: unknown key parameters \"%s\"", file, c->name, c->negotiated);
    n = tbt_hex_decode(c->channel_hex, channel, sizeof(channel));
    cr_assert_geq(n, 0, "%s/%s: bad channel_hex", file, c->name);
    memset(&info, 0, sizeof(info));
    info.tb_key_params = kp;
    info.tb_version = version;
    info.tb_major = version == TB_VERSION_RFC ? 1 : 0;
    info.tb_minor = 0;
    info.tb_listener_versions = TBP_TLS_TB_RFC | TBP_TLS_TB_DRAFT;
    cr_assert_eq(tbp_binding_init_channel(b, &info, channel, (size_t)n), 0, "%s/%s: init", file,
                 c->name);
}

/* The case called name in file f (aborts if it is gone). */
static const struct tbt_case *find_case(int f, const char *name)
{
    size_t i;

    for (i = 0; i < vec[f]->n_cases; i++)
        if (strcmp(vec[f]->cases[i].name, name) == 0)
            return &vec[f]->cases[i];
    cr_assert_fail("%s/%s is gone from the vectors", file_names[f], name);
    return NULL;
}

static void expect_str(const char *file, const struct tbt_case *c, const char *what,
                       const char *got, const char *want)
{
    if (want == NULL) {
        cr_expect_null(got, "%s/%s: %s is \"%s\", the vector has none", file, c->name, what,
                       got != NULL ? got : "");
        return;
    }
    cr_expect_not_null(got, "%s/%s: no %s, expected %s", file, c->name, what, want);
    if (got != NULL)
        cr_expect_str_eq(got, want, "%s/%s: %s is %s, expected %s", file, c->name, what, got, want);
}

/* The vector's other_ids as the proxy forwards them: "09.<id>, 0a.<id>", or NULL. */
static const char *others_of(const struct tbt_case *c, char *buf, size_t cap)
{
    size_t i, len = 0;
    int n;

    if (c->n_other_ids == 0)
        return NULL;
    buf[0] = '\0';
    for (i = 0; i < c->n_other_ids; i++) {
        n = snprintf(buf + len, cap - len, "%s%s", i > 0 ? ", " : "", c->other_ids[i]);
        cr_assert(n > 0 && (size_t)n < cap - len, "raise the other IDs buffer");
        len += (size_t)n;
    }
    return buf;
}

ParameterizedTestParameters(binding, vector)
{
    struct tbt_vector_param *params;
    size_t n = tbt_vector_params(file_names, N_FILES, &params);

    return cr_make_param_array(struct tbt_vector_param, params, n, tbt_vector_params_free);
}

/* setup and teardown come from the suite (naming them here as well ran them twice, and the
 * first load of the vectors leaked) */
ParameterizedTest(struct tbt_vector_param *p, binding, vector)
{
    const char *file, *reason = NULL;
    const struct tbt_case *c;
    struct tbp_binding b;
    char others[4096];
    struct tbt_head t;
    int ret;

    cr_assert_geq(p->file, 0, "%s", p->name);
    cr_assert_lt(p->index, vec[p->file]->n_cases, "%s: the vector file changed", p->name);
    file = file_names[p->file];
    c = &vec[p->file]->cases[p->index];
    init_case(&b, c, file);
    cr_expect_str_eq(tbp_binding_header(&b), p->file == 1 ? "sec-token-binding" : "token-binding");
    tbt_head_req(&t, header_name(b.version), c->header, NULL);
    ret = tbp_binding_check(&b, &t.h, &reason);
    if (c->verdict == TBT_EXPECT_OK) {
        cr_expect_eq(ret, 0, "%s/%s: expected ok, got %d (%s)", file, c->name, ret,
                     reason != NULL ? reason : "no reason");
        expect_str(file, c, "provided", b.provided, c->provided_id);
        expect_str(file, c, "referred", b.referred, c->referred_id);
        expect_str(file, c, "other", b.other, others_of(c, others, sizeof(others)));
        expect_str(file, c, "tbh", b.tbh, c->provided_tbh);
        cr_expect_eq(b.verifies, 1, "%s/%s: %llu verifies", file, c->name,
                     (unsigned long long)b.verifies);
        /* the next request of the connection with the same value: the cache */
        ret = tbp_binding_check(&b, &t.h, &reason);
        cr_expect_eq(ret, 0, "%s/%s: the second check failed (%s)", file, c->name, reason);
        cr_expect(b.verifies == 1 && b.cache_hits == 1,
                  "%s/%s: second check: %llu verifies, "
                  "%llu cache hits",
                  file, c->name, (unsigned long long)b.verifies, (unsigned long long)b.cache_hits);
        expect_str(file, c, "provided (cached)", b.provided, c->provided_id);
    } else {
        cr_expect_eq(ret, -1, "%s/%s: expected %s, got %d", file, c->name, c->expect, ret);
        cr_expect_not_null(reason, "%s/%s: no reason", file, c->name);
        if (c->reason != NULL && reason != NULL)
            cr_expect_str_eq(reason, c->reason, "%s/%s: expected %s, got %s", file, c->name,
                             c->expect, reason);
        cr_expect(b.provided == NULL && b.referred == NULL && b.other == NULL && b.tbh[0] == '\0' &&
                      b.value == NULL,
                  "%s/%s: a failed check left IDs behind", file, c->name);
    }
    tbp_binding_dispose(&b);
}

/* --- the header cache ---------------------------------------------------------------------- */

Test(binding, cache)
{
    const struct tbt_case *ok = find_case(1, "ecdsap256_provided");
    const struct tbt_case *bad = find_case(1, "signed_other_ekm");
    const char *reason = NULL;
    struct tbp_binding b;
    struct tbt_head t;
    char altered[2048];
    size_t len;

    init_case(&b, ok, "rfc");
    tbt_head_req(&t, "Sec-Token-Binding", ok->header, NULL);
    cr_assert_eq(tbp_binding_check(&b, &t.h, &reason), 0, "%s", reason);
    cr_expect(b.verifies == 1 && b.cache_hits == 0);
    cr_expect_not_null(b.value);

    /* a cache hit does not verify: with the channel changed behind its back, the same value
     * still passes (a real connection's channel never changes) */
    b.channel[0] ^= 1;
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), 0);
    cr_expect(b.verifies == 1 && b.cache_hits == 1, "%llu verifies, %llu hits",
              (unsigned long long)b.verifies, (unsigned long long)b.cache_hits);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), 0);
    cr_expect(b.verifies == 1 && b.cache_hits == 2);
    b.channel[0] ^= 1;

    /* a value of the same length that differs in its last character is verified (and fails) */
    len = strlen(ok->header);
    cr_assert_lt(len, sizeof(altered));
    memcpy(altered, ok->header, len + 1);
    altered[len - 1] = altered[len - 1] == 'A' ? 'B' : 'A';
    tbt_head_req(&t, "Sec-Token-Binding", altered, NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_eq(b.verifies, 2);
    cr_expect_null(b.value, "a failed check keeps the old value cached");
    cr_expect_null(b.provided);

    /* then the good value again: verified again, not a hit */
    tbt_head_req(&t, "sec-token-binding", ok->header, NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), 0, "%s", reason);
    cr_expect(b.verifies == 3 && b.cache_hits == 2);
    cr_expect_str_eq(b.provided, ok->provided_id);

    /* a different value that fails forgets the cached one */
    tbt_head_req(&t, "Sec-Token-Binding", bad->header, NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "signature");
    cr_expect_eq(b.verifies, 4);
    cr_expect_null(b.provided);
    tbp_binding_dispose(&b);
}

/* --- header names -------------------------------------------------------------------------- */

Test(binding, rfc_ignores_draft_header)
{
    const struct tbt_case *rc = find_case(1, "ecdsap256_provided");
    const struct tbt_case *dc = find_case(0, "p256_provided");
    const char *reason = NULL;
    struct tbp_binding b;
    struct tbt_head t;

    init_case(&b, rc, "rfc");
    /* the draft header, even with the rfc value in it, is not ours: stripped later (forward.c) */
    tbt_head_req(&t, "Token-Binding", rc->header, NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "missing");
    cr_expect_eq(b.verifies, 0);
    tbt_head_req(&t, "Token-Binding", dc->header, NULL);
    reason = NULL;
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "missing");
    /* beside ours it does not count */
    tbt_head_req(&t, "Token-Binding", dc->header, "Sec-Token-Binding", rc->header, "token-binding",
                 "x", NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), 0, "%s", reason);
    cr_expect_str_eq(b.provided, rc->provided_id);
    /* two of ours are */
    tbt_head_req(&t, "Sec-Token-Binding", rc->header, "SEC-TOKEN-BINDING", rc->header, NULL);
    reason = NULL;
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "multiple");
    tbt_head_req(&t, NULL);
    reason = NULL;
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "missing");
    tbp_binding_dispose(&b);
}

Test(binding, draft_ignores_rfc_header)
{
    const struct tbt_case *rc = find_case(1, "ecdsap256_provided");
    const struct tbt_case *dc = find_case(0, "p256_provided");
    const char *reason = NULL;
    struct tbp_binding b;
    struct tbt_head t;

    init_case(&b, dc, "draft");
    tbt_head_req(&t, "Sec-Token-Binding", dc->header, NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "missing");
    tbt_head_req(&t, "Sec-Token-Binding", rc->header, "TOKEN-BINDING", dc->header, NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), 0, "%s", reason);
    cr_expect_str_eq(b.provided, dc->provided_id);
    tbt_head_req(&t, "Token-Binding", dc->header, "token-binding", dc->header, NULL);
    reason = NULL;
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "multiple");
    tbp_binding_dispose(&b);
}

/* --- connections without Token Binding ----------------------------------------------------- */

/* A connection without a binding on a listener speaking versions; tb_version as tls.c may leave
 * it (meaningless without a binding). */
static void init_none(struct tbp_binding *b, unsigned versions, int tb_version)
{
    struct tbp_tls_info info;

    memset(&info, 0, sizeof(info));
    info.tb_key_params = -1;
    info.tb_version = tb_version;
    info.tb_listener_versions = versions;
    cr_assert_eq(tbp_binding_init_channel(b, &info, NULL, 0), 0);
}

/* Expects check of a head with the given header (NULL: none) to give want (NULL: pass). */
static void expect_none(unsigned versions, int tb_version, const char *name, const char *want)
{
    const char *reason = NULL;
    struct tbp_binding b;
    struct tbt_head t;
    int ret;

    init_none(&b, versions, tb_version);
    if (name != NULL)
        tbt_head_req(&t, name, "AIkAAgBBQA", NULL);
    else
        tbt_head_req(&t, "Cookie", "a=b", NULL);
    ret = tbp_binding_check(&b, &t.h, &reason);
    if (want == NULL) {
        cr_expect_eq(ret, 0, "listener %u, tb_version %d, %s: refused (%s)", versions, tb_version,
                     name ? name : "no header", reason);
        cr_expect(b.provided == NULL && b.referred == NULL && b.other == NULL && b.tbh[0] == '\0');
    } else {
        cr_expect_eq(ret, -1, "listener %u, tb_version %d, %s: passed", versions, tb_version,
                     name ? name : "no header");
        if (ret == -1)
            cr_expect_str_eq(reason, want, "listener %u, tb_version %d, %s", versions, tb_version,
                             name ? name : "no header");
    }
    cr_expect_eq(b.verifies, 0);
    tbp_binding_dispose(&b);
}

Test(binding, none_on_both_listener)
{
    const unsigned both = TBP_TLS_TB_RFC | TBP_TLS_TB_DRAFT;
    int v;

    for (v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        expect_none(both, v, "Token-Binding", "unexpected");
        expect_none(both, v, "token-binding", "unexpected");
        expect_none(both, v, "Sec-Token-Binding", "unexpected");
        expect_none(both, v, "SEC-TOKEN-BINDING", "unexpected");
        expect_none(both, v, NULL, NULL);
    }
}

Test(binding, none_on_draft_listener)
{
    int v;

    for (v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        expect_none(TBP_TLS_TB_DRAFT, v, "Token-Binding", "unexpected");
        expect_none(TBP_TLS_TB_DRAFT, v, "Sec-Token-Binding", NULL); /* not a header it knows */
        expect_none(TBP_TLS_TB_DRAFT, v, NULL, NULL);
    }
}

Test(binding, none_on_rfc_listener)
{
    int v;

    /* the draft header is refused everywhere, as before rfc existed */
    for (v = TB_VERSION_DRAFT; v <= TB_VERSION_RFC; v++) {
        expect_none(TBP_TLS_TB_RFC, v, "Token-Binding", "unexpected");
        expect_none(TBP_TLS_TB_RFC, v, "Sec-Token-Binding", "unexpected");
        expect_none(TBP_TLS_TB_RFC, v, NULL, NULL);
    }
}

Test(binding, none_two_headers)
{
    const char *reason = NULL;
    struct tbp_binding b;
    struct tbt_head t;

    init_none(&b, TBP_TLS_TB_RFC | TBP_TLS_TB_DRAFT, TB_VERSION_DRAFT);
    tbt_head_req(&t, "Token-Binding", "x", "Sec-Token-Binding", "y", NULL);
    cr_expect_eq(tbp_binding_check(&b, &t.h, &reason), -1);
    cr_expect_str_eq(reason, "unexpected");
    tbp_binding_dispose(&b);
}

/* --- tbp_binding_header, tbp_binding_context, init ----------------------------------------- */

Test(binding, header)
{
    struct tbp_binding b;

    init_case(&b, find_case(0, "p256_provided"), "draft");
    cr_expect_str_eq(tbp_binding_header(&b), "token-binding");
    tbp_binding_dispose(&b);
    init_case(&b, find_case(1, "rsa2048_pss_provided"), "rfc");
    cr_expect_str_eq(tbp_binding_header(&b), "sec-token-binding");
    tbp_binding_dispose(&b);
}

/* Decodes a context value and expects major, minor, kp and the channel. */
static void expect_context(const char *ctx, int n, uint8_t major, uint8_t minor, int kp,
                           const uint8_t *channel)
{
    uint8_t raw[64];
    int m;

    cr_assert_eq(n, 47, "context of %d characters", n); /* 35 bytes, unpadded */
    cr_assert_eq(strlen(ctx), 47);
    m = tb_base64url_decode(ctx, (size_t)n, raw, sizeof(raw));
    cr_assert_eq(m, 35, "decodes to %d bytes", m);
    cr_expect_eq(raw[0], major);
    cr_expect_eq(raw[1], minor);
    cr_expect_eq(raw[2], kp);
    cr_expect(memcmp(raw + 3, channel, 32) == 0, "the channel differs");
}

Test(binding, context)
{
    static const char *const kps[] = {"ecdsap256_provided", "rsa2048_pss_provided",
                                      "rsa2048_pkcs1.5_provided"};
    uint8_t channel[TB_MAX_CHANNEL];
    struct tbp_tls_info info;
    struct tbp_binding b;
    char ctx[64];
    size_t i;
    int n;

    for (i = 0; i < 3; i++) {
        const struct tbt_case *c = find_case(1, kps[i]);

        cr_assert_eq(tbt_hex_decode(c->channel_hex, channel, sizeof(channel)), 32);
        init_case(&b, c, "rfc");
        memset(ctx, '#', sizeof(ctx));
        n = tbp_binding_context(&b, ctx, sizeof(ctx));
        expect_context(ctx, n, 1, 0, b.key_params, channel);
        cr_expect_eq(b.key_params, tb_key_params_parse(TB_VERSION_RFC, c->negotiated));
        /* the exact size (47 + NUL) and one less */
        cr_expect_eq(tbp_binding_context(&b, ctx, 48), 47);
        cr_expect_eq(tbp_binding_context(&b, ctx, 47), -1);
        cr_expect_eq(tbp_binding_context(&b, ctx, 0), -1);
        tbp_binding_dispose(&b);
    }

    /* a draft version negotiated with the extension (0.15): its own major.minor */
    memset(&info, 0, sizeof(info));
    info.tb_key_params = TB_KP_ECDSAP256;
    info.tb_version = TB_VERSION_RFC;
    info.tb_major = 0;
    info.tb_minor = 15;
    info.tb_listener_versions = TBP_TLS_TB_RFC;
    memset(channel, 0xc3, 32);
    cr_assert_eq(tbp_binding_init_channel(&b, &info, channel, 32), 0);
    n = tbp_binding_context(&b, ctx, sizeof(ctx));
    expect_context(ctx, n, 0, 15, TB_KP_ECDSAP256, channel);
    tbp_binding_dispose(&b);

    /* draft: no context */
    init_case(&b, find_case(0, "p256_provided"), "draft");
    cr_expect_eq(tbp_binding_context(&b, ctx, sizeof(ctx)), -1);
    tbp_binding_dispose(&b);
    /* no binding, whatever version the info names */
    init_none(&b, TBP_TLS_TB_RFC | TBP_TLS_TB_DRAFT, TB_VERSION_RFC);
    cr_expect_eq(tbp_binding_context(&b, ctx, sizeof(ctx)), -1);
    tbp_binding_dispose(&b);
    init_none(&b, TBP_TLS_TB_DRAFT, TB_VERSION_DRAFT);
    cr_expect_eq(tbp_binding_context(&b, ctx, sizeof(ctx)), -1);
    tbp_binding_dispose(&b);
}

Test(binding, init_channel)
{
    uint8_t channel[TB_MAX_CHANNEL + 1];
    struct tbp_tls_info info;
    struct tbp_binding b;

    memset(&info, 0, sizeof(info));
    memset(channel, 7, sizeof(channel));
    info.tb_key_params = TB_KP_ECDSAP256;
    info.tb_version = TB_VERSION_RFC;
    info.tb_major = 1;
    info.tb_listener_versions = TBP_TLS_TB_RFC;
    cr_expect_eq(tbp_binding_init_channel(&b, &info, channel, sizeof(channel)), -1);
    cr_expect_eq(tbp_binding_init_channel(&b, &info, channel, TB_MAX_CHANNEL), 0);
    cr_expect_eq(b.channel_len, TB_MAX_CHANNEL);
    cr_expect(b.version == TB_VERSION_RFC && b.key_params == TB_KP_ECDSAP256 && b.major == 1 &&
              b.minor == 0 && b.listener_versions == TBP_TLS_TB_RFC);
    cr_expect(b.value == NULL && b.provided == NULL && b.verifies == 0 && b.cache_hits == 0);
    tbp_binding_dispose(&b);
    /* an unknown tb_version is draft */
    info.tb_version = 7;
    cr_expect_eq(tbp_binding_init_channel(&b, &info, channel, 12), 0);
    cr_expect_eq(b.version, TB_VERSION_DRAFT);
    cr_expect_str_eq(tbp_binding_header(&b), "token-binding");
    tbp_binding_dispose(&b);
}
