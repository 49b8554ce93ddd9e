/*
 * Routes and the companion-module settings (see config.h and conf/README.md): which upstream a
 * request goes to, and per route which cookies are bound to the client's Token Binding ID, what
 * happens to them from clients without Token Binding, whether redirects ask for a referred
 * binding (federation), and the `jwt` group that admits only requests carrying a valid token
 * bound to the provided TBID. The top-level `cookie_keys` is read here too, before the routes,
 * because a route that binds cookies is an error without it.
 *
 * Key material (the cookie keyring, each route's JWT key set) is loaded at config load so that a
 * bad key file is reported with its line, like any other setting, and never when the first
 * request needs it. The objects are adopted by the config (tbp_cfg_adopt) the moment they are
 * loaded, so a load that fails later frees them with everything else. Public keys and HMAC
 * secrets come from two different settings (`keys`, `secret`) and two different loaders: a
 * public key's PEM can never end up used as an HMAC secret (the algorithm-confusion trap), and
 * every algorithm a route allows must be one its keys can verify.
 */
#include "config_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tb/cookie.h"
#include "tb/error.h"
#include "tb/jwt.h"

#define LIB_ERRLEN 512 /* messages from the key loaders, before the setting's location */

/* --- hosts and prefixes ------------------------------------------------------------------- */

/*
 * A route host: "*", "*.name" or a name (letters, digits, '-', '_', '.'), or "[v6]". Lowered
 * and without one trailing dot, into a copy owned by cfg. 0, -1 (bad) or -2 (has a port).
 */
static int normalize_host(struct tbp_config *cfg, const char *v, const char **out)
{
    size_t i, n = strlen(v), start = 0;
    char *h;

    if (strcmp(v, "*") == 0) {
        *out = "*";
        return 0;
    }
    if (n > 1 && v[n - 1] == '.' && v[0] != '[')
        n--;
    if (n == 0 || n > 253)
        return -1;
    if ((h = tbp_cfg_alloc(cfg, n + 1)) == NULL)
        return -3;
    for (i = 0; i < n; i++)
        h[i] = tbp_cfg_lower(v[i]);
    *out = h;
    if (h[0] == '[') {
        struct in6_addr a6;
        if (h[n - 1] != ']') {
            return strchr(h, ']') ? -2 : -1;
        }
        h[n - 1] = '\0';
        int ok = inet_pton(AF_INET6, h + 1, &a6) == 1;
        h[n - 1] = ']';
        return ok ? 0 : -1;
    }
    if (h[0] == '*' && h[1] == '.')
        start = 2;
    if (start == n)
        return -1;
    for (i = start; i < n; i++) {
        if (h[i] == ':')
            return -2;
        if (!(h[i] == '.' || h[i] == '-' || h[i] == '_' || (h[i] >= '0' && h[i] <= '9') ||
              (h[i] >= 'a' && h[i] <= 'z')))
            return -1;
    }
    return 0;
}

/* Every host that `b` matches is matched by `a` too. */
static int host_covers(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (strcmp(a, "*") == 0 || strcmp(a, b) == 0)
        return 1;
    return a[0] == '*' && a[1] == '.' && lb > la - 1 && strcmp(b + lb - (la - 1), a + 1) == 0;
}

static int route_upstream(struct tbp_loader *L, const config_setting_t *g, struct tbp_route *r)
{
    const config_setting_t *s = config_setting_get_member(g, "upstream");
    const char *v = "";
    size_t i;
    int ret;

    if (s == NULL)
        return tbp_cfg_fail_missing(L, g, "upstream", "missing (the name of an upstream)");
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    for (i = 0; i < L->cfg->n_upstreams; i++) {
        if (strcmp(L->cfg->upstreams[i].name, v) == 0) {
            r->upstream = &L->cfg->upstreams[i];
            return 0;
        }
    }
    tbp_cfg_fail(L, s, "unknown upstream \"%s\" (defined:", v);
    for (i = 0; i < L->cfg->n_upstreams; i++)
        tbp_sb_printf(&L->err, "%s %s", i ? "," : "", L->cfg->upstreams[i].name);
    tbp_sb_printf(&L->err, ")");
    return TB_EINVAL;
}

