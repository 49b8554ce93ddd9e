/*
 * tborigin's federation demo: a toy identity provider and relying party (fed.h).
 *
 * The flow (Token Binding federation, RFC 8473 section 5), with tbproxy in front of each side:
 *
 *   client -> RP  GET /login            302 to IdP /idp/authorize?redirect_uri=RP/callback; the
 * RP's proxy route adds Include-Referer-Token-Binding-ID: true client -> IdP GET /idp/authorize
 * (provided: the client's IdP key, referred: its RP key) a one-time code remembering both; 302 to
 * RP/callback?code= client -> RP  GET /callback?code=C  302 to IdP /idp/token?code=C, again asking
 * for a referral client -> IdP GET /idp/token?code=C the same two IDs as at /authorize -> a JWT
 * (ES256) whose cnf.tbh is the tbh of the REFERRED ID: bound to the key the client uses with the
 * RP, useless from anywhere else
 *
 * tborigin trusts the Sec-Provided- and Sec-Referred-Token-Binding-ID headers because only its
 * proxy can reach it; it never adds the Include-Referer header itself (the proxy route's
 * refer_token_binding does, which is what the demo shows). The token endpoint is a GET so that a
 * redirect-following client (tbclient -L) can walk the whole flow; a real IdP takes a POST from
 * the RP's back end and checks redirect_uri against a registered list.
 *
 * Codes: 32 random bytes (base64url) in a table of CODE_SLOTS, under one mutex (MHD runs a thread
 * per connection). The IDs are kept as their tbh and compared with CRYPTO_memcmp, and so are the
 * codes. A code is consumed by the first request that presents it with the right bindings; a
 * request with other bindings is refused without consuming it (someone who saw the code cannot
 * spoil the login of the client it belongs to). An expired code is dropped when met. When every
 * slot is taken, the one closest to expiry is reused.
 *
 * The signing key is read once at startup and wiped at exit; nothing here logs a code, an ID or
 * a token.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "fed.h"
#include "tb/base64url.h"
#include "tb/jwt.h"
#include "tb/tbh.h"

#define CODE_SLOTS 1024      /* outstanding authorization codes */
#define CODE_BYTES 32        /* random bytes in a code */
#define CODE_CHARS 43        /* their base64url */
#define DEFAULT_CODE_TTL 300 /* seconds */
#define TOKEN_TTL 300        /* seconds: "exp" - "iat" and "expires_in" */
#define MAX_KEY_FILE (64 * 1024)
#define MAX_ID_CHARS 16384 /* longer Sec-*-Token-Binding-ID values are refused */
#define MAX_URL 2048       /* redirect_uri, --idp-url */
#define MAX_ORIGIN 320     /* scheme://host[:port] */
#define MAX_STATE 256
#define MAX_SUB 64
#define MAX_LOCATION (4 * MAX_URL)
#define DEFAULT_SUB "demo-user"

/* One outstanding code; code[0] == '\0' marks a free slot. */
struct code {
    char code[CODE_CHARS + 1];
    char provided[TB_TBH_LEN + 1]; /* tbh of the IDs /authorize saw */
    char referred[TB_TBH_LEN + 1];
    char sub[MAX_SUB + 1];
    char aud[MAX_ORIGIN + 1];
    long long expires; /* monotonic seconds */
};

static struct tbo_fed_options fo;
static uint8_t *key_pem; /* the IdP's private key, PEM; NULL: /idp/ disabled */
static size_t key_pem_len;
static struct code codes[CODE_SLOTS];
static pthread_mutex_t codes_lock = PTHREAD_MUTEX_INITIALIZER;

static long long now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* --- bounded strings --------------------------------------------------------------------- */

/* A string being built in a fixed buffer; failed once anything did not fit. */
struct str {
    char *p;
    size_t len, cap;
    int failed;
};

static void str_add(struct str *s, const char *p, size_t n)
{
    if (s->failed || s->len + n + 1 > s->cap) {
        s->failed = 1;
        return;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void str_cat(struct str *s, const char *p)
{
    str_add(s, p, strlen(p));
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Appends p percent-encoded for a query component: everything but RFC 3986 unreserved. */
static void str_pct(struct str *s, const char *p)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};

        if (is_unreserved(c))
            str_add(s, p, 1);
        else
            str_add(s, e, 3);
    }
}

/* 1 if s is 1..max characters of an RFC 7230 token. */
static int is_token(const char *s, size_t max)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_unreserved((unsigned char)s[i]) && strchr("!#$%&'*+^`|", s[i]) == NULL)
            return 0;
    return 1;
}

