/*
 * config: the shipped conf/tbproxy.conf loads and holds the defaults it claims; a minimal file
 * gets every default; every validation error names the file, the line and the setting path;
 * durations in both forms; trusted-proxy CIDR matching (v4, v6, v4-mapped); route matching;
 * quick mode; the command line, conflicts included; the companion-module settings (cookie_keys,
 * bind_cookies, unbound_cookies, refer_token_binding, jwt): each parsed, each error, a failed
 * load and a reload freeing the keys they loaded; the operations settings (timeouts.shutdown,
 * user, admin, quick mode's --admin, --pid-file, -v).
 *
 * Each test runs in a fresh temporary directory (mkdtemp) holding cert.pem and key.pem, so the
 * configs below can name them relatively (paths resolve against the config file's directory);
 * config files are made there with mkstemp and everything is removed by the fixture.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cli.h"
#include "config.h"
#include "keys.h"
#include "tb/cookie.h"
#include "tb/error.h"
#include "tb/jwt.h"

static char dir[PATH_MAX];
static char conf_path[PATH_MAX + 32];
static char err[TBP_CONFIG_ERRLEN];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "fopen %s", path);
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
    char p[PATH_MAX + 32];

    snprintf(dir, sizeof(dir), "/tmp/tbp-test-config-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(p, sizeof(p), "%s/cert.pem", dir);
    write_file(p, "-----BEGIN CERTIFICATE-----\n(not checked here)\n");
    snprintf(p, sizeof(p), "%s/key.pem", dir);
    write_file(p, "-----BEGIN PRIVATE KEY-----\n(not checked here)\n");
}

/* Removes dir and everything below it (two levels are enough here). */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[PATH_MAX + 300];

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        rm_tree(p);
    }
    closedir(d);
    rmdir(path);
}

static void teardown(void)
{
    rm_tree(dir);
}

TestSuite(config, .init = setup, .fini = teardown);
TestSuite(cli);

/* Writes `text` to a new mkstemp file in dir (its path in conf_path) and loads it. */
static int load(const char *text, struct tbp_config **cfg)
{
    int fd, ret;

    snprintf(conf_path, sizeof(conf_path), "%s/tbproxy-XXXXXX", dir);
    fd = mkstemp(conf_path);
    cr_assert_neq(fd, -1);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    err[0] = '\0';
    ret = tbp_config_load(conf_path, cfg, err, sizeof(err));
    if (ret == 0)
        cr_assert_not_null(*cfg);
    else
        cr_assert_null(*cfg);
    return ret;
}

static struct tbp_config *load_ok(const char *text)
{
    struct tbp_config *cfg = NULL;
    int ret = load(text, &cfg);

    cr_assert_eq(ret, 0, "load failed (%d): %s", ret, err);
    return cfg;
}

/*
 * The load fails with "<file>:<line>: <want>..." (line 0: "<file>: <want>..."); `want` is a
 * prefix of the rest, so hints after it are not pinned down.
 */
static void expect_error(const char *text, unsigned line, const char *want)
{
    struct tbp_config *cfg = NULL;
    char prefix[PATH_MAX + 64];
    size_t pl;
    int ret = load(text, &cfg);

    cr_assert_eq(ret, TB_EINVAL, "load returned %d, err \"%s\"", ret, err);
    if (line > 0)
        snprintf(prefix, sizeof(prefix), "%s:%u: ", conf_path, line);
    else
        snprintf(prefix, sizeof(prefix), "%s: ", conf_path);
    pl = strlen(prefix);
    cr_assert(strncmp(err, prefix, pl) == 0, "error \"%s\"\n  does not start with \"%s\"", err,
              prefix);
    cr_assert(strncmp(err + pl, want, strlen(want)) == 0, "error \"%s\"\n  want \"%s%s...\"", err,
              prefix, want);
}

/* Three lines: a listener, an upstream "app", a route; errors below start at line 4. */
#define LISTEN                                                                                     \
    "listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\"; key = "               \
    "\"key.pem\"; }; } );\n"
#define UPS "upstreams = { app = { servers = [ \"127.0.0.1:8080\" ]; }; };\n"
#define ROUTES "routes = ( { upstream = \"app\"; } );\n"
#define MIN LISTEN UPS ROUTES

/* --- loading good files ------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "r"), *out;
    char buf[4096];
    size_t n;

    cr_assert_not_null(in, "cannot open %s (tests run from the repository root)", from);
    out = fopen(to, "w");
    cr_assert_not_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
}

/*
 * conf/tbproxy.conf copied to DIR/conf/, with DIR/certs/server.{pem,key} (not read at load time),
 * cookie.keys and idp-es256.pub.pem (both parsed at load time): what `make run` has.
 */
static struct tbp_config *load_shipped(void)
{
    char p[PATH_MAX + 64];
    struct tbp_config *cfg = NULL;
    unsigned char raw[32], b64[64];
    char line[80];
    EVP_PKEY *idp;
    BIO *b;
    int ret;

    snprintf(p, sizeof(p), "%s/conf", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/certs", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/certs/server.pem", dir);
    write_file(p, "cert\n");
    snprintf(p, sizeof(p), "%s/certs/server.key", dir);
    write_file(p, "key\n");
    cr_assert_eq(RAND_bytes(raw, sizeof(raw)), 1);
    cr_assert_eq(EVP_EncodeBlock(b64, raw, sizeof(raw)), 44);
    snprintf(line, sizeof(line), "k1 %s\n", (const char *)b64);
    snprintf(p, sizeof(p), "%s/certs/cookie.keys", dir);
    write_file(p, line);
    snprintf(p, sizeof(p), "%s/certs/idp-es256.pub.pem", dir);
    idp = tbt_key_load(TBT_PEM_P256_A);
    b = BIO_new_file(p, "w");
    cr_assert(b != NULL && PEM_write_bio_PUBKEY(b, idp) == 1);
    BIO_free(b);
    EVP_PKEY_free(idp);
    snprintf(p, sizeof(p), "%s/conf/tbproxy.conf", dir);
    copy_file("conf/tbproxy.conf", p);
    ret = tbp_config_load(p, &cfg, err, sizeof(err));
    cr_assert_eq(ret, 0, "conf/tbproxy.conf: %s", err);
    return cfg;
}

Test(config, shipped_conf_loads)
{
    struct tbp_config *cfg = load_shipped();
    char want[PATH_MAX + 64];

    cr_assert_eq(cfg->n_listeners, 1);
    cr_expect_str_eq(cfg->listeners[0].addr.text, "127.0.0.1:8443");
    cr_expect_eq(cfg->listeners[0].addr.ss.ss_family, AF_INET);
    snprintf(want, sizeof(want), "%s/conf/../certs/server.pem", dir);
    cr_expect_str_eq(cfg->listeners[0].tls.cert, want);
    snprintf(want, sizeof(want), "%s/conf/../certs/server.key", dir);
    cr_expect_str_eq(cfg->listeners[0].tls.key, want);
    cr_assert_eq(cfg->n_upstreams, 1);
    cr_expect_str_eq(cfg->upstreams[0].name, "app");
    cr_assert_eq(cfg->upstreams[0].n_servers, 1);
    cr_expect_str_eq(cfg->upstreams[0].servers[0].text, "127.0.0.1:8080");
    /* the companion-module demo: /login, /callback (referrals), /api/ (jwt), / (bound cookie) */
    cr_assert_eq(cfg->n_routes, 4);
    cr_expect_str_eq(cfg->routes[0].prefix, "/login");
    cr_expect(cfg->routes[0].refer_token_binding && cfg->routes[1].refer_token_binding);
    cr_expect_str_eq(cfg->routes[1].prefix, "/callback");
    cr_expect_str_eq(cfg->routes[2].prefix, "/api/");
    cr_assert_not_null(cfg->routes[2].jwt);
    cr_expect_eq(cfg->routes[2].jwt->algs, TB_JWT_ES256);
    cr_expect_str_eq(cfg->routes[2].jwt->sub_header, "X-Auth-Sub");
    cr_expect_eq(cfg->routes[3].upstream, &cfg->upstreams[0]);
    cr_expect_str_eq(cfg->routes[3].host, "*");
    cr_expect_str_eq(cfg->routes[3].prefix, "/");
    cr_assert_eq(cfg->routes[3].n_bind_cookies, 1);
    cr_expect_str_eq(cfg->routes[3].bind_cookies[0], "session");
    cr_expect_not_null(cfg->cookie_keys);
    cr_expect_str_eq(cfg->log.access, "-");
    cr_expect_str_eq(cfg->log.error, "-");
    cr_expect_geq(cfg->workers, 1);
    cr_expect_not_null(cfg->path);
    cr_expect_eq(cfg->path[0], '/');
    tbp_config_free(cfg);
}

/* What the shipped file writes out "with its default value" equals the built-in defaults. */
Test(config, shipped_conf_values_are_the_defaults)
{
    struct tbp_config *s = load_shipped(), *m = load_ok(MIN);

    cr_expect_eq(memcmp(&s->timeouts, &m->timeouts, sizeof(s->timeouts)), 0);
    cr_expect_eq(memcmp(&s->limits, &m->limits, sizeof(s->limits)), 0);
    /* the dev file speaks both versions (marked "dev"): the rest of the group is the default */
    cr_expect_eq(s->tb.versions, TBP_TBV_DRAFT | TBP_TBV_RFC);
    cr_expect_eq(m->tb.versions, TBP_TBV_DRAFT);
    cr_expect_eq(s->listeners[0].tb_versions, TBP_TBV_DRAFT | TBP_TBV_RFC);
    s->tb.versions = m->tb.versions;
    cr_expect_eq(memcmp(&s->tb, &m->tb, sizeof(s->tb)), 0);
    cr_expect_eq(s->workers, m->workers);
    cr_expect_eq(s->n_trusted, m->n_trusted);
    cr_expect_str_eq(s->listeners[0].tls.ciphers, m->listeners[0].tls.ciphers);
    cr_expect_str_eq(s->listeners[0].tls.groups, m->listeners[0].tls.groups);
    cr_expect_eq(s->listeners[0].tls.tickets, m->listeners[0].tls.tickets);
    cr_expect_eq(s->listeners[0].tls.ticket_key_rotation_ms,
                 m->listeners[0].tls.ticket_key_rotation_ms);
    cr_expect_eq(s->listeners[0].tls.client_cert, m->listeners[0].tls.client_cert);
    cr_expect_eq(s->listeners[0].tls.client_cert, TBP_CLIENT_CERT_OFF);
    cr_expect_null(s->listeners[0].tls.client_ca, "the shipped file shows client_ca commented out");
    cr_expect_eq(s->upstreams[0].connect_timeout_ms, m->upstreams[0].connect_timeout_ms);
    cr_expect_eq(s->upstreams[0].read_timeout_ms, m->upstreams[0].read_timeout_ms);
    cr_expect_eq(s->upstreams[0].max_idle, m->upstreams[0].max_idle);
    cr_expect_eq(s->upstreams[0].fail_timeout_ms, m->upstreams[0].fail_timeout_ms);
    cr_expect_str_eq(s->log.error, m->log.error);
    cr_expect_eq(s->log.level, m->log.level);
    cr_expect_eq(s->log.format, m->log.format);
    cr_expect_eq(s->admin.enabled, m->admin.enabled);
    cr_expect_str_eq(s->admin.addr.text, m->admin.addr.text);
    cr_expect_null(s->user, "the shipped file shows `user` commented out");
    tbp_config_free(s);
    tbp_config_free(m);
}

