/*
 * Cookie binding: HMAC-SHA256 tags that tie a cookie to a Token Binding ID, the keyrings that
 * hold their secrets, and bounded parsers for Cookie and Set-Cookie.
 *
 * A tag is the first 16 bytes of HMAC-SHA256(key, "tb-cookie-v1" 0x00 name 0x00 value 0x00 tbh)
 * in base64url. The message is fed to the MAC in pieces, so no copy of name or value is made and
 * their sizes need no cap. A keyring holds, for each of its up to TB_COOKIE_MAX_KEYS keys, an
 * HMAC-SHA256 EVP_MAC_CTX already keyed at load time; each bind or check duplicates it
 * (EVP_MAC_CTX_dup only reads its source, so threads share the keyring) and so skips the digest
 * lookup and key schedule, which would otherwise be most of the cost. The raw secrets live only
 * in stack buffers while loading, wiped right after; the keyed contexts are freed (and wiped by
 * OpenSSL) by tb_cookie_keyring_free. The keyring type is opaque: no function returns a secret.
 *
 * Checking finds the binding suffix by scanning back for the LAST "~tb1" (the tag and the key id
 * cannot contain '~', so that is the only candidate), then demands "~tb1~TAG" or "~tb1.KID~TAG"
 * with exactly TB_COOKIE_TAG_LEN base64url characters ending the value. A suffix without a key
 * id is tried against every key, all of them every time, so the time taken does not tell which
 * key (if any) matched. Tags are compared with CRYPTO_memcmp.
 *
 * The key-file parser walks the text line by line with a cursor and never reads past len; its
 * messages name the line and what is wrong, never the bytes of a secret (nor an invalid key id,
 * which could be a misplaced secret). Decoded secrets and the base64 text they came from are
 * wiped from the stack.
 *
 * Cookie and Set-Cookie parsing follows RFC 6265 section 5.2 / 4.2 as browsers do it, returning
 * slices of the caller's buffer; see cookie.h for the exact leniencies.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "tb/base64url.h"
#include "tb/cookie.h"
#include "tb/error.h"
#include "tb/tbh.h"

#define TAG_BYTES 16                           /* truncated HMAC-SHA256 */
#define MAC_BYTES 32                           /* full HMAC-SHA256 */
#define KEY_B64_MAX 44                         /* base64 of 32 bytes, padded */
#define KEY_FILE_MAX (64 * 1024)               /* tb_cookie_keyring_load reads at most this much */
#define SUFFIX_MIN (4 + 1 + TB_COOKIE_TAG_LEN) /* "~tb1~TAG" */

static const char context[] = "tb-cookie-v1"; /* the MAC's domain separation label */

struct cookie_key {
    char id[TB_COOKIE_MAX_KID + 1];
    size_t id_len;
    EVP_MAC_CTX *keyed; /* HMAC-SHA256 initialised with the secret: duplicated, never used */
};

struct tb_cookie_keyring {
    size_t n; /* 1..TB_COOKIE_MAX_KEYS; k[n - 1] binds */
    struct cookie_key k[TB_COOKIE_MAX_KEYS];
};

/* base64url alphabet membership (the cookie tag, kids use the same set) */
static int is_b64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* 1 if s[0..n) is a valid key id: 1..TB_COOKIE_MAX_KID characters of [A-Za-z0-9_-]. */
static int kid_valid(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > TB_COOKIE_MAX_KID)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_b64url((unsigned char)s[i]))
            return 0;
    return 1;
}

/* 1 if tbh starts with TB_TBH_LEN base64url characters. Stops at the first other byte (a NUL
 * included), so a short string is never read past its end. */
static int tbh_valid(const char *tbh)
{
    size_t i;

    if (tbh == NULL)
        return 0;
    for (i = 0; i < TB_TBH_LEN; i++)
        if (!is_b64url((unsigned char)tbh[i]))
            return 0;
    return 1;
}

/* ---- keyrings ------------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *msg, size_t line)
{
    if (err == NULL || errlen == 0)
        return;
    if (line > 0)
        snprintf(err, errlen, "line %zu: %s", line, msg);
    else
        snprintf(err, errlen, "%s", msg);
}

/*
 * Decodes a key given in base64, standard or url alphabet (not mixed), padding optional, into
 * out (exactly TB_COOKIE_KEY_LEN bytes). Returns 0 or a static message for the caller.
 */
