/*
 * Configuration: libconfig file or quick mode → immutable struct tbp_config (see config.h).
 *
 * Loading is one pass over the libconfig tree, section by section, into a zeroed config that
 * already holds every default. Each section first rejects members it does not know (a typo must
 * never be silently ignored), then reads its members with typed helpers that check type and
 * range. The first problem stops the load; its message is built by fail(), which prefixes the
 * file, the line and the setting path computed from the libconfig tree, so every check only
 * says what is wrong. Cross-checks (duplicate listeners, routes to unknown upstreams, routes
 * that can never match) run as each item is read, against the items read before it.
 *
 * Every allocation the config owns is recorded in its private `mem` list, so tbp_config_free is
 * one loop whatever stage a failed load reached, and the public structs can point at each other
 * (a route at its upstream) without ownership questions.
 *
 * The command-line parser is a small hand-written one (no getopt: it keeps global state and
 * prints on its own) so that tests can call it repeatedly and every message goes to err.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "tb/error.h"

/* The HTTP layer's built-in limits are the config's defaults. */
_Static_assert(TBP_DEF_MAX_HEADERS == TBP_MAX_HEADERS_DEFAULT, "max_headers default");
_Static_assert(TBP_DEF_MAX_HEADER_BYTES == TBP_MAX_HEADER_BYTES_DEFAULT, "max_header_bytes");

#define MS_PER_S 1000u
#define MS_PER_DAY (86400u * 1000)

struct tbp_config_mem {
    size_t n, cap;
    void **ptrs;
};

/* A bounded string builder: writes what fits, always NUL-terminated when cap > 0. */
struct sbuf {
    char *p;
    size_t cap, len;
};

/* State of one tbp_config_load. */
struct loader {
    struct tbp_config *cfg;
    const char *file;     /* the path as given, used in messages */
    const char *base_dir; /* absolute directory of the file, for relative paths */
    struct sbuf err;
    SSL_CTX *ssl; /* made on first use, to check cipher lists */
};

/* --- memory ------------------------------------------------------------------------------- */

/* Zeroed memory owned by cfg, or NULL. */
static void *cfg_alloc(struct tbp_config *cfg, size_t size)
{
    struct tbp_config_mem *m = cfg->mem;
    void *p;

    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        void **ptrs = realloc(m->ptrs, cap * sizeof(*ptrs));
        if (ptrs == NULL)
            return NULL;
        m->ptrs = ptrs;
        m->cap = cap;
    }
    p = calloc(1, size ? size : 1);
    if (p != NULL)
        m->ptrs[m->n++] = p;
    return p;
}