Test(config, minimal_file_gets_every_default)
{
    struct tbp_config *c = load_ok(MIN);
    const struct tbp_tls_config *t = &c->listeners[0].tls;
    const struct tbp_upstream *u = &c->upstreams[0];
    char want[PATH_MAX + 32];

    cr_expect_eq(c->workers, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    snprintf(want, sizeof(want), "%s/cert.pem", dir);
    cr_expect_str_eq(t->cert, want);
    cr_expect_str_eq(t->ciphers, TBP_DEF_CIPHERS);
    cr_expect_str_eq(t->groups, "X25519:P-256:P-384");
    cr_expect_eq(t->tickets, 1);
    cr_expect_eq(t->ticket_key_rotation_ms, 3600000);
    cr_expect_eq(t->client_cert, TBP_CLIENT_CERT_OFF);
    cr_expect_null(t->client_ca);
    cr_expect_null(t->client_crl);
    cr_expect_eq(c->tb.enabled, 1);
    cr_expect_eq(c->tb.versions, TBP_TBV_DRAFT);
    cr_assert_eq(c->tb.n_key_types, 2);
    cr_expect_eq(c->tb.key_types[0], TB_KP_ECDSAP256);
    cr_expect_eq(c->tb.key_types[1], TB_KP_RSA2048_PKCS1);
    cr_assert_eq(c->tb.n_protocols, 2);
    cr_expect_eq(c->tb.protocols[0], TBP_PROTO_H2);
    cr_expect_eq(c->tb.protocols[1], TBP_PROTO_HTTP11);
    cr_expect_eq(c->tb.require, 0);
    cr_expect_eq(u->connect_timeout_ms, 5000);
    cr_expect_eq(u->read_timeout_ms, 60000);
    cr_expect_eq(u->max_idle, 64);
    cr_expect_eq(u->fail_timeout_ms, 10000);
    cr_expect_eq(c->timeouts.handshake_ms, 10000);
    cr_expect_eq(c->timeouts.header_read_ms, 30000);
    cr_expect_eq(c->timeouts.idle_keepalive_ms, 60000);
    cr_expect_eq(c->timeouts.body_read_ms, 60000);
    cr_expect_eq(c->timeouts.upstream_connect_ms, 5000);
    cr_expect_eq(c->timeouts.upstream_read_ms, 60000);
    cr_expect_eq(c->timeouts.shutdown_ms, 30000);
    cr_expect_eq(c->timeouts.first_request_ms, 10000);
    cr_expect_eq(c->timeouts.send_ms, 60000);
    cr_expect_null(c->user);
    cr_expect_eq(c->admin.enabled, 1);
    cr_expect_str_eq(c->admin.addr.text, "127.0.0.1:9901");
    cr_expect_eq(c->admin.addr.ss.ss_family, AF_INET);
    cr_expect_eq(c->limits.max_header_bytes, 65536);
    cr_expect_eq(c->limits.max_headers, 100);
    cr_expect_eq(c->limits.max_connections_per_worker, 10000);
    cr_expect_eq(c->limits.max_uri_bytes, 8192);
    cr_expect_eq(c->limits.max_body_size, 0, "no body limit by default (conf/README.md says why)");
    cr_expect_eq(c->limits.max_concurrent_streams, 100);
    cr_expect_eq(c->limits.max_buffer_bytes, 262144);
    cr_expect_eq(c->routes[0].max_body_size, 0);
    cr_expect_eq(c->n_trusted, 0);
    cr_expect_str_eq(c->log.access, "");
    cr_expect_str_eq(c->log.error, "-");
    cr_expect_eq(c->log.level, TBP_LOG_INFO);
    cr_expect_eq(c->log.format, TBP_LOG_COMBINED);
    tbp_config_free(c);
}

Test(config, every_option_set)
{
    struct tbp_config *c = load_ok(
        "workers = 3;\n"
        "listen = ( { address = \"[::1]:9443\"; tls = { cert = \"cert.pem\"; key = \"key.pem\";\n"
        "  ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"; groups = \"P-384:X25519\";\n"
        "  tickets = false;\n"
        "  ticket_key_rotation = \"2h\"; }; },\n"
        "  { address = \"0.0.0.0:9444\"; tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
        "token_binding = { enabled = true; version = \"draft\"; key_types = [ \"rsa2048\" ];\n"
        "  protocols = [ \"http/1.1\" ]; require = true; };\n"
        "upstreams = { app = { servers = [ \"127.0.0.1:8080\", \"[::1]:8081\" ];\n"
        "  connect_timeout = \"250ms\"; read_timeout = 7; max_idle = 0; fail_timeout = 0; };\n"
        "  api_2 = { servers = [ \"10.1.2.3:80\" ]; }; };\n"
        "routes = ( { host = \"API.Example.com.\"; prefix = \"/v2/\"; upstream = \"api_2\";\n"
        "  max_body_size = \"64k\"; },\n"
        "  { host = \"*.example.com\"; upstream = \"api_2\"; }, { upstream = \"app\"; } );\n"
        "timeouts = { handshake = 1; header_read = \"2s\"; idle_keepalive = \"3m\";\n"
        "  body_read = \"4000ms\"; upstream_connect = \"1s\"; upstream_read = \"1h\";\n"
        "  shutdown = \"45s\"; first_request = \"1500ms\"; send = \"20s\"; };\n"
        "user = \"root\";\n"
        "admin = { listen = \"[::1]:9902\"; };\n"
        "limits = { max_header_bytes = 1024; max_headers = 10;\n"
        "  max_connections_per_worker = 5; max_uri_bytes = 64; max_body_size = \"10m\";\n"
        "  max_concurrent_streams = 7; max_buffer_bytes = 65536; };\n"
        "trusted_proxies = [ \"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\" ];\n"
        "log = { access = \"access.log\"; error = \"/var/log/e.log\"; level = \"debug\";\n"
        "  format = \"combined\"; };\n");
    char want[PATH_MAX + 32];

    cr_expect_eq(c->workers, 3);
    cr_assert_eq(c->n_listeners, 2);
    cr_expect_str_eq(c->listeners[0].addr.text, "[::1]:9443");
    cr_expect_eq(c->listeners[0].addr.ss.ss_family, AF_INET6);
    cr_expect_eq(c->listeners[0].addr.len, sizeof(struct sockaddr_in6));
    cr_expect_str_eq(c->listeners[0].tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    cr_expect_str_eq(c->listeners[0].tls.groups, "P-384:X25519");
    cr_expect_str_eq(c->listeners[1].tls.groups, TBP_DEF_GROUPS);
    cr_expect_eq(c->listeners[0].tls.tickets, 0);
    cr_expect_eq(c->listeners[0].tls.ticket_key_rotation_ms, 7200000);
    cr_expect_str_eq(c->listeners[1].addr.text, "0.0.0.0:9444");
    cr_expect_eq(c->tb.n_key_types, 1);
    cr_expect_eq(c->tb.key_types[0], TB_KP_RSA2048_PKCS1);
    cr_expect_eq(c->tb.require, 1);
    cr_assert_eq(c->n_upstreams, 2);
    cr_expect_str_eq(c->upstreams[0].servers[1].text, "[::1]:8081");
    cr_expect_eq(c->upstreams[0].connect_timeout_ms, 250);
    cr_expect_eq(c->upstreams[0].read_timeout_ms, 7000);
    cr_expect_eq(c->upstreams[0].max_idle, 0);
    cr_expect_eq(c->upstreams[0].fail_timeout_ms, 0);
    cr_expect_str_eq(c->upstreams[1].name, "api_2");
    cr_expect_eq(c->upstreams[1].connect_timeout_ms, 1000, "follows timeouts.upstream_connect");
    cr_expect_eq(c->upstreams[1].read_timeout_ms, 3600000, "follows timeouts.upstream_read");
    cr_assert_eq(c->n_routes, 3);
    cr_expect_str_eq(c->routes[0].host, "api.example.com");
    cr_expect_str_eq(c->routes[0].prefix, "/v2/");
    cr_expect_eq(c->routes[0].prefix_len, 4);
    cr_expect_eq(c->routes[0].upstream, &c->upstreams[1]);
    cr_expect_eq(c->routes[2].upstream, &c->upstreams[0]);
    cr_expect_eq(c->timeouts.handshake_ms, 1000);
    cr_expect_eq(c->timeouts.header_read_ms, 2000);
    cr_expect_eq(c->timeouts.idle_keepalive_ms, 180000);
    cr_expect_eq(c->timeouts.body_read_ms, 4000);
    cr_expect_eq(c->timeouts.shutdown_ms, 45000);
    cr_expect_eq(c->timeouts.first_request_ms, 1500);
    cr_expect_eq(c->timeouts.send_ms, 20000);
    cr_expect_eq(c->routes[0].max_body_size, 64 * 1024, "the route's own");
    cr_expect_eq(c->routes[1].max_body_size, 10 * 1024 * 1024, "follows limits.max_body_size");
    cr_expect_str_eq(c->user, "root");
    cr_expect_eq(c->admin.enabled, 1);
    cr_expect_str_eq(c->admin.addr.text, "[::1]:9902");
    cr_expect_eq(c->admin.addr.ss.ss_family, AF_INET6);
    cr_expect_eq(c->limits.max_header_bytes, 1024);
    cr_expect_eq(c->limits.max_headers, 10);
    cr_expect_eq(c->limits.max_connections_per_worker, 5);
    cr_expect_eq(c->limits.max_uri_bytes, 64);
    cr_expect_eq(c->limits.max_body_size, 10 * 1024 * 1024);
    cr_expect_eq(c->limits.max_concurrent_streams, 7);
    cr_expect_eq(c->limits.max_buffer_bytes, 65536);
    cr_expect_eq(c->n_trusted, 3);
    snprintf(want, sizeof(want), "%s/access.log", dir);
    cr_expect_str_eq(c->log.access, want);
    cr_expect_str_eq(c->log.error, "/var/log/e.log");
    cr_expect_eq(c->log.level, TBP_LOG_DEBUG);
    tbp_config_free(c);
}

Test(config, include_is_relative_to_the_config_dir_and_errors_name_the_included_file)
{
    char p[PATH_MAX + 128];
    struct tbp_config *c;

    snprintf(p, sizeof(p), "%s/ups.conf", dir);
    write_file(p, "app = { servers = [ \"127.0.0.1:8080\" ]; };\n");
    c = load_ok(LISTEN "upstreams = {\n@include \"ups.conf\"\n};\n" ROUTES);
    cr_expect_str_eq(c->upstreams[0].name, "app");
    tbp_config_free(c);

    write_file(p, "app = {\n servers = [ \"nowhere\" ]; };\n");
    cr_assert_neq(load(LISTEN "upstreams = {\n@include \"ups.conf\"\n};\n" ROUTES, &c), 0);
    snprintf(p, sizeof(p), "%s/ups.conf:2: upstreams.app.servers[0]: bad address \"nowhere\"", dir);
    cr_expect(strncmp(err, p, strlen(p)) == 0, "got \"%s\"", err);
}

/* --- durations ---------------------------------------------------------------------------- */

static uint32_t handshake_ms(const char *value)
{
    char text[512];
    struct tbp_config *c;
    uint32_t ms;

    snprintf(text, sizeof(text), MIN "timeouts = { handshake = %s; };\n", value);
    c = load_ok(text);
    ms = c->timeouts.handshake_ms;
    tbp_config_free(c);
    return ms;
}

Test(config, durations)
{
    cr_expect_eq(handshake_ms("7"), 7000);
    cr_expect_eq(handshake_ms("\"500ms\""), 500);
    cr_expect_eq(handshake_ms("\"30s\""), 30000);
    cr_expect_eq(handshake_ms("\"2m\""), 120000);
    cr_expect_eq(handshake_ms("\"1h\""), 3600000);
    cr_expect_eq(handshake_ms("\"24h\""), 86400000);
    cr_expect_eq(handshake_ms("\"1ms\""), 1);
    cr_expect_eq(handshake_ms("5L"), 5000);
}

Test(config, bad_durations)
{
    expect_error(MIN "timeouts = { handshake = \"5x\"; };\n", 4,
                 "timeouts.handshake: bad duration \"5x\"");
    expect_error(MIN "timeouts = { handshake = \"10\"; };\n", 4,
                 "timeouts.handshake: bad duration \"10\"");
    expect_error(MIN "timeouts = { handshake = \"1.5s\"; };\n", 4, "timeouts.handshake: bad");
    expect_error(MIN "timeouts = { handshake = \" 5s\"; };\n", 4, "timeouts.handshake: bad");
    expect_error(MIN "timeouts = { handshake = \"-5s\"; };\n", 4, "timeouts.handshake: bad");
    expect_error(MIN "timeouts = { handshake = -5; };\n", 4,
                 "timeouts.handshake: a duration cannot be negative");
    expect_error(MIN "timeouts = { handshake = 0; };\n", 4,
                 "timeouts.handshake: 0ms is out of range (1ms..24h)");
    expect_error(MIN "timeouts = {\n body_read = \"25h\"; };\n", 5,
                 "timeouts.body_read: 25h is out of range (1ms..24h)");
    expect_error(MIN "timeouts = { handshake = 1.5; };\n", 4,
                 "timeouts.handshake: expected a duration");
    expect_error(MIN "timeouts = { handshake = \"99999999999999h\"; };\n", 4,
                 "timeouts.handshake: bad duration");
    expect_error(MIN "timeouts = { handshake = 9000000000000L; };\n", 4,
                 "timeouts.handshake: too long is out of range");
}

/* --- errors, each with its line ----------------------------------------------------------- */

Test(config, missing_or_unreadable_file)
{
    char p[PATH_MAX + 32];
    struct tbp_config *c = NULL;

    snprintf(p, sizeof(p), "%s/absent.conf", dir);
    cr_assert_eq(tbp_config_load(p, &c, err, sizeof(err)), TB_EINVAL);
    cr_assert_null(c);
    cr_expect(strstr(err, "absent.conf: cannot read: No such file or directory") != NULL, "%s",
              err);
    cr_assert_eq(tbp_config_load(dir, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect(strstr(err, ": cannot read: not a regular file") != NULL, "%s", err);
}

Test(config, syntax_error_has_the_line)
{
    expect_error(MIN "\nworkers = ;\n", 5, "syntax error");
    expect_error(MIN "workers = 1;\nworkers = 2;\n", 5, "duplicate setting name");
}

Test(config, unknown_settings_are_errors)
{
    expect_error(MIN "listne = 1;\n", 4, "listne: unknown setting (known here: workers listen");
    expect_error("listen = ( { address = \"127.0.0.1:8443\";\n"
                 "  tls = { cert = \"cert.pem\"; key = \"key.pem\";\n"
                 "    tikets = true; }; } );\n" UPS ROUTES,
                 3, "listen[0].tls.tikets: unknown setting");
    expect_error(LISTEN "upstreams = { app = {\n servers = [ \"127.0.0.1:1\" ];\n"
                        " server = [ \"127.0.0.1:2\" ]; }; };\n" ROUTES,
                 4, "upstreams.app.server: unknown setting");
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\";\n path = \"/\"; } );\n", 4,
                 "routes[0].path: unknown setting (known here: host prefix upstream bind_cookies "
                 "unbound_cookies refer_token_binding jwt max_body_size token_binding "
                 "client_certificate authentication_results token_binding_context)");
    expect_error(MIN "timeouts = { connect = 5; };\n", 4, "timeouts.connect: unknown setting");
    expect_error(MIN "limits = { max_body = 5; };\n", 4, "limits.max_body: unknown setting");
    expect_error(MIN "log = { file = \"-\"; };\n", 4, "log.file: unknown setting");
    expect_error(MIN "token_binding = { versions = \"draft\"; };\n", 4,
                 "token_binding.versions: unknown setting");
    expect_error(MIN "listen = 1;\n", 4, "duplicate setting name");
}

Test(config, wrong_types)
{
    expect_error(MIN "workers = \"4\";\n", 4, "workers: expected an integer");
    expect_error(MIN "workers = 5000;\n", 4, "workers: 5000 is out of range (0..1024)");
    expect_error(MIN "workers = -1;\n", 4, "workers: -1 is out of range");
    expect_error(MIN "token_binding = { enabled = 1; };\n", 4,
                 "token_binding.enabled: expected true or false");
    expect_error(MIN "token_binding = true;\n", 4, "token_binding: expected a group");
    expect_error(MIN "log = { level = info; };\n", 4, "syntax error");
    expect_error(MIN "log = { level = 1; };\n", 4, "log.level: expected a string");
    expect_error("listen = { address = \"127.0.0.1:8443\"; };\n" UPS ROUTES, 1,
                 "listen: expected a list of groups");
    expect_error("listen = ( \"127.0.0.1:8443\" );\n" UPS ROUTES, 1, "listen[0]: expected a group");
    expect_error(LISTEN UPS "routes = { upstream = \"app\"; };\n", 3,
                 "routes: expected a list of groups");
    expect_error(LISTEN "upstreams = { app = { servers = \"127.0.0.1:1\"; }; };\n" ROUTES, 2,
                 "upstreams.app.servers: expected a list of strings");
    expect_error(LISTEN "upstreams = { app = { servers = ( \"127.0.0.1:1\", 2 ); }; };\n" ROUTES, 2,
                 "upstreams.app.servers[1]: expected a string");
    expect_error(LISTEN "upstreams = { app = 1; };\n" ROUTES, 2, "upstreams.app: expected a group");
}

Test(config, bad_addresses)
{
    expect_error(LISTEN "upstreams = {\n  app = {\n    servers = [ \"127.0.0.1:8080\",\n"
                        "                \"foo\" ];\n  };\n};\n" ROUTES,
                 5, "upstreams.app.servers[1]: bad address \"foo\" (want IPv4:port or [IPv6]:port");
    static const char *const bad[] = {
        "127.0.0.1",     "127.0.0.1:", "127.0.0.1:0",     "127.0.0.1:65536", "127.0.0.1:08",
        "127.0.0.1:80x", "::1:80",     "[::1]80",         "[::1]:",          "[127.0.0.1]:80",
        "localhost:80",  ":80",        "[fe80::1%lo]:80", "256.0.0.1:80",    "127.0.0.1:-1"};
    char text[512], want[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 "listen = ( { address = \"%s\"; tls = { cert = \"cert.pem\"; key = "
                 "\"key.pem\"; }; } );\n" UPS ROUTES,
                 bad[i]);
        snprintf(want, sizeof(want), "listen[0].address: bad address \"%s\"", bad[i]);
        expect_error(text, 1, want);
    }
}

Test(config, listener_errors)
{
    expect_error("listen = ();\n" UPS ROUTES, 1, "listen: at least one listener is required");
    expect_error(UPS ROUTES, 0, "listen: missing (at least one listener is required)");
    expect_error(LISTEN "listen = ();\n", 2, "duplicate setting name");
    expect_error("listen = ( { address = \"127.0.0.1:8443\";\n"
                 " tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; },\n"
                 " { address = \"127.0.0.1:8443\";\n"
                 " tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n" UPS ROUTES,
                 3,
                 "listen[1].address: 127.0.0.1:8443 conflicts with listen[0] 127.0.0.1:8443 "
                 "(line 1)");
    expect_error("listen = ( { address = \"127.0.0.1:8443\";\n"
                 " tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; },\n"
                 " { address = \"0.0.0.0:8443\";\n"
                 " tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n" UPS ROUTES,
                 3, "listen[1].address: 0.0.0.0:8443 conflicts with listen[0]");
    expect_error("listen = ( { address = \"[::]:8443\";\n"
                 " tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; },\n"
                 " { address = \"[0::1]:8443\";\n"
                 " tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n" UPS ROUTES,
                 3, "listen[1].address: [::1]:8443 conflicts with listen[0] [::]:8443");
    expect_error(
        "listen = ( {\n tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n" UPS ROUTES, 1,
        "listen[0].address: missing");
    expect_error("listen = ( {\n address = \"127.0.0.1:8443\"; } );\n" UPS ROUTES, 1,
                 "listen[0].tls: missing (cert and key are required)");
    expect_error("listen = ( { address = \"127.0.0.1:8443\";\n tls = { cert = \"cert.pem\"; };"
                 " } );\n" UPS ROUTES,
                 2, "listen[0].tls.key: missing");
}

Test(config, listener_files)
{
    char want[PATH_MAX + 128];

    snprintf(want, sizeof(want),
             "listen[0].tls.cert: cannot read \"nope.pem\" (%s/nope.pem): No such file or "
             "directory",
             dir);
    expect_error("listen = ( { address = \"127.0.0.1:8443\";\n"
                 " tls = {\n  cert = \"nope.pem\"; key = \"key.pem\"; }; } );\n" UPS ROUTES,
                 3, want);
    snprintf(want, sizeof(want), "listen[0].tls.key: cannot read \"%s\": not a regular file", dir);
    char text[PATH_MAX + 256];
    snprintf(text, sizeof(text),
             "listen = ( { address = \"127.0.0.1:8443\";\n"
             " tls = { cert = \"cert.pem\";\n  key = \"%s\"; }; } );\n" UPS ROUTES,
             dir);
    expect_error(text, 3, want);
    expect_error("listen = ( { address = \"127.0.0.1:8443\";\n"
                 " tls = { cert = \"\"; key = \"key.pem\"; }; } );\n" UPS ROUTES,
                 2, "listen[0].tls.cert: must not be empty");
}

/* A listener whose tls group (on line 2) holds `extra`; errors in it are at line 2. */
#define LISTEN_TLS(extra)                                                                          \
    "listen = ( { address = \"127.0.0.1:8443\";\n"                                                 \
    " tls = { cert = \"cert.pem\"; key = \"key.pem\"; " extra " }; } );\n" UPS ROUTES

Test(config, client_certificates)
{
    char p[PATH_MAX + 32];
    struct tbp_config *c;

    snprintf(p, sizeof(p), "%s/ca.pem", dir);
    write_file(p, "-----BEGIN CERTIFICATE-----\n(not checked here)\n");
    snprintf(p, sizeof(p), "%s/crl.pem", dir);
    write_file(p, "-----BEGIN X509 CRL-----\n(not checked here)\n");
    c = load_ok(LISTEN_TLS("client_certificate = \"optional\"; client_ca = \"ca.pem\";"
                           " client_crl = \"./crl.pem\";"));
    cr_expect_eq(c->listeners[0].tls.client_cert, TBP_CLIENT_CERT_OPTIONAL);
    snprintf(p, sizeof(p), "%s/ca.pem", dir);
    cr_expect_str_eq(c->listeners[0].tls.client_ca, p);
    snprintf(p, sizeof(p), "%s/./crl.pem", dir);
    cr_expect_str_eq(c->listeners[0].tls.client_crl, p);
    tbp_config_free(c);
    c = load_ok(LISTEN_TLS("client_certificate = \"required\"; client_ca = \"ca.pem\";"));
    cr_expect_eq(c->listeners[0].tls.client_cert, TBP_CLIENT_CERT_REQUIRED);
    cr_expect_not_null(c->listeners[0].tls.client_ca);
    cr_expect_null(c->listeners[0].tls.client_crl);
    tbp_config_free(c);
    c = load_ok(LISTEN_TLS("client_certificate = \"off\";"));
    cr_expect_eq(c->listeners[0].tls.client_cert, TBP_CLIENT_CERT_OFF);
    cr_expect_null(c->listeners[0].tls.client_ca);
    tbp_config_free(c);
    /* two listeners, each with its own setting */
    c = load_ok(
        "listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
        "  key = \"key.pem\"; client_certificate = \"required\"; client_ca = \"ca.pem\"; }; },\n"
        "  { address = \"127.0.0.1:8444\"; tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } "
        ");\n" UPS ROUTES);
    cr_expect_eq(c->listeners[0].tls.client_cert, TBP_CLIENT_CERT_REQUIRED);
    cr_expect_eq(c->listeners[1].tls.client_cert, TBP_CLIENT_CERT_OFF);
    cr_expect_null(c->listeners[1].tls.client_ca);
    tbp_config_free(c);
}

Test(config, client_certificate_errors)
{
    char p[PATH_MAX + 32];

    snprintf(p, sizeof(p), "%s/ca.pem", dir);
    write_file(p, "x\n");
    expect_error(LISTEN_TLS("client_certificate = \"maybe\"; client_ca = \"ca.pem\";"), 2,
                 "listen[0].tls.client_certificate: unknown value \"maybe\" (known: off, "
                 "optional, required)");
    expect_error(LISTEN_TLS("client_certificate = \"Required\"; client_ca = \"ca.pem\";"), 2,
                 "listen[0].tls.client_certificate: unknown value \"Required\"");
    expect_error(LISTEN_TLS("client_certificate = true; client_ca = \"ca.pem\";"), 2,
                 "listen[0].tls.client_certificate: expected a string");
    expect_error(LISTEN_TLS("client_certificate = \"optional\";"), 2,
                 "listen[0].tls.client_ca: missing (client_certificate = \"optional\" needs");
    expect_error(LISTEN_TLS("client_certificate = \"required\"; client_crl = \"ca.pem\";"), 2,
                 "listen[0].tls.client_ca: missing (client_certificate = \"required\" needs");
    expect_error(LISTEN_TLS("client_ca = \"ca.pem\";"), 2,
                 "listen[0].tls.client_ca: needs client_certificate = \"optional\" or "
                 "\"required\"");
    expect_error(LISTEN_TLS("client_certificate = \"off\"; client_crl = \"ca.pem\";"), 2,
                 "listen[0].tls.client_crl: needs client_certificate");
    expect_error(LISTEN_TLS("client_certificate = \"optional\"; client_ca = \"nope.pem\";"), 2,
                 "listen[0].tls.client_ca: cannot read \"nope.pem\"");
    expect_error(LISTEN_TLS("client_certificate = \"optional\"; client_ca = \"\";"), 2,
                 "listen[0].tls.client_ca: must not be empty");
    expect_error(LISTEN_TLS("client_certificate = \"optional\"; client_ca = \"ca.pem\";"
                            " client_crl = \"nope.pem\";"),
                 2, "listen[0].tls.client_crl: cannot read \"nope.pem\"");
    expect_error(LISTEN_TLS("client_certificate = \"optional\"; client_ca = [ \"ca.pem\" ];"), 2,
                 "listen[0].tls.client_ca: expected a string");
    expect_error(LISTEN_TLS("client_certs = \"optional\";"), 2,
                 "listen[0].tls.client_certs: unknown setting");
    /* at the listener level it is not a listener setting */
    expect_error("listen = ( { address = \"127.0.0.1:8443\"; client_certificate = \"optional\";\n"
                 " tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n" UPS ROUTES,
                 1, "listen[0].client_certificate: unknown setting");
}

Test(config, client_certificate_names)
{
    enum tbp_client_cert m = TBP_CLIENT_CERT_REQUIRED;

    cr_expect_str_eq(tbp_client_cert_name(TBP_CLIENT_CERT_OFF), "off");
    cr_expect_str_eq(tbp_client_cert_name(TBP_CLIENT_CERT_OPTIONAL), "optional");
    cr_expect_str_eq(tbp_client_cert_name(TBP_CLIENT_CERT_REQUIRED), "required");
    cr_expect_str_eq(tbp_client_cert_name((enum tbp_client_cert)9), "unknown");
    cr_expect_eq(tbp_client_cert_parse("off", &m), 0);
    cr_expect_eq(m, TBP_CLIENT_CERT_OFF);
    cr_expect_eq(tbp_client_cert_parse("optional", &m), 0);
    cr_expect_eq(m, TBP_CLIENT_CERT_OPTIONAL);
    cr_expect_eq(tbp_client_cert_parse("required", &m), 0);
    cr_expect_eq(m, TBP_CLIENT_CERT_REQUIRED);
    cr_expect_eq(tbp_client_cert_parse("", &m), TB_EINVAL);
    cr_expect_eq(tbp_client_cert_parse("OFF", &m), TB_EINVAL);
    cr_expect_eq(tbp_client_cert_parse("require", &m), TB_EINVAL);
    cr_expect_eq(m, TBP_CLIENT_CERT_REQUIRED, "a failed parse leaves *out alone");
}

Test(config, ciphers)
{
    expect_error(
        "listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
        " key = \"key.pem\";\n"
        " ciphers = \"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA257\"; }; } );\n" UPS
            ROUTES,
        3, "listen[0].tls.ciphers: unknown cipher \"ECDHE-RSA-AES128-GCM-SHA257\"");
    expect_error(
        "listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
        " key = \"key.pem\";\n"
        " ciphers = \"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA\"; }; } );\n" UPS ROUTES,
        3, "listen[0].tls.ciphers: cipher \"ECDHE-RSA-AES128-SHA\" is not AEAD");
    expect_error("listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                 " key = \"key.pem\"; ciphers = \"\"; }; } );\n" UPS ROUTES,
                 2, "listen[0].tls.ciphers: no usable cipher");
    struct tbp_config *c =
        load_ok("listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                " key = \"key.pem\"; ciphers = \"ECDHE+AESGCM:!aNULL\"; }; } );\n" UPS ROUTES);
    cr_expect_str_eq(c->listeners[0].tls.ciphers, "ECDHE+AESGCM:!aNULL");
    tbp_config_free(c);
    expect_error("listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                 " key = \"key.pem\"; ticket_key_rotation = \"500ms\"; }; } );\n" UPS ROUTES,
                 2, "listen[0].tls.ticket_key_rotation: 500ms is out of range (1s..168h)");
}

Test(config, groups)
{
    static const char *const ok[] = {"X25519", "P-256:P-384:P-521", "secp384r1:X448",
                                     "ffdhe2048:X25519"};
    char text[512];
    size_t i;

    expect_error("listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                 " key = \"key.pem\";\n"
                 " groups = \"X25519:P-255\"; }; } );\n" UPS ROUTES,
                 3, "listen[0].tls.groups: unknown group \"P-255\"");
    expect_error("listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                 " key = \"key.pem\"; groups = \"\"; }; } );\n" UPS ROUTES,
                 2, "listen[0].tls.groups: no usable group in \"\"");
    expect_error("listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                 " key = \"key.pem\"; groups = \"X25519::P-256\"; }; } );\n" UPS ROUTES,
                 2, "listen[0].tls.groups: no usable group in \"X25519::P-256\"");
    expect_error("listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                 " key = \"key.pem\"; groups = [ \"X25519\" ]; }; } );\n" UPS ROUTES,
                 2, "listen[0].tls.groups");
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct tbp_config *c;

        snprintf(text, sizeof(text),
                 "listen = ( { address = \"127.0.0.1:8443\"; tls = { cert = \"cert.pem\";\n"
                 " key = \"key.pem\"; groups = \"%s\"; }; } );\n" UPS ROUTES,
                 ok[i]);
        c = load_ok(text);
        cr_expect_str_eq(c->listeners[0].tls.groups, ok[i]);
        tbp_config_free(c);
    }
}

Test(config, token_binding_errors)
{
    expect_error(MIN "token_binding = {\n  version = \"RFC\"; };\n", 5,
                 "token_binding.version: unknown version \"RFC\" (known: draft, rfc, both)");
    expect_error(MIN "token_binding = { version = \"draft-00\"; };\n", 4,
                 "token_binding.version: unknown version \"draft-00\" (known: draft, rfc, both)");
    expect_error(MIN "token_binding = { version = 1; };\n", 4,
                 "token_binding.version: expected a string");
    expect_error(MIN "token_binding = { key_types = [ \"p256\", \"p384\" ]; };\n", 4,
                 "token_binding.key_types[1]: unknown key type \"p384\" (known: p256, rsa2048)");
    expect_error(MIN "token_binding = { key_types = [ \"ecdsap256\" ]; };\n", 4,
                 "token_binding.key_types[0]: unknown key type \"ecdsap256\"");
    expect_error(MIN "token_binding = { key_types = [ \"p256\", \"p256\" ]; };\n", 4,
                 "token_binding.key_types[1]: duplicate key type \"p256\"");
    expect_error(MIN "token_binding = { key_types = [ ]; };\n", 4,
                 "token_binding.key_types: must not be empty");
    expect_error(MIN "token_binding = { protocols = [ \"h2\", \"h2\" ]; };\n", 4,
                 "token_binding.protocols[1]: duplicate protocol \"h2\"");
    expect_error(MIN "token_binding = { protocols = [ \"http/1.1\", \"http/1.1\" ]; };\n", 4,
                 "token_binding.protocols[1]: duplicate protocol \"http/1.1\"");
    expect_error(MIN "token_binding = { protocols = [ \"spdy/3\" ]; };\n", 4,
                 "token_binding.protocols[0]: unknown protocol \"spdy/3\"");
    expect_error(MIN "token_binding = { enabled = false;\n require = true; };\n", 5,
                 "token_binding.require: require = true needs enabled = true");

    struct tbp_config *c = load_ok(MIN "token_binding = { key_types = [ \"rsa2048\", \"p256\" ];"
                                       " enabled = false; };\n");
    cr_expect_eq(c->tb.enabled, 0);
    cr_expect_eq(c->tb.key_types[0], TB_KP_RSA2048_PKCS1);
    cr_expect_eq(c->tb.key_types[1], TB_KP_ECDSAP256);
    tbp_config_free(c);
}

/* token_binding.version and a listener's token_binding_version: draft, rfc, both */
#define LISTEN2(v0, v1)                                                                            \
    "listen = ( { address = \"127.0.0.1:8443\"; " v0 "\n"                                          \
    "  tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; },\n"                                    \
    "  { address = \"127.0.0.1:8444\"; " v1 "\n"                                                   \
    "  tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n" UPS ROUTES

#define TB_OFF_GROUP "token_binding = { enabled = false; };\n"
#define TB_VERSION_CONF                                                                            \
    LISTEN2("", "token_binding_version = \"draft\";") "token_binding = { version = \"%s\"; };\n"

Test(config, token_binding_versions)
{
    static const struct {
        const char *word;
        unsigned bits;
    } v[] = {{"draft", TBP_TBV_DRAFT}, {"rfc", TBP_TBV_RFC}, {"both", TBP_TBV_DRAFT | TBP_TBV_RFC}};
    char text[1024];
    struct tbp_config *c;
    size_t i;

    c = load_ok(LISTEN2("", ""));
    cr_expect_eq(c->tb.versions, TBP_TBV_DRAFT, "the default is draft");
    cr_expect_eq(c->listeners[0].tb_versions, TBP_TBV_DRAFT);
    cr_expect_eq(c->listeners[1].tb_versions, TBP_TBV_DRAFT);
    tbp_config_free(c);
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        snprintf(text, sizeof(text), TB_VERSION_CONF, v[i].word);
        c = load_ok(text);
        cr_expect_eq(c->tb.versions, v[i].bits, "%s", v[i].word);
        cr_expect_eq(c->listeners[0].tb_versions, v[i].bits, "%s: the listeners' default",
                     v[i].word);
        cr_expect_eq(c->listeners[1].tb_versions, TBP_TBV_DRAFT, "%s: the listener's own",
                     v[i].word);
        cr_expect_str_eq(tbp_tb_versions_name(v[i].bits), v[i].word);
        tbp_config_free(c);
        snprintf(text, sizeof(text), LISTEN2("token_binding_version = \"%s\";", ""), v[i].word);
        c = load_ok(text);
        cr_expect_eq(c->listeners[0].tb_versions, v[i].bits, "%s", v[i].word);
        cr_expect_eq(c->listeners[1].tb_versions, TBP_TBV_DRAFT, "%s", v[i].word);
        tbp_config_free(c);
    }
    cr_expect_str_eq(tbp_tb_versions_name(0), "?");
    expect_error(LISTEN2("", "token_binding_version = \"rfc8471\";"), 3,
                 "listen[1].token_binding_version: unknown version \"rfc8471\" (known: draft, "
                 "rfc, both)");
    expect_error(LISTEN2("token_binding_version = true;", ""), 1,
                 "listen[0].token_binding_version: expected a string");
    expect_error(LISTEN2("token_binding_version = \"rfc\";", "") TB_OFF_GROUP, 1,
                 "listen[0].token_binding_version: needs token_binding.enabled = true");
    expect_error(LISTEN2("tb_version = \"rfc\";", ""), 1, "listen[0].tb_version: unknown setting");
}

