/*
 * Configuration: libconfig file or quick mode → immutable struct tbp_config (see config.h).
 *
 * Loading is one pass over the libconfig tree, section by section, into a zeroed config that
 * already holds every default. Each section first rejects members it does not know (a typo must
 * never be silently ignored), then reads its members with typed helpers that check type and
 * range (config_read.c). The first problem stops the load; its message is built by
 * tbp_cfg_fail(), which prefixes the file, the line and the setting path computed from the
 * libconfig tree, so every check only says what is wrong. Cross-checks (duplicate listeners,
 * routes to unknown upstreams, routes that can never match, bound cookies without cookie_keys)
 * run as each item is read, against the items read before it.
 *
 * This file holds the config object, the global sections (workers, timeouts, limits, log,
 * token_binding, listen, upstreams, trusted_proxies, user, admin), loading, quick mode and the
 * queries the workers make; routes and the companion-module settings are in config_route.c, the
 * command line in cli.c.
 *
 * Every allocation the config owns, and every library object it holds (the cookie keyring, the
 * routes' JWT key sets), is recorded in its private `mem` list, so tbp_config_free is one loop
 * whatever stage a failed load reached, and the public structs can point at each other (a route
 * at its upstream) without ownership questions.
 */
#include "config_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "tb/error.h"

/* The HTTP layer's built-in limits are the config's defaults. */
_Static_assert(TBP_DEF_MAX_HEADERS == TBP_MAX_HEADERS_DEFAULT, "max_headers default");
_Static_assert(TBP_DEF_MAX_HEADER_BYTES == TBP_MAX_HEADER_BYTES_DEFAULT, "max_header_bytes");

/* --- memory ------------------------------------------------------------------------------- */

/* Room for one more owned item; 0 or -1. */
static int mem_reserve(struct tbp_config_mem *m)
{
    struct tbp_config_owned *items;
    size_t cap;

    if (m->n < m->cap)
        return 0;
    cap = m->cap ? m->cap * 2 : 32;
    if ((items = realloc(m->items, cap * sizeof(*items))) == NULL)
        return -1;
    m->items = items;
    m->cap = cap;
    return 0;
}

void *tbp_cfg_alloc(struct tbp_config *cfg, size_t size)
{
    struct tbp_config_mem *m = cfg->mem;
    void *p;

    if (mem_reserve(m) < 0 || (p = calloc(1, size ? size : 1)) == NULL)
        return NULL;
    m->items[m->n++] = (struct tbp_config_owned){p, NULL};
    return p;
}

char *tbp_cfg_strdup(struct tbp_config *cfg, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = tbp_cfg_alloc(cfg, n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

int tbp_cfg_adopt(struct tbp_config *cfg, void *p, void (*free_fn)(void *))
{
    struct tbp_config_mem *m = cfg->mem;

    if (mem_reserve(m) < 0) {
        free_fn(p);
        return TB_ENOMEM;
    }
    m->items[m->n++] = (struct tbp_config_owned){p, free_fn};
    return 0;
}

static int parse_addr(const char *s, struct tbp_addr *a);

static void set_defaults(struct tbp_config *c)
{
    c->workers = TBP_DEF_WORKERS;
    c->tb.enabled = TBP_DEF_TB_ENABLED;
    c->tb.versions = TBP_TBV_DRAFT;
    c->tb.n_key_types = 2;
    c->tb.key_types[0] = TB_KP_ECDSAP256;
    c->tb.key_types[1] = TB_KP_RSA2048_PKCS1;
    c->tb.n_protocols = 2;
    c->tb.protocols[0] = TBP_PROTO_H2;
    c->tb.protocols[1] = TBP_PROTO_HTTP11;
    c->tb.require = TBP_DEF_TB_REQUIRE;
    c->timeouts.handshake_ms = TBP_DEF_HANDSHAKE_MS;
    c->timeouts.first_request_ms = TBP_DEF_FIRST_REQUEST_MS;
    c->timeouts.header_read_ms = TBP_DEF_HEADER_READ_MS;
    c->timeouts.idle_keepalive_ms = TBP_DEF_IDLE_KEEPALIVE_MS;
    c->timeouts.body_read_ms = TBP_DEF_BODY_READ_MS;
    c->timeouts.upstream_connect_ms = TBP_DEF_UPSTREAM_CONNECT_MS;
    c->timeouts.upstream_read_ms = TBP_DEF_UPSTREAM_READ_MS;
    c->timeouts.shutdown_ms = TBP_DEF_SHUTDOWN_MS;
    c->timeouts.send_ms = TBP_DEF_SEND_MS;
    c->limits.max_header_bytes = TBP_DEF_MAX_HEADER_BYTES;
    c->limits.max_headers = TBP_DEF_MAX_HEADERS;
    c->limits.max_connections_per_worker = TBP_DEF_MAX_CONNECTIONS_PER_WORKER;
    c->limits.max_uri_bytes = TBP_DEF_MAX_URI_BYTES;
    c->limits.max_body_size = TBP_DEF_MAX_BODY_SIZE;
    c->limits.max_concurrent_streams = TBP_DEF_MAX_CONCURRENT_STREAMS;
    c->limits.max_buffer_bytes = TBP_DEF_MAX_BUFFER_BYTES;
    c->log.access = "";
    c->log.error = "-";
    c->log.level = TBP_LOG_INFO;
    c->log.format = TBP_LOG_COMBINED;
    c->user = NULL;
    c->admin.enabled = parse_addr(TBP_DEF_ADMIN_LISTEN, &c->admin.addr) == 0;
}

/* A new config holding the defaults, or NULL. */
static struct tbp_config *config_new(void)
{
    struct tbp_config *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->mem = calloc(1, sizeof(*c->mem));
    if (c->mem == NULL) {
        free(c);
        return NULL;
    }
    set_defaults(c);
    return c;
}

void tbp_config_free(struct tbp_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = cfg->mem->n; i-- > 0;) {
        struct tbp_config_owned *o = &cfg->mem->items[i];
        if (o->free_fn != NULL)
            o->free_fn(o->p);
        else
            free(o->p);
    }
    free(cfg->mem->items);
    free(cfg->mem);
    free(cfg);
}

/* --- addresses, prefixes, files ----------------------------------------------------------- */

/* "1.2.3.4:443" or "[v6]:443", port 1..65535. 0 or -1. */
static int parse_addr(const char *s, struct tbp_addr *a)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon, *h = s, *p;
    size_t hlen;
    unsigned long port = 0;

    memset(a, 0, sizeof(*a));
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    for (p = colon + 1; *p >= '0' && *p <= '9' && port <= 65535; p++)
        port = port * 10 + (unsigned long)(*p - '0');
    if (p == colon + 1 || *p != '\0' || port == 0 || port > 65535 || colon[1] == '0')
        return -1;
    if (*s != '[') {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        a->len = sizeof(*sin);
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(a->text, sizeof(a->text), "%s:%lu", host, port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        a->len = sizeof(*sin6);
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(a->text, sizeof(a->text), "[%s]:%lu", host, port);
    }
    return 0;
}

#define BAD_ADDR_HINT "(want IPv4:port or [IPv6]:port, port 1-65535)"

/* Address bytes and length of a tbp_addr, for comparisons. */
static const uint8_t *addr_bytes(const struct tbp_addr *a, size_t *len, uint16_t *port)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        *len = 4;
        *port = sin->sin_port;
        return (const uint8_t *)&sin->sin_addr;
    }
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
    *len = 16;
    *port = sin6->sin6_port;
    return (const uint8_t *)&sin6->sin6_addr;
}