static char *cfg_strdup(struct tbp_config *cfg, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = cfg_alloc(cfg, n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static void set_defaults(struct tbp_config *c)
{
    c->workers = TBP_DEF_WORKERS;
    c->tb.enabled = TBP_DEF_TB_ENABLED;
    c->tb.version = TB_VERSION_DRAFT;
    c->tb.n_key_types = 2;
    c->tb.key_types[0] = TB_KP_ECDSAP256;
    c->tb.key_types[1] = TB_KP_RSA2048_PKCS1;
    c->tb.n_protocols = 2;
    c->tb.protocols[0] = TBP_PROTO_H2;
    c->tb.protocols[1] = TBP_PROTO_HTTP11;
    c->tb.require = TBP_DEF_TB_REQUIRE;
    c->timeouts.handshake_ms = TBP_DEF_HANDSHAKE_MS;
    c->timeouts.header_read_ms = TBP_DEF_HEADER_READ_MS;
    c->timeouts.idle_keepalive_ms = TBP_DEF_IDLE_KEEPALIVE_MS;
    c->timeouts.body_read_ms = TBP_DEF_BODY_READ_MS;
    c->timeouts.upstream_connect_ms = TBP_DEF_UPSTREAM_CONNECT_MS;
    c->timeouts.upstream_read_ms = TBP_DEF_UPSTREAM_READ_MS;
    c->limits.max_header_bytes = TBP_DEF_MAX_HEADER_BYTES;
    c->limits.max_headers = TBP_DEF_MAX_HEADERS;
    c->limits.max_connections_per_worker = TBP_DEF_MAX_CONNECTIONS_PER_WORKER;
    c->log.access = "";
    c->log.error = "-";
    c->log.level = TBP_LOG_INFO;
    c->log.format = TBP_LOG_COMBINED;
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
    for (i = 0; i < cfg->mem->n; i++)
        free(cfg->mem->ptrs[i]);
    free(cfg->mem->ptrs);
    free(cfg->mem);
    free(cfg);
}

/* --- messages ----------------------------------------------------------------------------- */

__attribute__((format(printf, 2, 0))) static void sb_vprintf(struct sbuf *b, const char *fmt,
                                                             va_list ap)
{
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);

    if (n > 0)
        b->len += (size_t)n;
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
}

static struct sbuf sb_make(char *p, size_t cap)
{
    struct sbuf b = {p, p != NULL ? cap : 0, 0};

    if (b.cap > 0)
        b.p[0] = '\0';
    return b;
}

/* The setting path: "upstreams.app.servers[1]"; nothing for the root. */
static void sb_path(struct sbuf *b, const config_setting_t *s)
{
    const config_setting_t *parent = config_setting_parent(s);

    if (parent == NULL)
        return;
    sb_path(b, parent);
    if (config_setting_is_group(parent))
        sb_printf(b, "%s%s", config_setting_is_root(parent) ? "" : ".", config_setting_name(s));
    else
        sb_printf(b, "[%d]", config_setting_index(s));
}

/* A file name from libconfig: an @include'd one is as written, opened relative to base_dir. */
static void sb_file(struct sbuf *b, const struct loader *L, const char *file)
{
    if (file[0] != '/' && strcmp(file, L->file) != 0)
        sb_printf(b, "%s/", L->base_dir);
    sb_printf(b, "%s", file);
}

/*
 * Writes "FILE:LINE: PATH[.child]: message" into the loader's err and returns TB_EINVAL. The
 * root has no line: "FILE: child: message".
 */
__attribute__((format(printf, 4, 0))) static int
vfail(struct loader *L, const config_setting_t *s, const char *child, const char *fmt, va_list ap)
{
    const char *file = config_setting_source_file(s) ? config_setting_source_file(s) : L->file;
    unsigned line = config_setting_source_line(s);
    size_t before;

    L->err.len = 0;
    sb_file(&L->err, L, file);
    if (line > 0 && !config_setting_is_root(s))
        sb_printf(&L->err, ":%u: ", line);
    else
        sb_printf(&L->err, ": ");
    before = L->err.len;
    sb_path(&L->err, s);
    if (child != NULL)
        sb_printf(&L->err, "%s%s", L->err.len > before ? "." : "", child);
    if (L->err.len > before)
        sb_printf(&L->err, ": ");
    sb_vprintf(&L->err, fmt, ap);
    return TB_EINVAL;
}

/* The error at setting s. */
__attribute__((format(printf, 3, 4))) static int fail(struct loader *L, const config_setting_t *s,
                                                      const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = vfail(L, s, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

/* The error for a missing member `name` of group g (reported at g's line). */
__attribute__((format(printf, 4, 5))) static int
fail_missing(struct loader *L, const config_setting_t *g, const char *name, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = vfail(L, g, name, fmt, ap);
    va_end(ap);
    return ret;
}

static int fail_nomem(struct loader *L)
{
    L->err.len = 0;
    sb_printf(&L->err, "%s: out of memory", L->file);
    return TB_ENOMEM;
}

/* --- typed access ------------------------------------------------------------------------- */

/* Rejects any member of group g whose name is not in `known` (NULL-terminated). */
static int check_known(struct loader *L, const config_setting_t *g, const char *const *known)
{
    int i, n = config_setting_length(g);

    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        size_t k;

        for (k = 0; known[k] != NULL && strcmp(known[k], name) != 0; k++)
            ;
        if (known[k] == NULL) {
            fail(L, s, "unknown setting (known here:");
            for (k = 0; known[k] != NULL; k++)
                sb_printf(&L->err, " %s", known[k]);
            sb_printf(&L->err, ")");
            return TB_EINVAL;
        }
    }
    return 0;
}

static int expect_group(struct loader *L, const config_setting_t *s)
{
    return config_setting_is_group(s) ? 0 : fail(L, s, "expected a group { ... }");
}

/* A list of groups: ( { ... }, { ... } ), with 1..max elements. */
static int expect_group_list(struct loader *L, const config_setting_t *s, int max, const char *what)
{
    int i, n;

    if (!config_setting_is_list(s))
        return fail(L, s, "expected a list of groups ( { ... }, ... )");
    n = config_setting_length(s);
    if (n == 0)
        return fail(L, s, "at least one %s is required", what);
    if (n > max)
        return fail(L, s, "too many entries (%d, at most %d)", n, max);
    for (i = 0; i < n; i++)
        if (expect_group(L, config_setting_get_elem(s, (unsigned)i)) < 0)
            return TB_EINVAL;
    return 0;
}

/* An array or list of 1..max strings. */
static int expect_string_list(struct loader *L, const config_setting_t *s, int max, int allow_empty)
{
    int i, n;

    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return fail(L, s, "expected a list of strings [ \"...\", ... ]");
    n = config_setting_length(s);
    if (n == 0 && !allow_empty)
        return fail(L, s, "must not be empty");
    if (n > max)
        return fail(L, s, "too many entries (%d, at most %d)", n, max);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return fail(L, e, "expected a string");
    }
    return 0;
}

static int get_string(struct loader *L, const config_setting_t *s, const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(L, s, "expected a string");
    *out = config_setting_get_string(s);
    return 0;
}

static int get_bool(struct loader *L, const config_setting_t *s, int *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return fail(L, s, "expected true or false");
    *out = config_setting_get_bool(s);
    return 0;
}

static int get_uint(struct loader *L, const config_setting_t *s, unsigned min, unsigned max,
                    unsigned *out)
{
    long long v;

    if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
        return fail(L, s, "expected an integer");
    v = config_setting_get_int64(s);
    if (v < (long long)min || v > (long long)max)
        return fail(L, s, "%lld is out of range (%u..%u)", v, min, max);
    *out = (unsigned)v;
    return 0;
}

/* "500ms", "30s", "2m", "1h": digits then a unit. 0 or -1. */
static int parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t v = 0;
    size_t i;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > 1000000000000ull)
            return -1;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s, units[i].name) == 0) {
            *ms = v * units[i].ms;
            return 0;
        }
    }
    return -1;
}

/* ms in the largest exact unit: "10s", "500ms", "2m". */
static void fmt_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* A duration: integer seconds or a string with a unit; min_ms..max_ms. */
static int get_duration(struct loader *L, const config_setting_t *s, uint32_t min_ms,
                        uint32_t max_ms, uint32_t *out)
{
    char lo[24], hi[24], got[24];
    uint64_t ms;

    if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
        long long v = config_setting_get_int64(s);
        if (v < 0)
            return fail(L, s, "a duration cannot be negative");
        ms = v > 1000000000000ll ? UINT64_MAX : (uint64_t)v * MS_PER_S;
    } else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        if (parse_duration(config_setting_get_string(s), &ms) < 0)
            return fail(L, s,
                        "bad duration \"%s\" (want seconds as an integer, or a string "
                        "like \"500ms\", \"30s\", \"2m\", \"1h\")",
                        config_setting_get_string(s));
    } else {
        return fail(L, s, "expected a duration (integer seconds, or \"500ms\", \"30s\", \"2m\")");
    }
    if (ms < min_ms || ms > max_ms) {
        fmt_duration(min_ms, lo, sizeof(lo));
        fmt_duration(max_ms, hi, sizeof(hi));
        if (ms == UINT64_MAX)
            snprintf(got, sizeof(got), "too long");
        else
            fmt_duration(ms, got, sizeof(got));
        return fail(L, s, "%s is out of range (%s..%s)", got, lo, hi);
    }
    *out = (uint32_t)ms;
    return 0;
}

/* Optional members: absent leaves *out alone. */
static int opt_bool(struct loader *L, const config_setting_t *g, const char *name, int *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    return s != NULL ? get_bool(L, s, out) : 0;
}