static const char *decode_key(const char *s, size_t n, uint8_t *out)
{
    char url[KEY_B64_MAX];
    uint8_t tmp[TB_COOKIE_KEY_LEN + 3];
    const char *msg = NULL;
    int std = 0, urlabc = 0, rc;
    size_t i;

    if (n > KEY_B64_MAX)
        return "the key must be 32 bytes in base64 (44 characters at most)";
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' || c == '/') {
            std = 1;
            c = c == '+' ? '-' : '_';
        } else if (c == '-' || c == '_') {
            urlabc = 1;
        }
        url[i] = c;
    }
    if (std && urlabc) {
        msg = "the key mixes the standard and url base64 alphabets";
        goto Exit;
    }
    rc = tb_base64url_decode(url, n, tmp, sizeof(tmp));
    if (rc < 0) {
        msg = "the key is not valid base64";
        goto Exit;
    }
    if (rc != TB_COOKIE_KEY_LEN) {
        msg = "the key must decode to exactly 32 bytes";
        goto Exit;
    }
    memcpy(out, tmp, TB_COOKIE_KEY_LEN);
Exit:
    OPENSSL_cleanse(url, sizeof(url));
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return msg;
}

/* A new HMAC-SHA256 context keyed with secret, or NULL. */
static EVP_MAC_CTX *keyed_ctx(EVP_MAC *mac, const uint8_t *secret)
{
    char digest_name[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx != NULL && EVP_MAC_init(ctx, secret, TB_COOKIE_KEY_LEN, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/*
 * Parses one non-blank, non-comment line (already trimmed) into kr->k[kr->n]. Returns NULL or a
 * message (static); *crypto_failed is set when the message is about OpenSSL, not the line.
 */
static const char *parse_key_line(struct tb_cookie_keyring *kr, EVP_MAC *mac, const char *s,
                                  size_t n, int *crypto_failed)
{
    uint8_t secret[TB_COOKIE_KEY_LEN];
    struct cookie_key *k;
    size_t i = 0, id_len, b64_start, j;
    const char *msg;

    while (i < n && !is_wsp(s[i]))
        i++;
    id_len = i;
    if (!kid_valid(s, id_len))
        return "the key id must be 1..16 characters of A-Z a-z 0-9 _ -";
    while (i < n && is_wsp(s[i]))
        i++;
    if (i == n)
        return "expected \"ID BASE64\": the key is missing";
    b64_start = i;
    while (i < n && !is_wsp(s[i]))
        i++;
    if (i != n)
        return "expected \"ID BASE64\": unexpected text after the key";
    for (j = 0; j < kr->n; j++)
        if (kr->k[j].id_len == id_len && memcmp(kr->k[j].id, s, id_len) == 0)
            return "duplicate key id";
    if (kr->n == TB_COOKIE_MAX_KEYS)
        return "too many keys (at most 16)";
    k = &kr->k[kr->n];
    if ((msg = decode_key(s + b64_start, n - b64_start, secret)) != NULL)
        return msg;
    k->keyed = keyed_ctx(mac, secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (k->keyed == NULL) {
        *crypto_failed = 1;
        return "HMAC-SHA256 is not available from OpenSSL";
    }
    memcpy(k->id, s, id_len);
    k->id[id_len] = '\0';
    k->id_len = id_len;
    kr->n++;
    return NULL;
}

int tb_cookie_keyring_parse(const char *text, size_t len, struct tb_cookie_keyring **out, char *err,
                            size_t errlen)
{
    struct tb_cookie_keyring *kr = NULL;
    EVP_MAC *mac = NULL;
    const char *msg = NULL;
    size_t pos = 0, line = 0;
    int ret = TB_EINVAL, crypto_failed = 0;

    if (out == NULL || (text == NULL && len > 0)) {
        set_err(err, errlen, "invalid arguments", 0);
        return TB_EINVAL;
    }
    *out = NULL;
    if ((kr = OPENSSL_zalloc(sizeof(*kr))) == NULL) {
        set_err(err, errlen, "out of memory", 0);
        return TB_ENOMEM;
    }
    if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
        msg = "HMAC is not available from OpenSSL";
        ret = TB_ECRYPTO;
        goto Exit;
    }
    while (pos < len) {
        size_t start = pos, end;

        line++;
        while (pos < len && text[pos] != '\n')
            pos++;
        end = pos;
        if (pos < len)
            pos++; /* the '\n' */
        if (memchr(text + start, '\0', end - start) != NULL) {
            msg = "contains a NUL byte";
            goto Exit;
        }
        while (start < end && (is_wsp(text[start])))
            start++;
        while (end > start && (is_wsp(text[end - 1]) || text[end - 1] == '\r'))
            end--;
        if (start == end || text[start] == '#')
            continue;
        if ((msg = parse_key_line(kr, mac, text + start, end - start, &crypto_failed)) != NULL) {
            ret = crypto_failed ? TB_ECRYPTO : TB_EINVAL;
            goto Exit;
        }
    }
    if (kr->n == 0) {
        msg = "no keys";
        line = 0;
        goto Exit;
    }
    *out = kr;
    kr = NULL;
    ret = 0;
Exit:
    if (msg != NULL)
        set_err(err, errlen, msg, line);
    EVP_MAC_free(mac); /* the keyed contexts hold their own references */
    tb_cookie_keyring_free(kr);
    return ret;
}

int tb_cookie_keyring_load(const char *path, struct tb_cookie_keyring **out, char *err,
                           size_t errlen)
{
    char msg[256] = "";
    char *buf = NULL;
    FILE *f = NULL;
    size_t n = 0;
    int ret = TB_EINVAL;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL) {
        set_err(err, errlen, "invalid arguments", 0);
        return TB_EINVAL;
    }
    if ((buf = OPENSSL_malloc(KEY_FILE_MAX + 1)) == NULL) {
        snprintf(msg, sizeof(msg), "out of memory");
        ret = TB_ENOMEM;
        goto Exit;
    }
    if ((f = fopen(path, "rb")) == NULL) {
        snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
        goto Exit;
    }
    n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    if (ferror(f)) {
        snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
        goto Exit;
    }
    if (n > KEY_FILE_MAX) {
        snprintf(msg, sizeof(msg), "larger than 64 KiB");
        goto Exit;
    }
    ret = tb_cookie_keyring_parse(buf, n, out, msg, sizeof(msg));
Exit:
    if (ret != 0 && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", path, msg);
    if (f != NULL)
        fclose(f);
    if (buf != NULL)
        OPENSSL_clear_free(buf, KEY_FILE_MAX + 1);
    return ret;
}

void tb_cookie_keyring_free(struct tb_cookie_keyring *kr)
{
    size_t i;

    if (kr == NULL)
        return;
    for (i = 0; i < kr->n; i++)
        EVP_MAC_CTX_free(kr->k[i].keyed);
    OPENSSL_clear_free(kr, sizeof(*kr));
}

size_t tb_cookie_keyring_count(const struct tb_cookie_keyring *kr)
{
    return kr != NULL ? kr->n : 0;
}

const char *tb_cookie_keyring_active_id(const struct tb_cookie_keyring *kr)
{
    return kr != NULL && kr->n > 0 ? kr->k[kr->n - 1].id : NULL;
}

int tb_cookie_key_generate(const char *id, char *out, size_t cap)
{
    uint8_t secret[TB_COOKIE_KEY_LEN];
    unsigned char b64[KEY_B64_MAX + 1];
    size_t id_len, need;
    int ret = TB_EINVAL;

    if (id == NULL || out == NULL)
        return TB_EINVAL;
    id_len = strnlen(id, TB_COOKIE_MAX_KID + 1);
    need = id_len + 1 + KEY_B64_MAX + 1; /* "ID BASE64\n" */
    if (!kid_valid(id, id_len) || cap < need + 1)
        return TB_EINVAL;
    if (RAND_bytes(secret, sizeof(secret)) != 1) {
        ret = TB_ECRYPTO;
        goto Exit;
    }
    if (EVP_EncodeBlock(b64, secret, sizeof(secret)) != KEY_B64_MAX) {
        ret = TB_ECRYPTO;
        goto Exit;
    }
    memcpy(out, id, id_len);
    out[id_len] = ' ';
    memcpy(out + id_len + 1, b64, KEY_B64_MAX);
    out[need - 1] = '\n';
    out[need] = '\0';
    ret = (int)need;
Exit:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(b64, sizeof(b64));
    return ret;
}

/* ---- tags ---------------------------------------------------------------------------------- */

/*
 * The tag of (name, value, tbh) under key k as TB_COOKIE_TAG_LEN base64url characters plus a NUL
 * into tag. Returns 0 or TB_ECRYPTO.
 */
static int compute_tag(const struct cookie_key *k, const char *name, size_t name_len,
                       const char *value, size_t value_len, const char *tbh,
                       char tag[TB_COOKIE_TAG_LEN + 1])
{
    static const unsigned char zero = 0;
    unsigned char mac[MAC_BYTES];
    EVP_MAC_CTX *ctx = NULL;
    size_t mac_len = 0;
    int ret = TB_ECRYPTO;

    if ((ctx = EVP_MAC_CTX_dup(k->keyed)) == NULL)
        goto Exit;
    /* "tb-cookie-v1" 0x00 name 0x00 value 0x00 tbh; EVP_MAC_update accepts empty pieces */
    if (EVP_MAC_update(ctx, (const unsigned char *)context, sizeof(context) - 1) != 1 ||
        EVP_MAC_update(ctx, &zero, 1) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)name, name_len) != 1 ||
        EVP_MAC_update(ctx, &zero, 1) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)value, value_len) != 1 ||
        EVP_MAC_update(ctx, &zero, 1) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)tbh, TB_TBH_LEN) != 1 ||
        EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) != 1 || mac_len != MAC_BYTES)
        goto Exit;
    if (tb_base64url_encode(mac, TAG_BYTES, tag, TB_COOKIE_TAG_LEN + 1) != TB_COOKIE_TAG_LEN)
        goto Exit;
    ret = 0;