static int is_zero(const uint8_t *p, size_t n)
{
    while (n > 0 && p[n - 1] == 0)
        n--;
    return n == 0;
}

/* Same address and port, or the same port with one of them the wildcard of the same family. */
static int addr_overlaps(const struct tbp_addr *a, const struct tbp_addr *b)
{
    size_t la, lb;
    uint16_t pa, pb;
    const uint8_t *ba = addr_bytes(a, &la, &pa), *bb = addr_bytes(b, &lb, &pb);

    if (a->ss.ss_family != b->ss.ss_family || pa != pb)
        return 0;
    return memcmp(ba, bb, la) == 0 || is_zero(ba, la) || is_zero(bb, lb);
}

int tbp_addr_equal(const struct tbp_addr *a, const struct tbp_addr *b)
{
    size_t la, lb;
    uint16_t pa, pb;
    const uint8_t *ba, *bb;

    if (a->ss.ss_family != b->ss.ss_family ||
        (a->ss.ss_family != AF_INET && a->ss.ss_family != AF_INET6))
        return 0;
    ba = addr_bytes(a, &la, &pa);
    bb = addr_bytes(b, &lb, &pb);
    return pa == pb && la == lb && memcmp(ba, bb, la) == 0;
}

int tbp_config_listener_find(const struct tbp_config *cfg, const struct tbp_addr *a)
{
    size_t i;

    for (i = 0; i < cfg->n_listeners; i++)
        if (tbp_addr_equal(&cfg->listeners[i].addr, a))
            return (int)i;
    return -1;
}

/* "10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1". 0, -1 (syntax) or -2 (host bits set). */
static int parse_cidr(const char *s, struct tbp_cidr *c)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned long bits = 0, max, i;
    const char *p;

    memset(c, 0, sizeof(*c));
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, c->addr) == 1)
        c->family = AF_INET;
    else if (inet_pton(AF_INET6, host, c->addr) == 1)
        c->family = AF_INET6;
    else
        return -1;
    max = c->family == AF_INET ? 32 : 128;
    bits = max;
    if (slash != NULL) {
        bits = 0;
        for (p = slash + 1; *p >= '0' && *p <= '9' && bits <= max; p++)
            bits = bits * 10 + (unsigned long)(*p - '0');
        if (p == slash + 1 || *p != '\0' || bits > max || (p - slash > 2 && slash[1] == '0'))
            return -1;
    }
    c->prefix_len = (unsigned)bits;
    for (i = bits; i < max; i++) {
        if (c->addr[i / 8] & (0x80u >> (i % 8))) {
            for (; i < max; i++)
                c->addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
            return -2;
        }
    }
    return 0;
}

/* A required PEM file: the member `name` of g, resolved; *out owned by the config. */
static int get_file(struct tbp_loader *L, const config_setting_t *g, const char *name,
                    const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    if (s == NULL)
        return tbp_cfg_fail_missing(L, g, name, "missing (a PEM file is required)");
    return tbp_cfg_file(L, s, out);
}

/* --- sections ----------------------------------------------------------------------------- */

static int parse_workers(struct tbp_loader *L, const config_setting_t *root)
{
    return tbp_cfg_opt_uint(L, root, "workers", 0, 1024, &L->cfg->workers);
}

static int parse_timeouts(struct tbp_loader *L, const config_setting_t *root)
{
    static const char *const known[] = {
        "handshake", "first_request",    "header_read",   "idle_keepalive", "body_read",
        "send",      "upstream_connect", "upstream_read", "shutdown",       NULL};
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {
        {"handshake", offsetof(struct tbp_timeouts, handshake_ms)},
        {"first_request", offsetof(struct tbp_timeouts, first_request_ms)},
        {"header_read", offsetof(struct tbp_timeouts, header_read_ms)},
        {"idle_keepalive", offsetof(struct tbp_timeouts, idle_keepalive_ms)},
        {"body_read", offsetof(struct tbp_timeouts, body_read_ms)},
        {"send", offsetof(struct tbp_timeouts, send_ms)},
        {"upstream_connect", offsetof(struct tbp_timeouts, upstream_connect_ms)},
        {"upstream_read", offsetof(struct tbp_timeouts, upstream_read_ms)},
        {"shutdown", offsetof(struct tbp_timeouts, shutdown_ms)},
    };
    const config_setting_t *g = config_setting_get_member(root, "timeouts");
    size_t i;
    int ret;

    if (g == NULL)
        return 0;
    if ((ret = tbp_cfg_expect_group(L, g)) < 0 || (ret = tbp_cfg_check_known(L, g, known)) < 0)
        return ret;
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        uint32_t *ms = (uint32_t *)((char *)&L->cfg->timeouts + fields[i].off);
        if ((ret = tbp_cfg_opt_duration(L, g, fields[i].name, 1, TBP_MS_PER_DAY, ms)) < 0)
            return ret;
    }
    return 0;
}