static int opt_uint(struct loader *L, const config_setting_t *g, const char *name, unsigned min,
                    unsigned max, unsigned *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    return s != NULL ? get_uint(L, s, min, max, out) : 0;
}

static int opt_duration(struct loader *L, const config_setting_t *g, const char *name,
                        uint32_t min_ms, uint32_t max_ms, uint32_t *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    return s != NULL ? get_duration(L, s, min_ms, max_ms, out) : 0;
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

static int addr_equal(const struct tbp_addr *a, const struct tbp_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
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

/* 0 when `path` is a readable regular file; else a positive errno, or -1 for not regular. */
static int file_check(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int ret = 0;

    if (fd == -1)
        return errno;
    if (fstat(fd, &st) == -1)
        ret = errno;
    else if (!S_ISREG(st.st_mode))
        ret = -1;
    close(fd);
    return ret;
}

static const char *file_check_str(int err)
{
    return err == -1 ? "not a regular file" : strerror(err);
}

/* `p` made absolute against `base` (when relative), owned by cfg; NULL on no memory. */
static char *resolve_path(struct tbp_config *cfg, const char *base, const char *p)
{
    size_t bl, pl;
    char *out;

    if (p[0] == '/')
        return cfg_strdup(cfg, p);
    bl = strlen(base);
    pl = strlen(p);
    out = cfg_alloc(cfg, bl + pl + 2);
    if (out != NULL)
        snprintf(out, bl + pl + 2, "%s%s%s", base, bl > 0 && base[bl - 1] == '/' ? "" : "/", p);
    return out;
}

/* A required readable file: the member `name` of g, resolved; *out owned by the config. */
static int get_file(struct loader *L, const config_setting_t *g, const char *name, const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = "";
    char *path;
    int ret;

    if (s == NULL)
        return fail_missing(L, g, name, "missing (a PEM file is required)");
    if ((ret = get_string(L, s, &v)) < 0)
        return ret;
    if (v[0] == '\0')
        return fail(L, s, "must not be empty");
    if ((path = resolve_path(L->cfg, L->base_dir, v)) == NULL)
        return fail_nomem(L);
    if ((ret = file_check(path)) != 0) {
        if (strcmp(path, v) == 0)
            return fail(L, s, "cannot read \"%s\": %s", v, file_check_str(ret));
        return fail(L, s, "cannot read \"%s\" (%s): %s", v, path, file_check_str(ret));
    }
    *out = path;
    return 0;
}

/* --- sections ----------------------------------------------------------------------------- */

static int parse_workers(struct loader *L, const config_setting_t *root)
{
    return opt_uint(L, root, "workers", 0, 1024, &L->cfg->workers);
}

static int parse_timeouts(struct loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"handshake", "header_read",      "idle_keepalive",
                                        "body_read", "upstream_connect", "upstream_read",
                                        NULL};
    const config_setting_t *g = config_setting_get_member(root, "timeouts");
    struct tbp_timeouts *t = &L->cfg->timeouts;
    int ret;

    if (g == NULL)
        return 0;
    if ((ret = expect_group(L, g)) < 0 || (ret = check_known(L, g, known)) < 0)
        return ret;
    if ((ret = opt_duration(L, g, "handshake", 1, MS_PER_DAY, &t->handshake_ms)) < 0 ||
        (ret = opt_duration(L, g, "header_read", 1, MS_PER_DAY, &t->header_read_ms)) < 0 ||
        (ret = opt_duration(L, g, "idle_keepalive", 1, MS_PER_DAY, &t->idle_keepalive_ms)) < 0 ||
        (ret = opt_duration(L, g, "body_read", 1, MS_PER_DAY, &t->body_read_ms)) < 0 ||
        (ret = opt_duration(L, g, "upstream_connect", 1, MS_PER_DAY, &t->upstream_connect_ms)) <
            0 ||
        (ret = opt_duration(L, g, "upstream_read", 1, MS_PER_DAY, &t->upstream_read_ms)) < 0)
        return ret;
    return 0;
}

static int parse_limits(struct loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"max_header_bytes", "max_headers",
                                        "max_connections_per_worker", NULL};
    const config_setting_t *g = config_setting_get_member(root, "limits");
    struct tbp_limits *l = &L->cfg->limits;
    int ret;

    if (g == NULL)
        return 0;
    if ((ret = expect_group(L, g)) < 0 || (ret = check_known(L, g, known)) < 0)
        return ret;
    if ((ret = opt_uint(L, g, "max_header_bytes", 1024, 1024 * 1024, &l->max_header_bytes)) < 0 ||
        (ret = opt_uint(L, g, "max_headers", 1, 10000, &l->max_headers)) < 0 ||
        (ret = opt_uint(L, g, "max_connections_per_worker", 1, 1000000,
                        &l->max_connections_per_worker)) < 0)
        return ret;
    return 0;
}

/* log.access / log.error: "-", "" (access only) or a path resolved against the config dir. */
static int parse_log_target(struct loader *L, const config_setting_t *g, const char *name,
                            int allow_off, const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = "";
    int ret;

    if (s == NULL)
        return 0;
    if ((ret = get_string(L, s, &v)) < 0)
        return ret;
    if (v[0] == '\0' && !allow_off)
        return fail(L, s, "must not be empty (\"-\" is standard error)");
    if (v[0] == '\0' || strcmp(v, "-") == 0) {
        *out = v[0] == '\0' ? "" : "-";
        return 0;
    }
    if ((*out = resolve_path(L->cfg, L->base_dir, v)) == NULL)
        return fail_nomem(L);
    return 0;
}

