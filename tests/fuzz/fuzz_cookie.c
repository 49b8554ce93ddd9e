/*
 * libFuzzer target: cookie binding (tb/cookie.h).
 *
 * The input, a fresh heap copy of exactly its size (so ASan catches any read past it), is read
 * three ways:
 *  - as a Cookie header: tb_cookie_next over all of it, then for every pair tb_cookie_split and
 *    tb_cookie_check with a fixed keyring (k1, k2, k3; k3 binds) and a fixed tbh, then the pair's
 *    original value is bound and checked again;
 *  - as a Set-Cookie value: tb_set_cookie_parse, then its value is bound and checked;
 *  - as a key file: tb_cookie_keyring_parse, and a keyring that loads binds and checks.
 *
 * Oracles (abort on violation):
 *  - every slice lies inside the input; names and values are trimmed and hold no ';' (names no
 *    '='); the Cookie cursor only grows and ends at the end; Set-Cookie attrs run to the end;
 *  - split and check agree: TB_EUNBOUND exactly when split finds no suffix, and on success both
 *    give the same original length, followed by "~tb1";
 *  - check returns 0, TB_EUNBOUND, TB_EMISMATCH or TB_EKEYID, nothing else;
 *  - binding any name/value and checking it gives 0 and the original length; with another tbh
 *    or one tag character changed it gives TB_EMISMATCH;
 *  - a parsed keyring has 1..TB_COOKIE_MAX_KEYS keys and a valid active id; a failed parse
 *    leaves *out NULL and a message starting "line " or "no keys", never quoting the input.
 * The seed corpus in tests/fuzz/corpus/cookie/ holds values bound with this keyring and tbh
 * (made with `tbtoken cookie bind`), so the accepting paths are reached from the start.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tb/tb.h"

static const char keys_text[] = "k1 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\n"
                                "k2 AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI\n"
                                "k3 AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM\n";
static const char tbh[] = "3-sBN79mNmcCh-jFk_PFsyrAvN8zRGnLCL8Y9acIsPw";
static const char other_tbh[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/* Built once for the whole run: keyrings are immutable. */
static const struct tb_cookie_keyring *keyring(void)
{
    static struct tb_cookie_keyring *kr;

    if (kr == NULL)
        CHECK(tb_cookie_keyring_parse(keys_text, sizeof(keys_text) - 1, &kr, NULL, 0) == 0);
    return kr;
}

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static void check_slice(const char *p, size_t n, const char *buf, size_t len)
{
    volatile char sink = 0;
    size_t i;

    CHECK(p != NULL && p >= buf && n <= len && p <= buf + len - n);
    for (i = 0; i < n; i++) /* every byte readable (ASan) */
        sink ^= p[i];
    (void)sink;
}

static void check_trimmed(const char *p, size_t n)
{
    if (n > 0)
        CHECK(!is_wsp(p[0]) && !is_wsp(p[n - 1]));
    CHECK(memchr(p, ';', n) == NULL);
}

/* Binds (name, value) with kr, checks the result and two tampered copies. */
static void round_trip(const struct tb_cookie_keyring *kr, const char *name, size_t name_len,
                       const char *value, size_t value_len)
{
    char suffix[TB_COOKIE_SUFFIX_MAX + 1];
    size_t orig = 0, n;
    char *bound;
    int s;

    s = tb_cookie_bind(kr, name, name_len, value, value_len, tbh, suffix, sizeof(suffix));
    CHECK(s > 0 && (size_t)s <= TB_COOKIE_SUFFIX_MAX && strlen(suffix) == (size_t)s);
    n = value_len + (size_t)s;
    CHECK((bound = malloc(n)) != NULL);
    if (value_len > 0)
        memcpy(bound, value, value_len);
    memcpy(bound + value_len, suffix, (size_t)s);
    CHECK(tb_cookie_split(bound, n, &orig) == 1 && orig == value_len);
    CHECK(tb_cookie_check(kr, name, name_len, bound, n, tbh, &orig) == 0 && orig == value_len);
    CHECK(tb_cookie_check(kr, name, name_len, bound, n, other_tbh, &orig) == TB_EMISMATCH);
    bound[n - 1] = bound[n - 1] == 'A' ? 'B' : 'A';
    CHECK(tb_cookie_check(kr, name, name_len, bound, n, tbh, &orig) == TB_EMISMATCH);
    free(bound);
}