Exit:
    EVP_MAC_CTX_free(ctx);
    OPENSSL_cleanse(mac, sizeof(mac));
    return ret;
}

/* Arguments every bind and check needs: a keyring, readable name/value, a well-formed tbh. */
static int args_valid(const struct tb_cookie_keyring *kr, const char *name, size_t name_len,
                      const char *value, size_t value_len, const char *tbh)
{
    return kr != NULL && kr->n > 0 && (name != NULL || name_len == 0) &&
           (value != NULL || value_len == 0) && tbh_valid(tbh);
}

int tb_cookie_bind(const struct tb_cookie_keyring *kr, const char *name, size_t name_len,
                   const char *value, size_t value_len, const char *tbh, char *out, size_t cap)
{
    const struct cookie_key *k;
    char tag[TB_COOKIE_TAG_LEN + 1];
    size_t n;
    int rc;

    if (!args_valid(kr, name, name_len, value, value_len, tbh) || out == NULL)
        return TB_EINVAL;
    k = &kr->k[kr->n - 1];
    n = 5 + k->id_len + 1 + TB_COOKIE_TAG_LEN; /* "~tb1." kid "~" tag */
    if (cap < n + 1)
        return TB_EINVAL;
    if ((rc = compute_tag(k, name, name_len, value, value_len, tbh, tag)) != 0)
        return rc;
    memcpy(out, "~tb1.", 5);
    memcpy(out + 5, k->id, k->id_len);
    out[5 + k->id_len] = '~';
    memcpy(out + 6 + k->id_len, tag, TB_COOKIE_TAG_LEN);
    out[n] = '\0';
    return (int)n;
}