static int parse_log(struct loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"access", "error", "level", "format", NULL};
    const config_setting_t *g = config_setting_get_member(root, "log"), *s;
    struct tbp_log_config *lg = &L->cfg->log;
    const char *v = "";
    int ret, i;

    if (g == NULL)
        return 0;
    if ((ret = expect_group(L, g)) < 0 || (ret = check_known(L, g, known)) < 0 ||
        (ret = parse_log_target(L, g, "access", 1, &lg->access)) < 0 ||
        (ret = parse_log_target(L, g, "error", 0, &lg->error)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "level")) != NULL) {
        if ((ret = get_string(L, s, &v)) < 0)
            return ret;
        for (i = TBP_LOG_DEBUG; i <= TBP_LOG_ERROR && strcmp(v, tbp_log_level_name(i)) != 0; i++)
            ;
        if (i > TBP_LOG_ERROR)
            return fail(L, s, "unknown level \"%s\" (known: debug, info, warn, error)", v);
        lg->level = (enum tbp_log_level)i;
    }
    if ((s = config_setting_get_member(g, "format")) != NULL) {
        if ((ret = get_string(L, s, &v)) < 0)
            return ret;
        if (strcmp(v, "combined") != 0)
            return fail(L, s, "unknown format \"%s\" (known: combined)", v);
        lg->format = TBP_LOG_COMBINED;
    }
    return 0;
}

static int parse_tb_key_types(struct loader *L, const config_setting_t *s)
{
    struct tbp_tb_config *tb = &L->cfg->tb;
    int i, j, n, ret;

    if ((ret = expect_string_list(L, s, 16, 0)) < 0)
        return ret;
    n = config_setting_length(s);
    tb->n_key_types = 0;
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        int kp = tb_key_params_parse(TB_VERSION_DRAFT, v);
        if (kp < 0)
            return fail(L, e, "unknown key type \"%s\" (known: p256, rsa2048)", v);
        for (j = 0; j < (int)tb->n_key_types; j++)
            if (tb->key_types[j] == kp)
                return fail(L, e, "duplicate key type \"%s\"", v);
        tb->key_types[tb->n_key_types++] = kp;
    }
    return 0;
}

static int parse_tb_protocols(struct loader *L, const config_setting_t *s)
{
    struct tbp_tb_config *tb = &L->cfg->tb;
    int i, j, n, ret;

    if ((ret = expect_string_list(L, s, 16, 0)) < 0)
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
            return fail(L, e, "unknown protocol \"%s\" (known: h2, http/1.1)", v);
        for (j = 0; j < (int)tb->n_protocols; j++)
            if (tb->protocols[j] == p)
                return fail(L, e, "duplicate protocol \"%s\"", v);
        tb->protocols[tb->n_protocols++] = p;
    }
    return 0;
}

static int parse_tb(struct loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"enabled",   "version", "key_types",
                                        "protocols", "require", NULL};
    const config_setting_t *g = config_setting_get_member(root, "token_binding"), *s;
    struct tbp_tb_config *tb = &L->cfg->tb;
    const char *v = "";
    int ret;

    if (g == NULL)
        return 0;
    if ((ret = expect_group(L, g)) < 0 || (ret = check_known(L, g, known)) < 0 ||
        (ret = opt_bool(L, g, "enabled", &tb->enabled)) < 0 ||
        (ret = opt_bool(L, g, "require", &tb->require)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "version")) != NULL) {
        if ((ret = get_string(L, s, &v)) < 0)
            return ret;
        if (strcmp(v, "rfc") == 0)
            return fail(L, s, "version \"rfc\" is not supported yet (only \"draft\")");
        if (strcmp(v, "draft") != 0)
            return fail(L, s, "unknown version \"%s\" (known: draft)", v);
    }
    if ((s = config_setting_get_member(g, "key_types")) != NULL &&
        (ret = parse_tb_key_types(L, s)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "protocols")) != NULL &&
        (ret = parse_tb_protocols(L, s)) < 0)
        return ret;
    if (tb->require && !tb->enabled)
        return fail(L, config_setting_get_member(g, "require"),
                    "require = true needs enabled = true");
    return 0;
}

/* Each element of an OpenSSL cipher string must name something, and the result be AEAD only. */
static int check_ciphers(struct loader *L, const config_setting_t *s, const char *list)
{
    char *copy, *tok, *save = NULL;
    STACK_OF(SSL_CIPHER) * sk;
    int i, ret = 0;

    if (L->ssl == NULL && (L->ssl = SSL_CTX_new(TLS_method())) == NULL)
        return fail_nomem(L);
    if ((copy = strdup(list)) == NULL)
        return fail_nomem(L);
    for (tok = strtok_r(copy, ":, ", &save); tok != NULL && ret == 0;
         tok = strtok_r(NULL, ":, ", &save))
        if (strchr("!-+@", tok[0]) == NULL && SSL_CTX_set_cipher_list(L->ssl, tok) != 1)
            ret = fail(L, s, "unknown cipher \"%s\"", tok);
    free(copy);
    if (ret == 0 && SSL_CTX_set_cipher_list(L->ssl, list) != 1)
        ret = fail(L, s, "no usable cipher in \"%s\"", list);
    sk = ret == 0 ? SSL_CTX_get_ciphers(L->ssl) : NULL;
    for (i = 0; sk != NULL && i < sk_SSL_CIPHER_num(sk) && ret == 0; i++)
        if (!SSL_CIPHER_is_aead(sk_SSL_CIPHER_value(sk, i)))
            ret = fail(L, s, "cipher \"%s\" is not AEAD (only AEAD ciphers are allowed)",
                       SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i)));
    ERR_clear_error();
    return ret;
}

static int parse_tls(struct loader *L, const config_setting_t *lst, struct tbp_tls_config *tls)
{
    static const char *const known[] = {"cert", "key", "ciphers", "tickets", "ticket_key_rotation",
                                        NULL};
    const config_setting_t *g = config_setting_get_member(lst, "tls"), *s;
    int ret;

    tls->ciphers = TBP_DEF_CIPHERS;
    tls->tickets = TBP_DEF_TICKETS;
    tls->ticket_key_rotation_ms = TBP_DEF_TICKET_KEY_ROTATION_MS;
    if (g == NULL)
        return fail_missing(L, lst, "tls", "missing (cert and key are required)");
    if ((ret = expect_group(L, g)) < 0 || (ret = check_known(L, g, known)) < 0 ||
        (ret = get_file(L, g, "cert", &tls->cert)) < 0 ||
        (ret = get_file(L, g, "key", &tls->key)) < 0 ||
        (ret = opt_bool(L, g, "tickets", &tls->tickets)) < 0 ||
        (ret = opt_duration(L, g, "ticket_key_rotation", MS_PER_S, 7 * MS_PER_DAY,
                            &tls->ticket_key_rotation_ms)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "ciphers")) != NULL) {
        if ((ret = get_string(L, s, &tls->ciphers)) < 0 ||
            (ret = check_ciphers(L, s, tls->ciphers)) < 0)
            return ret;
        if ((tls->ciphers = cfg_strdup(L->cfg, tls->ciphers)) == NULL)
            return fail_nomem(L);
    }
    return 0;
}

