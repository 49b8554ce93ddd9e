/*
 * The shared test vectors (tests/vectors/{draft,rfc}.json, copies of shared/spec/vectors/)
 * against tb_verify_header.
 *
 * Every case of both files is one parameterized test (vectors::verify), so that one failing or
 * crashing vector does not hide the others, and every assertion message starts with
 * "<file>/<case name>". A case must give the verdict it expects ("ok": 0; "error": any negative
 * code; "error:<reason>": that tb_strerror() name) and, when ok, exactly the provided, referred
 * and other IDs and tbh it lists (a role the vector does not list must be absent).
 *
 * vectors::key_cache runs every case twice through one verifier: the second pass must find every
 * key of an accepted header in the cache, and no case may change its verdict because a key was
 * cached by an earlier one. vectors::same_as_shared_* fail when the copies here differ from
 * ../shared/spec/vectors/ (skipped when that directory is absent).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "tb/tb.h"
#include "vectors.h"

#define N_FILES 2
#define SHARED_DIR "../shared/spec/vectors"
#define MAX_CASES 512
#define B64_CAP (TB_MAX_HEADER + 8)

static const char *const file_names[N_FILES] = {"draft", "rfc"};

static struct tbt_vectors *vec[N_FILES];
static struct tb_verifier *verifier;

static struct tbt_vectors *load_file(int file)
{
    return tbt_vectors_load_name(file_names[file]);
}

static void setup(void)
{
    int f;

    for (f = 0; f < N_FILES; f++)
        vec[f] = load_file(f);
    verifier = tb_verifier_new(0);
    cr_assert_not_null(verifier, "tb_verifier_new failed");
    for (f = 0; f < N_FILES; f++)
        cr_assert_not_null(vec[f], "%s/%s.json does not load (see stderr)", tbt_vector_dir(),
                           file_names[f]);
}

static void teardown(void)
{
    int f;

    tb_verifier_free(verifier);
    verifier = NULL;
    for (f = 0; f < N_FILES; f++) {
        tbt_vectors_free(vec[f]);
        vec[f] = NULL;
    }
}

/* Runs tb_verify_header on case c with v. Aborts the test if the case's inputs are unusable. */
static int run_case(struct tb_verifier *v, const char *file, const struct tbt_case *c,
                    struct tb_verified *out)
{
    uint8_t channel[TB_MAX_CHANNEL];
    int version = tb_version_parse(c->version);
    int kp, n;

    cr_assert_geq(version, 0, "%s/%s: unknown version \"%s\"", file, c->name, c->version);
    kp = tb_key_params_parse((enum tb_version)version, c->negotiated);
    cr_assert_geq(kp, 0, "%s/%s: unknown key parameters \"%s\" for %s", file, c->name,
                  c->negotiated, c->version);
    n = tbt_hex_decode(c->channel_hex, channel, sizeof(channel));
    cr_assert_geq(n, 0, "%s/%s: bad channel_hex \"%s\"", file, c->name, c->channel_hex);
    return tb_verify_header(v, (enum tb_version)version, kp, c->header, strlen(c->header), channel,
                            (size_t)n, out);
}

/* Expects ret to be the verdict c asks for. Returns 1 if it is. */
static int check_verdict(const char *file, const struct tbt_case *c, int ret)
{
    if (c->verdict == TBT_EXPECT_OK) {
        cr_expect_eq(ret, 0, "%s/%s: expected ok, got %d (%s)", file, c->name, ret,
                     tb_strerror(ret));
        return ret == 0;
    }
    cr_expect_lt(ret, 0, "%s/%s: expected %s, got ok", file, c->name, c->expect);
    if (ret >= 0)
        return 0;
    if (c->reason != NULL) {
        cr_expect_str_eq(tb_strerror(ret), c->reason, "%s/%s: expected %s, got %d (%s)", file,
                         c->name, c->expect, ret, tb_strerror(ret));
        return strcmp(tb_strerror(ret), c->reason) == 0;
    }
    return 1;
}

static const char *b64(const struct tb_slice *s, char *buf)
{
    int n = tb_base64url_encode(s->p, s->len, buf, B64_CAP);

    cr_assert_geq(n, 0, "tb_base64url_encode(%zu bytes): %d", s->len, n);
    return buf;
}

