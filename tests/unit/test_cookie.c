/*
 * Cookie binding (tb/cookie.h) and `tbtoken cookie`.
 *
 * Library: a known-answer tag computed independently with python3's hmac module; key files
 * (every accepted spelling, every rejection with its line number and without the secret, every
 * truncation, loading from disk, the 64 KiB cap); key generation; bind/check round trips and
 * every reason (unbound, mismatch, unknown key, invalid arguments); rotation; tampering with the
 * value, name, tbh, tag and key id; '~' inside values, quoted values, empty values and names,
 * maximum sizes. The Cookie and Set-Cookie parsers against tables, then on every truncation and
 * every split of their input, each piece a heap copy of exactly its length (ASan catches a read
 * past the end), with the invariants their contracts promise.
 *
 * CLI: $TB_BIN/tbtoken (else build/rel/bin/tbtoken) run with tbt_run (run.h), no shell, its stdout
 * and stderr captured: genkey, bind and check against the library, reasons, exit statuses.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "bytes.h"
#include "proc.h"
#include "run.h"
#include "tb/tb.h"

/*
 * Known answer. Computed with python3 (hmac, hashlib, base64), independently of this code:
 *   key  = bytes(range(32));  tbid = bytes(range(1, 70))
 *   tbh  = urlsafe_b64encode(sha256(tbid).digest()).rstrip(b'=')
 *   msg  = b"tb-cookie-v1\0session\0abc123\0" + tbh
 *   tag  = urlsafe_b64encode(hmac.new(key, msg, sha256).digest()[:16]).rstrip(b'=')
 */
#define KAT_KEYS "k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
#define KAT_TBH "3-sBN79mNmcCh-jFk_PFsyrAvN8zRGnLCL8Y9acIsPw"
#define KAT_TAG "fq_p2DE6PKdAeso20-epbw"

/* Two other tbh values (base64url of 32 bytes). */
#define TBH_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define TBH_B "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA"

#define TIMEOUT_S 60

/* ---- helpers ------------------------------------------------------------------------------- */

/* "ID KEY\n" with a 32-byte key of bytes fill, fill+1, ... in url base64 without padding. */
static void key_line(char *out, size_t cap, const char *id, uint8_t fill)
{
    uint8_t k[TB_COOKIE_KEY_LEN];
    char b64[64];
    size_t i;

    for (i = 0; i < sizeof(k); i++)
        k[i] = (uint8_t)(fill + i);
    cr_assert_eq(tb_base64url_encode(k, sizeof(k), b64, sizeof(b64)), 43);
    snprintf(out, cap, "%s %s\n", id, b64);
}

/* A keyring from text; fails the test if it does not parse. */
static struct tb_cookie_keyring *ring(const char *text)
{
    struct tb_cookie_keyring *kr = NULL;
    char err[256] = "";
    int rc = tb_cookie_keyring_parse(text, strlen(text), &kr, err, sizeof(err));

    cr_assert_eq(rc, 0, "keyring_parse: %d (%s)", rc, err);
    cr_assert_not_null(kr);
    return kr;
}

/* A keyring of n keys with ids ids[i] and key bytes from fill 16 * i. */
static struct tb_cookie_keyring *ring_of(const char *const *ids, size_t n)
{
    char text[4096] = "", line[128];
    size_t i;

    for (i = 0; i < n; i++) {
        key_line(line, sizeof(line), ids[i], (uint8_t)(16 * i));
        cr_assert_lt(strlen(text) + strlen(line), sizeof(text));
        strncat(text, line, sizeof(text) - strlen(text) - 1);
    }
    return ring(text);
}

/* value || suffix of binding (name, value) to tbh under kr, into out. */
static void bound(const struct tb_cookie_keyring *kr, const char *name, const char *value,
                  const char *tbh, char *out, size_t cap)
{
    char suffix[TB_COOKIE_SUFFIX_MAX + 1];
    int n =
        tb_cookie_bind(kr, name, strlen(name), value, strlen(value), tbh, suffix, sizeof(suffix));

    cr_assert_gt(n, 0, "bind(%s) = %d", name, n);
    cr_assert_eq((size_t)n, strlen(suffix));
    cr_assert_lt(strlen(value) + (size_t)n, cap);
    snprintf(out, cap, "%s%s", value, suffix);
}

static int check(const struct tb_cookie_keyring *kr, const char *name, const char *value,
                 const char *tbh, size_t *orig_len)
{
    return tb_cookie_check(kr, name, strlen(name), value, strlen(value), tbh, orig_len);
}

/* Expects check to give want (and orig_len when want is 0). */
static void expect_check(const struct tb_cookie_keyring *kr, const char *name, const char *value,
                         const char *tbh, int want, size_t want_orig)
{
    size_t orig = 12345;
    int rc = check(kr, name, value, tbh, &orig);

    cr_expect_eq(rc, want, "check(%s=%s) = %d (%s), want %d (%s)", name, value, rc, tb_strerror(rc),
                 want, tb_strerror(want));
    if (want == 0 && rc == 0)
        cr_expect_eq(orig, want_orig, "check(%s=%s): orig_len %zu, want %zu", name, value, orig,
                     want_orig);
}

/* ---- known answer ---------------------------------------------------------------------------- */

Test(cookie, known_answer_from_python_hmac)
{
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    uint8_t tbid[69];
    char tbh[TB_TBH_LEN + 1], suffix[TB_COOKIE_SUFFIX_MAX + 1];
    size_t i;
    int n;

    for (i = 0; i < sizeof(tbid); i++)
        tbid[i] = (uint8_t)(i + 1);
    cr_assert_eq(tb_tbh(tbid, sizeof(tbid), tbh, sizeof(tbh)), TB_TBH_LEN);
    cr_assert_str_eq(tbh, KAT_TBH);
    n = tb_cookie_bind(kr, "session", 7, "abc123", 6, KAT_TBH, suffix, sizeof(suffix));
    cr_assert_eq(n, (int)strlen("~tb1.k1~" KAT_TAG));
    cr_expect_str_eq(suffix, "~tb1.k1~" KAT_TAG);
    expect_check(kr, "session", "abc123~tb1.k1~" KAT_TAG, KAT_TBH, 0, 6);
    expect_check(kr, "session", "abc123~tb1~" KAT_TAG, KAT_TBH, 0, 6); /* spec form, no kid */
    cr_expect_eq(tb_cookie_keyring_count(kr), 1);
    cr_expect_str_eq(tb_cookie_keyring_active_id(kr), "k1");
    tb_cookie_keyring_free(kr);
}

/* ---- key files ----------------------------------------------------------------------------- */

Test(cookie, keyring_accepts_every_documented_spelling)
{
    static const char text[] =
        "# cookie keys, newest last\n"
        "\n"
        "old AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n" /* standard, padded */
        "   # an indented comment\r\n"
        "k_2\tAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\r\n"     /* tab, unpadded, CRLF */
        "  K-3   __________________________________________8=  \n" /* url, padded, spaces */
        "\t\n"
        "abcdefghijklmnop ++++++++++++++++++++++++++++++++++++++++++8"; /* no final newline */
    struct tb_cookie_keyring *kr = ring(text);

    cr_expect_eq(tb_cookie_keyring_count(kr), 4);
    cr_expect_str_eq(tb_cookie_keyring_active_id(kr), "abcdefghijklmnop");
    tb_cookie_keyring_free(kr);
    tb_cookie_keyring_free(NULL); /* a no-op */
    cr_expect_eq(tb_cookie_keyring_count(NULL), 0);
    cr_expect_null(tb_cookie_keyring_active_id(NULL));
}