static int parse_limits(struct tbp_loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"max_header_bytes",
                                        "max_headers",
                                        "max_connections_per_worker",
                                        "max_uri_bytes",
                                        "max_body_size",
                                        "max_concurrent_streams",
                                        "max_buffer_bytes",
                                        NULL};
    const config_setting_t *g = config_setting_get_member(root, "limits");
    struct tbp_limits *l = &L->cfg->limits;
    int ret;

    if (g == NULL)
        return 0;
    if ((ret = tbp_cfg_expect_group(L, g)) < 0 || (ret = tbp_cfg_check_known(L, g, known)) < 0)
        return ret;
    if ((ret = tbp_cfg_opt_uint(L, g, "max_header_bytes", 1024, 1024 * 1024,
                                &l->max_header_bytes)) < 0 ||
        (ret = tbp_cfg_opt_uint(L, g, "max_headers", 1, 10000, &l->max_headers)) < 0 ||
        (ret = tbp_cfg_opt_uint(L, g, "max_connections_per_worker", 1, 1000000,
                                &l->max_connections_per_worker)) < 0 ||
        (ret = tbp_cfg_opt_uint(L, g, "max_uri_bytes", 64, 1024 * 1024, &l->max_uri_bytes)) < 0 ||
        (ret = tbp_cfg_opt_size(L, g, "max_body_size", &l->max_body_size)) < 0 ||
        (ret = tbp_cfg_opt_uint(L, g, "max_concurrent_streams", 1, 10000,
                                &l->max_concurrent_streams)) < 0 ||
        (ret = tbp_cfg_opt_uint(L, g, "max_buffer_bytes", 16 * 1024, 64 * 1024 * 1024,
                                &l->max_buffer_bytes)) < 0)
        return ret;
    return 0;
}

/* log.access / log.error: "-", "" (access only) or a path resolved against the config dir. */
static int parse_log_target(struct tbp_loader *L, const config_setting_t *g, const char *name,
                            int allow_off, const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = "";
    int ret;

    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (v[0] == '\0' && !allow_off)
        return tbp_cfg_fail(L, s, "must not be empty (\"-\" is standard error)");
    if (v[0] == '\0' || strcmp(v, "-") == 0) {
        *out = v[0] == '\0' ? "" : "-";
        return 0;
    }
    if ((*out = tbp_cfg_resolve_path(L->cfg, L->base_dir, v)) == NULL)
        return tbp_cfg_fail_nomem(L);
    return 0;
}

static int parse_log(struct tbp_loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"access", "error", "level", "format", NULL};
    const config_setting_t *g = config_setting_get_member(root, "log"), *s;
    struct tbp_log_config *lg = &L->cfg->log;
    const char *v = "";
    int ret, i;

    if (g == NULL)
        return 0;
    if ((ret = tbp_cfg_expect_group(L, g)) < 0 || (ret = tbp_cfg_check_known(L, g, known)) < 0 ||
        (ret = parse_log_target(L, g, "access", 1, &lg->access)) < 0 ||
        (ret = parse_log_target(L, g, "error", 0, &lg->error)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "level")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        for (i = TBP_LOG_DEBUG; i <= TBP_LOG_ERROR && strcmp(v, tbp_log_level_name(i)) != 0; i++)
            ;
        if (i > TBP_LOG_ERROR)
            return tbp_cfg_fail(L, s, "unknown level \"%s\" (known: debug, info, warn, error)", v);
        lg->level = (enum tbp_log_level)i;
    }
    if ((s = config_setting_get_member(g, "format")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        if (strcmp(v, "combined") == 0)
            lg->format = TBP_LOG_COMBINED;
        else if (strcmp(v, "json") == 0)
            lg->format = TBP_LOG_JSON;
        else
            return tbp_cfg_fail(L, s, "unknown format \"%s\" (known: combined, json)", v);
    }
    return 0;
}

static int parse_tb_key_types(struct tbp_loader *L, const config_setting_t *s)
{
    struct tbp_tb_config *tb = &L->cfg->tb;
    int i, j, n, ret;

    if ((ret = tbp_cfg_expect_string_list(L, s, 16, 0)) < 0)
        return ret;
    n = config_setting_length(s);
    tb->n_key_types = 0;
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        int kp = tb_key_params_parse(TB_VERSION_DRAFT, v);
        if (kp < 0)
            return tbp_cfg_fail(L, e, "unknown key type \"%s\" (known: p256, rsa2048)", v);
        for (j = 0; j < (int)tb->n_key_types; j++)
            if (tb->key_types[j] == kp)
                return tbp_cfg_fail(L, e, "duplicate key type \"%s\"", v);
        tb->key_types[tb->n_key_types++] = kp;
    }
    return 0;
}

static int parse_tb_protocols(struct tbp_loader *L, const config_setting_t *s)
{
    struct tbp_tb_config *tb = &L->cfg->tb;
    int i, j, n, ret;

    if ((ret = tbp_cfg_expect_string_list(L, s, 16, 0)) < 0)
        return ret;
    n = config_setting_length(s);
    tb->n_protocols = 0;
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        enum tbp_proto p = TBP_PROTO_HTTP11;
        if (strcmp(v, "h2") == 0)
            p = TBP_PROTO_H2;
        else if (strcmp(v, "http/1.1") != 0)
            return tbp_cfg_fail(L, e, "unknown protocol \"%s\" (known: h2, http/1.1)", v);
        for (j = 0; j < (int)tb->n_protocols; j++)
            if (tb->protocols[j] == p)
                return tbp_cfg_fail(L, e, "duplicate protocol \"%s\"", v);
        tb->protocols[tb->n_protocols++] = p;
    }
    return 0;
}

static int parse_tb(struct tbp_loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"enabled",   "version", "key_types",
                                        "protocols", "require", NULL};
    const config_setting_t *g = config_setting_get_member(root, "token_binding"), *s;
    struct tbp_tb_config *tb = &L->cfg->tb;
    const char *v = "";
    int ret;

    if (g == NULL)
        return 0;
    if ((ret = tbp_cfg_expect_group(L, g)) < 0 || (ret = tbp_cfg_check_known(L, g, known)) < 0 ||
        (ret = tbp_cfg_opt_bool(L, g, "enabled", &tb->enabled)) < 0 ||
        (ret = tbp_cfg_opt_bool(L, g, "require", &tb->require)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "version")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        if (tbp_tb_versions_parse(v, &tb->versions) != 0)
            return tbp_cfg_fail(L, s, "unknown version \"%s\" (known: draft, rfc, both)", v);
    }
    if ((s = config_setting_get_member(g, "key_types")) != NULL &&
        (ret = parse_tb_key_types(L, s)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "protocols")) != NULL &&
        (ret = parse_tb_protocols(L, s)) < 0)
        return ret;
    if (tb->require && !tb->enabled)
        return tbp_cfg_fail(L, config_setting_get_member(g, "require"),
                            "require = true needs enabled = true");
    return 0;
}

/*
 * Each element of list (split at any of seps) must be known to OpenSSL: known(ctx, element) is 1
 * (it may set the element on the loader's scratch context). Else "unknown <what> \"element\"".
 */