/* quick mode's --tb-version, through the command line */
Test(config, cli_quick_tb_version)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];
    struct tbp_config *c = NULL;
    struct tbp_cli cli;
    char *quick[] = {"tbproxy", "--listen", "127.0.0.1:8443", "--upstream", "127.0.0.1:1",
                     "--cert",  cert,       "--key",          key,          "--tb-version",
                     "rfc",     NULL};
    char *with_c[] = {"tbproxy", "-c", "a.conf", "--tb-version", "rfc", NULL};

    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    cr_assert_eq(tbp_cli_parse(11, quick, &cli, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(cli.tb_version, "rfc");
    cr_assert_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c->tb.versions, TBP_TBV_RFC);
    cr_expect_eq(c->listeners[0].tb_versions, TBP_TBV_RFC);
    tbp_config_free(c);
    c = NULL;
    quick[10] = "both";
    cr_assert_eq(tbp_cli_parse(11, quick, &cli, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c->listeners[0].tb_versions, TBP_TBV_DRAFT | TBP_TBV_RFC);
    tbp_config_free(c);
    c = NULL;
    cr_assert_eq(tbp_cli_parse(9, quick, &cli, err, sizeof(err)), 0, "%s", err);
    cr_expect_null(cli.tb_version);
    cr_assert_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c->listeners[0].tb_versions, TBP_TBV_DRAFT, "quick mode's default");
    tbp_config_free(c);
    c = NULL;
    quick[10] = "1.0";
    cr_assert_eq(tbp_cli_parse(11, quick, &cli, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect_str_eq(err, "--tb-version: unknown version \"1.0\" (known: draft, rfc, both)");
    cr_expect_null(c);
    cr_expect_eq(tbp_cli_parse(5, with_c, &cli, err, sizeof(err)), TB_EINVAL);
    cr_expect(strncmp(err, "--tb-version is for quick mode", 30) == 0, "%s", err);
}

Test(config, upstream_errors)
{
    expect_error(LISTEN ROUTES, 0, "upstreams: missing");
    expect_error(LISTEN "upstreams = { };\n" ROUTES, 2,
                 "upstreams: at least one upstream is required");
    expect_error(LISTEN "upstreams = { app = {\n max_idle = 1; }; };\n" ROUTES, 2,
                 "upstreams.app.servers: missing");
    expect_error(LISTEN "upstreams = { app = { servers = [ ]; }; };\n" ROUTES, 2,
                 "upstreams.app.servers: must not be empty");
    expect_error(LISTEN "upstreams = { app = { servers = [ \"127.0.0.1:1\",\n"
                        " \"127.0.0.1:1\" ]; }; };\n" ROUTES,
                 3, "upstreams.app.servers[1]: duplicate server 127.0.0.1:1 (also servers[0])");
    expect_error(LISTEN "upstreams = { a*b = { servers = [ \"127.0.0.1:1\" ]; }; };\n" ROUTES, 2,
                 "upstreams.a*b: bad upstream name");
    expect_error(LISTEN "upstreams = { app = { servers = [ \"127.0.0.1:1\" ];\n"
                        " max_idle = 100001; }; };\n" ROUTES,
                 3, "upstreams.app.max_idle: 100001 is out of range (0..100000)");
    expect_error(LISTEN "upstreams = { app = { servers = [ \"127.0.0.1:1\" ];\n"
                        " connect_timeout = \"0s\"; }; };\n" ROUTES,
                 3, "upstreams.app.connect_timeout: 0ms is out of range");
}

Test(config, route_errors)
{
    expect_error(LISTEN UPS, 0, "routes: missing (at least one route is required)");
    expect_error(LISTEN UPS "routes = ();\n", 3, "routes: at least one route is required");
    expect_error(LISTEN UPS "routes = (\n { prefix = \"/\";\n   upstream = \"ap\"; } );\n", 5,
                 "routes[0].upstream: unknown upstream \"ap\" (defined: app)");
    expect_error(LISTEN UPS "routes = (\n { prefix = \"/\"; } );\n", 4,
                 "routes[0].upstream: missing");
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\"; },\n"
                            " { prefix = \"/api\"; upstream = \"app\"; } );\n",
                 4, "routes[1]: never matches: routes[0] (line 3, host \"*\", prefix \"/\")");
    expect_error(LISTEN UPS
                 "routes = ( { host = \"*.example.com\"; prefix = \"/a\"; upstream = "
                 "\"app\"; },\n"
                 " { host = \"x.Example.com\"; prefix = \"/ab\"; upstream = \"app\"; },\n"
                 " { upstream = \"app\"; } );\n",
                 4, "routes[1]: never matches: routes[0]");
    expect_error(LISTEN UPS "routes = ( { host = \"example.com:443\"; upstream = \"app\"; } );\n",
                 3, "routes[0].host: host \"example.com:443\" must not include a port");
    expect_error(LISTEN UPS "routes = ( { host = \"exa mple.com\"; upstream = \"app\"; } );\n", 3,
                 "routes[0].host: bad host \"exa mple.com\"");
    expect_error(LISTEN UPS "routes = ( { host = \"\"; upstream = \"app\"; } );\n", 3,
                 "routes[0].host: bad host \"\"");
    expect_error(LISTEN UPS "routes = ( { host = \"*.\"; upstream = \"app\"; } );\n", 3,
                 "routes[0].host: bad host");
    expect_error(LISTEN UPS "routes = ( { host = \"[::1]:443\"; upstream = \"app\"; } );\n", 3,
                 "routes[0].host: host \"[::1]:443\" must not include a port");
    expect_error(LISTEN UPS "routes = ( { prefix = \"api\"; upstream = \"app\"; } );\n", 3,
                 "routes[0].prefix: prefix \"api\" must start with '/'");
    expect_error(LISTEN UPS "routes = ( { prefix = \"/a b\"; upstream = \"app\"; } );\n", 3,
                 "routes[0].prefix: prefix \"/a b\": no spaces");
    /* a more specific route before a general one is fine, as are two hosts */
    struct tbp_config *c =
        load_ok(LISTEN UPS
                "routes = ( { host = \"a.example.com\"; prefix = \"/api\"; upstream = \"app\"; },"
                " { host = \"*.example.com\"; upstream = \"app\"; },"
                " { host = \"[::1]\"; upstream = \"app\"; },"
                " { host = \"example.com\"; upstream = \"app\"; },"
                " { upstream = \"app\"; } );\n");
    cr_expect_eq(c->n_routes, 5);
    tbp_config_free(c);
}

Test(config, limits_and_log_errors)
{
    expect_error(MIN "limits = { max_header_bytes = 1023; };\n", 4,
                 "limits.max_header_bytes: 1023 is out of range (1024..1048576)");
    expect_error(MIN "limits = { max_headers = 0; };\n", 4,
                 "limits.max_headers: 0 is out of range");
    expect_error(MIN "limits = { max_connections_per_worker = 2147483648; };\n", 4,
                 "limits.max_connections_per_worker: -2147483648 is out of range");
    expect_error(MIN "log = { level = \"verbose\"; };\n", 4,
                 "log.level: unknown level \"verbose\" (known: debug, info, warn, error)");
    expect_error(MIN "log = { error = \"\"; };\n", 4, "log.error: must not be empty");
    expect_error(MIN "log = { format = \"xml\"; };\n", 4,
                 "log.format: unknown format \"xml\" (known: combined, json)");
}

/* Sizes: integer bytes or digits with k / m / g (binary, either case); 0 is no limit. */
static uint64_t body_size(const char *value)
{
    char text[512];
    struct tbp_config *c;
    uint64_t v;

    snprintf(text, sizeof(text), MIN "limits = { max_body_size = %s; };\n", value);
    c = load_ok(text);
    v = c->limits.max_body_size;
    cr_expect_eq(c->routes[0].max_body_size, v, "a route without its own follows limits");
    tbp_config_free(c);
    return v;
}

Test(config, sizes)
{
    cr_expect_eq(body_size("0"), 0);
    cr_expect_eq(body_size("1234"), 1234);
    cr_expect_eq(body_size("5000000000L"), 5000000000ull);
    cr_expect_eq(body_size("\"0\""), 0);
    cr_expect_eq(body_size("\"100\""), 100);
    cr_expect_eq(body_size("\"512k\""), 512 * 1024);
    cr_expect_eq(body_size("\"512K\""), 512 * 1024);
    cr_expect_eq(body_size("\"10m\""), 10 * 1024 * 1024);
    cr_expect_eq(body_size("\"1G\""), 1024 * 1024 * 1024);
    cr_expect_eq(body_size("\"1048576g\""), 1ull << 50);
}

Test(config, limit_and_timeout_errors)
{
    expect_error(MIN "limits = { max_body_size = \"1.5m\"; };\n", 4,
                 "limits.max_body_size: bad size \"1.5m\" (want bytes as an integer, or a string");
    expect_error(MIN "limits = { max_body_size = \"1t\"; };\n", 4,
                 "limits.max_body_size: bad size \"1t\"");
    expect_error(MIN "limits = { max_body_size = \"10 m\"; };\n", 4,
                 "limits.max_body_size: bad size");
    expect_error(MIN "limits = { max_body_size = \"mb\"; };\n", 4,
                 "limits.max_body_size: bad size");
    expect_error(MIN "limits = { max_body_size = \"10mb\"; };\n", 4,
                 "limits.max_body_size: bad size");
    expect_error(MIN "limits = { max_body_size = -1; };\n", 4,
                 "limits.max_body_size: a size cannot be negative");
    expect_error(MIN "limits = { max_body_size = 1.5; };\n", 4,
                 "limits.max_body_size: expected a size");
    expect_error(MIN "limits = { max_body_size = \"1048577g\"; };\n", 4,
                 "limits.max_body_size: 1125900980584448 is out of range (0..1125899906842624)");
    expect_error(MIN "limits = { max_body_size = \"99999999999999999999\"; };\n", 4,
                 "limits.max_body_size: bad size");
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\";\n max_body_size = \"x\"; } );\n", 4,
                 "routes[0].max_body_size: bad size \"x\"");
    expect_error(MIN "limits = { max_uri_bytes = 63; };\n", 4,
                 "limits.max_uri_bytes: 63 is out of range (64..1048576)");
    expect_error(MIN "limits = { max_uri_bytes = \"8k\"; };\n", 4,
                 "limits.max_uri_bytes: expected an integer");
    expect_error(MIN "limits = { max_concurrent_streams = 0; };\n", 4,
                 "limits.max_concurrent_streams: 0 is out of range (1..10000)");
    expect_error(MIN "limits = {\n max_concurrent_streams = 10001; };\n", 5,
                 "limits.max_concurrent_streams: 10001 is out of range (1..10000)");
    expect_error(MIN "limits = { max_buffer_bytes = 16383; };\n", 4,
                 "limits.max_buffer_bytes: 16383 is out of range (16384..67108864)");
    expect_error(MIN "limits = { max_buffer_bytes = 67108865; };\n", 4,
                 "limits.max_buffer_bytes: 67108865 is out of range");
    expect_error(MIN "limits = { max_body = 1; };\n", 4, "limits.max_body: unknown setting");
    expect_error(MIN "timeouts = { first_request = 0; };\n", 4,
                 "timeouts.first_request: 0ms is out of range (1ms..24h)");
    expect_error(MIN "timeouts = { send = \"25h\"; };\n", 4,
                 "timeouts.send: 25h is out of range (1ms..24h)");
    expect_error(MIN "timeouts = { send = \"soon\"; };\n", 4, "timeouts.send: bad duration");
    expect_error(MIN "timeouts = { first_requests = 1; };\n", 4,
                 "timeouts.first_requests: unknown setting");
}