Test(cookie, keyring_same_key_in_both_alphabets_binds_alike)
{
    struct tb_cookie_keyring *a = ring("k +/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/8=\n");
    struct tb_cookie_keyring *b = ring("k -_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8\n");
    char x[128], y[128];

    bound(a, "n", "v", TBH_A, x, sizeof(x));
    bound(b, "n", "v", TBH_A, y, sizeof(y));
    cr_expect_str_eq(x, y);
    tb_cookie_keyring_free(a);
    tb_cookie_keyring_free(b);
}

struct bad_file {
    const char *text;
    size_t len;       /* 0: strlen(text) */
    const char *want; /* a substring of the message */
};

Test(cookie, keyring_rejections_name_the_line_never_the_secret)
{
    /* the secret's base64 below starts with SECRETSECRET, which must never appear in a message */
    static const struct bad_file cases[] = {
        {"", 0, "no keys"},
        {"# only a comment\n\n", 0, "no keys"},
        {"k1\n", 0, "line 1: expected \"ID BASE64\""},
        {"k1 \n", 0, "line 1: expected \"ID BASE64\""},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0, "line 1: the key must be"},
        {"#\nk1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0, "line 2: the key must be"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0,
         "line 1: the key must decode to exactly 32 bytes"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0, "line 1: the key must decode"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!\n", 0,
         "line 1: the key is not valid base64"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=A\n", 0, "line 1: the key is not valid"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+-\n", 0, "line 1: the key mixes"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB\n", 0,
         "line 1: the key is not valid"}, /* non-canonical */
        {"SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0, "line 1: the key id must be"},
        {"abcdefghijklmnopq SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0,
         "line 1: the key id must be"},
        {"k.1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 0, "line 1: the key id must be"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA extra\n", 0,
         "line 1: expected \"ID BASE64\": unexpected text"},
        {"k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\n"
         "k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
         0, "line 3: duplicate key id"},
        {"k1 SECRETSECRETAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nk2 SECRETSECRET\0AAAA\n", 68,
         "line 2: contains a NUL byte"},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tb_cookie_keyring *kr = (void *)1;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        char *copy = tbt_dup_exact(cases[i].text, len);
        char err[256] = "";
        int rc = tb_cookie_keyring_parse(copy, len, &kr, err, sizeof(err));

        cr_expect_eq(rc, TB_EINVAL, "case %zu: rc %d", i, rc);
        cr_expect_null(kr, "case %zu: *out not NULL on failure", i);
        cr_expect(strstr(err, cases[i].want) != NULL, "case %zu: message \"%s\", want \"%s\"", i,
                  err, cases[i].want);
        cr_expect(strstr(err, "SECRET") == NULL && strstr(err, "AAAAAAAA") == NULL,
                  "case %zu: the message shows key material: %s", i, err);
        free(copy);
    }
}

Test(cookie, keyring_at_most_16_keys)
{
    char text[4096] = "", line[128], id[16], err[256] = "";
    struct tb_cookie_keyring *kr = NULL;
    int i;

    for (i = 0; i < TB_COOKIE_MAX_KEYS; i++) {
        snprintf(id, sizeof(id), "k%d", i);
        key_line(line, sizeof(line), id, (uint8_t)i);
        strncat(text, line, sizeof(text) - strlen(text) - 1);
    }
    kr = ring(text);
    cr_expect_eq(tb_cookie_keyring_count(kr), TB_COOKIE_MAX_KEYS);
    cr_expect_str_eq(tb_cookie_keyring_active_id(kr), "k15");
    tb_cookie_keyring_free(kr);
    kr = NULL;
    key_line(line, sizeof(line), "k16", 99);
    strncat(text, line, sizeof(text) - strlen(text) - 1);
    cr_expect_eq(tb_cookie_keyring_parse(text, strlen(text), &kr, err, sizeof(err)), TB_EINVAL);
    cr_expect_null(kr);
    cr_expect(strstr(err, "line 17: too many keys") != NULL, "message: %s", err);
}

Test(cookie, keyring_every_truncation)
{
    static const char text[] = "# keys\n"
                               "a AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                               "bb AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\r\n"
                               "ccc __________________________________________8=\n";
    size_t len = strlen(text), cut;

    for (cut = 0; cut <= len; cut++) {
        struct tb_cookie_keyring *kr = NULL;
        char *copy = tbt_dup_exact(text, cut), err[256] = "";
        size_t complete = 0, i;
        int rc = tb_cookie_keyring_parse(copy, cut, &kr, err, sizeof(err));

        for (i = 0; i < cut; i++) /* keys whose line is complete */
            complete += text[i] == '\n' && i > 7;
        if (rc == 0) {
            /* a cut inside a key can still be a valid key only if it ends on the newline */
            cr_expect(tb_cookie_keyring_count(kr) == complete ||
                          tb_cookie_keyring_count(kr) == complete + 1,
                      "cut %zu: %zu keys, %zu complete lines", cut, tb_cookie_keyring_count(kr),
                      complete);
        } else {
            cr_expect_eq(rc, TB_EINVAL, "cut %zu: rc %d", cut, rc);
            cr_expect_null(kr);
            cr_expect(strncmp(err, "line ", 5) == 0 || strcmp(err, "no keys") == 0,
                      "cut %zu: message %s", cut, err);
        }
        tb_cookie_keyring_free(kr);
        free(copy);
    }
}