static int check_each(struct tbp_loader *L, const config_setting_t *s, const char *list,
                      const char *seps, int (*known)(SSL_CTX *, const char *), const char *what)
{
    char *copy, *tok, *save = NULL;
    int ret = 0;

    if (L->ssl == NULL && (L->ssl = SSL_CTX_new(TLS_method())) == NULL)
        return tbp_cfg_fail_nomem(L);
    if ((copy = strdup(list)) == NULL)
        return tbp_cfg_fail_nomem(L);
    for (tok = strtok_r(copy, seps, &save); tok != NULL && ret == 0;
         tok = strtok_r(NULL, seps, &save))
        if (known(L->ssl, tok) != 1)
            ret = tbp_cfg_fail(L, s, "unknown %s \"%s\"", what, tok);
    free(copy);
    ERR_clear_error();
    return ret;
}

/* A cipher string element: an operator (!, -, +, @) or what names a cipher or an alias. */
static int cipher_known(SSL_CTX *ctx, const char *tok)
{
    return strchr("!-+@", tok[0]) != NULL || SSL_CTX_set_cipher_list(ctx, tok) == 1;
}

static int group_known(SSL_CTX *ctx, const char *tok)
{
    return SSL_CTX_set1_groups_list(ctx, tok) == 1;
}

/* Each element of an OpenSSL cipher string must name something, and the result be AEAD only. */
static int check_ciphers(struct tbp_loader *L, const config_setting_t *s, const char *list)
{
    STACK_OF(SSL_CIPHER) * sk;
    int i, ret = check_each(L, s, list, ":, ", cipher_known, "cipher");

    if (ret == 0 && SSL_CTX_set_cipher_list(L->ssl, list) != 1)
        ret = tbp_cfg_fail(L, s, "no usable cipher in \"%s\"", list);
    sk = ret == 0 ? SSL_CTX_get_ciphers(L->ssl) : NULL;
    for (i = 0; sk != NULL && i < sk_SSL_CIPHER_num(sk) && ret == 0; i++)
        if (!SSL_CIPHER_is_aead(sk_SSL_CIPHER_value(sk, i)))
            ret = tbp_cfg_fail(L, s, "cipher \"%s\" is not AEAD (only AEAD ciphers are allowed)",
                               SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i)));
    ERR_clear_error();
    return ret;
}

/* tls.groups: each name known to OpenSSL (X25519, P-256, secp384r1, ffdhe2048, ...). */
static int check_groups(struct tbp_loader *L, const config_setting_t *s, const char *list)
{
    int ret = check_each(L, s, list, ":", group_known, "group");

    if (ret == 0 && SSL_CTX_set1_groups_list(L->ssl, list) != 1)
        ret = tbp_cfg_fail(L, s, "no usable group in \"%s\" (names separated by ':')", list);
    ERR_clear_error();
    return ret;
}

/*
 * tls.client_certificate, client_ca, client_crl. The CA file is required unless the mode is off;
 * neither file may be written with the mode off (a certificate check the proxy does not make
 * must not look configured). The files are only checked for readability here: the TLS context
 * reads them (tbp_tls_new), and a file without a certificate (CRL) is an error there.
 */
static int parse_client_cert(struct tbp_loader *L, const config_setting_t *g,
                             struct tbp_tls_config *tls)
{
    const config_setting_t *mode = config_setting_get_member(g, "client_certificate");
    const config_setting_t *ca = config_setting_get_member(g, "client_ca");
    const config_setting_t *crl = config_setting_get_member(g, "client_crl");
    const char *v = "";
    int ret;

    tls->client_cert = TBP_CLIENT_CERT_OFF;
    if (mode != NULL) {
        if ((ret = tbp_cfg_get_string(L, mode, &v)) < 0)
            return ret;
        if (tbp_client_cert_parse(v, &tls->client_cert) != 0)
            return tbp_cfg_fail(L, mode, "unknown value \"%s\" (known: off, optional, required)",
                                v);
    }
    if (tls->client_cert == TBP_CLIENT_CERT_OFF) {
        if (ca != NULL || crl != NULL)
            return tbp_cfg_fail(L, ca != NULL ? ca : crl,
                                "needs client_certificate = \"optional\" or \"required\"");
        return 0;
    }
    if (ca == NULL)
        return tbp_cfg_fail_missing(
            L, g, "client_ca",
            "missing (client_certificate = \"%s\" needs the CA file client certificates are "
            "verified against)",
            tbp_client_cert_name(tls->client_cert));
    if ((ret = tbp_cfg_file(L, ca, &tls->client_ca)) < 0)
        return ret;
    if (crl != NULL && (ret = tbp_cfg_file(L, crl, &tls->client_crl)) < 0)
        return ret;
    return 0;
}

/* The optional string g.name, checked by check, copied into the configuration at *out (left
 * alone when absent). */
static int opt_openssl_list(struct tbp_loader *L, const config_setting_t *g, const char *name,
                            int (*check)(struct tbp_loader *, const config_setting_t *,
                                         const char *),
                            const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = NULL;
    int ret;

    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0 || (ret = check(L, s, v)) < 0)
        return ret;
    if ((*out = tbp_cfg_strdup(L->cfg, v)) == NULL)
        return tbp_cfg_fail_nomem(L);
    return 0;
}

static int parse_tls(struct tbp_loader *L, const config_setting_t *lst, struct tbp_tls_config *tls)
{
    static const char *const known[] = {"cert",
                                        "key",
                                        "ciphers",
                                        "groups",
                                        "tickets",
                                        "ticket_key_rotation",
                                        "client_certificate",
                                        "client_ca",
                                        "client_crl",
                                        NULL};
    const config_setting_t *g = config_setting_get_member(lst, "tls");
    int ret;

    tls->ciphers = TBP_DEF_CIPHERS;
    tls->groups = TBP_DEF_GROUPS;
    tls->tickets = TBP_DEF_TICKETS;
    tls->ticket_key_rotation_ms = TBP_DEF_TICKET_KEY_ROTATION_MS;
    if (g == NULL)
        return tbp_cfg_fail_missing(L, lst, "tls", "missing (cert and key are required)");
    if ((ret = tbp_cfg_expect_group(L, g)) < 0 || (ret = tbp_cfg_check_known(L, g, known)) < 0 ||
        (ret = get_file(L, g, "cert", &tls->cert)) < 0 ||
        (ret = get_file(L, g, "key", &tls->key)) < 0 ||
        (ret = tbp_cfg_opt_bool(L, g, "tickets", &tls->tickets)) < 0 ||
        (ret = tbp_cfg_opt_duration(L, g, "ticket_key_rotation", TBP_MS_PER_S, 7 * TBP_MS_PER_DAY,
                                    &tls->ticket_key_rotation_ms)) < 0 ||
        (ret = parse_client_cert(L, g, tls)) < 0)
        return ret;
    if ((ret = opt_openssl_list(L, g, "ciphers", check_ciphers, &tls->ciphers)) < 0 ||
        (ret = opt_openssl_list(L, g, "groups", check_groups, &tls->groups)) < 0)
        return ret;
    return 0;
}