/* A parsed binding suffix: slices of the value. */
struct suffix {
    size_t orig_len; /* bytes of the value before "~tb1" */
    const char *kid; /* NULL when the suffix names no key */
    size_t kid_len;
    const char *tag; /* TB_COOKIE_TAG_LEN characters */
};

/*
 * Finds the suffix at the last "~tb1" and checks its syntax. Returns 1 and fills s, or 0. Only
 * the last TB_COOKIE_SUFFIX_MAX bytes are looked at: a suffix is never longer, and neither its key
 * id nor its tag can contain '~', so a "~tb1" further back cannot start one.
 */
static int find_suffix(const char *value, size_t len, struct suffix *s)
{
    size_t i, p, k, stop;
    int found = 0;

    if (value == NULL || len < SUFFIX_MIN)
        return 0;
    stop = len > TB_COOKIE_SUFFIX_MAX ? len - TB_COOKIE_SUFFIX_MAX : 0;
    for (i = len - SUFFIX_MIN + 1; i-- > stop;)
        if (value[i] == '~' && memcmp(value + i + 1, "tb1", 3) == 0) {
            found = 1;
            break;
        }
    if (!found)
        return 0;
    s->orig_len = i;
    s->kid = NULL;
    s->kid_len = 0;
    p = i + 4; /* < len: i <= len - SUFFIX_MIN */
    if (value[p] == '.') {
        for (k = p + 1; k < len && value[k] != '~'; k++)
            ;
        s->kid = value + p + 1;
        s->kid_len = k - (p + 1);
        if (!kid_valid(s->kid, s->kid_len))
            return 0;
        p = k;
    }
    if (p >= len || value[p] != '~' || len - (p + 1) != TB_COOKIE_TAG_LEN)
        return 0;
    s->tag = value + p + 1;
    for (k = 0; k < TB_COOKIE_TAG_LEN; k++)
        if (!is_b64url((unsigned char)s->tag[k]))
            return 0;
    return 1;
}

int tb_cookie_split(const char *value, size_t value_len, size_t *orig_len)
{
    struct suffix s;
    int found = find_suffix(value, value_len, &s);

    if (orig_len != NULL)
        *orig_len = found ? s.orig_len : value_len;
    return found;
}