static void check_pair_value(const char *name, size_t name_len, const char *value, size_t len)
{
    size_t split_orig = 0, check_orig = 0;
    int bound = tb_cookie_split(value, len, &split_orig);
    int rc = tb_cookie_check(keyring(), name, name_len, value, len, tbh, &check_orig);

    CHECK(bound == 0 || bound == 1);
    CHECK(rc == 0 || rc == TB_EUNBOUND || rc == TB_EMISMATCH || rc == TB_EKEYID);
    CHECK((rc == TB_EUNBOUND) == (bound == 0));
    if (bound) {
        CHECK(split_orig + 4 + 1 + TB_COOKIE_TAG_LEN <= len);
        CHECK(memcmp(value + split_orig, "~tb1", 4) == 0);
        CHECK(len - split_orig <= TB_COOKIE_SUFFIX_MAX);
    } else {
        CHECK(split_orig == len);
    }
    if (rc == 0)
        CHECK(check_orig == split_orig);
    round_trip(keyring(), name, name_len, value, split_orig);
}

static void fuzz_cookie_header(const char *h, size_t len)
{
    struct tb_cookie_pair p;
    size_t pos = 0, last = 0;

    while (tb_cookie_next(h, len, &pos, &p)) {
        CHECK(pos > last && pos <= len);
        last = pos;
        check_slice(p.name, p.name_len, h, len);
        check_slice(p.value, p.value_len, h, len);
        check_trimmed(p.name, p.name_len);
        check_trimmed(p.value, p.value_len);
        CHECK(memchr(p.name, '=', p.name_len) == NULL);
        CHECK(p.name_len > 0 || p.value_len > 0);
        check_pair_value(p.name, p.name_len, p.value, p.value_len);
    }
    CHECK(pos == len);
}

static void fuzz_set_cookie(const char *v, size_t len)
{
    struct tb_set_cookie sc;
    int rc = tb_set_cookie_parse(v, len, &sc);

    CHECK(rc == 0 || rc == TB_EPARSE);
    if (rc != 0)
        return;
    check_slice(sc.name, sc.name_len, v, len);
    check_slice(sc.value, sc.value_len, v, len);
    check_slice(sc.attrs, sc.attrs_len, v, len);
    CHECK(sc.name_len > 0 && memchr(sc.name, '=', sc.name_len) == NULL);
    check_trimmed(sc.name, sc.name_len);
    check_trimmed(sc.value, sc.value_len);
    CHECK(sc.attrs + sc.attrs_len == v + len);
    CHECK(sc.attrs_len == 0 || sc.attrs[0] == ';');
    CHECK(sc.secure == 0 || sc.secure == 1);
    CHECK(!sc.secure || sc.attrs_len >= 7);
    round_trip(keyring(), sc.name, sc.name_len, sc.value, sc.value_len);
}

static void fuzz_key_file(const char *text, size_t len)
{
    struct tb_cookie_keyring *kr = (void *)&kr;
    char err[256] = "";
    const char *id;
    int rc = tb_cookie_keyring_parse(text, len, &kr, err, sizeof(err));

    if (rc != 0) {
        CHECK(rc == TB_EINVAL && kr == NULL);
        CHECK(strncmp(err, "line ", 5) == 0 || strcmp(err, "no keys") == 0);
        return;
    }
    CHECK(tb_cookie_keyring_count(kr) >= 1 && tb_cookie_keyring_count(kr) <= TB_COOKIE_MAX_KEYS);
    id = tb_cookie_keyring_active_id(kr);
    CHECK(id != NULL && strlen(id) >= 1 && strlen(id) <= TB_COOKIE_MAX_KID);
    round_trip(kr, "n", 1, text, len < 64 ? len : 64);
    tb_cookie_keyring_free(kr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);

    CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    fuzz_cookie_header(copy, size);
    fuzz_set_cookie(copy, size);
    fuzz_key_file(copy, size);
    free(copy);
    return 0;
}