/* timeouts.shutdown, user, admin */
Test(config, operations_settings)
{
    struct tbp_config *c;

    c = load_ok(MIN "admin = { listen = \"\"; };\ntimeouts = { shutdown = \"1ms\"; };\n");
    cr_expect_eq(c->admin.enabled, 0);
    cr_expect_eq(c->timeouts.shutdown_ms, 1);
    tbp_config_free(c);
    c = load_ok(MIN "admin = { };\n");
    cr_expect_eq(c->admin.enabled, 1, "an empty group keeps the default");
    cr_expect_str_eq(c->admin.addr.text, TBP_DEF_ADMIN_LISTEN);
    tbp_config_free(c);
    /* the default admin address may be taken by a listener once the admin server moves */
    c = load_ok("listen = ( { address = \"0.0.0.0:9901\"; tls = { cert = \"cert.pem\"; key = "
                "\"key.pem\"; }; } );\n" UPS ROUTES "admin = { listen = \"\"; };\n");
    cr_expect_eq(c->admin.enabled, 0);
    tbp_config_free(c);
    c = load_ok(MIN "admin = { listen = \"127.0.0.2:8443\"; };\n");
    cr_expect_str_eq(c->admin.addr.text, "127.0.0.2:8443", "another address, same port");
    tbp_config_free(c);
}

Test(config, operations_settings_errors)
{
    expect_error(MIN "timeouts = { shutdown = 0; };\n", 4,
                 "timeouts.shutdown: 0ms is out of range (1ms..24h)");
    expect_error(MIN "timeouts = { shutdown = \"25h\"; };\n", 4,
                 "timeouts.shutdown: 25h is out of range");
    expect_error(MIN "user = \"\";\n", 4, "user: must not be empty");
    expect_error(MIN "user = 0;\n", 4, "user: expected a string");
    expect_error(MIN "user = \"no-such-user-tbp\";\n", 4,
                 "user: no such user \"no-such-user-tbp\"");
    expect_error(MIN "admin = \"127.0.0.1:9901\";\n", 4, "admin: expected a group");
    expect_error(MIN "admin = { port = 9901; };\n", 4, "admin.port: unknown setting");
    expect_error(MIN "admin = { listen = 9901; };\n", 4, "admin.listen: expected a string");
    expect_error(MIN "admin = {\n  listen = \"localhost:9901\"; };\n", 5,
                 "admin.listen: bad address \"localhost:9901\" (want IPv4:port or [IPv6]:port, "
                 "port 1-65535), or \"\" for none");
    expect_error(MIN "admin = { listen = \"127.0.0.1:0\"; };\n", 4,
                 "admin.listen: bad address \"127.0.0.1:0\"");
    expect_error(MIN "admin = { listen = \"127.0.0.1:8443\"; };\n", 4,
                 "admin.listen: 127.0.0.1:8443 overlaps listen[0] (127.0.0.1:8443)");
    expect_error(MIN "admin = { listen = \"0.0.0.0:8443\"; };\n", 4,
                 "admin.listen: 0.0.0.0:8443 overlaps listen[0] (127.0.0.1:8443)");
    /* left at its default, the admin address collides with a listener: the listener is named */
    expect_error(UPS ROUTES "listen = ( { address = \"0.0.0.0:9901\";\n"
                            "  tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n",
                 3,
                 "listen[0].address: 0.0.0.0:9901 overlaps the admin server's default address "
                 "127.0.0.1:9901 (set admin.listen to another address, or \"\" for none)");
}

Test(config, trusted_proxy_errors)
{
    expect_error(MIN "trusted_proxies = [ \"10.0.0.0/8\",\n \"10.0.0.1/8\" ];\n", 5,
                 "trusted_proxies[1]: \"10.0.0.1/8\" has bits set beyond /8 (did you mean "
                 "\"10.0.0.0/8\"?)");
    expect_error(MIN "trusted_proxies = [ \"fd00::1/8\" ];\n", 4,
                 "trusted_proxies[0]: \"fd00::1/8\" has bits set beyond /8 (did you mean "
                 "\"fd00::/8\"?)");
    static const char *const bad[] = {"10.0.0.0/33", "::/129",      "10.0.0.0/",
                                      "10.0.0.0/x",  "/8",          "10.0.0/8",
                                      "example.com", "10.0.0.0/08", ""};
    char text[256], want[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), MIN "trusted_proxies = [ \"%s\" ];\n", bad[i]);
        snprintf(want, sizeof(want), "trusted_proxies[0]: bad address or prefix \"%s\"", bad[i]);
        expect_error(text, 4, want);
    }
}

/* --- trusted proxies ---------------------------------------------------------------------- */

static struct sockaddr_storage sa_of(const char *ip)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') == NULL) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    }
    return ss;
}

static int trusted(const struct tbp_config *c, const char *ip)
{
    struct sockaddr_storage ss = sa_of(ip);

    return tbp_config_trusted(c, (const struct sockaddr *)&ss);
}

Test(config, cidr_matching)
{
    struct tbp_config *c = load_ok(MIN "trusted_proxies = [ \"127.0.0.1\", \"10.0.0.0/8\", "
                                       "\"172.16.0.0/12\", \"2001:db8::/33\", \"::1\", "
                                       "\"fe80::/10\" ];\n");

    cr_expect_eq(c->n_trusted, 6);
    cr_expect_eq(trusted(c, "127.0.0.1"), 1);
    cr_expect_eq(trusted(c, "127.0.0.2"), 0);
    cr_expect_eq(trusted(c, "10.0.0.0"), 1);
    cr_expect_eq(trusted(c, "10.255.255.255"), 1);
    cr_expect_eq(trusted(c, "11.0.0.0"), 0);
    cr_expect_eq(trusted(c, "9.255.255.255"), 0);
    cr_expect_eq(trusted(c, "172.16.0.1"), 1);
    cr_expect_eq(trusted(c, "172.31.255.255"), 1);
    cr_expect_eq(trusted(c, "172.32.0.0"), 0);
    cr_expect_eq(trusted(c, "172.15.255.255"), 0);
    cr_expect_eq(trusted(c, "::ffff:10.1.2.3"), 1, "v4-mapped matches v4 prefixes");
    cr_expect_eq(trusted(c, "::ffff:127.0.0.1"), 1);
    cr_expect_eq(trusted(c, "::ffff:11.1.2.3"), 0);
    cr_expect_eq(trusted(c, "::1"), 1);
    cr_expect_eq(trusted(c, "::2"), 0);
    cr_expect_eq(trusted(c, "2001:db8::1"), 1);
    cr_expect_eq(trusted(c, "2001:db8:7fff:ffff::1"), 1);
    cr_expect_eq(trusted(c, "2001:db8:8000::1"), 0, "bit 33 set");
    cr_expect_eq(trusted(c, "2001:db9::1"), 0);
    cr_expect_eq(trusted(c, "fe80::1"), 1);
    cr_expect_eq(trusted(c, "febf::1"), 1);
    cr_expect_eq(trusted(c, "fec0::1"), 0);
    cr_expect_eq(trusted(c, "::a00:1"), 0, "v4-compatible is not v4");
    struct sockaddr sa = {.sa_family = AF_UNIX};
    cr_expect_eq(tbp_config_trusted(c, &sa), 0);
    cr_expect_eq(tbp_config_trusted(c, NULL), 0);
    cr_expect_eq(tbp_config_trusted(NULL, &sa), 0);
    tbp_config_free(c);
}

