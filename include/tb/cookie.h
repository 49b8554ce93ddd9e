/*
 * Cookie binding (spec "Bound tokens"): a cookie the origin sets is tied to the client's Token
 * Binding ID, so that a copy replayed from another client (another key) is worthless.
 *
 *   name=value   becomes   name=value~tb1.<kid>~<tag>
 *   tag = base64url(HMAC-SHA256(key, "tb-cookie-v1" 0x00 name 0x00 value 0x00 tbh))[0..16 bytes)
 *
 * `tbh` is base64url(SHA-256(TBID)) (tb_tbh), `key` a 32-byte secret from a keyring and `kid` its
 * id. Rotation: a keyring lists several keys; the newest (last in the file) binds, all of them
 * check. The same key file on every node makes bindings valid across a cluster. The suffix is
 * found at the LAST "~tb1" of a value, so values that contain '~' themselves still work. A value
 * is bound as it appears on the wire (quotes of a quoted cookie-value included).
 *
 * Also here, for the proxy and for apps: bounded parsers for the Cookie request header and the
 * Set-Cookie response header. They return slices of their input and never allocate.
 *
 * Keyrings are immutable after loading and may be shared by threads. Secrets are wiped on free
 * and compared with CRYPTO_memcmp; nothing here logs.
 */
#ifndef TB_COOKIE_H
#define TB_COOKIE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_COOKIE_KEY_LEN 32 /* bytes of secret per key */
#define TB_COOKIE_TAG_LEN 22 /* base64url of the 16-byte truncated HMAC */
#define TB_COOKIE_MAX_KEYS 16
#define TB_COOKIE_MAX_KID 16 /* key id: 1..16 of [A-Za-z0-9_-] */
/* "~tb1.<kid>~<tag>" at its longest, without the NUL */
#define TB_COOKIE_SUFFIX_MAX (4 + 1 + TB_COOKIE_MAX_KID + 1 + TB_COOKIE_TAG_LEN)

struct tb_cookie_keyring; /* opaque */

/*
 * Key file format: one key per line, "ID BASE64" where ID is 1..TB_COOKIE_MAX_KID characters of
 * [A-Za-z0-9_-] and BASE64 (standard or url alphabet, padding optional) decodes to exactly
 * TB_COOKIE_KEY_LEN bytes; blank lines and lines starting with '#' are ignored; ids are distinct;
 * 1..TB_COOKIE_MAX_KEYS keys. The last key is the newest: it binds.
 *
 * Parses text (len bytes) into a new keyring in *out (free with tb_cookie_keyring_free). Returns
 * 0, or TB_EINVAL with a one-line message naming the line in err (never the secret), TB_ENOMEM,
 * TB_ECRYPTO (OpenSSL failed); *out is NULL on failure. err may be NULL.
 */
int tb_cookie_keyring_parse(const char *text, size_t len, struct tb_cookie_keyring **out,
                            char *err, size_t errlen);
/* The same from a file (at most 64 KiB); the message also names the path. TB_EINVAL if it cannot
 * be read. */
int tb_cookie_keyring_load(const char *path, struct tb_cookie_keyring **out, char *err,
                           size_t errlen);
void tb_cookie_keyring_free(struct tb_cookie_keyring *kr);
/* Number of keys; the id of the key that binds. */
size_t tb_cookie_keyring_count(const struct tb_cookie_keyring *kr);
const char *tb_cookie_keyring_active_id(const struct tb_cookie_keyring *kr);

/*
 * Writes one new key-file line "ID BASE64\n" (32 random bytes from RAND_bytes, standard base64
 * with padding: 44 characters), NUL-terminated, into out (cap >= strlen(id) + 47 is enough).
 * Returns its length without the NUL, TB_EINVAL (bad id, cap too small) or TB_ECRYPTO.
 */
int tb_cookie_key_generate(const char *id, char *out, size_t cap);

/*
 * The suffix that binds name=value to tbh (TB_TBH_LEN characters) with the keyring's active key:
 * "~tb1.<kid>~<tag>", NUL-terminated, into out (cap >= TB_COOKIE_SUFFIX_MAX + 1). The bound value
 * is value followed by it. Returns the suffix length, TB_EINVAL or TB_ECRYPTO.
 */
int tb_cookie_bind(const struct tb_cookie_keyring *kr, const char *name, size_t name_len,
                   const char *value, size_t value_len, const char *tbh, char *out, size_t cap);

/*
 * Splits a cookie value at its binding suffix. Returns 1 with *orig_len set to the length of the
 * value before the suffix when value ends in a syntactically valid "~tb1[.kid]~<22 chars>"
 * suffix, 0 when it carries none (*orig_len = value_len).
 */
int tb_cookie_split(const char *value, size_t value_len, size_t *orig_len);

/*
 * Checks a bound value against tbh. Returns 0 with *orig_len = the length of the original value
 * (the part before the suffix) when the tag is valid for this name, value and tbh under the key
 * it names (no key id: every key is tried); otherwise TB_EUNBOUND (no suffix), TB_EKEYID (a key id
 * not in the keyring), TB_EMISMATCH (wrong tag: another TBID, another name, or altered), TB_EINVAL
 * or TB_ECRYPTO. Constant-time in the tag.
 */
int tb_cookie_check(const struct tb_cookie_keyring *kr, const char *name, size_t name_len,
                    const char *value, size_t value_len, const char *tbh, size_t *orig_len);

/* One cookie of a Cookie header, as slices of the header value. */
struct tb_cookie_pair {
    const char *name;
    size_t name_len;
    const char *value; /* as sent, quotes included */
    size_t value_len;
};

/*
 * Iterates over a Cookie header value ("a=1; b=2", RFC 6265 section 4.2; h2 crumbs are separate
 * headers, iterate each). *pos starts at 0. Returns 1 with the next pair in *out, 0 at the end.
 * Lenient like browsers and servers: surrounding spaces/tabs are trimmed from names and values,
 * empty segments (and a lone "=") are skipped, a segment without '=' is a cookie with an empty
 * name, and a value is everything after the first '=' (it may contain '='). *pos only grows and
 * ends at len. Never reads past len; the pair points into hdr.
 */
int tb_cookie_next(const char *hdr, size_t len, size_t *pos, struct tb_cookie_pair *out);

/* A parsed Set-Cookie value: "name=value; attributes". */
struct tb_set_cookie {
    const char *name;
    size_t name_len;
    const char *value; /* as sent, quotes included */
    size_t value_len;
    const char *attrs; /* from the first ';' after the value to the end (may be empty) */
    size_t attrs_len;
    int secure; /* the attributes include Secure (case-insensitive) */
};

/*
 * Parses a Set-Cookie value. Returns 0, or TB_EPARSE when there is no '=' in the first segment or
 * the name is empty (RFC 6265 section 5.2: such a header is ignored by clients; the proxy passes
 * it untouched), TB_EINVAL for NULL arguments. Name and value are trimmed of spaces and tabs;
 * `secure` is set by an attribute whose name (before any '=') is "Secure" in any case.
 */
int tb_set_cookie_parse(const char *v, size_t len, struct tb_set_cookie *out);

#ifdef __cplusplus
}
#endif
#endif