Test(cookie, keyring_load_from_file)
{
    char dir[512], path[600], err[700] = "", line[128];
    struct tb_cookie_keyring *kr = NULL;
    char *big;
    size_t n;

    cr_assert_eq(tbt_tempdir("tbcookie", dir, sizeof(dir)), 0);
    cr_assert_eq(tbt_write_file(dir, "cookie.keys", KAT_KEYS, strlen(KAT_KEYS)), 0);
    snprintf(path, sizeof(path), "%s/cookie.keys", dir);
    cr_expect_eq(tb_cookie_keyring_load(path, &kr, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(tb_cookie_keyring_count(kr), 1);
    tb_cookie_keyring_free(kr);
    kr = NULL;

    /* exactly 64 KiB of comments and one key: accepted; one byte more: refused */
    big = malloc(64 * 1024 + 2);
    cr_assert_not_null(big);
    key_line(line, sizeof(line), "k", 7);
    n = 64 * 1024 - strlen(line);
    memset(big, '#', n);
    big[n - 1] = '\n';
    memcpy(big + n, line, strlen(line));
    cr_assert_eq(tbt_write_file(dir, "big.keys", big, 64 * 1024), 0);
    snprintf(path, sizeof(path), "%s/big.keys", dir);
    cr_expect_eq(tb_cookie_keyring_load(path, &kr, err, sizeof(err)), 0, "%s", err);
    tb_cookie_keyring_free(kr);
    kr = NULL;
    memmove(big + 1, big, 64 * 1024);
    cr_assert_eq(tbt_write_file(dir, "big.keys", big, 64 * 1024 + 1), 0);
    cr_expect_eq(tb_cookie_keyring_load(path, &kr, err, sizeof(err)), TB_EINVAL);
    cr_expect_null(kr);
    cr_expect(strstr(err, path) != NULL && strstr(err, "larger than 64 KiB") != NULL, "%s", err);
    free(big);

    /* a bad line: the message names the path and the line */
    cr_assert_eq(tbt_write_file(dir, "bad.keys", "\nk1 AAAA\n", 9), 0);
    snprintf(path, sizeof(path), "%s/bad.keys", dir);
    cr_expect_eq(tb_cookie_keyring_load(path, &kr, err, sizeof(err)), TB_EINVAL);
    cr_expect(strstr(err, path) != NULL && strstr(err, "line 2:") != NULL, "%s", err);

    snprintf(path, sizeof(path), "%s/missing.keys", dir);
    cr_expect_eq(tb_cookie_keyring_load(path, &kr, err, sizeof(err)), TB_EINVAL);
    cr_expect(strstr(err, path) != NULL && strstr(err, "cannot open") != NULL, "%s", err);
    cr_expect_eq(tb_cookie_keyring_load(dir, &kr, err, sizeof(err)), TB_EINVAL); /* a directory */
    cr_expect_null(kr);
    tbt_rmdir_all(dir);
}

Test(cookie, key_generate)
{
    char a[80], b[80], small[80];
    struct tb_cookie_keyring *kr;
    int n, m;

    n = tb_cookie_key_generate("k2024", a, sizeof(a));
    cr_assert_eq(n, 5 + 1 + 44 + 1, "%d", n);
    cr_expect_eq(strlen(a), (size_t)n);
    cr_expect_eq(strncmp(a, "k2024 ", 6), 0);
    cr_expect_eq(a[n - 1], '\n');
    cr_expect_eq(a[n - 2], '='); /* standard base64 of 32 bytes: one '=' */
    kr = ring(a);
    cr_expect_str_eq(tb_cookie_keyring_active_id(kr), "k2024");
    tb_cookie_keyring_free(kr);
    m = tb_cookie_key_generate("k2024", b, sizeof(b));
    cr_assert_eq(m, n);
    cr_expect_neq(strcmp(a, b), 0, "two generated keys are equal");

    cr_expect_eq(tb_cookie_key_generate("abcdefghijklmnop", small, 16 + 47), 16 + 46);
    cr_expect_eq(tb_cookie_key_generate("abcdefghijklmnop", small, 16 + 46), TB_EINVAL);
    cr_expect_eq(tb_cookie_key_generate("", a, sizeof(a)), TB_EINVAL);
    cr_expect_eq(tb_cookie_key_generate("abcdefghijklmnopq", a, sizeof(a)), TB_EINVAL);
    cr_expect_eq(tb_cookie_key_generate("a b", a, sizeof(a)), TB_EINVAL);
    cr_expect_eq(tb_cookie_key_generate("a.b", a, sizeof(a)), TB_EINVAL);
    cr_expect_eq(tb_cookie_key_generate(NULL, a, sizeof(a)), TB_EINVAL);
}

/* ---- bind and check ------------------------------------------------------------------------ */

Test(cookie, bind_then_check_round_trip)
{
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    char v[256];

    bound(kr, "session", "s3cr3t-session-id", TBH_A, v, sizeof(v));
    cr_expect_eq(strncmp(v, "s3cr3t-session-id~tb1.k1~", 25), 0, "%s", v);
    cr_expect_eq(strlen(v), 17 + 8 + TB_COOKIE_TAG_LEN);
    expect_check(kr, "session", v, TBH_A, 0, 17);
    tb_cookie_keyring_free(kr);
}

Test(cookie, every_reason)
{
    static const char *const ids[] = {"k1", "k2"};
    struct tb_cookie_keyring *kr = ring_of(ids, 2), *other = ring("k2 " TBH_B "\n");
    char v[256], w[300];
    size_t orig = 0;

    bound(kr, "sid", "abc", TBH_A, v, sizeof(v)); /* abc~tb1.k2~TAG */
    expect_check(kr, "sid", v, TBH_A, 0, 3);
    /* unbound: no suffix */
    expect_check(kr, "sid", "abc", TBH_A, TB_EUNBOUND, 0);
    expect_check(kr, "sid", "", TBH_A, TB_EUNBOUND, 0);
    /* mismatch: another TBID, another name, another value, the same id under another secret */
    expect_check(kr, "sid", v, TBH_B, TB_EMISMATCH, 0);
    expect_check(kr, "sid2", v, TBH_A, TB_EMISMATCH, 0);
    expect_check(kr, "Sid", v, TBH_A, TB_EMISMATCH, 0);
    snprintf(w, sizeof(w), "abd%s", v + 3);
    expect_check(kr, "sid", w, TBH_A, TB_EMISMATCH, 0);
    snprintf(w, sizeof(w), "ab%s", v + 3);
    expect_check(kr, "sid", w, TBH_A, TB_EMISMATCH, 0);
    expect_check(other, "sid", v, TBH_A, TB_EMISMATCH, 0);
    /* the kid changed to the other configured key */
    snprintf(w, sizeof(w), "abc~tb1.k1~%s", v + 11);
    expect_check(kr, "sid", w, TBH_A, TB_EMISMATCH, 0);
    /* unknown key id */
    snprintf(w, sizeof(w), "abc~tb1.k9~%s", v + 11);
    expect_check(kr, "sid", w, TBH_A, TB_EKEYID, 0);
    snprintf(w, sizeof(w), "abc~tb1.K2~%s", v + 11); /* ids are case-sensitive */
    expect_check(kr, "sid", w, TBH_A, TB_EKEYID, 0);
    /* invalid arguments */
    cr_expect_eq(check(NULL, "sid", v, TBH_A, &orig), TB_EINVAL);
    cr_expect_eq(check(kr, "sid", v, "short", &orig), TB_EINVAL);
    cr_expect_eq(check(kr, "sid", v, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &orig),
                 TB_EINVAL);
    cr_expect_eq(check(kr, "sid", v, NULL, &orig), TB_EINVAL);
    cr_expect_eq(check(kr, "sid", v, TBH_A, NULL), TB_EINVAL);
    cr_expect_eq(tb_cookie_check(kr, NULL, 3, v, strlen(v), TBH_A, &orig), TB_EINVAL);
    cr_expect_eq(tb_cookie_check(kr, "sid", 3, NULL, 3, TBH_A, &orig), TB_EINVAL);
    cr_expect_eq(tb_cookie_bind(kr, "sid", 3, "abc", 3,
                                "+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", w, sizeof(w)),
                 TB_EINVAL);
    cr_expect_eq(tb_cookie_bind(NULL, "sid", 3, "abc", 3, TBH_A, w, sizeof(w)), TB_EINVAL);
    cr_expect_eq(tb_cookie_bind(kr, "sid", 3, "abc", 3, TBH_A, NULL, 64), TB_EINVAL);
    /* every error has its stable name */
    cr_expect_str_eq(tb_strerror(TB_EUNBOUND), "unbound");
    cr_expect_str_eq(tb_strerror(TB_EMISMATCH), "mismatch");
    cr_expect_str_eq(tb_strerror(TB_EKEYID), "unknown_key");
    tb_cookie_keyring_free(other);
    tb_cookie_keyring_free(kr);
}

Test(cookie, malformed_suffixes_are_unbound)
{
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    static const char *const values[] = {
        "abc~tb1",
        "abc~tb1~",
        "abc~tb1.k1~",
        "abc~tb1~fq_p2DE6PKdAeso20-epb",                    /* 21 */
        "abc~tb1~fq_p2DE6PKdAeso20-epbwA",                  /* 23 */
        "abc~tb1~fq_p2DE6PKdAeso20-ep=w",                   /* '=' in the tag */
        "abc~tb1~fq_p2DE6PKdAeso20+epbw",                   /* '+' in the tag */
        "abc~tb1~fq_p2DE6PKdAeso20-epbw ",                  /* trailing space */
        "abc~tb1~fq_p2DE6PKdAeso20-epbw~",                  /* a '~' after the tag */
        "abc~tb1.~fq_p2DE6PKdAeso20-epbw",                  /* empty kid */
        "abc~tb1.abcdefghijklmnopq~fq_p2DE6PKdAeso20-epbw", /* kid of 17 */
        "abc~tb1.k.1~fq_p2DE6PKdAeso20-epbw",               /* '.' in the kid */
        "abc~tb1.k~1~fq_p2DE6PKdAeso20-epbw",               /* '~' in the kid */
        "abc~tb2~fq_p2DE6PKdAeso20-epbw",
        "abc~TB1~fq_p2DE6PKdAeso20-epbw",
        "abc~tb1k1~fq_p2DE6PKdAeso20-epbw",
        "abc-tb1~fq_p2DE6PKdAeso20-epbw",
        "abc~tb1~fq_p2DE6PKdAeso20-epbw~tb1", /* the last "~tb1" carries nothing */
        "~tb1~fq_p2DE6PKdAeso20-epb",
    };
    size_t i, orig;

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        expect_check(kr, "session", values[i], KAT_TBH, TB_EUNBOUND, 0);
        cr_expect_eq(tb_cookie_split(values[i], strlen(values[i]), &orig), 0, "split(%s)",
                     values[i]);
        cr_expect_eq(orig, strlen(values[i]));
    }
    tb_cookie_keyring_free(kr);
}

Test(cookie, tampering_with_any_tag_character_is_a_mismatch)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    char v[] = "abc123~tb1.k1~" KAT_TAG;
    size_t tag = strlen(v) - TB_COOKIE_TAG_LEN, i, a;

    for (i = tag; i < strlen(v); i++) {
        char keep = v[i];
        for (a = 0; a < 64; a += 7) {
            if (alphabet[a] == keep)
                continue;
            v[i] = alphabet[a];
            expect_check(kr, "session", v, KAT_TBH, TB_EMISMATCH, 0);
        }
        v[i] = keep;
    }
    expect_check(kr, "session", v, KAT_TBH, 0, 6);
    /* and every byte of the tbh */
    for (i = 0; i < TB_TBH_LEN; i++) {
        char t[] = KAT_TBH;
        t[i] = t[i] == 'A' ? 'B' : 'A';
        expect_check(kr, "session", v, t, TB_EMISMATCH, 0);
    }
    tb_cookie_keyring_free(kr);
}