static int route_host_prefix(struct tbp_loader *L, const config_setting_t *g, struct tbp_route *r)
{
    const config_setting_t *s;
    const char *v = "";
    size_t i;
    int ret;

    r->host = "*";
    r->prefix = "/";
    if ((s = config_setting_get_member(g, "host")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        ret = normalize_host(L->cfg, v, &r->host);
        if (ret == -3)
            return tbp_cfg_fail_nomem(L);
        if (ret == -2)
            return tbp_cfg_fail(L, s, "host \"%s\" must not include a port", v);
        if (ret < 0)
            return tbp_cfg_fail(L, s, "bad host \"%s\" (want \"*\", \"*.example.com\" or a name)",
                                v);
    }
    if ((s = config_setting_get_member(g, "prefix")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &r->prefix)) < 0)
            return ret;
        if (r->prefix[0] != '/')
            return tbp_cfg_fail(L, s, "prefix \"%s\" must start with '/'", r->prefix);
        for (i = 0; r->prefix[i] != '\0'; i++)
            if ((unsigned char)r->prefix[i] <= ' ' || r->prefix[i] == '?' || r->prefix[i] == '#' ||
                r->prefix[i] == 0x7f)
                return tbp_cfg_fail(L, s, "prefix \"%s\": no spaces, controls, '?' or '#'",
                                    r->prefix);
        if ((r->prefix = tbp_cfg_strdup(L->cfg, r->prefix)) == NULL)
            return tbp_cfg_fail_nomem(L);
    }
    r->prefix_len = strlen(r->prefix);
    return 0;
}

/* --- tokens ------------------------------------------------------------------------------- */

/* RFC 7230 tchar: what cookie names (RFC 6265 "token") and header field names are made of. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A non-empty token. */
static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

static int name_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (tbp_cfg_lower(*a) != tbp_cfg_lower(*b))
            return 0;
    return *a == *b;
}

/*
 * Headers the proxy sets, strips or rewrites itself: a route's sub_header may not be one of
 * them (the origin would get a value the proxy did not mean, or lose one it needs).
 */
static const char *const managed_headers[] = {
    /* Token Binding */
    "token-binding", "sec-token-binding", "sec-token-binding-context",
    "sec-provided-token-binding-id", "sec-referred-token-binding-id", "sec-other-token-binding-id",
    "include-referer-token-binding-id",
    /* hop-by-hop (RFC 7230 section 6.1, and the usual extras) */
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authenticate", "proxy-authorization",
    /* framing, routing, credentials */
    "host", "content-length", "cookie", "authorization",
    /* forwarding information the proxy adds */
    "x-forwarded-for", "x-forwarded-proto", "forwarded", NULL};

static int is_managed_header(const char *name)
{
    size_t i;

    for (i = 0; managed_headers[i] != NULL; i++)
        if (name_ieq(name, managed_headers[i]))
            return 1;
    return 0;
}

/* For messages (a printf format: '%' doubled). */
#define TOKEN_HINT "letters, digits and !#$%%&'*+-.^_`|~"

/* --- cookie_keys (top level) -------------------------------------------------------------- */

static void free_keyring(void *p)
{
    tb_cookie_keyring_free(p);
}

static void free_jwt_keys(void *p)
{
    tb_jwt_keys_free(p);
}

int tbp_cfg_parse_cookie_keys(struct tbp_loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "cookie_keys");
    struct tb_cookie_keyring *kr = NULL;
    char msg[LIB_ERRLEN] = "";
    const char *path;
    int ret;

    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_file(L, s, &path)) < 0)
        return ret;
    ret = tb_cookie_keyring_load(path, &kr, msg, sizeof(msg));
    if (ret == TB_ENOMEM)
        return tbp_cfg_fail_nomem(L);
    if (ret < 0)
        return tbp_cfg_fail(L, s, "%s", msg[0] != '\0' ? msg : tb_strerror(ret));
    if (tbp_cfg_adopt(L->cfg, kr, free_keyring) < 0)
        return tbp_cfg_fail_nomem(L);
    L->cfg->cookie_keys = kr;
    return 0;
}