Test(config, cidr_zero_prefix_and_empty_list)
{
    struct tbp_config *c = load_ok(MIN "trusted_proxies = [ \"0.0.0.0/0\" ];\n");

    cr_expect_eq(trusted(c, "1.2.3.4"), 1);
    cr_expect_eq(trusted(c, "255.255.255.255"), 1);
    cr_expect_eq(trusted(c, "::1"), 0, "a v4 prefix does not match v6");
    tbp_config_free(c);
    c = load_ok(MIN "trusted_proxies = [ \"::/0\" ];\n");
    cr_expect_eq(trusted(c, "2001:db8::1"), 1);
    cr_expect_eq(trusted(c, "1.2.3.4"), 0);
    tbp_config_free(c);
    c = load_ok(MIN "trusted_proxies = [ ];\n");
    cr_expect_eq(trusted(c, "127.0.0.1"), 0);
    tbp_config_free(c);
}

/* --- routes ------------------------------------------------------------------------------- */

static const char *route_to(const struct tbp_config *c, const char *host, const char *path)
{
    const struct tbp_route *r =
        tbp_config_route(c, host, host ? strlen(host) : 0, path, strlen(path));

    return r != NULL ? r->upstream->name : "(none)";
}

Test(config, route_matching)
{
    struct tbp_config *c = load_ok(
        LISTEN "upstreams = { a = { servers = [ \"127.0.0.1:1\" ]; };"
               " b = { servers = [ \"127.0.0.1:2\" ]; }; c = { servers = [ \"127.0.0.1:3\" ]; };"
               " d = { servers = [ \"127.0.0.1:4\" ]; }; };\n"
               "routes = ( { host = \"api.example.com\"; prefix = \"/v1/\"; upstream = \"a\"; },"
               " { host = \"*.example.com\"; upstream = \"b\"; },"
               " { host = \"[::1]\"; upstream = \"d\"; },"
               " { prefix = \"/static/\"; upstream = \"c\"; } );\n");

    cr_expect_str_eq(route_to(c, "api.example.com", "/v1/x"), "a");
    cr_expect_str_eq(route_to(c, "API.Example.COM:8443", "/v1/"), "a");
    cr_expect_str_eq(route_to(c, "api.example.com.", "/v1/x?q"), "a");
    cr_expect_str_eq(route_to(c, "api.example.com", "/v1"), "b");
    cr_expect_str_eq(route_to(c, "www.example.com", "/"), "b");
    cr_expect_str_eq(route_to(c, "a.b.example.com", "/static/x"), "b");
    cr_expect_str_eq(route_to(c, "example.com", "/static/x"), "c", "*.x does not match x");
    cr_expect_str_eq(route_to(c, "xexample.com", "/static/x"), "c");
    cr_expect_str_eq(route_to(c, "[::1]:8443", "/"), "d");
    cr_expect_str_eq(route_to(c, "[::1]", "/static/"), "d");
    cr_expect_str_eq(route_to(c, NULL, "/static/a"), "c");
    cr_expect_str_eq(route_to(c, "", "/static/a"), "c");
    cr_expect_str_eq(route_to(c, "other", "/dynamic"), "(none)");
    cr_expect_str_eq(route_to(c, "other", "/stati"), "(none)");
    tbp_config_free(c);
}

/* --- companion module: cookie_keys, bound cookies, federation, jwt ------------------------ */

/*
 * The companion suite's directory also holds key material, made at test time:
 *   cookie.keys      two cookie keys, "k1" then "k2" (k2 binds)
 *   keys/other.keys  one key "solo" (a relative path into a subdirectory)
 *   p256.pem         the public half of TBT_PEM_P256_A
 *   rsa.pem          the public half of TBT_PEM_RSA_A (2048 bits)
 *   both.pem         both public keys, one after the other
 *   hmac.secret      a 42-byte secret and a newline
 *   garbage.pem      text that is no key at all
 *   short.secret     a secret too short for HS256
 */
static void write_path(const char *name, const char *text)
{
    char p[PATH_MAX + 64];

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    write_file(p, text);
}

/* "ID BASE64(32 random bytes)\n" */
static void cookie_key_line(char *out, size_t cap, const char *id)
{
    unsigned char raw[32], b64[64];

    cr_assert_eq(RAND_bytes(raw, sizeof(raw)), 1);
    cr_assert_eq(EVP_EncodeBlock(b64, raw, sizeof(raw)), 44);
    snprintf(out, cap, "%s %s\n", id, (const char *)b64);
}

/* The public halves of the private keys `pems` (NULL-terminated), PEM, into dir/name. */
static void write_public(const char *name, const char *const *pems)
{
    char p[PATH_MAX + 64];
    BIO *b;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    b = BIO_new_file(p, "w");
    cr_assert_not_null(b);
    for (; *pems != NULL; pems++) {
        EVP_PKEY *k = tbt_key_load(*pems);
        cr_assert_eq(PEM_write_bio_PUBKEY(b, k), 1);
        EVP_PKEY_free(k);
    }
    BIO_free(b);
}

static void companion_setup(void)
{
    char text[512], k1[128], k2[128], p[PATH_MAX + 32];

    setup();
    cookie_key_line(k1, sizeof(k1), "k1");
    cookie_key_line(k2, sizeof(k2), "k2");
    snprintf(text, sizeof(text), "%s\n# rotation: the last key binds\n%s", k1, k2);
    write_path("cookie.keys", text);
    snprintf(p, sizeof(p), "%s/keys", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    cookie_key_line(k1, sizeof(k1), "solo");
    write_path("keys/other.keys", k1);
    write_public("p256.pem", (const char *const[]){TBT_PEM_P256_A, NULL});
    write_public("rsa.pem", (const char *const[]){TBT_PEM_RSA_A, NULL});
    write_public("both.pem", (const char *const[]){TBT_PEM_P256_A, TBT_PEM_RSA_A, NULL});
    write_path("hmac.secret", "0123456789abcdef0123456789abcdef0123456789\n");
    write_path("garbage.pem", "this is not a key\n");
    write_path("short.secret", "0123456789\n");
}

TestSuite(companion, .init = companion_setup, .fini = teardown);

/* Lines 1-3: listener, upstream, cookie_keys; the route's own settings start at line 5. */
#define CK "cookie_keys = \"cookie.keys\";\n"
#define ROUTE_OPEN "routes = ( { upstream = \"app\";\n"
#define ROUTE_CLOSE " } );\n"
#define TB_OFF "token_binding = { enabled = false; };\n"

/* A config whose one route has `body` (from line 5), followed by `tail`. */
static void route_text(char *out, size_t cap, const char *body, const char *tail)
{
    int n = snprintf(out, cap, LISTEN UPS CK ROUTE_OPEN "%s" ROUTE_CLOSE "%s", body, tail);

    cr_assert(n > 0 && (size_t)n < cap);
}

static struct tbp_config *route_ok(const char *body)
{
    char text[4096];

    route_text(text, sizeof(text), body, "");
    return load_ok(text);
}

static void route_error(const char *body, const char *tail, unsigned line, const char *want)
{
    char text[4096];

    route_text(text, sizeof(text), body, tail);
    expect_error(text, line, want);
}

/* The load fails at `line` with a message that starts with `want` and contains `also`. */
static void route_error_has(const char *body, unsigned line, const char *want, const char *also)
{
    route_error(body, "", line, want);
    cr_expect(strstr(err, also) != NULL, "error \"%s\" lacks \"%s\"", err, also);
}

Test(companion, defaults_are_off)
{
    struct tbp_config *c = load_ok(MIN);
    const struct tbp_route *r = &c->routes[0];

    cr_expect_null(c->cookie_keys);
    cr_expect_eq(r->n_bind_cookies, 0);
    cr_expect_null(r->bind_cookies);
    cr_expect_eq(r->bind_all_cookies, 0);
    cr_expect_eq(r->unbound_cookies, TBP_UNBOUND_DROP);
    cr_expect_eq(r->refer_token_binding, 0);
    cr_expect_null(r->jwt);
    tbp_config_free(c);
}

Test(companion, quick_mode_has_none_of_it)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];
    struct tbp_config *c = NULL;

    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    cr_assert_eq(tbp_config_quick("127.0.0.1:1", "127.0.0.1:2", cert, key, &c, err, sizeof(err)), 0,
                 "%s", err);
    cr_expect_null(c->cookie_keys);
    cr_expect_eq(c->routes[0].n_bind_cookies, 0);
    cr_expect_eq(c->routes[0].bind_all_cookies, 0);
    cr_expect_eq(c->routes[0].unbound_cookies, TBP_UNBOUND_DROP);
    cr_expect_eq(c->routes[0].refer_token_binding, 0);
    cr_expect_null(c->routes[0].jwt);
    tbp_config_free(c);
}

Test(companion, cookie_keys_load_relative_to_the_config_dir)
{
    struct tbp_config *c = load_ok(MIN CK);

    cr_assert_not_null(c->cookie_keys);
    cr_expect_eq(tb_cookie_keyring_count(c->cookie_keys), 2);
    cr_expect_str_eq(tb_cookie_keyring_active_id(c->cookie_keys), "k2");
    tbp_config_free(c);
    c = load_ok(MIN "cookie_keys = \"keys/other.keys\";\n");
    cr_assert_not_null(c->cookie_keys);
    cr_expect_eq(tb_cookie_keyring_count(c->cookie_keys), 1);
    cr_expect_str_eq(tb_cookie_keyring_active_id(c->cookie_keys), "solo");
    tbp_config_free(c);
}

Test(companion, cookie_keys_errors)
{
    char want[PATH_MAX + 128];

    snprintf(want, sizeof(want),
             "cookie_keys: cannot read \"nope.keys\" (%s/nope.keys): No such file or directory",
             dir);
    expect_error(MIN "\ncookie_keys = \"nope.keys\";\n", 5, want);
    expect_error(MIN "cookie_keys = 1;\n", 4, "cookie_keys: expected a string");
    expect_error(MIN "cookie_keys = \"\";\n", 4, "cookie_keys: must not be empty");
    snprintf(want, sizeof(want), "cookie_keys: cannot read \"%s\": not a regular file", dir);
    char text[PATH_MAX + 256];
    snprintf(text, sizeof(text), MIN "cookie_keys = \"%s\";\n", dir);
    expect_error(text, 4, want);
    /* what the keyring loader says comes after the setting's location; it names the key file */
    write_path("bad.keys", "k1 not-base64!\n");
    expect_error(MIN "cookie_keys = \"bad.keys\";\n", 4, "cookie_keys: ");
    cr_expect(strstr(err, "bad.keys") != NULL, "%s", err);
    write_path("empty.keys", "# no keys\n");
    expect_error(MIN "cookie_keys = \"empty.keys\";\n", 4, "cookie_keys: ");
    cr_expect(strstr(err, "empty.keys") != NULL, "%s", err);
}

Test(companion, bind_cookies_parsed)
{
    struct tbp_config *c =
        route_ok(" bind_cookies = [ \"session\", \"__Host-id\", \"a.b!#$%&'*+-^_`|~\" ];\n"
                 " unbound_cookies = \"pass\";\n refer_token_binding = true;\n");
    const struct tbp_route *r = &c->routes[0];

    cr_assert_eq(r->n_bind_cookies, 3);
    cr_expect_str_eq(r->bind_cookies[0], "session");
    cr_expect_str_eq(r->bind_cookies[1], "__Host-id");
    cr_expect_str_eq(r->bind_cookies[2], "a.b!#$%&'*+-^_`|~");
    cr_expect_eq(r->bind_all_cookies, 0);
    cr_expect_eq(r->unbound_cookies, TBP_UNBOUND_PASS);
    cr_expect_eq(r->refer_token_binding, 1);
    cr_expect_not_null(c->cookie_keys);
    tbp_config_free(c);

    c = route_ok(" bind_cookies = \"*\"; unbound_cookies = \"drop\";\n");
    cr_expect_eq(c->routes[0].bind_all_cookies, 1);
    cr_expect_eq(c->routes[0].n_bind_cookies, 0);
    cr_expect_eq(c->routes[0].unbound_cookies, TBP_UNBOUND_DROP);
    tbp_config_free(c);

    c = route_ok(" bind_cookies = ( \"*\" ); refer_token_binding = false;\n");
    cr_expect_eq(c->routes[0].bind_all_cookies, 1);
    cr_expect_eq(c->routes[0].refer_token_binding, 0);
    tbp_config_free(c);

    /* the names are copies: they outlive the libconfig tree; two routes keep their own */
    c = load_ok(LISTEN UPS CK "routes = ( { prefix = \"/a/\"; upstream = \"app\";"
                              " bind_cookies = [ \"x\" ]; refer_token_binding = true; },\n"
                              " { upstream = \"app\"; bind_cookies = [ \"y\", \"z\" ]; } );\n");
    cr_assert_eq(c->routes[0].n_bind_cookies, 1);
    cr_expect_str_eq(c->routes[0].bind_cookies[0], "x");
    cr_expect_eq(c->routes[0].refer_token_binding, 1);
    cr_assert_eq(c->routes[1].n_bind_cookies, 2);
    cr_expect_str_eq(c->routes[1].bind_cookies[1], "z");
    cr_expect_eq(c->routes[1].refer_token_binding, 0);
    cr_expect_eq(c->routes[1].unbound_cookies, TBP_UNBOUND_DROP);
    tbp_config_free(c);
}

Test(companion, bind_cookies_limit)
{
    char body[2048], text[4096];
    size_t n = 0;
    int i;

    n += (size_t)snprintf(body + n, sizeof(body) - n, " bind_cookies = [ ");
    for (i = 0; i < TBP_MAX_BIND_COOKIES; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"c%d\"", i ? ", " : "", i);
    snprintf(body + n, sizeof(body) - n, " ];\n");
    struct tbp_config *c = route_ok(body);
    cr_expect_eq(c->routes[0].n_bind_cookies, TBP_MAX_BIND_COOKIES);
    cr_expect_str_eq(c->routes[0].bind_cookies[TBP_MAX_BIND_COOKIES - 1], "c63");
    tbp_config_free(c);
    snprintf(body + n, sizeof(body) - n, ", \"one-more\" ];\n");
    route_text(text, sizeof(text), body, "");
    expect_error(text, 5, "routes[0].bind_cookies: too many entries (65, at most 64)");
}