int tb_cookie_check(const struct tb_cookie_keyring *kr, const char *name, size_t name_len,
                    const char *value, size_t value_len, const char *tbh, size_t *orig_len)
{
    char want[TB_COOKIE_TAG_LEN + 1];
    struct suffix s;
    size_t i;
    int rc, match = 0, tried = 0;

    if (!args_valid(kr, name, name_len, value, value_len, tbh) || orig_len == NULL)
        return TB_EINVAL;
    if (!find_suffix(value, value_len, &s))
        return TB_EUNBOUND;
    for (i = 0; i < kr->n; i++) {
        const struct cookie_key *k = &kr->k[i];

        if (s.kid != NULL && (k->id_len != s.kid_len || memcmp(k->id, s.kid, s.kid_len) != 0))
            continue;
        if ((rc = compute_tag(k, name, name_len, value, s.orig_len, tbh, want)) != 0)
            return rc;
        /* no early exit: without a key id, every key costs the same whether it matches or not */
        match |= CRYPTO_memcmp(want, s.tag, TB_COOKIE_TAG_LEN) == 0;
        tried++;
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (tried == 0)
        return TB_EKEYID;
    if (!match)
        return TB_EMISMATCH;
    *orig_len = s.orig_len;
    return 0;
}

/* ---- Cookie and Set-Cookie ----------------------------------------------------------------- */

/* Trims spaces and tabs from both ends of s[*b..*e). */
static void trim(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && is_wsp(s[*b]))
        (*b)++;
    while (*e > *b && is_wsp(s[*e - 1]))
        (*e)--;
}

/* Splits s[b..e) at its first '=' (RFC 6265 section 5.2 name-value-pair), trimming both sides.
 * Returns 1 if there was an '='. Without one, name is empty and value is the whole segment. */
static int split_pair(const char *s, size_t b, size_t e, const char **name, size_t *name_len,
                      const char **value, size_t *value_len)
{
    const char *eq = memchr(s + b, '=', e - b);
    size_t nb = b, ne, vb, ve = e;

    if (eq == NULL) {
        trim(s, &b, &e);
        *name = s + b;
        *name_len = 0;
        *value = s + b;
        *value_len = e - b;
        return 0;
    }
    ne = (size_t)(eq - s);
    vb = ne + 1;
    trim(s, &nb, &ne);
    trim(s, &vb, &ve);
    *name = s + nb;
    *name_len = ne - nb;
    *value = s + vb;
    *value_len = ve - vb;
    return 1;
}

int tb_cookie_next(const char *hdr, size_t len, size_t *pos, struct tb_cookie_pair *out)
{
    size_t b, e;

    if (hdr == NULL || pos == NULL || out == NULL)
        return 0;
    while (*pos < len) {
        const char *semi;

        b = *pos;
        semi = memchr(hdr + b, ';', len - b);
        e = semi != NULL ? (size_t)(semi - hdr) : len;
        *pos = semi != NULL ? e + 1 : len;
        trim(hdr, &b, &e);
        if (b == e)
            continue; /* empty segment: "a=1;; b=2", a trailing ';' */
        split_pair(hdr, b, e, &out->name, &out->name_len, &out->value, &out->value_len);
        if (out->name_len == 0 && out->value_len == 0)
            continue; /* "=" alone: no name, no value, nothing to forward */
        return 1;
    }
    return 0;
}

/* 1 if the attribute list a[0..n) (starting at a ';') has a Secure attribute. */
static int has_secure(const char *a, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        const char *semi = memchr(a + pos, ';', n - pos);
        size_t b = pos, e = semi != NULL ? (size_t)(semi - a) : n;
        const char *eq = memchr(a + b, '=', e - b);

        pos = semi != NULL ? e + 1 : n;
        if (eq != NULL)
            e = (size_t)(eq - a); /* attribute-name: before '=' (a value is ignored) */
        trim(a, &b, &e);
        if (e - b == 6 && strncasecmp(a + b, "secure", 6) == 0)
            return 1;
    }
    return 0;
}

int tb_set_cookie_parse(const char *v, size_t len, struct tb_set_cookie *out)
{
    const char *semi;
    size_t e;

    if (v == NULL || out == NULL)
        return TB_EINVAL;
    memset(out, 0, sizeof(*out));
    semi = memchr(v, ';', len);
    e = semi != NULL ? (size_t)(semi - v) : len;
    if (!split_pair(v, 0, e, &out->name, &out->name_len, &out->value, &out->value_len) ||
        out->name_len == 0) {
        memset(out, 0, sizeof(*out));
        return TB_EPARSE;
    }
    out->attrs = v + e;
    out->attrs_len = len - e;
    out->secure = has_secure(out->attrs, out->attrs_len);
    return 0;
}