static int parse_listener(struct tbp_loader *L, const config_setting_t *list, int idx)
{
    static const char *const known[] = {"address", "token_binding_version", "tls", NULL};
    const config_setting_t *g = config_setting_get_elem(list, (unsigned)idx), *s;
    struct tbp_listener *l = &L->cfg->listeners[idx];
    const char *v = "";
    int j, ret;

    if ((ret = tbp_cfg_check_known(L, g, known)) < 0)
        return ret;
    l->tb_versions = L->cfg->tb.versions; /* token_binding is read before listen */
    if ((s = config_setting_get_member(g, "token_binding_version")) != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        if (tbp_tb_versions_parse(v, &l->tb_versions) != 0)
            return tbp_cfg_fail(L, s, "unknown version \"%s\" (known: draft, rfc, both)", v);
        if (!L->cfg->tb.enabled)
            return tbp_cfg_fail(L, s, "needs token_binding.enabled = true");
    }
    if ((s = config_setting_get_member(g, "address")) == NULL)
        return tbp_cfg_fail_missing(L, g, "address", "missing (for example \"127.0.0.1:8443\")");
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (parse_addr(v, &l->addr) < 0)
        return tbp_cfg_fail(L, s, "bad address \"%s\" " BAD_ADDR_HINT, v);
    for (j = 0; j < idx; j++) {
        if (addr_overlaps(&L->cfg->listeners[j].addr, &l->addr)) {
            const config_setting_t *o = config_setting_get_elem(list, (unsigned)j);
            return tbp_cfg_fail(
                L, s, "%s conflicts with listen[%d] %s (line %u)", l->addr.text, j,
                L->cfg->listeners[j].addr.text,
                config_setting_source_line(config_setting_get_member(o, "address")));
        }
    }
    return parse_tls(L, g, &l->tls);
}

static int parse_listen(struct tbp_loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "listen");
    int i, n, ret;

    if (s == NULL)
        return tbp_cfg_fail_missing(L, root, "listen",
                                    "missing (at least one listener is required)");
    if ((ret = tbp_cfg_expect_group_list(L, s, TBP_MAX_LISTENERS, "listener")) < 0)
        return ret;
    n = config_setting_length(s);
    L->cfg->listeners = tbp_cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_listener));
    if (L->cfg->listeners == NULL)
        return tbp_cfg_fail_nomem(L);
    for (i = 0; i < n; i++) {
        if ((ret = parse_listener(L, s, i)) < 0)
            return ret;
        L->cfg->n_listeners++;
    }
    return 0;
}

static int parse_servers(struct tbp_loader *L, const config_setting_t *g, struct tbp_upstream *u)
{
    const config_setting_t *s = config_setting_get_member(g, "servers");
    int i, j, n, ret;

    if (s == NULL)
        return tbp_cfg_fail_missing(L, g, "servers",
                                    "missing (for example [ \"127.0.0.1:8080\" ])");
    if ((ret = tbp_cfg_expect_string_list(L, s, TBP_MAX_SERVERS, 0)) < 0)
        return ret;
    n = config_setting_length(s);
    if ((u->servers = tbp_cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_addr))) == NULL)
        return tbp_cfg_fail_nomem(L);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (parse_addr(v, &u->servers[i]) < 0)
            return tbp_cfg_fail(L, e, "bad address \"%s\" " BAD_ADDR_HINT, v);
        for (j = 0; j < i; j++)
            if (tbp_addr_equal(&u->servers[j], &u->servers[i]))
                return tbp_cfg_fail(L, e, "duplicate server %s (also servers[%d])",
                                    u->servers[i].text, j);
        u->n_servers++;
    }
    return 0;
}

static int valid_name(const char *s)
{
    for (; *s != '\0'; s++)
        if (!(*s == '_' || *s == '-' || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
              (*s >= 'A' && *s <= 'Z')))
            return 0;
    return 1;
}

static int parse_upstream(struct tbp_loader *L, const config_setting_t *g, struct tbp_upstream *u)
{
    static const char *const known[] = {"servers",  "connect_timeout", "read_timeout",
                                        "max_idle", "fail_timeout",    NULL};
    const struct tbp_timeouts *t = &L->cfg->timeouts;
    int ret;

    if (!valid_name(config_setting_name(g)))
        return tbp_cfg_fail(L, g, "bad upstream name (letters, digits, '_' and '-' only)");
    if ((ret = tbp_cfg_expect_group(L, g)) < 0 || (ret = tbp_cfg_check_known(L, g, known)) < 0)
        return ret;
    if ((u->name = tbp_cfg_strdup(L->cfg, config_setting_name(g))) == NULL)
        return tbp_cfg_fail_nomem(L);
    u->connect_timeout_ms = t->upstream_connect_ms;
    u->read_timeout_ms = t->upstream_read_ms;
    u->max_idle = TBP_DEF_MAX_IDLE;
    u->fail_timeout_ms = TBP_DEF_FAIL_TIMEOUT_MS;
    if ((ret = parse_servers(L, g, u)) < 0 ||
        (ret = tbp_cfg_opt_duration(L, g, "connect_timeout", 1, TBP_MS_PER_DAY,
                                    &u->connect_timeout_ms)) < 0 ||
        (ret = tbp_cfg_opt_duration(L, g, "read_timeout", 1, TBP_MS_PER_DAY, &u->read_timeout_ms)) <
            0 ||
        (ret = tbp_cfg_opt_uint(L, g, "max_idle", 0, 100000, &u->max_idle)) < 0 ||
        (ret = tbp_cfg_opt_duration(L, g, "fail_timeout", 0, TBP_MS_PER_DAY, &u->fail_timeout_ms)) <
            0)
        return ret;
    return 0;
}

static int parse_upstreams(struct tbp_loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "upstreams");
    int i, n, ret;

    if (s == NULL)
        return tbp_cfg_fail_missing(L, root, "upstreams",
                                    "missing (at least one upstream is required)");
    if ((ret = tbp_cfg_expect_group(L, s)) < 0)
        return ret;
    n = config_setting_length(s);
    if (n == 0)
        return tbp_cfg_fail(L, s, "at least one upstream is required");
    if (n > TBP_MAX_UPSTREAMS)
        return tbp_cfg_fail(L, s, "too many entries (%d, at most %d)", n, TBP_MAX_UPSTREAMS);
    L->cfg->upstreams = tbp_cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_upstream));
    if (L->cfg->upstreams == NULL)
        return tbp_cfg_fail_nomem(L);
    for (i = 0; i < n; i++) {
        ret = parse_upstream(L, config_setting_get_elem(s, (unsigned)i), &L->cfg->upstreams[i]);
        if (ret < 0)
            return ret;
        L->cfg->n_upstreams++;
    }
    return 0;
}