/* Expects binding b (NULL: absent) to have the ID and tbh the vector lists (NULL: absent). */
static void check_role(const char *file, const struct tbt_case *c, const char *role,
                       const struct tb_binding *b, uint8_t type, const char *want_id,
                       const char *want_tbh)
{
    char buf[B64_CAP], tbh[TB_TBH_LEN + 1];
    int n;

    if (want_id == NULL && want_tbh == NULL) {
        cr_expect_null(b, "%s/%s: the vector has no %s binding, the library found one (id %s)",
                       file, c->name, role, b != NULL ? b64(&b->id, buf) : "");
        return;
    }
    cr_expect_not_null(b, "%s/%s: no %s binding found", file, c->name, role);
    if (b == NULL)
        return;
    cr_expect_eq(b->type, type, "%s/%s: %s binding has type %u", file, c->name, role, b->type);
    if (want_id != NULL) {
        b64(&b->id, buf);
        cr_expect_str_eq(buf, want_id, "%s/%s: %s_id is %s, expected %s", file, c->name, role, buf,
                         want_id);
    }
    if (want_tbh != NULL) {
        n = tb_tbh(b->id.p, b->id.len, tbh, sizeof(tbh));
        cr_expect_eq(n, TB_TBH_LEN, "%s/%s: tb_tbh returned %d", file, c->name, n);
        if (n == TB_TBH_LEN)
            cr_expect_str_eq(tbh, want_tbh, "%s/%s: %s_tbh is %s, expected %s", file, c->name, role,
                             tbh, want_tbh);
    }
}

static void check_other(const char *file, const struct tbt_case *c, const struct tb_roles *r)
{
    char item[B64_CAP];
    size_t i;
    int n;

    cr_expect_eq(r->n_other, c->n_other_ids, "%s/%s: %zu other IDs found, the vector has %zu", file,
                 c->name, r->n_other, c->n_other_ids);
    for (i = 0; i < r->n_other && i < c->n_other_ids; i++) {
        n = tb_other_id_item(r->other[i]->type, r->other[i]->id.p, r->other[i]->id.len, item,
                             sizeof(item));
        cr_expect_gt(n, 0, "%s/%s: tb_other_id_item returned %d", file, c->name, n);
        if (n > 0)
            cr_expect_str_eq(item, c->other_ids[i], "%s/%s: other_ids[%zu] is %s, expected %s",
                             file, c->name, i, item, c->other_ids[i]);
    }
}

static void check_ok_case(const char *file, const struct tbt_case *c, const struct tb_verified *o)
{
    const struct tb_roles *r = &o->roles;

    cr_expect_not_null(c->provided_id, "%s/%s: an ok vector without provided_id", file, c->name);
    check_role(file, c, "provided", r->provided, TB_TYPE_PROVIDED, c->provided_id, c->provided_tbh);
    check_role(file, c, "referred", r->referred, TB_TYPE_REFERRED, c->referred_id, c->referred_tbh);
    check_other(file, c, r);
}

ParameterizedTestParameters(vectors, verify)
{
    struct tbt_vector_param *params;
    size_t n = tbt_vector_params(file_names, N_FILES, &params);

    return cr_make_param_array(struct tbt_vector_param, params, n, tbt_vector_params_free);
}

ParameterizedTest(struct tbt_vector_param *p, vectors, verify, .init = setup, .fini = teardown)
{
    struct tb_verified out;
    const struct tbt_case *c;
    int ret;

    cr_assert_geq(p->file, 0, "%s", p->name);
    cr_assert_lt(p->index, vec[p->file]->n_cases, "%s: the vector file changed", p->name);
    c = &vec[p->file]->cases[p->index];
    ret = run_case(verifier, file_names[p->file], c, &out);
    if (check_verdict(file_names[p->file], c, ret) && c->verdict == TBT_EXPECT_OK)
        check_ok_case(file_names[p->file], c, &out);
}