Test(cookie, rotation)
{
    struct tb_cookie_keyring *r1, *r12, *r2;
    char line1[128], line2[128], both[256], v1[256], v2[256];

    key_line(line1, sizeof(line1), "k1", 1);
    key_line(line2, sizeof(line2), "k2", 2);
    snprintf(both, sizeof(both), "%s%s", line1, line2);
    r1 = ring(line1);
    r12 = ring(both);
    r2 = ring(line2);

    bound(r1, "sid", "v", TBH_A, v1, sizeof(v1));
    cr_expect_eq(strncmp(v1, "v~tb1.k1~", 9), 0, "%s", v1);
    bound(r12, "sid", "v", TBH_A, v2, sizeof(v2)); /* the newest key binds */
    cr_expect_eq(strncmp(v2, "v~tb1.k2~", 9), 0, "%s", v2);
    cr_expect_str_eq(tb_cookie_keyring_active_id(r12), "k2");
    expect_check(r12, "sid", v1, TBH_A, 0, 1); /* old bindings still accepted */
    expect_check(r12, "sid", v2, TBH_A, 0, 1);
    expect_check(r1, "sid", v2, TBH_A, TB_EKEYID, 0); /* a node without k2 yet */
    expect_check(r2, "sid", v1, TBH_A, TB_EKEYID, 0); /* k1 retired */
    expect_check(r2, "sid", v2, TBH_A, 0, 1);
    tb_cookie_keyring_free(r1);
    tb_cookie_keyring_free(r12);
    tb_cookie_keyring_free(r2);
}

Test(cookie, suffix_without_kid_tries_every_key)
{
    static const char *const ids[] = {"a", "b", "c"};
    struct tb_cookie_keyring *abc = ring_of(ids, 3), *a_only = ring_of(ids, 1), *c_only;
    char v[256], nokid[256];
    char line[128];

    /* bound by "a" (the oldest), then spelled without its kid */
    bound(a_only, "n", "val", TBH_A, v, sizeof(v));
    cr_assert_eq(strncmp(v, "val~tb1.a~", 10), 0, "%s", v);
    snprintf(nokid, sizeof(nokid), "val~tb1~%s", v + 10);
    expect_check(abc, "n", nokid, TBH_A, 0, 3);
    expect_check(a_only, "n", nokid, TBH_A, 0, 3);
    expect_check(abc, "n", nokid, TBH_B, TB_EMISMATCH, 0);
    key_line(line, sizeof(line), "c", 32); /* the same bytes as "c" in abc, without "a" */
    c_only = ring(line);
    expect_check(c_only, "n", nokid, TBH_A, TB_EMISMATCH, 0);
    tb_cookie_keyring_free(c_only);
    tb_cookie_keyring_free(a_only);
    tb_cookie_keyring_free(abc);
}

Test(cookie, tilde_inside_values)
{
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    static const char *const values[] = {
        "a~b",        "~", "~tb1", "x~tb1~", "~tb1.k1~", "v~tb1.k1~" KAT_TAG, "v~tb1~" KAT_TAG "~",
        "~~~~tb1~~~",
    };
    char v[256];
    size_t i, orig;

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        bound(kr, "n", values[i], TBH_A, v, sizeof(v));
        expect_check(kr, "n", v, TBH_A, 0, strlen(values[i]));
        cr_expect_eq(tb_cookie_split(v, strlen(v), &orig), 1);
        cr_expect_eq(orig, strlen(values[i]), "split(%s)", v);
    }
    /* a value that looks bound is bound again; check strips only the outer binding */
    bound(kr, "n", "v~tb1.k1~" KAT_TAG, TBH_A, v, sizeof(v));
    expect_check(kr, "n", v, TBH_A, 0, 9 + TB_COOKIE_TAG_LEN);
    tb_cookie_keyring_free(kr);
}