/* 1 if s is "http://" or "https://" and then 1..max-8 visible ASCII characters but '#'. */
static int is_url(const char *s, size_t max)
{
    size_t n = strlen(s), i;
    size_t skip = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;

    if (skip == 0 || n <= skip || n > max)
        return 0;
    for (i = skip; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '#')
            return 0;
    return s[skip] != '/';
}

/* The scheme://authority of an is_url() URL into out. Returns 0, or -1 if it does not fit. */
static int url_origin(const char *url, char *out, size_t cap)
{
    const char *host = strstr(url, "://") + 3;
    size_t n = (size_t)(host - url) + strcspn(host, "/?");

    if (n >= cap)
        return -1;
    memcpy(out, url, n);
    out[n] = '\0';
    return 0;
}

/* --- requests ---------------------------------------------------------------------------- */

static const char *arg(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/*
 * The tbh of a forwarded ID header into out. Returns 1, 0 when the header is absent, -1 when it is
 * not a base64url value of sane length.
 */
static int header_tbh(struct MHD_Connection *conn, const char *name, char out[TB_TBH_LEN + 1])
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    size_t n = v != NULL ? strlen(v) : 0;
    uint8_t *id;
    int len, rc = -1;

    if (v == NULL)
        return 0;
    if (n == 0 || n > MAX_ID_CHARS || (id = malloc(tb_base64url_decoded_max(n))) == NULL)
        return -1;
    len = tb_base64url_decode(v, n, id, tb_base64url_decoded_max(n));
    if (len > 0 && tb_tbh(id, (size_t)len, out, TB_TBH_LEN + 1) == TB_TBH_LEN)
        rc = 1;
    free(id);
    return rc;
}

/*
 * This origin as the client asked for it: X-Forwarded-Proto ("https" or "http", which tbproxy
 * sets) and Host. Returns 0, or -1 when Host is missing or not a plain host[:port].
 */
static int this_origin(struct MHD_Connection *conn, char *out, size_t cap)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    const char *proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
    struct str s = {out, 0, cap, 0};
    size_t i, n = host != NULL ? strlen(host) : 0;

    if (n == 0 || n > 255)
        return -1;
    for (i = 0; i < n; i++)
        if (!is_unreserved((unsigned char)host[i]) && strchr(":[]", host[i]) == NULL)
            return -1;
    str_cat(&s, proto != NULL && strcmp(proto, "https") == 0 ? "https://" : "http://");
    str_cat(&s, host);
    return s.failed ? -1 : 0;
}

/* --- responses --------------------------------------------------------------------------- */

/*
 * Queues a response with a copy of body, the content type, `Cache-Control: no-store` (codes and
 * tokens must not be cached) and, when location is not NULL, a Location.
 */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *body, const char *location)
{
    struct MHD_Response *resp;
    enum MHD_Result ret = MHD_NO;

    resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
        (location == NULL ||
         MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location) == MHD_YES))
        ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *body)
{
    return reply(conn, status, "text/plain; charset=utf-8", body, NULL);
}

static enum MHD_Result redirect_to(struct MHD_Connection *conn, const struct str *location)
{
    if (location->failed)
        return text(conn, MHD_HTTP_BAD_REQUEST, "the redirect URL would be too long\n");
    return reply(conn, MHD_HTTP_FOUND, "text/plain; charset=utf-8", "redirecting\n", location->p);
}

/* 400 {"error": "invalid_grant", "error_description": why} (RFC 6749 section 5.2). */
static enum MHD_Result invalid_grant(struct MHD_Connection *conn, const char *why)
{
    json_t *doc = json_pack("{s:s, s:s}", "error", "invalid_grant", "error_description", why);
    char *body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    enum MHD_Result ret;

    json_decref(doc);
    if (body == NULL)
        return MHD_NO;
    ret = reply(conn, MHD_HTTP_BAD_REQUEST, "application/json", body, NULL);
    free(body);
    return ret;
}

/* --- the code table ---------------------------------------------------------------------- */

static void code_clear(struct code *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
}

/* Stores c (its code already made), reusing a free, expired or else the oldest slot. */
static void code_store(const struct code *c)
{
    long long now = now_s();
    struct code *slot = &codes[0];
    size_t i;

    pthread_mutex_lock(&codes_lock);
    for (i = 0; i < CODE_SLOTS; i++) {
        struct code *s = &codes[i];
        if (s->code[0] == '\0' || s->expires <= now) {
            slot = s;
            break;
        }
        if (s->expires < slot->expires)
            slot = s;
    }
    *slot = *c;
    pthread_mutex_unlock(&codes_lock);
}

