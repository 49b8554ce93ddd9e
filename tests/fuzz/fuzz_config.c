/*
 * libFuzzer target: the configuration loader, tbp_config_load, on arbitrary files.
 *
 * The loader reads a path (libconfig's config_read_file, with @include relative to the file's
 * directory), so each input is written to DIR/in.conf, DIR being a private directory made with
 * mkdtemp on the first run and removed at exit (and before a failed oracle aborts). DIR also holds
 * the files a configuration may name, so that loads get past them into what comes after: cert.pem,
 * key.pem, server.pem, server.key (never parsed at load time), cookie.keys (a valid keyring),
 * idp-es256.pub.pem, jwks.json and hs256.secret (the keys of fuzz_jwt), and inc.conf (a small
 * fragment to @include). The seed corpus (tests/fuzz/corpus/config/) is conf/tbproxy.conf,
 * conf/idp.conf and the test configs, with their file names made flat.
 *
 * The fuzzer must not make the loader open arbitrary files on this machine (a device such as
 * /dev/watchdog acts on open; a FIFO would block), so an input is skipped, before anything is
 * written, when
 *   - it holds a NUL byte (the pre-check below reads it as a C string),
 *   - it has "@include" and a '/' or '\' anywhere (an included name then stays inside DIR), or
 *   - it parses (config_read_string, the same grammar) and a setting that names a file (cert,
 *     key, cookie_keys, keys, secret, access, error) has a value that starts with '/' or holds
 *     "..": relative names resolve inside DIR.
 * Everything else goes to the loader: syntax errors, wrong types, ranges, cross-checks, key files
 * that do not parse (in.conf itself is a regular file any setting may name).
 *
 * Oracles (abort on violation), beyond the sanitizers and LeakSanitizer:
 *  - success: *out set, at least one listener, upstream and route, every route pointing at one
 *    of the config's upstreams, workers >= 1, non-zero timeouts, limits in range, absolute file
 *    paths; tbp_config_route, tbp_config_trusted and tbp_config_listener_find answer on it;
 *  - failure: TB_EINVAL or TB_ENOMEM, *out NULL, an error message that is one non-empty line
 *    (NUL-terminated, no newline), names a file, and never quotes the key material of
 *    cookie.keys or hs256.secret (unless the configuration text itself holds it).
 *
 * libconfig 1.5 (Debian 12) leaks what its scanner allocated when a syntax error interrupts a
 * string literal or a token (strbuf_append, libconfig_yylex: a few bytes to a few dozen per failed
 * load, whatever the caller does; fixed upstream in 1.7): not ours, so LeakSanitizer is told to
 * ignore allocations made inside libconfig (__lsan_default_suppressions). Everything the loader
 * allocates itself (the config, its strings, keyrings and keys) is still checked.
 *
 * FUZZ_CONFIG_TRACE=1 in the environment prints each load's outcome (or "skipped") to stderr: to
 * check what the seeds reach.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "tb/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

/* A failed oracle removes DIR first: abort() skips the atexit handler. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            fail();                                                                                \
    } while (0)

/* Key material that must never appear in an error message. */
#define COOKIE_KEY_1 "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"
#define COOKIE_KEY_2 "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"
#define SECRET "vSEA1uzQyoTfjfkqvLXVD9gLEiJrDGArPnfxLS_qOCT2UcGT"