/* Two cases with the same inputs must expect the same thing: otherwise one of them is wrong. */
static void check_unique_input(const char *file, const struct tbt_vectors *v, size_t i)
{
    const struct tbt_case *c = &v->cases[i], *d;
    size_t j;

    for (j = 0; j < i; j++) {
        d = &v->cases[j];
        if (strcmp(c->header, d->header) != 0 || strcmp(c->channel_hex, d->channel_hex) != 0 ||
            strcmp(c->negotiated, d->negotiated) != 0)
            continue;
        /* compares the expectations after errata (tests/support/vectors.c) */
        cr_expect(c->verdict == d->verdict && (c->reason == NULL) == (d->reason == NULL) &&
                      (c->reason == NULL || strcmp(c->reason, d->reason) == 0),
                  "%s/%s and %s/%s: same header, channel and negotiated key parameters, "
                  "but expect \"%s\" vs \"%s\": the vectors contradict each other",
                  file, d->name, file, c->name, d->expect, c->expect);
    }
}

/* The files are well formed: cases of their own version, usable inputs, coherent expectations. */
Test(vectors, load, .init = setup, .fini = teardown)
{
    uint8_t channel[TB_MAX_CHANNEL];
    size_t i;
    int f, n, version;

    for (f = 0; f < N_FILES; f++) {
        cr_expect_gt(vec[f]->n_cases, 0, "%s: no cases", file_names[f]);
        cr_expect_gt(vec[f]->n_keys, 0, "%s: no keys", file_names[f]);
        for (i = 0; i < vec[f]->n_cases; i++) {
            const struct tbt_case *c = &vec[f]->cases[i];
            version = tb_version_parse(c->version);
            cr_expect_str_eq(c->version, file_names[f], "%s/%s: version %s in the %s file",
                             file_names[f], c->name, c->version, file_names[f]);
            cr_expect_geq(tb_key_params_parse((enum tb_version)version, c->negotiated), 0,
                          "%s/%s: negotiated \"%s\"", file_names[f], c->name, c->negotiated);
            n = tbt_hex_decode(c->channel_hex, channel, sizeof(channel));
            cr_expect_eq(n, version == TB_VERSION_RFC ? TB_EKM_LEN : TB_TLS_UNIQUE_LEN,
                         "%s/%s: channel of %d bytes", file_names[f], c->name, n);
            cr_expect((c->referred_id == NULL) == (c->referred_tbh == NULL),
                      "%s/%s: referred_id and referred_tbh must come together", file_names[f],
                      c->name);
            if (c->verdict == TBT_EXPECT_OK)
                cr_expect(c->provided_id != NULL && c->provided_tbh != NULL,
                          "%s/%s: ok without provided_id / provided_tbh", file_names[f], c->name);
            else
                cr_expect(c->provided_id == NULL && c->referred_id == NULL && c->n_other_ids == 0,
                          "%s/%s: an error vector listing IDs", file_names[f], c->name);
            check_unique_input(file_names[f], vec[f], i);
        }
    }
}

/*
 * The bad-length case the shared vectors meant (see the erratum in tests/support/vectors.c):
 * a header whose unpadded length is 1 more than a multiple of 4, which no encoding has.
 */
Test(vectors, base64_impossible_length, .init = setup, .fini = teardown)
{
    static struct tb_verified out;
    const struct tbt_case *c = NULL;
    uint8_t channel[TB_MAX_CHANNEL];
    char header[TB_MAX_HEADER + 1];
    size_t i, len;
    int n;

    for (i = 0; i < vec[0]->n_cases; i++)
        if (strcmp(vec[0]->cases[i].name, "p256_provided") == 0)
            c = &vec[0]->cases[i];
    cr_assert_not_null(c, "draft/p256_provided is gone");
    n = tbt_hex_decode(c->channel_hex, channel, sizeof(channel));
    len = strlen(c->header);
    cr_assert_eq(len % 4, 3);
    memcpy(header, c->header, len);
    memcpy(header + len, "AA", 2); /* 3 + 2 = 1 more than a multiple of 4 */
    cr_expect_eq(tb_verify_header(verifier, TB_VERSION_DRAFT, TB_KP_ECDSAP256, header, len + 2,
                                  channel, (size_t)n, &out),
                 TB_EBASE64);
    /* and the unmodified header still verifies */
    cr_expect_eq(tb_verify_header(verifier, TB_VERSION_DRAFT, TB_KP_ECDSAP256, header, len, channel,
                                  (size_t)n, &out),
                 0);
}