/* Why code_redeem() refused. */
enum redeem {
    REDEEM_OK,       /* *out holds the code's grant; the code is gone */
    REDEEM_UNKNOWN,  /* no such code (never issued, used, evicted or expired) */
    REDEEM_BINDINGS, /* the request's IDs are not the ones /authorize saw; the code stays */
};

/*
 * Looks code up in constant time per slot and, when the request's tbh pair equals the stored
 * one, takes the grant out of the table into *out.
 */
static enum redeem code_redeem(const char *code, const char *provided, const char *referred,
                               struct code *out)
{
    enum redeem r = REDEEM_UNKNOWN;
    long long now = now_s();
    size_t i;

    if (strlen(code) != CODE_CHARS)
        return REDEEM_UNKNOWN;
    pthread_mutex_lock(&codes_lock);
    for (i = 0; i < CODE_SLOTS; i++) {
        struct code *s = &codes[i];
        if (s->code[0] == '\0' || CRYPTO_memcmp(s->code, code, CODE_CHARS) != 0)
            continue;
        if (s->expires <= now) {
            code_clear(s);
        } else if (CRYPTO_memcmp(s->provided, provided, TB_TBH_LEN) != 0 ||
                   CRYPTO_memcmp(s->referred, referred, TB_TBH_LEN) != 0) {
            r = REDEEM_BINDINGS;
        } else {
            *out = *s;
            code_clear(s);
            r = REDEEM_OK;
        }
        break;
    }
    pthread_mutex_unlock(&codes_lock);
    return r;
}

/* --- the identity provider --------------------------------------------------------------- */

static enum MHD_Result authorize(struct MHD_Connection *conn)
{
    const char *redirect_uri = arg(conn, "redirect_uri"), *state = arg(conn, "state");
    const char *user = arg(conn, "user");
    char location[MAX_LOCATION];
    struct str loc = {location, 0, sizeof(location), 0};
    uint8_t raw[CODE_BYTES];
    struct code c;
    enum MHD_Result ret;

    memset(&c, 0, sizeof(c));
    if (header_tbh(conn, "Sec-Provided-Token-Binding-ID", c.provided) != 1)
        return text(conn, MHD_HTTP_BAD_REQUEST,
                    "no token binding: the identity provider is only reached through tbproxy, "
                    "with Token Binding\n");
    if (header_tbh(conn, "Sec-Referred-Token-Binding-ID", c.referred) != 1)
        return text(conn, MHD_HTTP_BAD_REQUEST,
                    "no referred token binding: the relying party must send "
                    "Include-Referer-Token-Binding-ID\n");
    if (redirect_uri == NULL || !is_url(redirect_uri, MAX_URL))
        return text(conn, MHD_HTTP_BAD_REQUEST,
                    "/idp/authorize?redirect_uri=URL: an absolute http(s) URL without fragment\n");
    if (state != NULL && strlen(state) > MAX_STATE)
        return text(conn, MHD_HTTP_BAD_REQUEST, "state: at most 256 characters\n");
    if (user != NULL && !is_token(user, MAX_SUB))
        return text(conn, MHD_HTTP_BAD_REQUEST, "user: 1 to 64 token characters\n");
    snprintf(c.sub, sizeof(c.sub), "%s", user != NULL ? user : DEFAULT_SUB);
    if (fo.idp_audience != NULL)
        snprintf(c.aud, sizeof(c.aud), "%s", fo.idp_audience);
    else if (url_origin(redirect_uri, c.aud, sizeof(c.aud)) != 0)
        return text(conn, MHD_HTTP_BAD_REQUEST, "redirect_uri: the host is too long\n");
    if (RAND_bytes(raw, sizeof(raw)) != 1 ||
        tb_base64url_encode(raw, sizeof(raw), c.code, sizeof(c.code)) != CODE_CHARS)
        return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "no random code\n");
    c.expires = now_s() + fo.code_ttl_s;

    str_cat(&loc, redirect_uri);
    str_cat(&loc, strchr(redirect_uri, '?') != NULL ? "&code=" : "?code=");
    str_cat(&loc, c.code);
    if (state != NULL) {
        str_cat(&loc, "&state=");
        str_pct(&loc, state);
    }
    if (!loc.failed)
        code_store(&c);
    ret = redirect_to(conn, &loc);
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(&c, sizeof(c));
    OPENSSL_cleanse(location, sizeof(location));
    return ret;
}