Test(cookie, quoted_and_empty_values)
{
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    char v[256], w[300];

    bound(kr, "q", "\"quoted value\"", TBH_A, v, sizeof(v));
    expect_check(kr, "q", v, TBH_A, 0, 14);
    /* the quotes are part of what is bound */
    snprintf(w, sizeof(w), "quoted value%s", v + 14);
    expect_check(kr, "q", w, TBH_A, TB_EMISMATCH, 0);

    bound(kr, "e", "", TBH_A, v, sizeof(v));
    cr_expect_eq(strncmp(v, "~tb1.k1~", 8), 0, "%s", v);
    expect_check(kr, "e", v, TBH_A, 0, 0);
    expect_check(kr, "x", v, TBH_A, TB_EMISMATCH, 0);
    /* an empty name (a Cookie segment without '=') binds and checks too */
    bound(kr, "", "lonely", TBH_A, v, sizeof(v));
    expect_check(kr, "", v, TBH_A, 0, 6);
    expect_check(kr, "lonely", v, TBH_A, TB_EMISMATCH, 0);
    /* name and value are separated in the MAC: moving a byte across the boundary breaks it */
    bound(kr, "ab", "c", TBH_A, v, sizeof(v));
    snprintf(w, sizeof(w), "bc%s", v + 1);
    expect_check(kr, "a", w, TBH_A, TB_EMISMATCH, 0);
    tb_cookie_keyring_free(kr);
}

Test(cookie, maximum_sizes)
{
    static const char *const ids[TB_COOKIE_MAX_KEYS] = {
        "abcdefghijklmno0", "abcdefghijklmno1", "abcdefghijklmno2", "abcdefghijklmno3",
        "abcdefghijklmno4", "abcdefghijklmno5", "abcdefghijklmno6", "abcdefghijklmno7",
        "abcdefghijklmno8", "abcdefghijklmno9", "abcdefghijklmnoA", "abcdefghijklmnoB",
        "abcdefghijklmnoC", "abcdefghijklmnoD", "abcdefghijklmnoE", "abcdefghijklmnoF"};
    struct tb_cookie_keyring *kr = ring_of(ids, TB_COOKIE_MAX_KEYS);
    char suffix[TB_COOKIE_SUFFIX_MAX + 1];
    size_t big = 64 * 1024, orig = 0;
    char *name = malloc(4096), *value = malloc(big + sizeof(suffix));
    int n;

    cr_assert(name != NULL && value != NULL);
    memset(name, 'n', 4096);
    memset(value, 'v', big);
    value[100] = '~'; /* a '~' far from the end is never looked at */
    n = tb_cookie_bind(kr, name, 4096, value, big, TBH_A, suffix, sizeof(suffix));
    cr_assert_eq(n, TB_COOKIE_SUFFIX_MAX, "%d", n);
    cr_expect_eq(strncmp(suffix, "~tb1.abcdefghijklmnoF~", 22), 0);
    cr_expect_eq(tb_cookie_bind(kr, name, 4096, value, big, TBH_A, suffix, sizeof(suffix) - 1),
                 TB_EINVAL);
    memcpy(value + big, suffix, (size_t)n);
    cr_expect_eq(tb_cookie_check(kr, name, 4096, value, big + (size_t)n, TBH_A, &orig), 0);
    cr_expect_eq(orig, big);
    cr_expect_eq(tb_cookie_split(value, big + (size_t)n, &orig), 1);
    cr_expect_eq(orig, big);
    value[0] = 'w';
    cr_expect_eq(tb_cookie_check(kr, name, 4096, value, big + (size_t)n, TBH_A, &orig),
                 TB_EMISMATCH);
    free(value);
    free(name);
    tb_cookie_keyring_free(kr);
}

/* One keyring shared by threads (as the proxy's workers share it): every verdict stays right. */
struct shared_run {
    const struct tb_cookie_keyring *kr;
    const char *good, *bad;
    int failures;
};

static void *check_many(void *arg)
{
    struct shared_run *r = arg;
    size_t orig;
    int i;

    for (i = 0; i < 2000; i++) {
        if (tb_cookie_check(r->kr, "sid", 3, r->good, strlen(r->good), TBH_A, &orig) != 0 ||
            orig != 5)
            r->failures++;
        if (tb_cookie_check(r->kr, "sid", 3, r->bad, strlen(r->bad), TBH_A, &orig) != TB_EMISMATCH)
            r->failures++;
    }
    return NULL;
}

Test(cookie, keyring_shared_by_threads)
{
    static const char *const ids[] = {"k1", "k2", "k3"};
    struct tb_cookie_keyring *kr = ring_of(ids, 3);
    struct shared_run runs[4];
    pthread_t t[4];
    char good[128], bad[128];
    int i;

    bound(kr, "sid", "value", TBH_A, good, sizeof(good));
    bound(kr, "sid", "value", TBH_B, bad, sizeof(bad));
    for (i = 0; i < 4; i++) {
        runs[i] = (struct shared_run){kr, good, bad, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, check_many, &runs[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(runs[i].failures, 0, "thread %d: %d wrong verdicts", i, runs[i].failures);
    }
    tb_cookie_keyring_free(kr);
}

Test(cookie, split_table)
{
    static const struct {
        const char *v;
        int bound;
        size_t orig;
    } cases[] = {
        {"", 0, 0},
        {"abc", 0, 3},
        {"abc~tb1~" KAT_TAG, 1, 3},
        {"abc~tb1.k1~" KAT_TAG, 1, 3},
        {"abc~tb1.abcdefghijklmnop~" KAT_TAG, 1, 3},
        {"~tb1~" KAT_TAG, 1, 0},
        {"a~tb1~b~tb1~" KAT_TAG, 1, 7},
        {"abc~tb1~" KAT_TAG "x", 0, 31},
    };
    size_t i, orig;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].v);
        char *copy = tbt_dup_exact(cases[i].v, len);

        cr_expect_eq(tb_cookie_split(copy, len, &orig), cases[i].bound, "split(%s)", cases[i].v);
        cr_expect_eq(orig, cases[i].orig, "split(%s): orig_len %zu", cases[i].v, orig);
        free(copy);
    }
    cr_expect_eq(tb_cookie_split(NULL, 0, &orig), 0);
    cr_expect_eq(orig, 0);
}

Test(cookie, every_truncation_of_a_bound_value_is_unbound)
{
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    char v[256];
    size_t len, cut, orig = 0;

    bound(kr, "n", "value~with~tb1", TBH_A, v, sizeof(v));
    len = strlen(v);
    for (cut = 0; cut < len; cut++) {
        char *copy = tbt_dup_exact(v, cut);

        cr_expect_eq(tb_cookie_split(copy, cut, &orig), 0, "cut %zu", cut);
        cr_expect_eq(tb_cookie_check(kr, "n", 1, copy, cut, TBH_A, &orig), TB_EUNBOUND, "cut %zu",
                     cut);
        free(copy);
    }
    /* and every suffix of it (the front cut off) that still holds the whole binding */
    for (cut = 1; cut <= 14; cut++) {
        char *copy = tbt_dup_exact(v + cut, len - cut);

        cr_expect_eq(tb_cookie_check(kr, "n", 1, copy, len - cut, TBH_A, &orig), TB_EMISMATCH);
        free(copy);
    }
    tb_cookie_keyring_free(kr);
}