static int parse_listener(struct loader *L, const config_setting_t *list, int idx)
{
    static const char *const known[] = {"address", "tls", NULL};
    const config_setting_t *g = config_setting_get_elem(list, (unsigned)idx), *s;
    struct tbp_listener *l = &L->cfg->listeners[idx];
    const char *v = "";
    int j, ret;

    if ((ret = check_known(L, g, known)) < 0)
        return ret;
    if ((s = config_setting_get_member(g, "address")) == NULL)
        return fail_missing(L, g, "address", "missing (for example \"127.0.0.1:8443\")");
    if ((ret = get_string(L, s, &v)) < 0)
        return ret;
    if (parse_addr(v, &l->addr) < 0)
        return fail(L, s, "bad address \"%s\" " BAD_ADDR_HINT, v);
    for (j = 0; j < idx; j++) {
        if (addr_overlaps(&L->cfg->listeners[j].addr, &l->addr)) {
            const config_setting_t *o = config_setting_get_elem(list, (unsigned)j);
            return fail(L, s, "%s conflicts with listen[%d] %s (line %u)", l->addr.text, j,
                        L->cfg->listeners[j].addr.text,
                        config_setting_source_line(config_setting_get_member(o, "address")));
        }
    }
    return parse_tls(L, g, &l->tls);
}

static int parse_listen(struct loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "listen");
    int i, n, ret;

    if (s == NULL)
        return fail_missing(L, root, "listen", "missing (at least one listener is required)");
    if ((ret = expect_group_list(L, s, TBP_MAX_LISTENERS, "listener")) < 0)
        return ret;
    n = config_setting_length(s);
    L->cfg->listeners = cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_listener));
    if (L->cfg->listeners == NULL)
        return fail_nomem(L);
    for (i = 0; i < n; i++) {
        if ((ret = parse_listener(L, s, i)) < 0)
            return ret;
        L->cfg->n_listeners++;
    }
    return 0;
}

static int parse_servers(struct loader *L, const config_setting_t *g, struct tbp_upstream *u)
{
    const config_setting_t *s = config_setting_get_member(g, "servers");
    int i, j, n, ret;

    if (s == NULL)
        return fail_missing(L, g, "servers", "missing (for example [ \"127.0.0.1:8080\" ])");
    if ((ret = expect_string_list(L, s, TBP_MAX_SERVERS, 0)) < 0)
        return ret;
    n = config_setting_length(s);
    if ((u->servers = cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_addr))) == NULL)
        return fail_nomem(L);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        if (parse_addr(v, &u->servers[i]) < 0)
            return fail(L, e, "bad address \"%s\" " BAD_ADDR_HINT, v);
        for (j = 0; j < i; j++)
            if (addr_equal(&u->servers[j], &u->servers[i]))
                return fail(L, e, "duplicate server %s (also servers[%d])", u->servers[i].text, j);
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

static int parse_upstream(struct loader *L, const config_setting_t *g, struct tbp_upstream *u)
{
    static const char *const known[] = {"servers",  "connect_timeout", "read_timeout",
                                        "max_idle", "fail_timeout",    NULL};
    const struct tbp_timeouts *t = &L->cfg->timeouts;
    int ret;

    if (!valid_name(config_setting_name(g)))
        return fail(L, g, "bad upstream name (letters, digits, '_' and '-' only)");
    if ((ret = expect_group(L, g)) < 0 || (ret = check_known(L, g, known)) < 0)
        return ret;
    if ((u->name = cfg_strdup(L->cfg, config_setting_name(g))) == NULL)
        return fail_nomem(L);
    u->connect_timeout_ms = t->upstream_connect_ms;
    u->read_timeout_ms = t->upstream_read_ms;
    u->max_idle = TBP_DEF_MAX_IDLE;
    u->fail_timeout_ms = TBP_DEF_FAIL_TIMEOUT_MS;
    if ((ret = parse_servers(L, g, u)) < 0 ||
        (ret = opt_duration(L, g, "connect_timeout", 1, MS_PER_DAY, &u->connect_timeout_ms)) < 0 ||
        (ret = opt_duration(L, g, "read_timeout", 1, MS_PER_DAY, &u->read_timeout_ms)) < 0 ||
        (ret = opt_uint(L, g, "max_idle", 0, 100000, &u->max_idle)) < 0 ||
        (ret = opt_duration(L, g, "fail_timeout", 0, MS_PER_DAY, &u->fail_timeout_ms)) < 0)
        return ret;
    return 0;
}

static int parse_upstreams(struct loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "upstreams");
    int i, n, ret;

    if (s == NULL)
        return fail_missing(L, root, "upstreams", "missing (at least one upstream is required)");
    if ((ret = expect_group(L, s)) < 0)
        return ret;
    n = config_setting_length(s);
    if (n == 0)
        return fail(L, s, "at least one upstream is required");
    if (n > TBP_MAX_UPSTREAMS)
        return fail(L, s, "too many entries (%d, at most %d)", n, TBP_MAX_UPSTREAMS);
    L->cfg->upstreams = cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_upstream));
    if (L->cfg->upstreams == NULL)
        return fail_nomem(L);
    for (i = 0; i < n; i++) {
        ret = parse_upstream(L, config_setting_get_elem(s, (unsigned)i), &L->cfg->upstreams[i]);
        if (ret < 0)
            return ret;
        L->cfg->n_upstreams++;
    }
    return 0;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

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
    if ((h = cfg_alloc(cfg, n + 1)) == NULL)
        return -3;
    for (i = 0; i < n; i++)
        h[i] = lower(v[i]);
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