static const char *const fixtures[][2] = {
    {"cert.pem", "-----BEGIN CERTIFICATE-----\n(not read at load time)\n"},
    {"key.pem", "-----BEGIN PRIVATE KEY-----\n(not read at load time)\n"},
    {"server.pem", "cert\n"},
    {"server.key", "key\n"},
    {"cookie.keys", "# keys\nk1 " COOKIE_KEY_1 "\nk2 " COOKIE_KEY_2 "\n"},
    {"idp-es256.pub.pem", "-----BEGIN PUBLIC KEY-----\n"
                          "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhdEE34wOZ5WnsSJzqCCC6B1WDxUK\n"
                          "72Sb+q8v3+2/yp0ZUtPcz2mJjJ5mYIEMbPGJVpAeNjFMC4WkIPuRsrEu7A==\n"
                          "-----END PUBLIC KEY-----\n"},
    {"jwks.json",
     "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec-1\",\"use\":\"sig\",\"alg\":\"ES"
     "256\",\"x\":\"hdEE34wOZ5WnsSJzqCCC6B1WDxUK72Sb-q8v3-2_yp0\",\"y\":\"GVLT3M9piYyeZmCBDGzxiV"
     "aQHjYxTAuFpCD7kbKxLuw\"}]}\n"},
    {"hs256.secret", SECRET "\n"},
    {"inc.conf", "limits = { max_headers = 50; max_header_bytes = 8192; };\n"},
};

static char dir[64];
static char in_path[96];

static void cleanup(void)
{
    char p[160];
    size_t i;

    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, fixtures[i][0]);
        unlink(p);
    }
    unlink(in_path);
    rmdir(dir);
}

static _Noreturn void fail(void)
{
    cleanup();
    abort();
}

static void write_all(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    CHECK(fd != -1);
    CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
    CHECK(close(fd) == 0);
}

static void init(void)
{
    char p[160];
    size_t i;

    snprintf(dir, sizeof(dir), "/tmp/fuzz_config.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(in_path, sizeof(in_path), "%s/in.conf", dir);
    atexit(cleanup);
    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, fixtures[i][0]);
        write_all(p, fixtures[i][1], strlen(fixtures[i][1]));
    }
}

/* --- the pre-check: no file outside DIR ------------------------------------------------------ */

static int names_file(const char *name)
{
    static const char *const file_settings[] = {
        "cert", "key", "cookie_keys", "keys", "secret", "access", "error", NULL,
    };
    size_t i;

    for (i = 0; name != NULL && file_settings[i] != NULL; i++)
        if (strcasecmp(name, file_settings[i]) == 0)
            return 1;
    return 0;
}

/* 1 when s or a setting below it names a file outside DIR (see the top of this file). */
static int escapes(const config_setting_t *s, const char *name)
{
    const char *v;
    int i, n;

    if (config_setting_name(s) != NULL)
        name = config_setting_name(s);
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING:
        v = config_setting_get_string(s);
        return names_file(name) && v != NULL && (v[0] == '/' || strstr(v, "..") != NULL);
    case CONFIG_TYPE_GROUP:
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST:
        n = config_setting_length(s);
        for (i = 0; i < n; i++)
            if (escapes(config_setting_get_elem(s, (unsigned)i), name))
                return 1;
        return 0;
    default:
        return 0;
    }
}

static int skip(const char *text, size_t size)
{
    config_t cf;
    int out = 0;

    if (memchr(text, '\0', size) != NULL)
        return 1;
    if (memmem(text, size, "@include", 8) != NULL &&
        (memchr(text, '/', size) != NULL || memchr(text, '\\', size) != NULL))
        return 1;
    config_init(&cf);
    config_set_include_dir(&cf, dir);
    if (config_read_string(&cf, text) == CONFIG_TRUE)
        out = escapes(config_root_setting(&cf), NULL);
    config_destroy(&cf);
    return out;
}

/* --- the oracles ----------------------------------------------------------------------------- */