Test(companion, bind_cookies_errors)
{
    /* without cookie_keys, or without Token Binding */
    expect_error(LISTEN UPS ROUTE_OPEN " bind_cookies = [ \"session\" ];" ROUTE_CLOSE, 4,
                 "routes[0].bind_cookies: needs the top-level cookie_keys");
    route_error(" bind_cookies = \"*\";\n", TB_OFF, 5,
                "routes[0].bind_cookies: needs token_binding.enabled = true");
    /* names */
    route_error(" bind_cookies = [ \"ok\",\n \"se ssion\" ];\n", "", 6,
                "routes[0].bind_cookies[1]: bad cookie name \"se ssion\" (a token: letters, "
                "digits and !#$%&'*+-.^_`|~)");
    route_error(" bind_cookies = [ \"a=b\" ];\n", "", 5,
                "routes[0].bind_cookies[0]: bad cookie name \"a=b\"");
    route_error(" bind_cookies = [ \"a;b\" ];\n", "", 5, "routes[0].bind_cookies[0]: bad cookie");
    route_error(" bind_cookies = [ \"\" ];\n", "", 5, "routes[0].bind_cookies[0]: bad cookie");
    route_error(" bind_cookies = [ \"caf\xc3\xa9\" ];\n", "", 5,
                "routes[0].bind_cookies[0]: bad cookie");
    route_error(" bind_cookies = [ \"a\\\"b\" ];\n", "", 5,
                "routes[0].bind_cookies[0]: bad cookie");
    route_error(" bind_cookies = [ \"sid\", \"id\",\n \"sid\" ];\n", "", 6,
                "routes[0].bind_cookies[2]: duplicate cookie name \"sid\" (also bind_cookies[0])");
    route_error(" bind_cookies = [ \"session\", \"*\" ];\n", "", 5,
                "routes[0].bind_cookies[1]: \"*\" (every cookie) must be the only entry");
    route_error(" bind_cookies = [ \"*\", \"session\" ];\n", "", 5,
                "routes[0].bind_cookies[0]: \"*\" (every cookie) must be the only entry");
    /* shapes */
    route_error(" bind_cookies = \"session\";\n", "", 5,
                "routes[0].bind_cookies: expected \"*\" (every cookie) or a list of cookie names");
    route_error(" bind_cookies = [ ];\n", "", 5, "routes[0].bind_cookies: must not be empty");
    route_error(" bind_cookies = 1;\n", "", 5,
                "routes[0].bind_cookies: expected a list of strings");
    route_error(" bind_cookies = ( \"a\", 2 );\n", "", 5,
                "routes[0].bind_cookies[1]: expected a string");
    /* unbound_cookies and refer_token_binding */
    route_error(" unbound_cookies = \"pass\";\n", "", 5,
                "routes[0].unbound_cookies: only meaningful with bind_cookies");
    route_error(" bind_cookies = \"*\";\n unbound_cookies = \"allow\";\n", "", 6,
                "routes[0].unbound_cookies: unknown policy \"allow\" (known: drop, pass)");
    route_error(" bind_cookies = \"*\";\n unbound_cookies = \"Drop\";\n", "", 6,
                "routes[0].unbound_cookies: unknown policy \"Drop\"");
    route_error(" bind_cookies = \"*\"; unbound_cookies = false;\n", "", 5,
                "routes[0].unbound_cookies: expected a string");
    route_error(" refer_token_binding = 1;\n", "", 5,
                "routes[0].refer_token_binding: expected true or false");
    route_error(" refer_token_binding = \"yes\";\n", "", 5,
                "routes[0].refer_token_binding: expected true or false");
    /* the second route is the one named */
    expect_error(LISTEN UPS CK "routes = ( { prefix = \"/a/\"; upstream = \"app\"; },\n"
                               " { upstream = \"app\";\n bind_cookies = [ \"-\", \"(x)\" ]; } );\n",
                 6, "routes[1].bind_cookies[1]: bad cookie name \"(x)\"");
}

/* jwt = { ... } inside the route, from line 5. */
#define JWT_P256 " jwt = { keys = \"p256.pem\"; algs = [ \"ES256\" ];\n"

Test(companion, jwt_parsed)
{
    struct tbp_config *c = route_ok(JWT_P256 "  from = \"cookie:auth_token\"; issuer = "
                                             "\"https://idp.example\";\n"
                                             "  audience = \"rp\"; leeway = \"2m\"; binding = "
                                             "\"provided\"; sub_header = \"X-Auth-Sub\"; };\n");
    const struct tbp_jwt_route *j = c->routes[0].jwt;

    cr_assert_not_null(j);
    cr_expect_eq(j->from, TBP_JWT_FROM_COOKIE);
    cr_expect_str_eq(j->cookie, "auth_token");
    cr_assert_not_null(j->keys);
    cr_expect_eq(tb_jwt_keys_algs(j->keys), TB_JWT_ES256);
    cr_expect_eq(j->algs, TB_JWT_ES256);
    cr_expect_str_eq(j->issuer, "https://idp.example");
    cr_expect_str_eq(j->audience, "rp");
    cr_expect_eq(j->leeway_s, 120);
    cr_expect_str_eq(j->sub_header, "X-Auth-Sub");
    tbp_config_free(c);

    /* the defaults: from the Authorization header, 60 s of leeway, nothing else checked */
    c = route_ok(JWT_P256 " };\n");
    j = c->routes[0].jwt;
    cr_assert_not_null(j);
    cr_expect_eq(j->from, TBP_JWT_FROM_AUTHORIZATION);
    cr_expect_null(j->cookie);
    cr_expect_eq(j->leeway_s, TBP_DEF_JWT_LEEWAY_S);
    cr_expect_eq(j->leeway_s, 60);
    cr_expect_null(j->issuer);
    cr_expect_null(j->audience);
    cr_expect_null(j->sub_header);
    cr_expect_eq(c->routes[0].n_bind_cookies, 0, "jwt does not imply bound cookies");
    tbp_config_free(c);

    /* two kinds of public keys; an HMAC secret; leeway bounds */
    c = route_ok(" jwt = { keys = \"both.pem\"; algs = [ \"RS256\", \"ES256\" ]; leeway = 0; };\n");
    cr_expect_eq(c->routes[0].jwt->algs, TB_JWT_ES256 | TB_JWT_RS256);
    cr_expect_eq(c->routes[0].jwt->leeway_s, 0);
    tbp_config_free(c);
    c = route_ok(" jwt = { keys = \"rsa.pem\"; algs = [ \"RS256\" ]; leeway = \"1h\"; };\n");
    cr_expect_eq(c->routes[0].jwt->algs, TB_JWT_RS256);
    cr_expect_eq(c->routes[0].jwt->leeway_s, 3600);
    tbp_config_free(c);
    c = route_ok(" jwt = { secret = \"hmac.secret\"; algs = [ \"HS256\" ]; leeway = 30; "
                 "from = \"authorization\"; };\n");
    cr_expect_eq(c->routes[0].jwt->algs, TB_JWT_HS256);
    cr_expect_eq(tb_jwt_keys_algs(c->routes[0].jwt->keys), TB_JWT_HS256);
    cr_expect_eq(c->routes[0].jwt->leeway_s, 30);
    tbp_config_free(c);
}

Test(companion, jwt_with_bound_cookies_on_several_routes)
{
    struct tbp_config *c = load_ok(
        LISTEN UPS CK
        "routes = ( { prefix = \"/api/\"; upstream = \"app\";\n"
        "  jwt = { keys = \"p256.pem\"; algs = [ \"ES256\" ]; sub_header = \"x-user\"; }; },\n"
        " { prefix = \"/hs/\"; upstream = \"app\";\n"
        "  jwt = { secret = \"hmac.secret\"; algs = [ \"HS256\" ]; }; },\n"
        " { upstream = \"app\"; bind_cookies = [ \"session\" ]; refer_token_binding = true; } "
        ");\n");

    cr_assert_eq(c->n_routes, 3);
    cr_assert_not_null(c->routes[0].jwt);
    cr_assert_not_null(c->routes[1].jwt);
    cr_expect_neq(c->routes[0].jwt, c->routes[1].jwt);
    cr_expect_neq(c->routes[0].jwt->keys, c->routes[1].jwt->keys);
    cr_expect_str_eq(c->routes[0].jwt->sub_header, "x-user");
    cr_expect_null(c->routes[2].jwt);
    cr_expect_eq(c->routes[2].n_bind_cookies, 1);
    cr_expect_eq(c->routes[2].refer_token_binding, 1);
    tbp_config_free(c);
}

Test(companion, jwt_key_errors)
{
    char want[PATH_MAX + 128];

    route_error(" jwt = { algs = [ \"ES256\" ]; };\n", "", 5,
                "routes[0].jwt.keys: missing (keys = \"public.pem\" or a JWKS file, or "
                "secret = \"hmac.secret\")");
    route_error(" jwt = { keys = \"p256.pem\";\n secret = \"hmac.secret\"; algs = [ \"ES256\" ]; "
                "};\n",
                "", 6, "routes[0].jwt.secret: keys and secret are exclusive");
    snprintf(want, sizeof(want),
             "routes[0].jwt.keys: cannot read \"nope.pem\" (%s/nope.pem): No such file", dir);
    route_error(" jwt = {\n keys = \"nope.pem\"; algs = [ \"ES256\" ]; };\n", "", 6, want);
    route_error(" jwt = { keys = \"\"; algs = [ \"ES256\" ]; };\n", "", 5,
                "routes[0].jwt.keys: must not be empty");
    route_error(" jwt = { keys = [ \"p256.pem\" ]; algs = [ \"ES256\" ]; };\n", "", 5,
                "routes[0].jwt.keys: expected a string");
    /* what the key loaders say follows the location and names the file */
    route_error_has(" jwt = { keys = \"garbage.pem\"; algs = [ \"ES256\" ]; };\n", 5,
                    "routes[0].jwt.keys: ", "garbage.pem");
    route_error_has(" jwt = { secret = \"short.secret\"; algs = [ \"HS256\" ]; };\n", 5,
                    "routes[0].jwt.secret: ", "short.secret");
    route_error_has(" jwt = { keys = \"hmac.secret\"; algs = [ \"HS256\" ]; };\n", 5,
                    "routes[0].jwt.keys: ", "hmac.secret");
    /* algorithm confusion, configuration side: a public key can never become an HMAC secret */
    route_error(" jwt = { secret = \"p256.pem\"; algs = [ \"HS256\" ]; };\n", "", 5,
                "routes[0].jwt.secret: \"p256.pem\" holds a PEM key, not an HMAC secret");
}

Test(companion, jwt_alg_errors)
{
    route_error(" jwt = { keys = \"p256.pem\"; };\n", "", 5, "routes[0].jwt.algs: missing");
    route_error(" jwt = { keys = \"p256.pem\"; algs = [ ]; };\n", "", 5,
                "routes[0].jwt.algs: must not be empty");
    route_error(" jwt = { keys = \"p256.pem\"; algs = \"ES256\"; };\n", "", 5,
                "routes[0].jwt.algs: expected a list of strings");
    route_error(" jwt = { keys = \"p256.pem\";\n algs = [ \"ES256\", \"none\" ]; };\n", "", 6,
                "routes[0].jwt.algs[1]: \"none\" is never accepted");
    route_error(" jwt = { keys = \"p256.pem\"; algs = [ \"HS512\" ]; };\n", "", 5,
                "routes[0].jwt.algs[0]: unknown algorithm \"HS512\" (known: ES256, RS256, HS256)");
    route_error(" jwt = { keys = \"p256.pem\"; algs = [ \"es256\" ]; };\n", "", 5,
                "routes[0].jwt.algs[0]: unknown algorithm \"es256\"");
    route_error(" jwt = { keys = \"p256.pem\"; algs = [ \"ES256\", \"ES256\" ]; };\n", "", 5,
                "routes[0].jwt.algs[1]: duplicate algorithm \"ES256\"");
    /* each algorithm must be one the keys can verify */
    route_error(" jwt = { keys = \"p256.pem\"; algs = [ \"HS256\" ]; };\n", "", 5,
                "routes[0].jwt.algs[0]: HS256 cannot be verified with the public keys in keys "
                "(they verify: ES256)");
    route_error(" jwt = { keys = \"p256.pem\"; algs = [ \"ES256\", \"RS256\" ]; };\n", "", 5,
                "routes[0].jwt.algs[1]: RS256 cannot be verified with the public keys in keys "
                "(they verify: ES256)");
    route_error(" jwt = { keys = \"both.pem\"; algs = [ \"HS256\" ]; };\n", "", 5,
                "routes[0].jwt.algs[0]: HS256 cannot be verified with the public keys in keys "
                "(they verify: ES256, RS256)");
    route_error(" jwt = { secret = \"hmac.secret\"; algs = [ \"ES256\" ]; };\n", "", 5,
                "routes[0].jwt.algs[0]: ES256 cannot be verified with the HMAC secret (it "
                "verifies: HS256)");
}

Test(companion, jwt_option_errors)
{
    route_error(" jwt = true;\n", "", 5, "routes[0].jwt: expected a group");
    route_error(" jwt = {\n alg = \"ES256\"; };\n", "", 6,
                "routes[0].jwt.alg: unknown setting (known here: from keys secret algs issuer "
                "audience leeway binding sub_header)");
    route_error(JWT_P256 " };\n", TB_OFF, 5,
                "routes[0].jwt: needs token_binding.enabled = true (a bound JWT cannot be checked "
                "without Token Binding)");
    route_error(JWT_P256 " from = \"header\"; };\n", "", 6,
                "routes[0].jwt.from: unknown source \"header\" (known: \"authorization\", "
                "\"cookie:NAME\")");
    route_error(JWT_P256 " from = \"Authorization\"; };\n", "", 6,
                "routes[0].jwt.from: unknown source");
    route_error(JWT_P256 " from = \"cookie:\"; };\n", "", 6,
                "routes[0].jwt.from: bad cookie name \"\"");
    route_error(JWT_P256 " from = \"cookie:a b\"; };\n", "", 6,
                "routes[0].jwt.from: bad cookie name \"a b\"");
    route_error(JWT_P256 " from = 1; };\n", "", 6, "routes[0].jwt.from: expected a string");
    route_error(JWT_P256 " issuer = \"\"; };\n", "", 6, "routes[0].jwt.issuer: must not be empty");
    route_error(JWT_P256 " audience = 5; };\n", "", 6, "routes[0].jwt.audience: expected a string");
    route_error(JWT_P256 " leeway = \"61m\"; };\n", "", 6,
                "routes[0].jwt.leeway: 61m is out of range (0ms..1h)");
    route_error(JWT_P256 " leeway = 3601; };\n", "", 6,
                "routes[0].jwt.leeway: 3601s is out of range");
    route_error(JWT_P256 " leeway = \"1500ms\"; };\n", "", 6,
                "routes[0].jwt.leeway: whole seconds only (got 1500ms)");
    route_error(JWT_P256 " leeway = -1; };\n", "", 6,
                "routes[0].jwt.leeway: a duration cannot be negative");
    route_error(JWT_P256 " binding = \"referred\"; };\n", "", 6,
                "routes[0].jwt.binding: unknown binding \"referred\" (known: provided)");
    route_error(JWT_P256 " binding = true; };\n", "", 6,
                "routes[0].jwt.binding: expected a string");
    route_error(JWT_P256 " sub_header = \"X Auth\"; };\n", "", 6,
                "routes[0].jwt.sub_header: bad header name \"X Auth\"");
    route_error(JWT_P256 " sub_header = \"\"; };\n", "", 6,
                "routes[0].jwt.sub_header: bad header name \"\"");
    route_error(JWT_P256 " sub_header = \"X-Sub:\"; };\n", "", 6,
                "routes[0].jwt.sub_header: bad header name");
    static const char *const managed[] = {"Cookie",
                                          "authorization",
                                          "Host",
                                          "Content-Length",
                                          "Transfer-Encoding",
                                          "Connection",
                                          "Keep-Alive",
                                          "TE",
                                          "Upgrade",
                                          "Proxy-Connection",
                                          "Trailer",
                                          "Token-Binding",
                                          "Sec-Token-Binding",
                                          "SEC-PROVIDED-TOKEN-BINDING-ID",
                                          "Sec-Referred-Token-Binding-ID",
                                          "Sec-Other-Token-Binding-ID",
                                          "Include-Referer-Token-Binding-ID",
                                          "X-Forwarded-For",
                                          "Forwarded"};
    char body[256], want[256];
    for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++) {
        snprintf(body, sizeof(body), JWT_P256 " sub_header = \"%s\"; };\n", managed[i]);
        snprintf(want, sizeof(want),
                 "routes[0].jwt.sub_header: \"%s\" is a header the proxy manages itself",
                 managed[i]);
        route_error(body, "", 6, want);
    }
}