/* --- bound cookies ------------------------------------------------------------------------ */

/* `bind_cookies = "*"`, `[ "*" ]` or `[ "name", ... ]`. */
static int route_bind_cookies(struct tbp_loader *L, const config_setting_t *g, struct tbp_route *r)
{
    const config_setting_t *s = config_setting_get_member(g, "bind_cookies");
    const char **names;
    int i, j, n, ret;

    if (s == NULL)
        return 0;
    if (L->cfg->cookie_keys == NULL)
        return tbp_cfg_fail(L, s,
                            "needs the top-level cookie_keys (the key file cookies are bound "
                            "with)");
    if (!L->cfg->tb.enabled)
        return tbp_cfg_fail(L, s,
                            "needs token_binding.enabled = true (cookies are bound to the "
                            "client's Token Binding ID)");
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        if (strcmp(config_setting_get_string(s), "*") != 0)
            return tbp_cfg_fail(L, s,
                                "expected \"*\" (every cookie) or a list of cookie names "
                                "[ \"session\", ... ]");
        r->bind_all_cookies = 1;
        return 0;
    }
    if ((ret = tbp_cfg_expect_string_list(L, s, TBP_MAX_BIND_COOKIES, 0)) < 0)
        return ret;
    n = config_setting_length(s);
    if ((names = tbp_cfg_alloc(L->cfg, (size_t)n * sizeof(*names))) == NULL)
        return tbp_cfg_fail_nomem(L);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (strcmp(v, "*") == 0) {
            if (n > 1)
                return tbp_cfg_fail(L, e, "\"*\" (every cookie) must be the only entry");
            r->bind_all_cookies = 1;
            return 0;
        }
        if (!is_token(v))
            return tbp_cfg_fail(L, e, "bad cookie name \"%s\" (a token: " TOKEN_HINT ")", v);
        for (j = 0; j < i; j++)
            if (strcmp(names[j], v) == 0)
                return tbp_cfg_fail(L, e, "duplicate cookie name \"%s\" (also bind_cookies[%d])", v,
                                    j);
        if ((names[i] = tbp_cfg_strdup(L->cfg, v)) == NULL)
            return tbp_cfg_fail_nomem(L);
    }
    r->bind_cookies = names;
    r->n_bind_cookies = (size_t)n;
    return 0;
}

static int route_unbound_cookies(struct tbp_loader *L, const config_setting_t *g,
                                 struct tbp_route *r)
{
    const config_setting_t *s = config_setting_get_member(g, "unbound_cookies");
    const char *v = "";
    int ret;

    r->unbound_cookies = TBP_UNBOUND_DROP;
    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (r->n_bind_cookies == 0 && !r->bind_all_cookies)
        return tbp_cfg_fail(L, s, "only meaningful with bind_cookies on the same route");
    if (strcmp(v, "drop") == 0)
        r->unbound_cookies = TBP_UNBOUND_DROP;
    else if (strcmp(v, "pass") == 0)
        r->unbound_cookies = TBP_UNBOUND_PASS;
    else
        return tbp_cfg_fail(L, s, "unknown policy \"%s\" (known: drop, pass)", v);
    return 0;
}

/* --- jwt ---------------------------------------------------------------------------------- */