static void check_loaded(const struct tbp_config *c)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1)};
    size_t i;

    CHECK(c->path != NULL && c->path[0] == '/');
    CHECK(c->workers >= 1);
    CHECK(c->n_listeners >= 1 && c->n_listeners <= TBP_MAX_LISTENERS && c->listeners != NULL);
    for (i = 0; i < c->n_listeners; i++) {
        CHECK(c->listeners[i].tls.cert != NULL && c->listeners[i].tls.cert[0] == '/');
        CHECK(c->listeners[i].tls.key != NULL && c->listeners[i].tls.key[0] == '/');
        CHECK(tbp_config_listener_find(c, &c->listeners[i].addr) == (int)i);
    }
    CHECK(c->n_upstreams >= 1 && c->upstreams != NULL);
    for (i = 0; i < c->n_upstreams; i++)
        CHECK(c->upstreams[i].n_servers >= 1 && c->upstreams[i].servers != NULL);
    CHECK(c->n_routes >= 1 && c->routes != NULL);
    for (i = 0; i < c->n_routes; i++) {
        const struct tbp_route *r = &c->routes[i];
        CHECK(r->upstream >= c->upstreams && r->upstream < c->upstreams + c->n_upstreams);
        CHECK(r->host != NULL && r->prefix != NULL && strlen(r->prefix) == r->prefix_len);
        CHECK((r->n_bind_cookies == 0 && !r->bind_all_cookies) || c->cookie_keys != NULL);
        CHECK(r->jwt == NULL || (r->jwt->keys != NULL && r->jwt->algs != 0));
    }
    CHECK(c->tb.n_key_types >= 1 && c->tb.n_key_types <= TBP_TB_MAX_KEY_TYPES);
    CHECK(c->tb.n_protocols >= 1 && c->tb.n_protocols <= TBP_TB_MAX_PROTOCOLS);
    CHECK(c->timeouts.handshake_ms > 0 && c->timeouts.header_read_ms > 0 &&
          c->timeouts.idle_keepalive_ms > 0 && c->timeouts.body_read_ms > 0 &&
          c->timeouts.upstream_connect_ms > 0 && c->timeouts.upstream_read_ms > 0 &&
          c->timeouts.shutdown_ms > 0);
    CHECK(c->limits.max_headers >= 1 && c->limits.max_header_bytes >= 1024);
    /* the queries the workers make */
    (void)tbp_config_route(c, "www.example.com", 15, "/api/x", 6);
    (void)tbp_config_route(c, NULL, 0, "/", 1);
    (void)tbp_config_trusted(c, (const struct sockaddr *)&sin);
}

/* Is `secret` in err, though the configuration text does not hold it (messages quote names)? */
static int leaked(const char *err, const char *text, const char *secret)
{
    return strstr(err, secret) != NULL && strstr(text, secret) == NULL;
}

static void check_error(int rc, const struct tbp_config *c, const char *err, size_t cap,
                        const char *text)
{
    size_t n = strnlen(err, cap);

    CHECK(rc == TB_EINVAL || rc == TB_ENOMEM);
    CHECK(c == NULL);
    CHECK(n > 0 && n < cap);
    CHECK(strchr(err, '\n') == NULL);
    CHECK(strstr(err, ".conf") != NULL); /* in.conf or an included file */
    CHECK(!leaked(err, text, COOKIE_KEY_1) && !leaked(err, text, COOKIE_KEY_2));
    CHECK(!leaked(err, text, SECRET));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tbp_config *c = (void *)&c;
    char err[TBP_CONFIG_ERRLEN], *text;
    int rc;

    if (dir[0] == '\0')
        init();
    CHECK((text = malloc(size + 1)) != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    if (skip(text, size)) {
        if (getenv("FUZZ_CONFIG_TRACE") != NULL)
            fprintf(stderr, "config: skipped\n");
        goto Exit;
    }
    write_all(in_path, data, size);
    memset(err, 0x55, sizeof(err));
    rc = tbp_config_load(in_path, &c, err, sizeof(err));
    if (getenv("FUZZ_CONFIG_TRACE") != NULL)
        fprintf(stderr, "config: %d %.*s\n", rc, rc == 0 ? 0 : (int)sizeof(err), err);
    if (rc == 0) {
        CHECK(c != NULL);
        check_loaded(c);
        tbp_config_free(c);
    } else {
        check_error(rc, c, err, sizeof(err), text);
    }
Exit:
    free(text);
    return 0;
}