static int route_upstream(struct loader *L, const config_setting_t *g, struct tbp_route *r)
{
    const config_setting_t *s = config_setting_get_member(g, "upstream");
    const char *v = "";
    size_t i;
    int ret;

    if (s == NULL)
        return fail_missing(L, g, "upstream", "missing (the name of an upstream)");
    if ((ret = get_string(L, s, &v)) < 0)
        return ret;
    for (i = 0; i < L->cfg->n_upstreams; i++) {
        if (strcmp(L->cfg->upstreams[i].name, v) == 0) {
            r->upstream = &L->cfg->upstreams[i];
            return 0;
        }
    }
    fail(L, s, "unknown upstream \"%s\" (defined:", v);
    for (i = 0; i < L->cfg->n_upstreams; i++)
        sb_printf(&L->err, "%s %s", i ? "," : "", L->cfg->upstreams[i].name);
    sb_printf(&L->err, ")");
    return TB_EINVAL;
}

static int route_host_prefix(struct loader *L, const config_setting_t *g, struct tbp_route *r)
{
    const config_setting_t *s;
    const char *v = "";
    size_t i;
    int ret;

    r->host = "*";
    r->prefix = "/";
    if ((s = config_setting_get_member(g, "host")) != NULL) {
        if ((ret = get_string(L, s, &v)) < 0)
            return ret;
        ret = normalize_host(L->cfg, v, &r->host);
        if (ret == -3)
            return fail_nomem(L);
        if (ret == -2)
            return fail(L, s, "host \"%s\" must not include a port", v);
        if (ret < 0)
            return fail(L, s, "bad host \"%s\" (want \"*\", \"*.example.com\" or a name)", v);
    }
    if ((s = config_setting_get_member(g, "prefix")) != NULL) {
        if ((ret = get_string(L, s, &r->prefix)) < 0)
            return ret;
        if (r->prefix[0] != '/')
            return fail(L, s, "prefix \"%s\" must start with '/'", r->prefix);
        for (i = 0; r->prefix[i] != '\0'; i++)
            if ((unsigned char)r->prefix[i] <= ' ' || r->prefix[i] == '?' || r->prefix[i] == '#' ||
                r->prefix[i] == 0x7f)
                return fail(L, s, "prefix \"%s\": no spaces, controls, '?' or '#'", r->prefix);
        if ((r->prefix = cfg_strdup(L->cfg, r->prefix)) == NULL)
            return fail_nomem(L);
    }
    r->prefix_len = strlen(r->prefix);
    return 0;
}

static int parse_route(struct loader *L, const config_setting_t *list, int idx)
{
    static const char *const known[] = {"host", "prefix", "upstream", NULL};
    const config_setting_t *g = config_setting_get_elem(list, (unsigned)idx);
    struct tbp_route *r = &L->cfg->routes[idx];
    int j, ret;

    if ((ret = check_known(L, g, known)) < 0 || (ret = route_host_prefix(L, g, r)) < 0 ||
        (ret = route_upstream(L, g, r)) < 0)
        return ret;
    for (j = 0; j < idx; j++) {
        const struct tbp_route *o = &L->cfg->routes[j];
        if (host_covers(o->host, r->host) && strncmp(r->prefix, o->prefix, o->prefix_len) == 0)
            return fail(L, g,
                        "never matches: routes[%d] (line %u, host \"%s\", prefix \"%s\") comes "
                        "first and matches every request this one would",
                        j, config_setting_source_line(config_setting_get_elem(list, (unsigned)j)),
                        o->host, o->prefix);
    }
    return 0;
}

static int parse_routes(struct loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "routes");
    int i, n, ret;

    if (s == NULL)
        return fail_missing(L, root, "routes", "missing (at least one route is required)");
    if ((ret = expect_group_list(L, s, TBP_MAX_ROUTES, "route")) < 0)
        return ret;
    n = config_setting_length(s);
    if ((L->cfg->routes = cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_route))) == NULL)
        return fail_nomem(L);
    for (i = 0; i < n; i++) {
        if ((ret = parse_route(L, s, i)) < 0)
            return ret;
        L->cfg->n_routes++;
    }
    return 0;
}

static int parse_trusted(struct loader *L, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "trusted_proxies");
    char net[INET6_ADDRSTRLEN];
    int i, n, ret;

    if (s == NULL)
        return 0;
    if ((ret = expect_string_list(L, s, TBP_MAX_TRUSTED, 1)) < 0)
        return ret;
    n = config_setting_length(s);
    if ((L->cfg->trusted = cfg_alloc(L->cfg, (size_t)n * sizeof(struct tbp_cidr))) == NULL)
        return fail_nomem(L);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(e);
        struct tbp_cidr *c = &L->cfg->trusted[i];
        ret = parse_cidr(v, c);
        if (ret == -1)
            return fail(L, e,
                        "bad address or prefix \"%s\" (want \"10.0.0.0/8\", \"127.0.0.1\", "
                        "\"fd00::/8\", \"::1\")",
                        v);
        if (ret == -2) {
            inet_ntop(c->family, c->addr, net, sizeof(net));
            return fail(L, e, "\"%s\" has bits set beyond /%u (did you mean \"%s/%u\"?)", v,
                        c->prefix_len, net, c->prefix_len);
        }
        L->cfg->n_trusted++;
    }
    return 0;
}

static unsigned online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}

/* --- loading ------------------------------------------------------------------------------ */