/* `from = "authorization" | "cookie:NAME"` (default "authorization"). */
static int jwt_from(struct tbp_loader *L, const config_setting_t *g, struct tbp_jwt_route *j)
{
    const config_setting_t *s = config_setting_get_member(g, "from");
    const char *v = "";
    int ret;

    j->from = TBP_JWT_FROM_AUTHORIZATION;
    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (strcmp(v, "authorization") == 0)
        return 0;
    if (strncmp(v, "cookie:", 7) != 0)
        return tbp_cfg_fail(L, s,
                            "unknown source \"%s\" (known: \"authorization\", \"cookie:NAME\")", v);
    if (!is_token(v + 7))
        return tbp_cfg_fail(L, s, "bad cookie name \"%s\" (a token: " TOKEN_HINT ")", v + 7);
    j->from = TBP_JWT_FROM_COOKIE;
    if ((j->cookie = tbp_cfg_strdup(L->cfg, v + 7)) == NULL)
        return tbp_cfg_fail_nomem(L);
    return 0;
}

/*
 * 1 when the file starts like a PEM document (within its first KiB). A public key's PEM bytes
 * used as an HMAC secret are the algorithm-confusion trap in configuration form: anyone holding
 * the public key could forge tokens. The secret loader would take them (any 32 bytes will do).
 */
static int looks_like_pem(const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return memmem(buf, n, "-----BEGIN ", 11) != NULL;
}

/* Exactly one of `keys` (public keys: PEM or JWKS) and `secret` (HMAC), loaded. */
static int jwt_keys(struct tbp_loader *L, const config_setting_t *g, struct tbp_jwt_route *j)
{
    const config_setting_t *pub = config_setting_get_member(g, "keys");
    const config_setting_t *sec = config_setting_get_member(g, "secret");
    const config_setting_t *s = pub != NULL ? pub : sec;
    struct tb_jwt_keys *keys = NULL;
    char msg[LIB_ERRLEN] = "";
    const char *path;
    int ret;

    if (pub != NULL && sec != NULL)
        return tbp_cfg_fail(L, sec,
                            "keys and secret are exclusive (keys: public keys for ES256 / RS256, "
                            "secret: an HMAC secret for HS256)");
    if (s == NULL)
        return tbp_cfg_fail_missing(L, g, "keys",
                                    "missing (keys = \"public.pem\" or a JWKS file, or "
                                    "secret = \"hmac.secret\")");
    if ((ret = tbp_cfg_file(L, s, &path)) < 0)
        return ret;
    if (pub == NULL && looks_like_pem(path))
        return tbp_cfg_fail(L, s,
                            "\"%s\" holds a PEM key, not an HMAC secret (public keys go in "
                            "keys)",
                            config_setting_get_string(s));
    if (pub != NULL)
        ret = tb_jwt_keys_load_public(path, &keys, msg, sizeof(msg));
    else
        ret = tb_jwt_keys_load_secret(path, &keys, msg, sizeof(msg));
    if (ret == TB_ENOMEM)
        return tbp_cfg_fail_nomem(L);
    if (ret < 0)
        return tbp_cfg_fail(L, s, "%s", msg[0] != '\0' ? msg : tb_strerror(ret));
    if (tbp_cfg_adopt(L->cfg, keys, free_jwt_keys) < 0)
        return tbp_cfg_fail_nomem(L);
    j->keys = keys;
    return 0;
}

/* The names of the algorithms in `algs` (bits), ", "-separated, into b. */
static void sb_algs(struct tbp_sbuf *b, unsigned algs)
{
    static const enum tb_jwt_alg all[] = {TB_JWT_ES256, TB_JWT_RS256, TB_JWT_HS256};
    size_t i;
    int first = 1;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (algs & (unsigned)all[i]) {
            tbp_sb_printf(b, "%s%s", first ? "" : ", ", tb_jwt_alg_name(all[i]));
            first = 0;
        }
    }
    if (first)
        tbp_sb_printf(b, "none");
}