/* A failed load frees the keys it had loaded (ASan's leak check runs at each test's exit). */
Test(companion, failed_loads_free_loaded_keys)
{
    struct tbp_config *c = NULL;

    cr_assert_eq(load(LISTEN UPS CK
                      "routes = ( { prefix = \"/a/\"; upstream = \"app\";\n"
                      "  jwt = { keys = \"both.pem\"; algs = [ \"ES256\" ]; }; },\n"
                      " { prefix = \"/b/\"; upstream = \"app\";\n"
                      "  jwt = { secret = \"hmac.secret\"; algs = [ \"HS256\" ]; }; },\n"
                      " { upstream = \"nope\"; } );\n",
                      &c),
                 TB_EINVAL);
    cr_expect_null(c);
    cr_expect(strstr(err, "routes[2].upstream: unknown upstream \"nope\"") != NULL, "%s", err);
    /* keys loaded, then an error later in the same jwt group */
    cr_assert_eq(load(LISTEN UPS CK ROUTE_OPEN JWT_P256 " leeway = \"1h1s\"; };" ROUTE_CLOSE, &c),
                 TB_EINVAL);
    /* keys loaded, then trusted_proxies (read after the routes) fails */
    cr_assert_eq(load(LISTEN UPS CK ROUTE_OPEN JWT_P256 " };" ROUTE_CLOSE
                                                        "trusted_proxies = [ \"nope\" ];\n",
                      &c),
                 TB_EINVAL);
    cr_expect_null(c);
}

/* A reload builds a second config while the first is in use: both hold their own keys. */
Test(companion, reload_loads_twice)
{
    static const char text[] =
        LISTEN UPS CK "routes = ( { upstream = \"app\"; bind_cookies = [ \"session\" ];\n"
                      "  unbound_cookies = \"pass\"; refer_token_binding = true;\n"
                      "  jwt = { keys = \"both.pem\"; algs = [ \"ES256\", \"RS256\" ];\n"
                      "    issuer = \"iss\"; audience = \"aud\"; sub_header = \"X-Sub\"; }; } );\n";
    struct tbp_config *a = load_ok(text), *b = load_ok(text);

    cr_expect_neq(a->cookie_keys, b->cookie_keys);
    cr_expect_neq(a->routes[0].jwt->keys, b->routes[0].jwt->keys);
    cr_expect_str_eq(a->routes[0].bind_cookies[0], b->routes[0].bind_cookies[0]);
    cr_expect_str_eq(a->routes[0].jwt->issuer, "iss");
    cr_expect_str_eq(b->routes[0].jwt->audience, "aud");
    cr_expect_eq(tb_cookie_keyring_count(a->cookie_keys), tb_cookie_keyring_count(b->cookie_keys));
    tbp_config_free(a);
    /* b stays whole after a is gone */
    cr_expect_str_eq(b->routes[0].bind_cookies[0], "session");
    cr_expect_eq(tb_jwt_keys_algs(b->routes[0].jwt->keys), TB_JWT_ES256 | TB_JWT_RS256);
    cr_expect_str_eq(tb_cookie_keyring_active_id(b->cookie_keys), "k2");
    tbp_config_free(b);
}

/* --- quick mode --------------------------------------------------------------------------- */

Test(config, quick_mode)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];
    struct tbp_config *c = NULL;
    int ret;

    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    ret = tbp_config_quick("127.0.0.1:8443", "[::1]:8080", cert, key, &c, err, sizeof(err));
    cr_assert_eq(ret, 0, "%s", err);
    cr_assert_eq(c->n_listeners, 1);
    cr_expect_str_eq(c->listeners[0].addr.text, "127.0.0.1:8443");
    cr_expect_str_eq(c->listeners[0].tls.cert, cert);
    cr_expect_str_eq(c->listeners[0].tls.key, key);
    cr_expect_str_eq(c->listeners[0].tls.ciphers, TBP_DEF_CIPHERS);
    cr_expect_eq(c->listeners[0].tls.tickets, 1);
    cr_expect_eq(c->listeners[0].tls.ticket_key_rotation_ms, 3600000);
    cr_assert_eq(c->n_upstreams, 1);
    cr_expect_str_eq(c->upstreams[0].name, "default");
    cr_assert_eq(c->upstreams[0].n_servers, 1);
    cr_expect_str_eq(c->upstreams[0].servers[0].text, "[::1]:8080");
    cr_expect_eq(c->upstreams[0].max_idle, 64);
    cr_expect_eq(c->upstreams[0].connect_timeout_ms, 5000);
    cr_assert_eq(c->n_routes, 1);
    cr_expect_str_eq(c->routes[0].prefix, "/");
    cr_expect_str_eq(c->routes[0].host, "*");
    cr_expect_eq(c->routes[0].upstream, &c->upstreams[0]);
    cr_expect_eq(c->tb.enabled, 1);
    cr_expect_eq(c->tb.versions, TBP_TBV_DRAFT);
    cr_expect_eq(c->tb.n_key_types, 2);
    cr_expect_eq(c->tb.key_types[0], TB_KP_ECDSAP256);
    cr_expect_eq(c->tb.key_types[1], TB_KP_RSA2048_PKCS1);
    cr_expect_eq(c->timeouts.handshake_ms, 10000);
    cr_expect_eq(c->limits.max_headers, 100);
    cr_expect_str_eq(c->log.error, "-");
    cr_expect_null(c->path);
    cr_expect_geq(c->workers, 1);
    cr_expect_str_eq(route_to(c, "anything", "/x"), "default");
    cr_expect_eq(c->admin.enabled, 1);
    cr_expect_str_eq(c->admin.addr.text, "127.0.0.1:9901");
    cr_expect_null(c->user);
    cr_expect_eq(c->timeouts.shutdown_ms, 30000);
    tbp_config_free(c);
}

/* quick mode's --admin: moved, disabled, or refused (bad, or the listener's) */
Test(config, quick_mode_admin)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];
    struct tbp_config *c = NULL;

    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    cr_assert_eq(
        tbp_config_quick("127.0.0.1:8443", "127.0.0.1:8080", cert, key, &c, err, sizeof(err)), 0,
        "%s", err);
    cr_expect_eq(tbp_config_quick_admin(c, "[::1]:9999", err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c->admin.enabled, 1);
    cr_expect_str_eq(c->admin.addr.text, "[::1]:9999");
    cr_expect_eq(tbp_config_quick_admin(c, "bad", err, sizeof(err)), TB_EINVAL);
    cr_expect(strncmp(err, "--admin: bad address \"bad\" (want", 32) == 0, "%s", err);
    cr_expect_str_eq(c->admin.addr.text, "[::1]:9999", "unchanged after an error");
    cr_expect_eq(tbp_config_quick_admin(c, "127.0.0.1:8443", err, sizeof(err)), TB_EINVAL);
    cr_expect_str_eq(err, "--admin: 127.0.0.1:8443 overlaps the listener 127.0.0.1:8443");
    cr_expect_eq(tbp_config_quick_admin(c, "", err, sizeof(err)), 0);
    cr_expect_eq(c->admin.enabled, 0);
    tbp_config_free(c);
}

Test(config, quick_mode_relative_paths_become_absolute)
{
    char cwd[PATH_MAX], here[PATH_MAX], want[PATH_MAX + 32];
    struct tbp_config *c = NULL;

    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    cr_assert_eq(chdir(dir), 0);
    cr_assert_not_null(getcwd(here, sizeof(here)));
    cr_assert_eq(
        tbp_config_quick("127.0.0.1:1", "127.0.0.1:2", "cert.pem", "key.pem", &c, err, sizeof(err)),
        0, "%s", err);
    cr_assert_eq(chdir(cwd), 0);
    snprintf(want, sizeof(want), "%s/cert.pem", here);
    cr_expect_str_eq(c->listeners[0].tls.cert, want);
    snprintf(want, sizeof(want), "%s/key.pem", here);
    cr_expect_str_eq(c->listeners[0].tls.key, want);
    tbp_config_free(c);
}

static void expect_quick_error(const char *l, const char *u, const char *cert, const char *key,
                               const char *want)
{
    struct tbp_config *c = (struct tbp_config *)1;
    int ret = tbp_config_quick(l, u, cert, key, &c, err, sizeof(err));

    cr_assert_eq(ret, TB_EINVAL);
    cr_assert_null(c);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "got \"%s\", want \"%s...\"", err, want);
}

Test(config, quick_mode_errors)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];

    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    expect_quick_error("foo", "127.0.0.1:8080", cert, key, "--listen: bad address \"foo\"");
    expect_quick_error("127.0.0.1:8443", "127.0.0.1", cert, key,
                       "--upstream: bad address \"127.0.0.1\"");
    expect_quick_error("127.0.0.1:8443", "127.0.0.1:1", "/nonexistent.pem", key,
                       "--cert: cannot read \"/nonexistent.pem\": No such file or directory");
    expect_quick_error("127.0.0.1:8443", "127.0.0.1:1", cert, dir, "--key: cannot read");
    expect_quick_error(NULL, "127.0.0.1:1", cert, key, "--listen: missing");
    expect_quick_error("127.0.0.1:8443", "127.0.0.1:1", cert, "", "--key: missing");
}

/* --- API edges ---------------------------------------------------------------------------- */

Test(config, free_null_and_small_error_buffers)
{
    struct tbp_config *c = NULL;
    char small[8];

    tbp_config_free(NULL);
    cr_assert_eq(load("workers = \"x\";\n", &c), TB_EINVAL);
    cr_assert_eq(tbp_config_load(conf_path, &c, small, sizeof(small)), TB_EINVAL);
    cr_expect_eq(strlen(small), sizeof(small) - 1, "truncated, NUL-terminated");
    cr_assert_eq(tbp_config_load(conf_path, &c, NULL, 0), TB_EINVAL);
    cr_assert_eq(tbp_config_quick("x", "y", "z", "w", &c, NULL, 0), TB_EINVAL);
    cr_expect_null(c);
}

Test(config, names)
{
    cr_expect_str_eq(tbp_log_level_name(TBP_LOG_DEBUG), "debug");
    cr_expect_str_eq(tbp_log_level_name(TBP_LOG_ERROR), "error");
    cr_expect_str_eq(tbp_proto_name(TBP_PROTO_HTTP11), "http/1.1");
    cr_expect_str_eq(tbp_proto_name(TBP_PROTO_H2), "h2");
}

/* --- command line ------------------------------------------------------------------------- */

#define ARGV(...)                                                                                  \
    (char *[])                                                                                     \
    {                                                                                              \
        "tbproxy", __VA_ARGS__, NULL                                                               \
    }
#define ARGC(...) ((int)(sizeof((char *[]){"tbproxy", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(cli, ...) tbp_cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), cli, err, sizeof(err))

static void expect_cli_error(int ret, const struct tbp_cli *cli, const char *want)
{
    cr_assert_eq(ret, TB_EINVAL, "parse returned %d", ret);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "got \"%s\", want \"%s...\"", err, want);
    cr_expect_null(cli->config);
    cr_expect_null(cli->listen);
}

Test(cli, config_file)
{
    struct tbp_cli cli;

    cr_assert_eq(PARSE(&cli, "-c", "conf/tbproxy.conf"), 0, "%s", err);
    cr_expect_eq(cli.action, TBP_CLI_RUN);
    cr_expect_str_eq(cli.config, "conf/tbproxy.conf");
    cr_expect_null(cli.listen);
    cr_assert_eq(PARSE(&cli, "-t", "-c", "a.conf"), 0, "%s", err);
    cr_expect_eq(cli.action, TBP_CLI_CHECK);
    cr_expect_str_eq(cli.config, "a.conf");
    cr_assert_eq(PARSE(&cli, "-tc", "b.conf"), 0, "%s", err);
    cr_expect_eq(cli.action, TBP_CLI_CHECK);
    cr_expect_str_eq(cli.config, "b.conf");
    cr_assert_eq(PARSE(&cli, "-cc.conf"), 0, "%s", err);
    cr_expect_str_eq(cli.config, "c.conf");
    cr_assert_eq(PARSE(&cli, "--config=d.conf", "--test"), 0, "%s", err);
    cr_expect_str_eq(cli.config, "d.conf");
    cr_expect_eq(cli.action, TBP_CLI_CHECK);
    cr_assert_eq(PARSE(&cli, "--config", "e.conf"), 0, "%s", err);
    cr_expect_str_eq(cli.config, "e.conf");
    cr_assert_eq(PARSE(&cli, "-c", "-weird.conf"), 0, "%s", err);
    cr_expect_str_eq(cli.config, "-weird.conf");
}

Test(cli, quick_mode)
{
    struct tbp_cli cli;

    cr_assert_eq(PARSE(&cli, "--listen", "127.0.0.1:8443", "--upstream", "127.0.0.1:8080", "--cert",
                       "c.pem", "--key=k.pem"),
                 0, "%s", err);
    cr_expect_eq(cli.action, TBP_CLI_RUN);
    cr_expect_null(cli.config);
    cr_expect_str_eq(cli.listen, "127.0.0.1:8443");
    cr_expect_str_eq(cli.upstream, "127.0.0.1:8080");
    cr_expect_str_eq(cli.cert, "c.pem");
    cr_expect_str_eq(cli.key, "k.pem");
    cr_assert_eq(
        PARSE(&cli, "-t", "--listen", "a:1", "--upstream", "b:2", "--cert", "c", "--key", "k"), 0,
        "%s", err);
    cr_expect_eq(cli.action, TBP_CLI_CHECK);
}

Test(cli, conflicts_and_incomplete_quick_mode)
{
    struct tbp_cli cli;

    expect_cli_error(PARSE(&cli, "-c", "a.conf", "--listen", "127.0.0.1:8443"), &cli,
                     "-c and quick mode (--listen, --upstream, --cert, --key) are exclusive");
    expect_cli_error(PARSE(&cli, "--listen", "a:1", "--cert", "c"), &cli,
                     "quick mode needs --listen, --upstream, --cert and --key (missing: "
                     "--upstream --key)");
    expect_cli_error(PARSE(&cli, "--key", "k"), &cli,
                     "quick mode needs --listen, --upstream, --cert and --key (missing: "
                     "--listen --upstream --cert)");
    expect_cli_error(tbp_cli_parse(1, (char *[]){"tbproxy", NULL}, &cli, err, sizeof(err)), &cli,
                     "no configuration: give -c FILE");
    expect_cli_error(PARSE(&cli, "-t"), &cli, "no configuration");
}

Test(cli, syntax_errors)
{
    struct tbp_cli cli;

    expect_cli_error(PARSE(&cli, "-x"), &cli, "unknown option \"-x\"");
    expect_cli_error(PARSE(&cli, "-tx"), &cli, "unknown option \"-x\"");
    expect_cli_error(PARSE(&cli, "--lisen", "a:1"), &cli, "unknown option \"--lisen\"");
    expect_cli_error(PARSE(&cli, "--lisen=a:1"), &cli, "unknown option \"--lisen\"");
    expect_cli_error(PARSE(&cli, "-c"), &cli, "-c needs a value");
    expect_cli_error(PARSE(&cli, "--config"), &cli, "--config needs a value");
    expect_cli_error(PARSE(&cli, "-c", "a", "-c", "b"), &cli, "-c given twice");
    expect_cli_error(PARSE(&cli, "-t", "-t", "-c", "a"), &cli, "-t given twice");
    expect_cli_error(PARSE(&cli, "-c", ""), &cli, "-c: empty value");
    expect_cli_error(PARSE(&cli, "--listen="), &cli, "--listen: empty value");
    expect_cli_error(PARSE(&cli, "--help=yes"), &cli, "--help takes no value");
    expect_cli_error(PARSE(&cli, "-c", "a", "extra"), &cli, "unexpected argument \"extra\"");
    expect_cli_error(PARSE(&cli, "-c", "a", "--", "-t"), &cli, "unexpected argument \"-t\"");
    expect_cli_error(PARSE(&cli, "-"), &cli, "unexpected argument \"-\"");
}

Test(cli, help_and_version)
{
    struct tbp_cli cli;

    cr_assert_eq(PARSE(&cli, "-h"), 0);
    cr_expect_eq(cli.action, TBP_CLI_HELP);
    cr_assert_eq(PARSE(&cli, "--help", "-c", "a", "--listen", "x"), 0, "help wins: %s", err);
    cr_expect_eq(cli.action, TBP_CLI_HELP);
    cr_assert_eq(PARSE(&cli, "-v"), 0);
    cr_expect_eq(cli.action, TBP_CLI_VERSION);
    cr_assert_eq(PARSE(&cli, "--version", "-t"), 0);
    cr_expect_eq(cli.action, TBP_CLI_VERSION);
    cr_assert_eq(PARSE(&cli, "-vh"), 0);
    cr_expect_eq(cli.action, TBP_CLI_HELP);
    cr_assert_eq(PARSE(&cli, "-h", "--bogus"), TB_EINVAL, "a bad option still fails");
}