/* The JWT for a redeemed grant, bound to its referred tbh, in a malloc'd string; NULL on error. */
static char *issue(struct MHD_Connection *conn, const struct code *g)
{
    char iss[MAX_ORIGIN + 1], *claims = NULL, *jwt = NULL;
    json_int_t now = (json_int_t)time(NULL);
    json_t *doc;

    if (fo.idp_issuer != NULL)
        snprintf(iss, sizeof(iss), "%s", fo.idp_issuer);
    else if (this_origin(conn, iss, sizeof(iss)) != 0)
        return NULL;
    doc = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", iss, "aud", g->aud, "sub", g->sub, "iat",
                    now, "exp", now + TOKEN_TTL);
    if (doc != NULL)
        claims = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (claims != NULL &&
        tb_jwt_bind(claims, g->referred, TB_JWT_ES256, key_pem, key_pem_len, NULL, &jwt) != 0)
        jwt = NULL;
    free(claims);
    return jwt;
}

static enum MHD_Result token(struct MHD_Connection *conn)
{
    const char *code = arg(conn, "code");
    char provided[TB_TBH_LEN + 1], referred[TB_TBH_LEN + 1], *jwt = NULL, *body = NULL;
    json_t *doc = NULL;
    struct code g;
    enum MHD_Result ret;

    if (code == NULL)
        return invalid_grant(conn, "no code");
    if (header_tbh(conn, "Sec-Provided-Token-Binding-ID", provided) != 1)
        return invalid_grant(conn, "no token binding");
    if (header_tbh(conn, "Sec-Referred-Token-Binding-ID", referred) != 1)
        return invalid_grant(conn, "no referred token binding: the relying party must send "
                                   "Include-Referer-Token-Binding-ID");
    switch (code_redeem(code, provided, referred, &g)) {
    case REDEEM_UNKNOWN:
        return invalid_grant(conn, "unknown, used or expired code");
    case REDEEM_BINDINGS:
        return invalid_grant(conn, "the token bindings differ from the authorization request's");
    case REDEEM_OK:
        break;
    }
    if ((jwt = issue(conn, &g)) != NULL)
        doc = json_pack("{s:s, s:s, s:i}", "access_token", jwt, "token_type", "Bearer",
                        "expires_in", TOKEN_TTL);
    if (doc != NULL)
        body = json_dumps(doc, JSON_COMPACT);
    if (body == NULL)
        ret = text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the token could not be made\n");
    else
        ret = reply(conn, MHD_HTTP_OK, "application/json", body, NULL);
    json_decref(doc);
    if (jwt != NULL)
        OPENSSL_cleanse(jwt, strlen(jwt));
    if (body != NULL)
        OPENSSL_cleanse(body, strlen(body));
    free(jwt);
    free(body);
    OPENSSL_cleanse(&g, sizeof(g));
    return ret;
}

/* --- the relying party ------------------------------------------------------------------- */

/* Appends --idp-url without its trailing slashes, then path. */
static void idp_path(struct str *s, const char *path)
{
    size_t n = strlen(fo.idp_url);

    while (n > 0 && fo.idp_url[n - 1] == '/')
        n--;
    str_add(s, fo.idp_url, n);
    str_cat(s, path);
}

static enum MHD_Result login(struct MHD_Connection *conn)
{
    const char *user = arg(conn, "user");
    char origin[MAX_ORIGIN + 16], location[MAX_LOCATION];
    struct str loc = {location, 0, sizeof(location), 0};

    if (this_origin(conn, origin, sizeof(origin) - 16) != 0)
        return text(conn, MHD_HTTP_BAD_REQUEST, "/login: no usable Host header\n");
    memcpy(origin + strlen(origin), "/callback", sizeof("/callback"));
    idp_path(&loc, "/idp/authorize?redirect_uri=");
    str_pct(&loc, origin);
    if (user != NULL) {
        str_cat(&loc, "&user=");
        str_pct(&loc, user);
    }
    return redirect_to(conn, &loc);
}

static enum MHD_Result callback(struct MHD_Connection *conn)
{
    const char *code = arg(conn, "code");
    char location[MAX_LOCATION];
    struct str loc = {location, 0, sizeof(location), 0};