/* `algs = [ ... ]`: required, known names, no duplicates, each verifiable by the keys. */
static int jwt_algs(struct tbp_loader *L, const config_setting_t *g, struct tbp_jwt_route *j)
{
    const config_setting_t *s = config_setting_get_member(g, "algs");
    unsigned have = tb_jwt_keys_algs(j->keys);
    int i, n, ret;

    if (s == NULL)
        return tbp_cfg_fail_missing(L, g, "algs",
                                    "missing (the algorithms accepted, for example "
                                    "[ \"ES256\" ])");
    if ((ret = tbp_cfg_expect_string_list(L, s, 8, 0)) < 0)
        return ret;
    n = config_setting_length(s);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        int a;
        if (strcmp(v, "none") == 0)
            return tbp_cfg_fail(L, e, "\"none\" is never accepted (it means an unsigned token)");
        if ((a = tb_jwt_alg_parse(v)) < 0)
            return tbp_cfg_fail(L, e, "unknown algorithm \"%s\" (known: ES256, RS256, HS256)", v);
        if (j->algs & (unsigned)a)
            return tbp_cfg_fail(L, e, "duplicate algorithm \"%s\"", v);
        if (!(have & (unsigned)a)) {
            int pub = config_setting_get_member(g, "keys") != NULL;
            tbp_cfg_fail(L, e, "%s cannot be verified with %s (%s: ", v,
                         pub ? "the public keys in keys" : "the HMAC secret",
                         pub ? "they verify" : "it verifies");
            sb_algs(&L->err, have);
            tbp_sb_printf(&L->err, ")");
            return TB_EINVAL;
        }
        j->algs |= (unsigned)a;
    }
    return 0;
}

/* An optional non-empty string member, copied into the config (NULL when absent). */
static int opt_text(struct tbp_loader *L, const config_setting_t *g, const char *name,
                    const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = "";
    int ret;

    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (v[0] == '\0')
        return tbp_cfg_fail(L, s, "must not be empty (leave it out not to check it)");
    if ((*out = tbp_cfg_strdup(L->cfg, v)) == NULL)
        return tbp_cfg_fail_nomem(L);
    return 0;
}

/* `leeway`, `binding`, `sub_header`. */
static int jwt_options(struct tbp_loader *L, const config_setting_t *g, struct tbp_jwt_route *j)
{
    const config_setting_t *s;
    const char *v = "";
    uint32_t ms = TBP_DEF_JWT_LEEWAY_S * TBP_MS_PER_S;
    int ret;

    if ((ret = tbp_cfg_opt_duration(L, g, "leeway", 0, TBP_MAX_JWT_LEEWAY_S * TBP_MS_PER_S, &ms)) <
        0)
        return ret;
    if (ms % TBP_MS_PER_S != 0)
        return tbp_cfg_fail(L, config_setting_get_member(g, "leeway"),
                            "whole seconds only (got %ums)", (unsigned)ms);
    j->leeway_s = ms / TBP_MS_PER_S;
    if ((s = config_setting_get_member(g, "binding")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        if (strcmp(v, "provided") != 0)
            return tbp_cfg_fail(L, s, "unknown binding \"%s\" (known: provided)", v);
    }
    if ((s = config_setting_get_member(g, "sub_header")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        if (!is_token(v))
            return tbp_cfg_fail(L, s, "bad header name \"%s\" (a token: " TOKEN_HINT ")", v);
        if (is_managed_header(v))
            return tbp_cfg_fail(L, s,
                                "\"%s\" is a header the proxy manages itself (choose another "
                                "name, such as \"X-Auth-Sub\")",
                                v);
        if ((j->sub_header = tbp_cfg_strdup(L->cfg, v)) == NULL)
            return tbp_cfg_fail_nomem(L);
    }
    return 0;
}

static int route_jwt(struct tbp_loader *L, const config_setting_t *g, struct tbp_route *r)
{
    static const char *const known[] = {"from",     "keys",   "secret",  "algs",       "issuer",
                                        "audience", "leeway", "binding", "sub_header", NULL};
    const config_setting_t *s = config_setting_get_member(g, "jwt");
    struct tbp_jwt_route *j;
    int ret;

    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_expect_group(L, s)) < 0 || (ret = tbp_cfg_check_known(L, s, known)) < 0)
        return ret;
    if (!L->cfg->tb.enabled)
        return tbp_cfg_fail(L, s,
                            "needs token_binding.enabled = true (a bound JWT cannot be checked "
                            "without Token Binding)");
    if ((j = tbp_cfg_alloc(L->cfg, sizeof(*j))) == NULL)
        return tbp_cfg_fail_nomem(L);
    if ((ret = jwt_from(L, s, j)) < 0 || (ret = jwt_keys(L, s, j)) < 0 ||
        (ret = jwt_algs(L, s, j)) < 0 || (ret = opt_text(L, s, "issuer", &j->issuer)) < 0 ||
        (ret = opt_text(L, s, "audience", &j->audience)) < 0 || (ret = jwt_options(L, s, j)) < 0)
        return ret;
    r->jwt = j;
    return 0;
}