Test(vectors, hex_decode)
{
    uint8_t out[4];

    cr_expect_eq(tbt_hex_decode("", out, sizeof(out)), 0);
    cr_expect_eq(tbt_hex_decode("00fFa1", out, sizeof(out)), 3);
    cr_expect(out[0] == 0x00 && out[1] == 0xff && out[2] == 0xa1);
    cr_expect_eq(tbt_hex_decode("abc", out, sizeof(out)), -1);
    cr_expect_eq(tbt_hex_decode("zz", out, sizeof(out)), -1);
    cr_expect_eq(tbt_hex_decode("0 ", out, sizeof(out)), -1);
    cr_expect_eq(tbt_hex_decode("0011223344", out, sizeof(out)), -1);
}

/*
 * Two passes over every case of both files with one verifier. Each pass must give each case its
 * own verdict (a key cached by an earlier case must not change a later one), the second pass the
 * same return codes as the first, and in the second pass every binding of an accepted header
 * must be a cache hit (no miss).
 */
Test(vectors, key_cache, .init = setup, .fini = teardown)
{
    static int first[N_FILES][MAX_CASES];
    struct tb_verifier_stats before, after, end_of_first;
    struct tb_verified out;
    size_t i, nb;
    int f, pass, ret;

    for (pass = 0; pass < 2; pass++) {
        if (pass == 1)
            tb_verifier_get_stats(verifier, &end_of_first);
        for (f = 0; f < N_FILES; f++) {
            cr_assert_leq(vec[f]->n_cases, MAX_CASES, "raise MAX_CASES");
            for (i = 0; i < vec[f]->n_cases; i++) {
                const struct tbt_case *c = &vec[f]->cases[i];
                tb_verifier_get_stats(verifier, &before);
                ret = run_case(verifier, file_names[f], c, &out);
                tb_verifier_get_stats(verifier, &after);
                check_verdict(file_names[f], c, ret);
                if (pass == 0) {
                    first[f][i] = ret;
                    continue;
                }
                cr_expect_eq(ret, first[f][i], "%s/%s: second pass gave %d (%s), first %d (%s)",
                             file_names[f], c->name, ret, tb_strerror(ret), first[f][i],
                             tb_strerror(first[f][i]));
                if (ret != 0)
                    continue;
                check_ok_case(file_names[f], c, &out);
                nb = 1 + (out.roles.referred != NULL) + out.roles.n_other;
                cr_expect_eq(after.hits - before.hits, nb,
                             "%s/%s: second pass: %llu cache hits for %zu bindings", file_names[f],
                             c->name, (unsigned long long)(after.hits - before.hits), nb);
                cr_expect_eq(after.misses, before.misses, "%s/%s: second pass: %llu misses",
                             file_names[f], c->name,
                             (unsigned long long)(after.misses - before.misses));
            }
        }
    }
    tb_verifier_get_stats(verifier, &after);
    cr_expect_gt(after.hits, end_of_first.hits, "no cache hit in the second pass");
    cr_expect_gt(after.entries, 0, "no key cached");
}

/* Fails when ../shared/spec/vectors/<file>.json exists and differs from our copy. */
static void check_shared_copy(const char *file)
{
    char ours[256], theirs[256], *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    struct stat st;
    int ra, rb, ea, eb;

    snprintf(ours, sizeof(ours), "%s/%s.json", tbt_vector_dir(), file);
    snprintf(theirs, sizeof(theirs), "%s/%s.json", SHARED_DIR, file);
    if (stat(theirs, &st) == -1 && errno == ENOENT)
        cr_skip_test("%s is absent: nothing to compare %s with", theirs, ours);
    ra = tbt_read_file(ours, &a, &alen);
    ea = errno;
    rb = tbt_read_file(theirs, &b, &blen);
    eb = errno;
    cr_expect_eq(ra, 0, "cannot read %s: %s", ours, strerror(ea));
    cr_expect_eq(rb, 0, "cannot read %s: %s", theirs, strerror(eb));
    if (ra == 0 && rb == 0)
        cr_expect(alen == blen && memcmp(a, b, alen) == 0,
                  "%s differs from %s (%zu vs %zu bytes): copy it again (cp %s %s)", ours, theirs,
                  alen, blen, theirs, ours);
    free(a);
    free(b);
}

Test(vectors, same_as_shared_draft)
{
    check_shared_copy("draft");
}

Test(vectors, same_as_shared_rfc)
{
    check_shared_copy("rfc");
}