/* ---- Cookie header ------------------------------------------------------------------------- */

#define MAX_PAIRS 16

struct pair_str {
    const char *name, *value;
};

/* Iterates h[0..len) and checks every pair against the contract. Returns the count. */
static size_t iterate(const char *h, size_t len, struct tb_cookie_pair *pairs)
{
    struct tb_cookie_pair p;
    size_t pos = 0, last = 0, n = 0;

    while (tb_cookie_next(h, len, &pos, &p)) {
        cr_assert_lt(n, MAX_PAIRS);
        cr_assert(pos > last && pos <= len, "pos %zu after %zu (len %zu)", pos, last, len);
        cr_assert(p.name >= h && p.name + p.name_len <= h + len);
        cr_assert(p.value >= h && p.value + p.value_len <= h + len);
        cr_assert(p.name_len > 0 || p.value_len > 0, "an empty pair");
        cr_expect(memchr(p.name, ';', p.name_len) == NULL &&
                  memchr(p.name, '=', p.name_len) == NULL);
        cr_expect(memchr(p.value, ';', p.value_len) == NULL);
        if (p.name_len > 0)
            cr_expect(p.name[0] != ' ' && p.name[0] != '\t' && p.name[p.name_len - 1] != ' ' &&
                      p.name[p.name_len - 1] != '\t');
        if (p.value_len > 0)
            cr_expect(p.value[0] != ' ' && p.value[0] != '\t' && p.value[p.value_len - 1] != ' ' &&
                      p.value[p.value_len - 1] != '\t');
        pairs[n++] = p;
        last = pos;
    }
    cr_expect_eq(pos, len, "the cursor ends at %zu, not at the end %zu", pos, len);
    cr_expect_eq(tb_cookie_next(h, len, &pos, &p), 0, "more after the end");
    return n;
}

static void expect_pairs(const char *h, const struct pair_str *want, size_t n_want)
{
    struct tb_cookie_pair got[MAX_PAIRS];
    size_t len = strlen(h), n, i;
    char *copy = tbt_dup_exact(h, len);

    n = iterate(copy, len, got);
    cr_expect_eq(n, n_want, "[%s]: %zu pairs, want %zu", h, n, n_want);
    for (i = 0; i < n && i < n_want; i++) {
        cr_expect(got[i].name_len == strlen(want[i].name) &&
                      memcmp(got[i].name, want[i].name, got[i].name_len) == 0,
                  "[%s] pair %zu: name [%.*s], want [%s]", h, i, (int)got[i].name_len, got[i].name,
                  want[i].name);
        cr_expect(got[i].value_len == strlen(want[i].value) &&
                      memcmp(got[i].value, want[i].value, got[i].value_len) == 0,
                  "[%s] pair %zu: value [%.*s], want [%s]", h, i, (int)got[i].value_len,
                  got[i].value, want[i].value);
    }
    free(copy);
}

#define PAIRS(...)                                                                                 \
    ((const struct pair_str[]){__VA_ARGS__}),                                                      \
        sizeof((const struct pair_str[]){__VA_ARGS__}) / sizeof(struct pair_str)

Test(cookie, cookie_header_table)
{
    expect_pairs("", NULL, 0);
    expect_pairs(" ;\t; ;", NULL, 0);
    expect_pairs("a=1", PAIRS({"a", "1"}));
    expect_pairs("a=1; b=2", PAIRS({"a", "1"}, {"b", "2"}));
    expect_pairs("  a = 1 ;\tb=2\t;", PAIRS({"a", "1"}, {"b", "2"}));
    expect_pairs(";;a=1;; ;b=", PAIRS({"a", "1"}, {"b", ""}));
    expect_pairs("foo; =bar; a=b=c", PAIRS({"", "foo"}, {"", "bar"}, {"a", "b=c"}));
    expect_pairs("q=\"x y\"; s=v~tb1.k1~AAAA", PAIRS({"q", "\"x y\""}, {"s", "v~tb1.k1~AAAA"}));
    expect_pairs("a", PAIRS({"", "a"}));
    expect_pairs("a=;=; = ;b", PAIRS({"a", ""}, {"", "b"})); /* "=" alone: nothing, skipped */
}

Test(cookie, cookie_header_every_truncation_and_split)
{
    static const char *const headers[] = {
        "session=abc~tb1.k1~fq_p2DE6PKdAeso20-epbw; theme=dark;  q=\"a b\" ;x;;=y; e=",
        " \ta=1;b = 2 ; c=3=4;\t",
    };
    size_t h, cut;

    for (h = 0; h < sizeof(headers) / sizeof(headers[0]); h++) {
        const char *hdr = headers[h];
        size_t len = strlen(hdr), n_full;
        struct tb_cookie_pair full[MAX_PAIRS], a[MAX_PAIRS], b[MAX_PAIRS];
        char *whole = tbt_dup_exact(hdr, len);

        n_full = iterate(whole, len, full);
        for (cut = 0; cut <= len; cut++) {
            char *left = tbt_dup_exact(hdr, cut), *right = tbt_dup_exact(hdr + cut, len - cut);
            size_t na = iterate(left, cut, a), nb = iterate(right, len - cut, b), i;

            /* split at a ';' (h2 crumbs): the two halves give exactly the pairs of the whole */
            if (cut > 0 && hdr[cut - 1] == ';') {
                cr_expect_eq(na + nb, n_full, "[%s] split at %zu", hdr, cut);
                for (i = 0; i < na + nb && i < n_full; i++) {
                    const struct tb_cookie_pair *p = i < na ? &a[i] : &b[i - na];
                    const char *base = i < na ? left : right;
                    size_t off = i < na ? 0 : cut;

                    cr_expect_eq((size_t)(p->name - base) + off, (size_t)(full[i].name - whole));
                    cr_expect_eq(p->name_len, full[i].name_len);
                    cr_expect_eq((size_t)(p->value - base) + off, (size_t)(full[i].value - whole));
                    cr_expect_eq(p->value_len, full[i].value_len);
                }
            }
            free(right);
            free(left);
        }
        free(whole);
    }
}

/* ---- Set-Cookie ---------------------------------------------------------------------------- */

/* Parses a heap copy and checks the contract's invariants. Returns the rc. */
static int set_cookie(const char *v, size_t len, struct tb_set_cookie *sc, char **copy)
{
    int rc;
    size_t i;
    int has = 0;

    *copy = tbt_dup_exact(v, len);
    rc = tb_set_cookie_parse(*copy, len, sc);
    cr_assert(rc == 0 || rc == TB_EPARSE, "rc %d", rc);
    if (rc != 0)
        return rc;
    cr_assert(sc->name >= *copy && sc->name + sc->name_len <= *copy + len);
    cr_assert(sc->value >= *copy && sc->value + sc->value_len <= *copy + len);
    cr_assert(sc->attrs >= *copy && sc->attrs + sc->attrs_len == *copy + len);
    cr_expect_gt(sc->name_len, 0);
    cr_expect(memchr(sc->name, ';', sc->name_len) == NULL &&
              memchr(sc->name, '=', sc->name_len) == NULL);
    cr_expect(memchr(sc->value, ';', sc->value_len) == NULL);
    cr_expect(sc->attrs_len == 0 || sc->attrs[0] == ';');
    cr_expect(sc->value + sc->value_len <= sc->attrs);
    for (i = 0; i + 6 <= sc->attrs_len; i++)
        has |= strncasecmp(sc->attrs + i, "secure", 6) == 0;
    if (sc->secure)
        cr_expect(has, "secure without \"secure\" in the attributes");
    return 0;
}