/* --- route policy, Authentication-Results -------------------------------------------------- */

/* `name = "off" | "optional" | "required"` (default def). */
static int route_policy(struct tbp_loader *L, const config_setting_t *g, const char *name,
                        enum tbp_policy def, enum tbp_policy *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = "";
    int ret;

    *out = def;
    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (strcmp(v, "off") == 0)
        *out = TBP_POLICY_OFF;
    else if (strcmp(v, "optional") == 0)
        *out = TBP_POLICY_OPTIONAL;
    else if (strcmp(v, "required") == 0)
        *out = TBP_POLICY_REQUIRED;
    else
        return tbp_cfg_fail(L, s, "unknown policy \"%s\" (known: off, optional, required)", v);
    if (*out == TBP_POLICY_REQUIRED && strcmp(name, "token_binding") == 0 && !L->cfg->tb.enabled)
        return tbp_cfg_fail(L, s, "required, but token_binding.enabled is false");
    return 0;
}

/* Does any listener ask for client certificates? */
static int any_client_cert(const struct tbp_config *cfg)
{
    size_t i;

    for (i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].tls.client_cert != TBP_CLIENT_CERT_OFF)
            return 1;
    return 0;
}

/* What a route demands of the connection, and what the origin is told about it. */
static int route_policies(struct tbp_loader *L, const config_setting_t *g, struct tbp_route *r)
{
    enum tbp_policy tb_def = L->cfg->tb.require ? TBP_POLICY_REQUIRED : TBP_POLICY_OPTIONAL;
    int ret;

    r->authentication_results = 1;
    if ((ret = route_policy(L, g, "token_binding", tb_def, &r->token_binding)) < 0 ||
        (ret = route_policy(L, g, "client_certificate", TBP_POLICY_OPTIONAL,
                            &r->client_certificate)) < 0 ||
        (ret = tbp_cfg_opt_bool(L, g, "authentication_results", &r->authentication_results)) < 0 ||
        (ret = tbp_cfg_opt_bool(L, g, "token_binding_context", &r->token_binding_context)) < 0)
        return ret;
    if (r->client_certificate == TBP_POLICY_REQUIRED && !any_client_cert(L->cfg))
        return tbp_cfg_fail(L, config_setting_get_member(g, "client_certificate"),
                            "required, but no listener asks for client certificates "
                            "(listen[].tls.client_certificate)");
    if (r->token_binding == TBP_POLICY_OFF &&
        (r->n_bind_cookies > 0 || r->bind_all_cookies || r->jwt != NULL || r->refer_token_binding))
        return tbp_cfg_fail(L, config_setting_get_member(g, "token_binding"),
                            "\"off\", but the route binds cookies or tokens (bind_cookies, jwt, "
                            "refer_token_binding need Token Binding)");
    if (r->token_binding == TBP_POLICY_OFF && r->token_binding_context)
        return tbp_cfg_fail(L, config_setting_get_member(g, "token_binding_context"),
                            "true, but the route's token_binding is \"off\" (the context is "
                            "only sent with a binding)");
    return 0;
}

/* An authserv-id the proxy writes unquoted: 1..255 of [A-Za-z0-9._-], not starting with '.'. */
static int authserv_id_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 255 || s[0] == '.')
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