static int load_tree(struct loader *L, const config_setting_t *root)
{
    static const char *const known[] = {"workers", "listen",   "token_binding", "upstreams",
                                        "routes",  "timeouts", "limits",        "trusted_proxies",
                                        "log",     NULL};
    int ret;

    if ((ret = check_known(L, root, known)) < 0 || (ret = parse_workers(L, root)) < 0 ||
        (ret = parse_timeouts(L, root)) < 0 || (ret = parse_limits(L, root)) < 0 ||
        (ret = parse_log(L, root)) < 0 || (ret = parse_tb(L, root)) < 0 ||
        (ret = parse_listen(L, root)) < 0 || (ret = parse_upstreams(L, root)) < 0 ||
        (ret = parse_routes(L, root)) < 0 || (ret = parse_trusted(L, root)) < 0)
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
    struct loader L = {.file = path, .err = sb_make(err, errlen)};
    char *dir = NULL, *full = NULL;
    config_t cf;
    int ret, fe;

    *out = NULL;
    if ((fe = file_check(path)) != 0) {
        sb_printf(&L.err, "%s: cannot read: %s", path, file_check_str(fe));
        return TB_EINVAL;
    }
    if ((L.cfg = config_new()) == NULL)
        return fail_nomem(&L);
    if ((dir = abs_dir(path, &full)) == NULL) {
        sb_printf(&L.err, "%s: %s", path, strerror(errno));
        free(full);
        tbp_config_free(L.cfg);
        return TB_EINVAL;
    }
    L.base_dir = dir;
    config_init(&cf);
    config_set_include_dir(&cf, dir);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        sb_file(&L.err, &L, config_error_file(&cf) ? config_error_file(&cf) : path);
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
            sb_printf(&L.err, ": cannot read");
        else
            sb_printf(&L.err, ":%d: %s", config_error_line(&cf), config_error_text(&cf));
        ret = TB_EINVAL;
    } else if ((L.cfg->path = cfg_strdup(L.cfg, full)) == NULL) {
        ret = fail_nomem(&L);
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
                      struct sbuf *e)
{
    char cwd[PATH_MAX];
    int fe;

    if (v == NULL || v[0] == '\0') {
        sb_printf(e, "%s: missing", opt);
        return TB_EINVAL;
    }
    if ((fe = file_check(v)) != 0) {
        sb_printf(e, "%s: cannot read \"%s\": %s", opt, v, file_check_str(fe));
        return TB_EINVAL;
    }
    if (v[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
        sb_printf(e, "%s: cannot resolve \"%s\": %s", opt, v, strerror(errno));
        return TB_EINVAL;
    }
    if ((*out = resolve_path(c, v[0] == '/' ? "/" : cwd, v)) == NULL) {
        sb_printf(e, "out of memory");
        return TB_ENOMEM;
    }
    return 0;
}

static int quick_addr(const char *opt, const char *v, struct tbp_addr *a, struct sbuf *e)
{
    if (v == NULL || v[0] == '\0') {
        sb_printf(e, "%s: missing", opt);
        return TB_EINVAL;
    }
    if (parse_addr(v, a) < 0) {
        sb_printf(e, "%s: bad address \"%s\" " BAD_ADDR_HINT, opt, v);
        return TB_EINVAL;
    }
    return 0;
}

int tbp_config_quick(const char *listen, const char *upstream, const char *cert, const char *key,
                     struct tbp_config **out, char *err, size_t errlen)
{
    struct sbuf e = sb_make(err, errlen);
    struct tbp_config *c = config_new();
    struct tbp_listener *l;
    struct tbp_upstream *u;
    int ret = TB_ENOMEM;