    if (code == NULL || *code == '\0' || strlen(code) > 2 * CODE_CHARS)
        return text(conn, MHD_HTTP_BAD_REQUEST, "/callback?code=CODE\n");
    idp_path(&loc, "/idp/token?code=");
    str_pct(&loc, code);
    return redirect_to(conn, &loc);
}

/* --- the module -------------------------------------------------------------------------- */

/* Reads path (at most MAX_KEY_FILE bytes) into a new NUL-terminated buffer. NULL on error. */
static uint8_t *read_small_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0;

    if (f == NULL || (buf = malloc(MAX_KEY_FILE + 1)) == NULL)
        goto Exit;
    n = fread(buf, 1, MAX_KEY_FILE + 1, f);
    if (ferror(f) || n == 0 || n > MAX_KEY_FILE) {
        OPENSSL_cleanse(buf, MAX_KEY_FILE + 1);
        free(buf);
        buf = NULL;
        goto Exit;
    }
    buf[n] = '\0';
    *len = n;
Exit:
    if (f != NULL)
        fclose(f);
    return buf;
}

/* 1 if pem holds a P-256 private key. */
static int is_p256_private_key(const uint8_t *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    char group[32] = "";
    int ok;

    ok = k != NULL && EVP_PKEY_is_a(k, "EC") &&
         EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) == 1 &&
         (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
    EVP_PKEY_free(k);
    BIO_free(b);
    return ok;
}

int tbo_fed_init(const struct tbo_fed_options *o, char *err, size_t errlen)
{
    fo = *o;
    if (fo.code_ttl_s == 0)
        fo.code_ttl_s = DEFAULT_CODE_TTL;
    if (fo.idp_url != NULL && !is_url(fo.idp_url, MAX_URL / 2)) {
        snprintf(err, errlen, "--idp-url: an absolute http(s) URL, e.g. https://localhost:9443");
        return -1;
    }
    if (fo.idp_issuer != NULL &&
        (strlen(fo.idp_issuer) == 0 || strlen(fo.idp_issuer) > MAX_ORIGIN)) {
        snprintf(err, errlen, "--idp-issuer: 1 to %d characters", MAX_ORIGIN);
        return -1;
    }
    if (fo.idp_audience != NULL &&
        (strlen(fo.idp_audience) == 0 || strlen(fo.idp_audience) > MAX_ORIGIN)) {
        snprintf(err, errlen, "--idp-audience: 1 to %d characters", MAX_ORIGIN);
        return -1;
    }
    if (fo.idp_key == NULL)
        return 0;
    if ((key_pem = read_small_file(fo.idp_key, &key_pem_len)) == NULL) {
        snprintf(err, errlen, "--idp-key %s: cannot be read (or empty, or over 64 KiB)",
                 fo.idp_key);
        return -1;
    }
    if (!is_p256_private_key(key_pem, key_pem_len)) {
        tbo_fed_dispose();
        snprintf(err, errlen, "--idp-key %s: not a P-256 private key in PEM (ES256)", fo.idp_key);
        return -1;
    }
    return 0;
}

void tbo_fed_dispose(void)
{
    size_t i;

    if (key_pem != NULL) {
        OPENSSL_cleanse(key_pem, key_pem_len);
        free(key_pem);
    }
    key_pem = NULL;
    key_pem_len = 0;
    pthread_mutex_lock(&codes_lock);
    for (i = 0; i < CODE_SLOTS; i++)
        code_clear(&codes[i]);
    pthread_mutex_unlock(&codes_lock);
}

enum tbo_fed_route tbo_fed_match(const char *path, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(path, lit, len) == 0)
    if (IS("/idp/authorize"))
        return TBO_FED_AUTHORIZE;
    if (IS("/idp/token"))
        return TBO_FED_TOKEN;
    if (IS("/login"))
        return TBO_FED_LOGIN;
    if (IS("/callback"))
        return TBO_FED_CALLBACK;
#undef IS
    return TBO_FED_NONE;
}

enum MHD_Result tbo_fed_respond(struct MHD_Connection *conn, enum tbo_fed_route r)
{
    int idp = key_pem != NULL, rp = fo.idp_url != NULL;

    switch (r) {
    case TBO_FED_AUTHORIZE:
        return idp ? authorize(conn) : text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    case TBO_FED_TOKEN:
        return idp ? token(conn) : text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    case TBO_FED_LOGIN:
        return rp ? login(conn) : text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    case TBO_FED_CALLBACK:
        return rp ? callback(conn) : text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    case TBO_FED_NONE:
        break;
    }
    return text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}