const char *tbp_cfg_default_authserv_id(struct tbp_config *cfg)
{
    char host[256];

    if (gethostname(host, sizeof(host)) != 0)
        return "tbproxy";
    host[sizeof(host) - 1] = '\0';
    if (!authserv_id_ok(host))
        return "tbproxy";
    return tbp_cfg_strdup(cfg, host);
}

int tbp_cfg_parse_authserv_id(struct tbp_loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "authserv_id");
    const char *v = "";
    int ret;

    if (s == NULL) {
        if ((L->cfg->authserv_id = tbp_cfg_default_authserv_id(L->cfg)) == NULL)
            return tbp_cfg_fail_nomem(L);
        return 0;
    }
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (!authserv_id_ok(v))
        return tbp_cfg_fail(
            L, s, "bad authserv-id \"%s\" (1 to 255 of letters, digits, '.', '-', '_')", v);
    if ((L->cfg->authserv_id = tbp_cfg_strdup(L->cfg, v)) == NULL)
        return tbp_cfg_fail_nomem(L);
    return 0;
}

/* --- routes ------------------------------------------------------------------------------- */

/* The companion-module settings of a route (bound cookies, federation, jwt). */
static int route_companion(struct tbp_loader *L, const config_setting_t *g, struct tbp_route *r)
{
    int ret;

    if ((ret = route_bind_cookies(L, g, r)) < 0 || (ret = route_unbound_cookies(L, g, r)) < 0 ||
        (ret = tbp_cfg_opt_bool(L, g, "refer_token_binding", &r->refer_token_binding)) < 0 ||
        (ret = route_jwt(L, g, r)) < 0)
        return ret;
    return 0;
}

static int parse_route(struct tbp_loader *L, const config_setting_t *list, int idx)
{
    static const char *const known[] = {"host",
                                        "prefix",
                                        "upstream",
                                        "bind_cookies",
                                        "unbound_cookies",
                                        "refer_token_binding",
                                        "jwt",
                                        "max_body_size",
                                        "token_binding",
                                        "client_certificate",
                                        "authentication_results",
                                        "token_binding_context",
                                        NULL};
    const config_setting_t *g = config_setting_get_elem(list, (unsigned)idx);
    struct tbp_route *r = &L->cfg->routes[idx];
    int j, ret;

    r->max_body_size = L->cfg->limits.max_body_size;
    if ((ret = tbp_cfg_check_known(L, g, known)) < 0 || (ret = route_host_prefix(L, g, r)) < 0 ||
        (ret = route_upstream(L, g, r)) < 0 ||
        (ret = tbp_cfg_opt_size(L, g, "max_body_size", &r->max_body_size)) < 0 ||
        (ret = route_companion(L, g, r)) < 0 || (ret = route_policies(L, g, r)) < 0)
        return ret;
    for (j = 0; j < idx; j++) {
        const struct tbp_route *o = &L->cfg->routes[j];
        if (host_covers(o->host, r->host) && strncmp(r->prefix, o->prefix, o->prefix_len) == 0)
            return tbp_cfg_fail(
                L, g,
                "never matches: routes[%d] (line %u, host \"%s\", prefix \"%s\") comes "
                "first and matches every request this one would",
                j, config_setting_source_line(config_setting_get_elem(list, (unsigned)j)), o->host,
                o->prefix);
    }
    return 0;
}

int tbp_cfg_parse_routes(struct tbp_loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "routes");
    int i, n, ret;

    if (s == NULL)
        return tbp_cfg_fail_missing(L, root, "routes", "missing (at least one route is required)");
    if ((ret = tbp_cfg_expect_group_list(L, s, TBP_MAX_ROUTES, "route")) < 0)
        return ret;
    n = config_setting_length(s);
    if ((L->cfg->routes = tbp_cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_route))) == NULL)
        return tbp_cfg_fail_nomem(L);
    for (i = 0; i < n; i++) {
        if ((ret = parse_route(L, s, i)) < 0)
            return ret;
        L->cfg->n_routes++;
    }
    return 0;
}