static int parse_trusted(struct tbp_loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "trusted_proxies");
    char net[INET6_ADDRSTRLEN];
    int i, n, ret;

    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_expect_string_list(L, s, TBP_MAX_TRUSTED, 1)) < 0)
        return ret;
    n = config_setting_length(s);
    if ((L->cfg->trusted = tbp_cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_cidr))) == NULL)
        return tbp_cfg_fail_nomem(L);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        struct tbp_cidr *c = &L->cfg->trusted[i];
        ret = parse_cidr(v, c);
        if (ret == -1)
            return tbp_cfg_fail(L, e,
                                "bad address or prefix \"%s\" (want \"10.0.0.0/8\", \"127.0.0.1\", "
                                "\"fd00::/8\", \"::1\")",
                                v);
        if (ret == -2) {
            inet_ntop(c->family, c->addr, net, sizeof(net));
            return tbp_cfg_fail(L, e, "\"%s\" has bits set beyond /%u (did you mean \"%s/%u\"?)", v,
                                c->prefix_len, net, c->prefix_len);
        }
        L->cfg->n_trusted++;
    }
    return 0;
}

/*
 * user = "name": must exist now, so that `tbproxy -t` finds a typo; main switches to it after
 * binding (and refuses to start when not root).
 */
static int parse_user(struct tbp_loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "user");
    struct passwd pw, *found = NULL;
    char buf[16384];
    const char *v;
    int ret, e;

    if (s == NULL)
        return 0;
    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (v[0] == '\0')
        return tbp_cfg_fail(L, s,
                            "must not be empty (leave it out to keep the user tbproxy "
                            "starts as)");
    e = getpwnam_r(v, &pw, buf, sizeof(buf), &found);
    if (found == NULL && e != 0 && e != ENOENT && e != ESRCH)
        return tbp_cfg_fail(L, s, "cannot look up user \"%s\": %s", v, strerror(e));
    if (found == NULL)
        return tbp_cfg_fail(L, s, "no such user \"%s\"", v);
    if ((L->cfg->user = tbp_cfg_strdup(L->cfg, v)) == NULL)
        return tbp_cfg_fail_nomem(L);
    return 0;
}

/* The index of the first listener that overlaps a, or -1. */
static int listener_overlapping(const struct tbp_config *c, const struct tbp_addr *a)
{
    size_t i;

    for (i = 0; i < c->n_listeners; i++)
        if (addr_overlaps(&c->listeners[i].addr, a))
            return (int)i;
    return -1;
}

/*
 * admin = { listen = "127.0.0.1:9901"; }: "" disables it. It must not overlap a listener,
 * including when left at its default (then the listener's address is the error).
 */
static int parse_admin(struct tbp_loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"listen", NULL};
    const config_setting_t *g = config_setting_get_member(root, "admin"), *s = NULL;
    struct tbp_admin_config *a = &L->cfg->admin;
    const char *v;
    int ret, i;

    if (g != NULL) {
        if ((ret = tbp_cfg_expect_group(L, g)) < 0 || (ret = tbp_cfg_check_known(L, g, known)) < 0)
            return ret;
        s = config_setting_get_member(g, "listen");
    }
    if (s != NULL) {
        if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
            return ret;
        if (v[0] == '\0') {
            a->enabled = 0;
            return 0;
        }
        if (parse_addr(v, &a->addr) < 0)
            return tbp_cfg_fail(L, s, "bad address \"%s\" " BAD_ADDR_HINT ", or \"\" for none", v);
        a->enabled = 1;
    }
    if (!a->enabled || (i = listener_overlapping(L->cfg, &a->addr)) < 0)
        return 0;
    if (s != NULL)
        return tbp_cfg_fail(L, s, "%s overlaps listen[%d] (%s)", a->addr.text, i,
                            L->cfg->listeners[i].addr.text);
    s = config_setting_get_member(
        config_setting_get_elem(config_setting_get_member(root, "listen"), (unsigned)i), "address");
    return tbp_cfg_fail(L, s,
                        "%s overlaps the admin server's default address %s (set admin.listen "
                        "to another address, or \"\" for none)",
                        L->cfg->listeners[i].addr.text, TBP_DEF_ADMIN_LISTEN);
}

static unsigned online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}

/* --- loading ------------------------------------------------------------------------------ */

static int load_tree(struct tbp_loader *L, const config_setting_t *root)
{
    static const char *const known[] = {
        "workers",  "listen", "token_binding",   "upstreams", "routes",
        "timeouts", "limits", "trusted_proxies", "log",       "cookie_keys",
        "user",     "admin",  "authserv_id",     NULL};
    int ret;

    if ((ret = tbp_cfg_check_known(L, root, known)) < 0 || (ret = parse_workers(L, root)) < 0 ||
        (ret = parse_timeouts(L, root)) < 0 || (ret = parse_limits(L, root)) < 0 ||
        (ret = parse_log(L, root)) < 0 || (ret = parse_tb(L, root)) < 0 ||
        (ret = parse_listen(L, root)) < 0 || (ret = parse_upstreams(L, root)) < 0 ||
        (ret = tbp_cfg_parse_cookie_keys(L, root)) < 0 ||
        (ret = tbp_cfg_parse_routes(L, root)) < 0 || (ret = parse_trusted(L, root)) < 0 ||
        (ret = parse_user(L, root)) < 0 || (ret = parse_admin(L, root)) < 0 ||
        (ret = tbp_cfg_parse_authserv_id(L, root)) < 0)
        return ret;
    if (L->cfg->workers == 0)
        L->cfg->workers = online_cores();
    return 0;
}

/* The absolute directory of `path` (which exists), malloc'd, or NULL with errno set. */
static char *abs_dir(const char *path, char **abs_path)
{
    char *full = realpath(path, NULL), *dir, *slash;

    *abs_path = full;
    if (full == NULL)
        return NULL;
    if ((dir = strdup(full)) == NULL)
        return NULL;
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    return dir;
}