    *out = NULL;
    if (c == NULL || (l = c->listeners = cfg_alloc(c, sizeof(*l))) == NULL ||
        (u = c->upstreams = cfg_alloc(c, sizeof(*u))) == NULL ||
        (u->servers = cfg_alloc(c, sizeof(*u->servers))) == NULL ||
        (c->routes = cfg_alloc(c, sizeof(*c->routes))) == NULL) {
        sb_printf(&e, "out of memory");
        goto Exit;
    }
    if ((ret = quick_addr("--listen", listen, &l->addr, &e)) < 0 ||
        (ret = quick_addr("--upstream", upstream, &u->servers[0], &e)) < 0 ||
        (ret = quick_file(c, "--cert", cert, &l->tls.cert, &e)) < 0 ||
        (ret = quick_file(c, "--key", key, &l->tls.key, &e)) < 0)
        goto Exit;
    l->tls.ciphers = TBP_DEF_CIPHERS;
    l->tls.tickets = 1;
    l->tls.ticket_key_rotation_ms = TBP_DEF_TICKET_KEY_ROTATION_MS;
    c->n_listeners = 1;
    u->name = "default";
    u->n_servers = 1;
    u->connect_timeout_ms = c->timeouts.upstream_connect_ms;
    u->read_timeout_ms = c->timeouts.upstream_read_ms;
    u->max_idle = TBP_DEF_MAX_IDLE;
    u->fail_timeout_ms = TBP_DEF_FAIL_TIMEOUT_MS;
    c->n_upstreams = 1;
    c->routes[0] = (struct tbp_route){"*", "/", 1, u};
    c->n_routes = 1;
    c->workers = online_cores();
    *out = c;
    c = NULL;
    ret = 0;
Exit:
    tbp_config_free(c);
    return ret;
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
        if (lower(h[off + i]) != pattern[i])
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

const char *tbp_proto_name(enum tbp_proto proto)
{
    return proto == TBP_PROTO_H2 ? "h2" : "http/1.1";
}

/* --- command line ------------------------------------------------------------------------- */

enum cli_opt {
    OPT_CONFIG,
    OPT_TEST,
    OPT_LISTEN,
    OPT_UPSTREAM,
    OPT_CERT,
    OPT_KEY,
    OPT_HELP,
    OPT_VERSION,
    OPT_N
};

static const struct {
    char short_name;
    const char *long_name;
    int has_arg;
    const char *display; /* how messages name it */
} cli_opts[OPT_N] = {
    [OPT_CONFIG] = {'c', "config", 1, "-c"},     [OPT_TEST] = {'t', "test", 0, "-t"},
    [OPT_LISTEN] = {0, "listen", 1, "--listen"}, [OPT_UPSTREAM] = {0, "upstream", 1, "--upstream"},
    [OPT_CERT] = {0, "cert", 1, "--cert"},       [OPT_KEY] = {0, "key", 1, "--key"},
    [OPT_HELP] = {'h', "help", 0, "-h"},         [OPT_VERSION] = {'v', "version", 0, "-v"},
};

struct cli_state {
    const char *val[OPT_N];
    int seen[OPT_N];
    struct sbuf err;
};

__attribute__((format(printf, 2, 3))) static int cli_fail(struct cli_state *st, const char *fmt,
                                                          ...)
{
    va_list ap;

    st->err.len = 0;
    va_start(ap, fmt);
    sb_vprintf(&st->err, fmt, ap);
    va_end(ap);
    return TB_EINVAL;
}

static int cli_set(struct cli_state *st, int opt, const char *val)
{
    if (st->seen[opt])
        return cli_fail(st, "%s given twice", cli_opts[opt].display);
    if (cli_opts[opt].has_arg && val[0] == '\0')
        return cli_fail(st, "%s: empty value", cli_opts[opt].display);
    st->seen[opt] = 1;
    st->val[opt] = val;
    return 0;
}

/* "--name[=value]" at argv[*i]; may consume argv[*i + 1]. */
static int cli_long(struct cli_state *st, int argc, char **argv, int *i)
{
    const char *name = argv[*i] + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    int o;

    for (o = 0; o < OPT_N; o++)
        if (strlen(cli_opts[o].long_name) == n && strncmp(cli_opts[o].long_name, name, n) == 0)
            break;
    if (o == OPT_N)
        return cli_fail(st, "unknown option \"--%.*s\"", (int)n, name);
    if (!cli_opts[o].has_arg)
        return eq ? cli_fail(st, "--%s takes no value", cli_opts[o].long_name) : cli_set(st, o, "");
    if (eq)
        return cli_set(st, o, eq + 1);
    if (*i + 1 >= argc)
        return cli_fail(st, "--%s needs a value", cli_opts[o].long_name);
    return cli_set(st, o, argv[++*i]);
}

/* "-abc" / "-cFILE" / "-c FILE" at argv[*i]. */
static int cli_short(struct cli_state *st, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    size_t j;
    int o, ret;

    for (j = 1; a[j] != '\0'; j++) {
        for (o = 0; o < OPT_N && cli_opts[o].short_name != a[j]; o++)
            ;
        if (o == OPT_N)
            return cli_fail(st, "unknown option \"-%c\"", a[j]);
        if (!cli_opts[o].has_arg) {
            if ((ret = cli_set(st, o, "")) < 0)
                return ret;
            continue;
        }
        if (a[j + 1] != '\0')
            return cli_set(st, o, a + j + 1);
        if (*i + 1 >= argc)
            return cli_fail(st, "-%c needs a value", a[j]);
        return cli_set(st, o, argv[++*i]);
    }
    return 0;
}

/* After a successful scan: which mode, and are the options consistent. */
static int cli_finish(struct cli_state *st, struct tbp_cli *out)
{
    static const int quick[] = {OPT_LISTEN, OPT_UPSTREAM, OPT_CERT, OPT_KEY};
    int k, n_quick = 0;

    if (st->seen[OPT_HELP] || st->seen[OPT_VERSION]) {
        out->action = st->seen[OPT_HELP] ? TBP_CLI_HELP : TBP_CLI_VERSION;
        return 0;
    }
    for (k = 0; k < 4; k++)
        n_quick += st->seen[quick[k]];
    if (st->seen[OPT_CONFIG] && n_quick > 0)
        return cli_fail(st,
                        "-c and quick mode (--listen, --upstream, --cert, --key) are exclusive");
    if (!st->seen[OPT_CONFIG] && n_quick == 0)
        return cli_fail(st, "no configuration: give -c FILE, or --listen, --upstream, --cert "
                            "and --key");
    if (n_quick > 0 && n_quick < 4) {
        cli_fail(st, "quick mode needs --listen, --upstream, --cert and --key (missing:");
        for (k = 0; k < 4; k++)
            if (!st->seen[quick[k]])
                sb_printf(&st->err, " %s", cli_opts[quick[k]].display);
        sb_printf(&st->err, ")");
        return TB_EINVAL;
    }
    out->action = st->seen[OPT_TEST] ? TBP_CLI_CHECK : TBP_CLI_RUN;
    out->config = st->val[OPT_CONFIG];
    out->listen = st->val[OPT_LISTEN];
    out->upstream = st->val[OPT_UPSTREAM];
    out->cert = st->val[OPT_CERT];
    out->key = st->val[OPT_KEY];
    return 0;
}

int tbp_cli_parse(int argc, char **argv, struct tbp_cli *out, char *err, size_t errlen)
{
    struct cli_state st = {.err = sb_make(err, errlen)};
    int i, ret, options_done = 0;

    memset(out, 0, sizeof(*out));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (options_done || a[0] != '-' || a[1] == '\0')
            return cli_fail(&st, "unexpected argument \"%s\"", a);
        ret = a[1] == '-' ? cli_long(&st, argc, argv, &i) : cli_short(&st, argc, argv, &i);
        if (ret < 0)
            return ret;
    }
    ret = cli_finish(&st, out);
    if (ret < 0)
        memset(out, 0, sizeof(*out));
    return ret;
}

int tbp_cli_config(const struct tbp_cli *cli, struct tbp_config **out, char *err, size_t errlen)
{
    if (cli->config != NULL)
        return tbp_config_load(cli->config, out, err, errlen);
    return tbp_config_quick(cli->listen, cli->upstream, cli->cert, cli->key, out, err, errlen);
}

void tbp_cli_usage(FILE *f, const char *prog)
{
    const char *p = prog != NULL ? prog : "tbproxy";

    fprintf(f,
            "usage: %s -c FILE [-t]\n"
            "       %s --listen ADDR --upstream ADDR --cert FILE --key FILE [-t]\n"
            "       %s -h | -v\n"
            "\n"
            "A TLS reverse proxy that negotiates and verifies Token Binding (draft version).\n"
            "\n"
            "  -c, --config FILE   configuration file (libconfig; reference: conf/README.md)\n"
            "  -t, --test          load and check the configuration, report, exit\n"
            "      --listen ADDR   quick mode: listen on ADDR (127.0.0.1:8443, [::1]:8443)\n"
            "      --upstream ADDR quick mode: forward to the origin at ADDR (127.0.0.1:8080)\n"
            "      --cert FILE     quick mode: certificate chain (PEM, leaf first)\n"
            "      --key FILE      quick mode: private key (PEM)\n"
            "  -h, --help          this text\n"
            "  -v, --version       print the version\n"
            "\n"
            "Quick mode needs all four of its options and no -c: one listener, one origin, Token\n"
            "Binding on (draft; p256, rsa2048), session tickets on, every other option at its\n"
            "default.\n"
            "Exit status: 0 ok, 1 bad configuration or failure, 2 bad usage.\n",
            p, p, p);
}