static void expect_set_cookie(const char *v, const char *name, const char *value, const char *attrs,
                              int secure)
{
    struct tb_set_cookie sc;
    char *copy;
    int rc = set_cookie(v, strlen(v), &sc, &copy);

    if (name == NULL) {
        cr_expect_eq(rc, TB_EPARSE, "[%s]: rc %d, want TB_EPARSE", v, rc);
        free(copy);
        return;
    }
    cr_assert_eq(rc, 0, "[%s]: rc %d", v, rc);
    cr_expect(sc.name_len == strlen(name) && memcmp(sc.name, name, sc.name_len) == 0,
              "[%s]: name [%.*s]", v, (int)sc.name_len, sc.name);
    cr_expect(sc.value_len == strlen(value) && memcmp(sc.value, value, sc.value_len) == 0,
              "[%s]: value [%.*s]", v, (int)sc.value_len, sc.value);
    cr_expect(sc.attrs_len == strlen(attrs) && memcmp(sc.attrs, attrs, sc.attrs_len) == 0,
              "[%s]: attrs [%.*s]", v, (int)sc.attrs_len, sc.attrs);
    cr_expect_eq(sc.secure, secure, "[%s]: secure %d", v, sc.secure);
    free(copy);
}

Test(cookie, set_cookie_table)
{
    expect_set_cookie("a=1", "a", "1", "", 0);
    expect_set_cookie("session=abc; Path=/; HttpOnly", "session", "abc", "; Path=/; HttpOnly", 0);
    expect_set_cookie(" s = v ; secure", "s", "v", "; secure", 1);
    expect_set_cookie("s=v; Secure=yes", "s", "v", "; Secure=yes", 1);
    expect_set_cookie("s=v;SECURE", "s", "v", ";SECURE", 1);
    expect_set_cookie("s=v; HttpOnly;\tSeCuRe\t; Path=/", "s", "v", "; HttpOnly;\tSeCuRe\t; Path=/",
                      1);
    expect_set_cookie("s=v; NotSecure; Path=/Secure; Secured; Domain=secure", "s", "v",
                      "; NotSecure; Path=/Secure; Secured; Domain=secure", 0);
    expect_set_cookie("s=\"quoted\"; Max-Age=3", "s", "\"quoted\"", "; Max-Age=3", 0);
    expect_set_cookie("s=; Path=/", "s", "", "; Path=/", 0);
    expect_set_cookie("s=a=b", "s", "a=b", "", 0);
    expect_set_cookie("s=v;", "s", "v", ";", 0);
    expect_set_cookie("s=v~tb1.k1~" KAT_TAG "; Secure", "s", "v~tb1.k1~" KAT_TAG, "; Secure", 1);
    expect_set_cookie("novalue", NULL, NULL, NULL, 0);
    expect_set_cookie("=v", NULL, NULL, NULL, 0);
    expect_set_cookie(" \t=v; Secure", NULL, NULL, NULL, 0);
    expect_set_cookie("", NULL, NULL, NULL, 0);
    expect_set_cookie("; a=b", NULL, NULL, NULL, 0);
    expect_set_cookie("noeq; a=b", NULL, NULL, NULL, 0);
    cr_expect_eq(tb_set_cookie_parse(NULL, 0, &(struct tb_set_cookie){0}), TB_EINVAL);
}

Test(cookie, set_cookie_every_truncation)
{
    static const char v[] = " id = \"x~y\" ; Path=/a;Secure ;HttpOnly; SameSite=Lax";
    size_t len = strlen(v), cut;

    for (cut = 0; cut <= len; cut++) {
        struct tb_set_cookie sc;
        char *copy;
        int rc = set_cookie(v, cut, &sc, &copy);

        /* "id" needs its '=': before that a prefix is refused, from there on it parses */
        cr_expect_eq(rc, cut >= 5 ? 0 : TB_EPARSE, "cut %zu: rc %d", cut, rc);
        if (rc == 0)
            cr_expect_eq(sc.secure, cut >= 28, "cut %zu: secure %d", cut, sc.secure);
        free(copy);
    }
}

/* ---- tbtoken cookie ------------------------------------------------------------------------ */

static char tmpdir[512];
static char keyfile[600];
static struct tbt_run_result run; /* the last run of the tool: freed by the next and by teardown */

static void cli_setup(void)
{
    cr_assert_eq(tbt_tempdir("tbcookie", tmpdir, sizeof(tmpdir)), 0);
    cr_assert_eq(tbt_write_file(tmpdir, "cookie.keys", KAT_KEYS, strlen(KAT_KEYS)), 0);
    snprintf(keyfile, sizeof(keyfile), "%s/cookie.keys", tmpdir);
}

static void cli_teardown(void)
{
    tbt_run_result_dispose(&run);
    if (tmpdir[0] != '\0')
        tbt_rmdir_all(tmpdir);
    tmpdir[0] = '\0';
}

/* Runs `tbtoken args...` (NULL-terminated) into run; aborts the test if it cannot run. */
static void run_tool(const char *const *args)
{
    tbt_run_result_dispose(&run);
    cr_assert_geq(tbt_run("tbtoken", args, NULL, 0, TIMEOUT_S * 1000, &run), 0, "%s", run.error);
}

/* Runs `tbtoken cookie check` and expects the verdict: reason NULL for ok with value. */
static void expect_cli_check(const char *const *args, const char *reason, const char *value)
{
    json_t *doc;

    run_tool(args);
    doc = run.json;
    cr_assert(json_is_object(doc), "stdout is not one JSON object: [%s]; stderr: %s", run.out,
              run.err);
    cr_expect_eq(run.status, reason == NULL ? 0 : 1, "exit %d: %s", run.status, run.out);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "verdict")),
                     reason == NULL ? "ok" : "error", "%s", run.out);
    if (reason == NULL) {
        cr_expect_str_eq(json_string_value(json_object_get(doc, "value")), value, "%s", run.out);
        cr_expect_null(json_object_get(doc, "reason"), "%s", run.out);
        cr_expect_eq(json_object_size(doc), 2, "%s", run.out);
    } else {
        cr_expect_str_eq(json_string_value(json_object_get(doc, "reason")), reason, "%s", run.out);
        cr_expect_null(json_object_get(doc, "value"), "%s", run.out);
        cr_expect_eq(json_object_size(doc), 2, "%s", run.out);
    }
}

static void expect_usage(const char *what, const char *const *args)
{
    run_tool(args);
    cr_expect_eq(run.status, 2, "%s: exit %d, expected 2; stdout: %s; stderr: %s", what, run.status,
                 run.out, run.err);
    cr_expect_null(strstr(run.out, "\"verdict\""), "%s: a verdict on a usage error: %s", what,
                   run.out);
    cr_expect_neq(run.err_len, 0, "%s: nothing on stderr", what);
}