int tbp_config_load(const char *path, struct tbp_config **out, char *err, size_t errlen)
{
    struct tbp_loader L = {.file = path, .err = tbp_sb_make(err, errlen)};
    char *dir = NULL, *full = NULL;
    config_t cf;
    int ret, fe;

    *out = NULL;
    if ((fe = tbp_cfg_file_check(path)) != 0) {
        tbp_sb_printf(&L.err, "%s: cannot read: %s", path, tbp_cfg_file_check_str(fe));
        return TB_EINVAL;
    }
    if ((L.cfg = config_new()) == NULL)
        return tbp_cfg_fail_nomem(&L);
    if ((dir = abs_dir(path, &full)) == NULL) {
        tbp_sb_printf(&L.err, "%s: %s", path, strerror(errno));
        free(full);
        tbp_config_free(L.cfg);
        return TB_EINVAL;
    }
    L.base_dir = dir;
    config_init(&cf);
    config_set_include_dir(&cf, dir);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        tbp_sb_file(&L.err, &L, config_error_file(&cf) ? config_error_file(&cf) : path);
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
            tbp_sb_printf(&L.err, ": cannot read");
        else
            tbp_sb_printf(&L.err, ":%d: %s", config_error_line(&cf), config_error_text(&cf));
        ret = TB_EINVAL;
    } else if ((L.cfg->path = tbp_cfg_strdup(L.cfg, full)) == NULL) {
        ret = tbp_cfg_fail_nomem(&L);
    } else {
        ret = load_tree(&L, config_root_setting(&cf));
    }
    config_destroy(&cf);
    SSL_CTX_free(L.ssl);
    free(dir);
    free(full);
    if (ret < 0) {
        tbp_config_free(L.cfg);
        return ret;
    }
    *out = L.cfg;
    return 0;
}

/* --- quick mode --------------------------------------------------------------------------- */

/* A quick-mode file argument, absolute against the current directory, checked readable. */
static int quick_file(struct tbp_config *c, const char *opt, const char *v, const char **out,
                      struct tbp_sbuf *e)
{
    char cwd[PATH_MAX];
    int fe;

    if (v == NULL || v[0] == '\0') {
        tbp_sb_printf(e, "%s: missing", opt);
        return TB_EINVAL;
    }
    if ((fe = tbp_cfg_file_check(v)) != 0) {
        tbp_sb_printf(e, "%s: cannot read \"%s\": %s", opt, v, tbp_cfg_file_check_str(fe));
        return TB_EINVAL;
    }
    if (v[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
        tbp_sb_printf(e, "%s: cannot resolve \"%s\": %s", opt, v, strerror(errno));
        return TB_EINVAL;
    }
    if ((*out = tbp_cfg_resolve_path(c, v[0] == '/' ? "/" : cwd, v)) == NULL) {
        tbp_sb_printf(e, "out of memory");
        return TB_ENOMEM;
    }
    return 0;
}

static int quick_addr(const char *opt, const char *v, struct tbp_addr *a, struct tbp_sbuf *e)
{
    if (v == NULL || v[0] == '\0') {
        tbp_sb_printf(e, "%s: missing", opt);
        return TB_EINVAL;
    }
    if (parse_addr(v, a) < 0) {
        tbp_sb_printf(e, "%s: bad address \"%s\" " BAD_ADDR_HINT, opt, v);
        return TB_EINVAL;
    }
    return 0;
}

int tbp_config_quick(const char *listen, const char *upstream, const char *cert, const char *key,
                     struct tbp_config **out, char *err, size_t errlen)
{
    struct tbp_sbuf e = tbp_sb_make(err, errlen);
    struct tbp_config *c = config_new();
    struct tbp_listener *l;
    struct tbp_upstream *u;
    int ret = TB_ENOMEM;