Test(cli, admin_and_pid_file)
{
    struct tbp_cli cli;

    cr_assert_eq(PARSE(&cli, "-c", "a.conf", "--pid-file", "/run/tbproxy.pid"), 0, "%s", err);
    cr_expect_str_eq(cli.pid_file, "/run/tbproxy.pid");
    cr_expect_null(cli.admin);
    cr_assert_eq(PARSE(&cli, "-t", "-c", "a.conf", "--pid-file=p.pid"), 0, "%s", err);
    cr_expect_str_eq(cli.pid_file, "p.pid");
    cr_assert_eq(PARSE(&cli, "--listen", "a:1", "--upstream", "b:2", "--cert", "c", "--key", "k",
                       "--admin", "127.0.0.1:9902"),
                 0, "%s", err);
    cr_expect_str_eq(cli.admin, "127.0.0.1:9902");
    cr_expect_null(cli.pid_file);
    cr_assert_eq(PARSE(&cli, "--listen", "a:1", "--upstream", "b:2", "--cert", "c", "--key", "k",
                       "--admin="),
                 0, "an empty --admin disables the admin server: %s", err);
    cr_expect_str_eq(cli.admin, "");
    expect_cli_error(PARSE(&cli, "-c", "a.conf", "--admin", "127.0.0.1:9902"), &cli,
                     "--admin is for quick mode; with -c, set admin.listen in the file");
    expect_cli_error(PARSE(&cli, "-c", "a.conf", "--pid-file", ""), &cli,
                     "--pid-file: empty value");
    expect_cli_error(PARSE(&cli, "-c", "a.conf", "--pid-file"), &cli, "--pid-file needs a value");
    expect_cli_error(PARSE(&cli, "-c", "a", "--pid-file", "x", "--pid-file", "y"), &cli,
                     "--pid-file given twice");
}

Test(cli, version_text)
{
    static const char *const want[] = {"  libtb 0.1.0\n",     "  OpenSSL 3.",
                                       "  nghttp2 1.",        "  libmicrohttpd 0.9.",
                                       "  libconfig 1.",      "  jansson 2.",
                                       "  libjwt 1.10 API\n", "  llhttp 8.",
                                       "  libsystemd",        NULL};
    char *text = NULL;
    size_t len = 0, i;
    FILE *f = open_memstream(&text, &len);

    cr_assert_not_null(f);
    tbp_cli_version(f);
    fclose(f);
    cr_expect(strncmp(text, "tbproxy " TBP_VERSION "\n", strlen(TBP_VERSION) + 9) == 0, "%s", text);
    for (i = 0; want[i] != NULL; i++)
        cr_expect(strstr(text, want[i]) != NULL, "no \"%s\" in\n%s", want[i], text);
    free(text);
}

Test(cli, usage_text)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    cr_assert_not_null(f);
    tbp_cli_usage(f, "tbproxy");
    fclose(f);
    cr_expect(strstr(text, "usage: tbproxy -c FILE [-t]") != NULL, "%s", text);
    for (const char *const *o =
             (const char *const[]){"--listen", "--upstream", "--cert", "--key", "--admin",
                                   "--client-cert MODE", "--client-ca FILE", "--client-crl FILE",
                                   "--pid-file", "-h, --help", "-v, --version", "Signals:", NULL};
         *o != NULL; o++)
        cr_expect(strstr(text, *o) != NULL, "usage lacks %s", *o);
    free(text);
}

Test(cli, config_dispatch)
{
    struct tbp_cli cli;
    struct tbp_config *c = NULL;

    cr_assert_eq(PARSE(&cli, "-c", "/nonexistent/tbproxy.conf"), 0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect(strstr(err, "/nonexistent/tbproxy.conf: cannot read") != NULL, "%s", err);
    cr_assert_eq(
        PARSE(&cli, "--listen", "bad", "--upstream", "127.0.0.1:1", "--cert", "c", "--key", "k"),
        0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect(strncmp(err, "--listen: bad address", 21) == 0, "%s", err);
    cr_expect_null(c);
}

/* quick mode's --client-cert / --client-ca / --client-crl, through the command line */
Test(config, cli_quick_client_cert)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32], ca[PATH_MAX + 32];
    struct tbp_config *c = NULL;
    struct tbp_cli cli;

    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    write_file(ca, "x\n");
#define QUICK                                                                                      \
    "--listen", "127.0.0.1:8443", "--upstream", "127.0.0.1:1", "--cert", cert, "--key", key
    cr_assert_eq(PARSE(&cli, QUICK, "--client-cert", "required", "--client-ca", ca,
                       "--client-crl="
                       "/nonexistent/crl.pem"),
                 0, "%s", err);
    cr_expect_str_eq(cli.client_cert, "required");
    cr_expect_str_eq(cli.client_ca, ca);
    cr_expect_str_eq(cli.client_crl, "/nonexistent/crl.pem");
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect(strncmp(err, "--client-crl: cannot read \"/nonexistent/crl.pem\"", 47) == 0, "%s",
              err);
    cr_expect_null(c);
    cr_assert_eq(PARSE(&cli, QUICK, "--client-cert", "optional", "--client-ca", ca), 0, "%s", err);
    cr_assert_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c->listeners[0].tls.client_cert, TBP_CLIENT_CERT_OPTIONAL);
    cr_expect_str_eq(c->listeners[0].tls.client_ca, ca);
    cr_expect_null(c->listeners[0].tls.client_crl);
    tbp_config_free(c);
    c = NULL;
    cr_assert_eq(PARSE(&cli, QUICK), 0, "%s", err);
    cr_assert_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(c->listeners[0].tls.client_cert, TBP_CLIENT_CERT_OFF);
    cr_expect_null(c->listeners[0].tls.client_ca);
    tbp_config_free(c);
    c = NULL;
    cr_assert_eq(PARSE(&cli, QUICK, "--client-cert", "sometimes", "--client-ca", ca), 0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect_str_eq(err, "--client-cert: unknown value \"sometimes\" (known: off, optional, "
                          "required)");
    cr_assert_eq(PARSE(&cli, QUICK, "--client-cert", "required"), 0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect_str_eq(err, "--client-cert required needs --client-ca FILE");
    cr_assert_eq(PARSE(&cli, QUICK, "--client-ca", ca), 0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect_str_eq(err, "--client-ca needs --client-cert optional or required");
    cr_assert_eq(PARSE(&cli, QUICK, "--client-cert", "off", "--client-crl", ca), 0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect_str_eq(err, "--client-crl needs --client-cert optional or required");
    cr_assert_eq(PARSE(&cli, QUICK, "--client-cert", "optional", "--client-ca", "nope.pem"), 0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect(strncmp(err, "--client-ca: cannot read \"nope.pem\"", 35) == 0, "%s", err);
    cr_expect_null(c);
#undef QUICK
    expect_cli_error(PARSE(&cli, "-c", "a.conf", "--client-cert", "optional"), &cli,
                     "--client-cert is for quick mode; with -c, set the listener's "
                     "tls.client_certificate");
    expect_cli_error(PARSE(&cli, "-c", "a.conf", "--client-ca=x.pem"), &cli,
                     "--client-ca is for quick mode");
    expect_cli_error(PARSE(&cli, "-c", "a.conf", "--client-crl", "x.pem"), &cli,
                     "--client-crl is for quick mode");
    expect_cli_error(PARSE(&cli, "--listen", "a:1", "--upstream", "b:2", "--cert", "c", "--key",
                           "k", "--client-cert", ""),
                     &cli, "--client-cert: empty value");
}

/* quick mode through the command line: --admin applied, and checked against the listener */
Test(config, cli_quick_admin)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];
    struct tbp_config *c = NULL;
    struct tbp_cli cli;

    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    cr_assert_eq(PARSE(&cli, "--listen", "127.0.0.1:8443", "--upstream", "127.0.0.1:1", "--cert",
                       cert, "--key", key, "--admin", "127.0.0.1:9911"),
                 0);
    cr_assert_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(c->admin.addr.text, "127.0.0.1:9911");
    tbp_config_free(c);
    /* the default admin address on the listener's: refused, named */
    cr_assert_eq(PARSE(&cli, "--listen", "127.0.0.1:9901", "--upstream", "127.0.0.1:1", "--cert",
                       cert, "--key", key),
                 0);
    cr_expect_eq(tbp_cli_config(&cli, &c, err, sizeof(err)), TB_EINVAL);
    cr_expect_str_eq(err, "--admin: 127.0.0.1:9901 overlaps the listener 127.0.0.1:9901");
    cr_expect_null(c);
}

/* --- route policy and Authentication-Results (issue 9) --------------------------------------- */

Test(config, route_policy_defaults_and_values)
{
    char host[256];
    struct tbp_config *c =
        load_ok(LISTEN UPS "routes = (\n"
                           "  { prefix = \"/r/\"; upstream = \"app\"; "
                           "token_binding = \"required\"; client_certificate = \"off\"; },\n"
                           "  { prefix = \"/o/\"; upstream = \"app\"; token_binding = \"off\"; "
                           "authentication_results = false; },\n"
                           "  { upstream = \"app\"; } );\n");

    cr_expect_eq(c->routes[0].token_binding, TBP_POLICY_REQUIRED);
    cr_expect_eq(c->routes[0].client_certificate, TBP_POLICY_OFF);
    cr_expect_eq(c->routes[0].authentication_results, 1);
    cr_expect_eq(c->routes[1].token_binding, TBP_POLICY_OFF);
    cr_expect_eq(c->routes[1].authentication_results, 0);
    cr_expect_eq(c->routes[2].token_binding, TBP_POLICY_OPTIONAL);
    cr_expect_eq(c->routes[2].client_certificate, TBP_POLICY_OPTIONAL);
    cr_expect_eq(c->routes[2].authentication_results, 1);
    /* authserv_id defaults to the host name (when it is a usable one) */
    cr_assert_eq(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    cr_assert_not_null(c->authserv_id);
    if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") ==
            strlen(host) &&
        host[0] != '.' && host[0] != '\0')
        cr_expect_str_eq(c->authserv_id, host);
    else
        cr_expect_str_eq(c->authserv_id, "tbproxy");
    tbp_config_free(c);

    c = load_ok(MIN "authserv_id = \"Proxy.Example.COM\";\n");
    cr_expect_str_eq(c->authserv_id, "Proxy.Example.COM");
    tbp_config_free(c);
}

Test(config, route_policy_follows_global_require)
{
    struct tbp_config *c =
        load_ok(LISTEN UPS "token_binding = { require = true; };\n"
                           "routes = ( { prefix = \"/open/\"; upstream = \"app\"; "
                           "token_binding = \"optional\"; },\n"
                           "  { upstream = \"app\"; } );\n");

    cr_expect_eq(c->routes[0].token_binding, TBP_POLICY_OPTIONAL);
    cr_expect_eq(c->routes[1].token_binding, TBP_POLICY_REQUIRED);
    tbp_config_free(c);
}

Test(config, route_policy_errors)
{
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\";\n token_binding = \"always\"; } );\n",
                 4,
                 "routes[0].token_binding: unknown policy \"always\" (known: off, optional, "
                 "required)");
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\";\n client_certificate = 1; } );\n", 4,
                 "routes[0].client_certificate:");
    expect_error(LISTEN UPS
                 "token_binding = { enabled = false; };\n"
                 "routes = ( { upstream = \"app\";\n token_binding = \"required\"; } );\n",
                 5, "routes[0].token_binding: required, but token_binding.enabled is false");
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\"; refer_token_binding = true;\n"
                            " token_binding = \"off\"; } );\n",
                 4, "routes[0].token_binding: \"off\", but the route binds");
    expect_error(LISTEN UPS
                 "routes = ( { upstream = \"app\";\n client_certificate = \"required\"; } );\n",
                 4,
                 "routes[0].client_certificate: required, but no listener asks for client "
                 "certificates");
    expect_error(MIN "authserv_id = \"proxy example\";\n", 4, "authserv_id: bad authserv-id");
    expect_error(MIN "authserv_id = \"\";\n", 4, "authserv_id: bad authserv-id");
    expect_error(MIN "authserv_id = \".x\";\n", 4, "authserv_id: bad authserv-id");
}

Test(config, quick_mode_route_policy)
{
    struct tbp_config *c = NULL;
    char p1[PATH_MAX + 32], p2[PATH_MAX + 32];

    snprintf(p1, sizeof(p1), "%s/cert.pem", dir);
    snprintf(p2, sizeof(p2), "%s/key.pem", dir);
    cr_assert_eq(tbp_config_quick("127.0.0.1:8443", "127.0.0.1:8080", p1, p2, &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(c->routes[0].token_binding, TBP_POLICY_OPTIONAL);
    cr_expect_eq(c->routes[0].client_certificate, TBP_POLICY_OPTIONAL);
    cr_expect_eq(c->routes[0].authentication_results, 1);
    cr_expect_not_null(c->authserv_id);
    tbp_config_free(c);
}

/* A FIFO or a device node as a file setting is refused without being opened (an open of a FIFO
 * with no writer would block a blocking reader; a device open can have side effects). */
Test(config, fifo_and_device_refused_unopened)
{
    char fifo[PATH_MAX + 32], text[PATH_MAX + 256], want[PATH_MAX + 128];

    snprintf(fifo, sizeof(fifo), "%s/key.fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(text, sizeof(text),
             "listen = ( { address = \"127.0.0.1:8443\";\n"
             " tls = { cert = \"cert.pem\";\n  key = \"%s\"; }; } );\n" UPS ROUTES,
             fifo);
    snprintf(want, sizeof(want), "listen[0].tls.key: cannot read \"%s\": not a regular file", fifo);
    expect_error(text, 3, want);
    snprintf(text, sizeof(text), MIN "cookie_keys = \"/dev/zero\";\n");
    expect_error(text, 4, "cookie_keys: cannot read \"/dev/zero\": not a regular file");
}

/* --- route option token_binding_context (issue 10) ------------------------------------------ */

Test(config, token_binding_context_default_and_values)
{
    struct tbp_config *c = load_ok(MIN);
    char p1[PATH_MAX + 32], p2[PATH_MAX + 32];

    cr_expect_eq(c->routes[0].token_binding_context, 0, "off unless asked for");
    tbp_config_free(c);

    c = load_ok(LISTEN UPS
                "routes = (\n"
                "  { prefix = \"/ctx/\"; upstream = \"app\"; "
                "token_binding_context = true; },\n"
                "  { prefix = \"/req/\"; upstream = \"app\"; token_binding = \"required\"; "
                "token_binding_context = true; },\n"
                "  { prefix = \"/no/\"; upstream = \"app\"; "
                "token_binding_context = false; },\n"
                "  { upstream = \"app\"; } );\n");
    cr_expect_eq(c->routes[0].token_binding_context, 1);
    cr_expect_eq(c->routes[1].token_binding_context, 1);
    cr_expect_eq(c->routes[1].token_binding, TBP_POLICY_REQUIRED);
    cr_expect_eq(c->routes[2].token_binding_context, 0);
    cr_expect_eq(c->routes[3].token_binding_context, 0);
    tbp_config_free(c);

    snprintf(p1, sizeof(p1), "%s/cert.pem", dir);
    snprintf(p2, sizeof(p2), "%s/key.pem", dir);
    c = NULL;
    cr_assert_eq(tbp_config_quick("127.0.0.1:8443", "127.0.0.1:8080", p1, p2, &c, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(c->routes[0].token_binding_context, 0, "quick mode: off");
    tbp_config_free(c);
}

Test(config, token_binding_context_errors)
{
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\";\n token_binding_context = 1; } );\n",
                 4, "routes[0].token_binding_context: expected true or false");
    expect_error(LISTEN UPS
                 "routes = ( { upstream = \"app\";\n token_binding_context = \"yes\"; } );\n",
                 4, "routes[0].token_binding_context: expected true or false");
    /* "off": the route never hears of bindings, so there is no context to send; the error names
     * the option's own line */
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\"; token_binding = \"off\";\n"
                            "\n token_binding_context = true; } );\n",
                 5,
                 "routes[0].token_binding_context: true, but the route's token_binding is "
                 "\"off\"");
    expect_error(LISTEN UPS "routes = ( { upstream = \"app\"; },\n"
                            "  { prefix = \"/x/\"; upstream = \"app\";\n"
                            "    token_binding_context = true; token_binding = \"off\"; } );\n",
                 5, "routes[1].token_binding_context: true, but");
    /* false goes with "off" */
    tbp_config_free(load_ok(LISTEN UPS "routes = ( { upstream = \"app\"; token_binding = \"off\"; "
                                       "token_binding_context = false; } );\n"));
}