Test(tbtoken_cookie, genkey, .init = cli_setup, .fini = cli_teardown, .timeout = TIMEOUT_S)
{
    struct tb_cookie_keyring *kr;
    char first[128];

    run_tool((const char *const[]){"cookie", "genkey", "--id", "k7", NULL});
    cr_assert_eq(run.status, 0, "exit %d; stderr: %s", run.status, run.err);
    cr_assert_eq(run.out_len, 2 + 1 + 44 + 1, "[%s]", run.out);
    kr = ring(run.out);
    cr_expect_str_eq(tb_cookie_keyring_active_id(kr), "k7");
    tb_cookie_keyring_free(kr);
    snprintf(first, sizeof(first), "%s", run.out);

    /* the default id: k + UTC date and time, 15 characters */
    run_tool((const char *const[]){"cookie", "genkey", NULL});
    cr_assert_eq(run.status, 0, "exit %d; stderr: %s", run.status, run.err);
    cr_expect_eq(run.out_len, 15 + 1 + 44 + 1, "[%s]", run.out);
    cr_expect(run.out_len > 15 && run.out[0] == 'k' && run.out[15] == ' ', "[%s]", run.out);
    kr = ring(run.out);
    tb_cookie_keyring_free(kr);
    cr_expect_neq(strcmp(first + 3, run.out + 16), 0, "the same key twice");

    expect_usage("bad --id", (const char *const[]){"cookie", "genkey", "--id", "a.b", NULL});
    expect_usage("17-character --id",
                 (const char *const[]){"cookie", "genkey", "--id", "abcdefghijklmnopq", NULL});
    expect_usage("extra argument", (const char *const[]){"cookie", "genkey", "x", NULL});
}

Test(tbtoken_cookie, bind_and_check, .init = cli_setup, .fini = cli_teardown, .timeout = TIMEOUT_S)
{
    static const char *const tbid_b64 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkq"
                                        "KywtLi8wMTIzNDU2Nzg5Ojs8PT4_QEFCQ0RF"; /* bytes 1..69 */
    char bound_v[256], other[256];
    struct tb_cookie_keyring *kr = ring(KAT_KEYS);
    size_t len;

    /* --tbh: the known answer */
    run_tool((const char *const[]){"cookie", "bind", "--keys", keyfile, "--tbh", KAT_TBH, "session",
                                   "abc123", NULL});
    cr_assert_eq(run.status, 0, "exit %d; stderr: %s", run.status, run.err);
    cr_expect_str_eq(run.out, "abc123~tb1.k1~" KAT_TAG "\n");

    /* --tbid: the TBID bytes 1..69 of the known answer, as base64url */
    run_tool((const char *const[]){"cookie", "bind", "--tbid", tbid_b64, "--keys", keyfile, "--",
                                   "session", "abc123", NULL});
    cr_assert_eq(run.status, 0, "exit %d; stderr: %s", run.status, run.err);
    cr_expect_str_eq(run.out, "abc123~tb1.k1~" KAT_TAG "\n");

    /* a value the library binds, then checked by the tool */
    bound(kr, "sid", "-starts-with-dash", TBH_A, bound_v, sizeof(bound_v));
    expect_cli_check((const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh", TBH_A,
                                           "--", "sid", bound_v, NULL},
                     NULL, "-starts-with-dash");
    expect_cli_check((const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh", TBH_B,
                                           "sid", bound_v, NULL},
                     "mismatch", NULL);
    expect_cli_check((const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh", TBH_A,
                                           "sid", "plain", NULL},
                     "unbound", NULL);
    len = strlen(bound_v);
    snprintf(other, sizeof(other), "-starts-with-dash~tb1.k9~%s",
             bound_v + len - TB_COOKIE_TAG_LEN);
    expect_cli_check((const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh", TBH_A,
                                           "sid", other, NULL},
                     "unknown_key", NULL);
    /* empty value */
    bound(kr, "sid", "", TBH_A, bound_v, sizeof(bound_v));
    expect_cli_check((const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh", TBH_A,
                                           "sid", bound_v, NULL},
                     NULL, "");
    tb_cookie_keyring_free(kr);
}

Test(tbtoken_cookie, usage_errors, .init = cli_setup, .fini = cli_teardown, .timeout = TIMEOUT_S)
{
    char badkeys[600];

    expect_usage("no cookie command", (const char *const[]){"cookie", NULL});
    expect_usage("unknown cookie command", (const char *const[]){"cookie", "sign", NULL});
    expect_usage("no --keys",
                 (const char *const[]){"cookie", "bind", "--tbh", TBH_A, "n", "v", NULL});
    expect_usage("no TBID",
                 (const char *const[]){"cookie", "bind", "--keys", keyfile, "n", "v", NULL});
    expect_usage("both --tbid and --tbh",
                 (const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh", TBH_A,
                                       "--tbid", "AAAA", "n", "v", NULL});
    expect_usage("no VALUE", (const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh",
                                                   TBH_A, "n", NULL});
    expect_usage("three arguments", (const char *const[]){"cookie", "check", "--keys", keyfile,
                                                          "--tbh", TBH_A, "n", "v", "w", NULL});
    expect_usage("short --tbh", (const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh",
                                                      "AAAA", "n", "v", NULL});
    expect_usage("--tbh with a bad character",
                 (const char *const[]){"cookie", "check", "--keys", keyfile, "--tbh",
                                       "+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "n", "v",
                                       NULL});
    expect_usage("bad --tbid", (const char *const[]){"cookie", "check", "--keys", keyfile, "--tbid",
                                                     "A", "n", "v", NULL});
    expect_usage("empty --tbid", (const char *const[]){"cookie", "check", "--keys", keyfile,
                                                       "--tbid", "", "n", "v", NULL});
    expect_usage("unknown option", (const char *const[]){"cookie", "check", "--key", keyfile,
                                                         "--tbh", TBH_A, "n", "v", NULL});
    expect_usage("option without value",
                 (const char *const[]){"cookie", "check", "--tbh", TBH_A, "--keys", NULL});
    expect_usage("missing key file",
                 (const char *const[]){"cookie", "check", "--keys", "/nonexistent/cookie.keys",
                                       "--tbh", TBH_A, "n", "v", NULL});
    cr_expect(strstr(run.err, "/nonexistent/cookie.keys") != NULL, "%s", run.err);

    /* a bad key file: the line is named, the secret is not shown */
    cr_assert_eq(tbt_write_file(tmpdir, "bad.keys", "k1 SECRETSECRETAAAAA\n", 21), 0);
    snprintf(badkeys, sizeof(badkeys), "%s/bad.keys", tmpdir);
    expect_usage("bad key file", (const char *const[]){"cookie", "bind", "--keys", badkeys, "--tbh",
                                                       TBH_A, "n", "v", NULL});
    cr_expect(strstr(run.err, "line 1") != NULL && strstr(run.err, "SECRET") == NULL, "%s",
              run.err);

    run_tool((const char *const[]){"cookie", "--help", NULL});
    cr_expect_eq(run.status, 0);
    cr_expect(strstr(run.err, "tbtoken cookie bind") != NULL, "%s", run.err);
}