    *out = NULL;
    if (c == NULL || (l = c->listeners = tbp_cfg_alloc(c, sizeof(*l))) == NULL ||
        (u = c->upstreams = tbp_cfg_alloc(c, sizeof(*u))) == NULL ||
        (u->servers = tbp_cfg_alloc(c, sizeof(*u->servers))) == NULL ||
        (c->routes = tbp_cfg_alloc(c, sizeof(*c->routes))) == NULL) {
        tbp_sb_printf(&e, "out of memory");
        goto Exit;
    }
    if ((ret = quick_addr("--listen", listen, &l->addr, &e)) < 0 ||
        (ret = quick_addr("--upstream", upstream, &u->servers[0], &e)) < 0 ||
        (ret = quick_file(c, "--cert", cert, &l->tls.cert, &e)) < 0 ||
        (ret = quick_file(c, "--key", key, &l->tls.key, &e)) < 0)
        goto Exit;
    l->tls.ciphers = TBP_DEF_CIPHERS;
    l->tls.groups = TBP_DEF_GROUPS;
    l->tls.tickets = 1;
    l->tb_versions = c->tb.versions;
    l->tls.ticket_key_rotation_ms = TBP_DEF_TICKET_KEY_ROTATION_MS;
    c->n_listeners = 1;
    u->name = "default";
    u->n_servers = 1;
    u->connect_timeout_ms = c->timeouts.upstream_connect_ms;
    u->read_timeout_ms = c->timeouts.upstream_read_ms;
    u->max_idle = TBP_DEF_MAX_IDLE;
    u->fail_timeout_ms = TBP_DEF_FAIL_TIMEOUT_MS;
    c->n_upstreams = 1;
    c->routes[0] = (struct tbp_route){.host = "*",
                                      .prefix = "/",
                                      .prefix_len = 1,
                                      .upstream = u,
                                      .max_body_size = c->limits.max_body_size,
                                      .token_binding = TBP_POLICY_OPTIONAL,
                                      .client_certificate = TBP_POLICY_OPTIONAL,
                                      .authentication_results = 1};
    c->n_routes = 1;
    if ((c->authserv_id = tbp_cfg_default_authserv_id(c)) == NULL) {
        tbp_sb_printf(&e, "out of memory");
        ret = TB_ENOMEM;
        goto Exit;
    }
    c->workers = online_cores();
    *out = c;
    c = NULL;
    ret = 0;
Exit:
    tbp_config_free(c);
    return ret;
}

int tbp_config_quick_admin(struct tbp_config *cfg, const char *addr, char *err, size_t errlen)
{
    struct tbp_sbuf e = tbp_sb_make(err, errlen);
    struct tbp_addr a;
    int i;

    if (addr[0] == '\0') {
        cfg->admin.enabled = 0;
        return 0;
    }
    if (parse_addr(addr, &a) < 0) {
        tbp_sb_printf(&e, "--admin: bad address \"%s\" " BAD_ADDR_HINT ", or \"\" for none", addr);
        return TB_EINVAL;
    }
    if ((i = listener_overlapping(cfg, &a)) >= 0) {
        tbp_sb_printf(&e, "--admin: %s overlaps the listener %s", a.text,
                      cfg->listeners[i].addr.text);
        return TB_EINVAL;
    }
    cfg->admin.enabled = 1;
    cfg->admin.addr = a;
    return 0;
}

int tbp_config_quick_client_cert(struct tbp_config *cfg, const char *mode, const char *ca,
                                 const char *crl, char *err, size_t errlen)
{
    struct tbp_sbuf e = tbp_sb_make(err, errlen);
    enum tbp_client_cert m = TBP_CLIENT_CERT_OFF;
    const char *ca_path = NULL, *crl_path = NULL;
    int ret;

    if (mode != NULL && tbp_client_cert_parse(mode, &m) != 0) {
        tbp_sb_printf(&e, "--client-cert: unknown value \"%s\" (known: off, optional, required)",
                      mode);
        return TB_EINVAL;
    }
    if (m == TBP_CLIENT_CERT_OFF && (ca != NULL || crl != NULL)) {
        tbp_sb_printf(&e, "%s needs --client-cert optional or required",
                      ca != NULL ? "--client-ca" : "--client-crl");
        return TB_EINVAL;
    }
    if (m != TBP_CLIENT_CERT_OFF && ca == NULL) {
        tbp_sb_printf(&e, "--client-cert %s needs --client-ca FILE", tbp_client_cert_name(m));
        return TB_EINVAL;
    }
    if ((ca != NULL && (ret = quick_file(cfg, "--client-ca", ca, &ca_path, &e)) < 0) ||
        (crl != NULL && (ret = quick_file(cfg, "--client-crl", crl, &crl_path, &e)) < 0))
        return ret;
    cfg->listeners[0].tls.client_cert = m;
    cfg->listeners[0].tls.client_ca = ca_path;
    cfg->listeners[0].tls.client_crl = crl_path;
    return 0;
}

int tbp_config_quick_tb_version(struct tbp_config *cfg, const char *v, char *err, size_t errlen)
{
    struct tbp_sbuf e = tbp_sb_make(err, errlen);
    unsigned versions;

    if (tbp_tb_versions_parse(v, &versions) != 0) {
        tbp_sb_printf(&e, "--tb-version: unknown version \"%s\" (known: draft, rfc, both)", v);
        return TB_EINVAL;
    }
    cfg->tb.versions = versions;
    cfg->listeners[0].tb_versions = versions;
    return 0;
}

/* --- queries ------------------------------------------------------------------------------ */

static int prefix_match(const uint8_t *a, const uint8_t *net, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (memcmp(a, net, full) != 0)
        return 0;
    return rest == 0 || ((a[full] ^ net[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

int tbp_config_trusted(const struct tbp_config *cfg, const struct sockaddr *sa)
{
    const uint8_t *a;
    int family;
    size_t i;

    if (cfg == NULL || sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
        a = family == AF_INET ? a6->s6_addr + 12 : a6->s6_addr;
    } else {
        return 0;
    }
    for (i = 0; i < cfg->n_trusted; i++)
        if (cfg->trusted[i].family == family &&
            prefix_match(a, cfg->trusted[i].addr, cfg->trusted[i].prefix_len))
            return 1;
    return 0;
}

/* The host part of a Host value: no port, no trailing dot. */
static size_t host_only(const char *h, size_t n)
{
    size_t i;

    if (n > 0 && h[0] == '[') {
        for (i = 0; i < n && h[i] != ']'; i++)
            ;
        return i < n ? i + 1 : n;
    }
    for (i = 0; i < n && h[i] != ':'; i++)
        ;
    if (i > 1 && h[i - 1] == '.')
        i--;
    return i;
}

static int host_match(const char *pattern, const char *h, size_t n)
{
    size_t i, pl = strlen(pattern), off = 0;

    if (strcmp(pattern, "*") == 0)
        return 1;
    if (pattern[0] == '*' && pattern[1] == '.') {
        pattern++;
        pl--;
        if (n <= pl)
            return 0;
        off = n - pl;
    } else if (n != pl) {
        return 0;
    }
    for (i = 0; i < pl; i++)
        if (tbp_cfg_lower(h[off + i]) != pattern[i])
            return 0;
    return 1;
}

const struct tbp_route *tbp_config_route(const struct tbp_config *cfg, const char *host,
                                         size_t host_len, const char *path, size_t path_len)
{
    size_t i, hn = host != NULL ? host_only(host, host_len) : 0;

    for (i = 0; i < cfg->n_routes; i++) {
        const struct tbp_route *r = &cfg->routes[i];
        if (host_match(r->host, host, hn) && path_len >= r->prefix_len &&
            memcmp(path, r->prefix, r->prefix_len) == 0)
            return r;
    }
    return NULL;
}

const char *tbp_log_level_name(enum tbp_log_level level)
{
    switch (level) {
    case TBP_LOG_DEBUG:
        return "debug";
    case TBP_LOG_INFO:
        return "info";
    case TBP_LOG_WARN:
        return "warn";
    case TBP_LOG_ERROR:
        return "error";
    }
    return "unknown";
}

static const char *const client_cert_names[] = {
    [TBP_CLIENT_CERT_OFF] = "off",
    [TBP_CLIENT_CERT_OPTIONAL] = "optional",
    [TBP_CLIENT_CERT_REQUIRED] = "required",
};

const char *tbp_client_cert_name(enum tbp_client_cert mode)
{
    return (unsigned)mode <= TBP_CLIENT_CERT_REQUIRED ? client_cert_names[mode] : "unknown";
}

int tbp_tb_versions_parse(const char *s, unsigned *out)
{
    if (strcmp(s, "draft") == 0)
        *out = TBP_TBV_DRAFT;
    else if (strcmp(s, "rfc") == 0)
        *out = TBP_TBV_RFC;
    else if (strcmp(s, "both") == 0)
        *out = TBP_TBV_DRAFT | TBP_TBV_RFC;
    else
        return TB_EINVAL;
    return 0;
}

const char *tbp_tb_versions_name(unsigned versions)
{
    switch (versions) {
    case TBP_TBV_DRAFT:
        return "draft";
    case TBP_TBV_RFC:
        return "rfc";
    case TBP_TBV_DRAFT | TBP_TBV_RFC:
        return "both";
    default:
        return "?";
    }
}

int tbp_client_cert_parse(const char *s, enum tbp_client_cert *out)
{
    unsigned i;

    for (i = TBP_CLIENT_CERT_OFF; i <= TBP_CLIENT_CERT_REQUIRED; i++) {
        if (strcmp(s, client_cert_names[i]) == 0) {
            *out = (enum tbp_client_cert)i;
            return 0;
        }
    }
    return TB_EINVAL;
}

const char *tbp_proto_name(enum tbp_proto proto)
{
    return proto == TBP_PROTO_H2 ? "h2" : "http/1.1";
}
