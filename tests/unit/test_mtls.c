/*
 * Client certificates (mTLS) through the real tbproxy: a listener with
 * `tls.client_certificate = "optional"` lets every client in (no certificate, CA-signed,
 * self-signed, expired, from an unknown CA: what each was is reported, see test_tlsinfo.c);
 * `"required"` refuses all but a certificate that verifies against client_ca (and client_crl),
 * over TLS 1.2 and 1.3, and stays healthy for the next client; a required session resumes;
 * Token Binding is negotiated and verified beside a client certificate; `tbproxy -t` reports
 * unusable client_certificate settings and files with file:line.
 *
 * The world (world.h) provides the directory, the origin and the server certificate; the proxy
 * under test is started here from its own configuration file (the listener's tls group is what
 * changes, which confproxy.h does not write), on a free port, retried on another port like
 * world.c does. The certificates come from tests/support/pki.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "drive.h"
#include "h2test.h"
#include "pki.h"
#include "proc.h"
#include "tb/authres.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "world.h"

#define HDR_CAP 4096

static struct tbt_world w;
static struct tbt_proc px;
static int px_port;
static struct tbt_pki pki;
/* The routes of the config write_conf writes (a test may set others before start). */
static const char *routes_text = "routes = ( { upstream = \"app\"; } );\n";

static void fini(void)
{
    tbt_drive_stop(&px);
    tbt_world_teardown(&w);
    tbt_pki_free(&pki);
}

TestSuite(mtls, .fini = fini, .timeout = 120);

/* The world, the PKI and its files in w.dir: client-ca.pem, crl.pem. */
static void world_and_pki(void)
{
    X509 *ca[] = {NULL, NULL};

    tbt_world_start(&w, NULL);
    tbt_pki_make(&pki);
    ca[0] = pki.ca;
    tbt_pki_write(w.dir, "client-ca.pem", ca, NULL, NULL);
    tbt_pki_write(w.dir, "crl.pem", NULL, NULL, pki.crl);
}

/* The config of the proxy under test, its listener's tls group holding tls_extra. */
static void write_conf(int port, const char *tls_extra)
{
    char *text = NULL;
    int n = asprintf(&text,
                     "workers = 1;\n"
                     "listen = ( { address = \"127.0.0.1:%d\";\n"
                     "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; %s }; } );\n"
                     "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ]; }; };\n"
                     "%s"
                     "log = { error = \"-\"; level = \"info\"; };\n"
                     "admin = { listen = \"\"; };\n",
                     port, tls_extra, w.origin_port, routes_text);

    cr_assert(n > 0 && text != NULL);
    cr_assert_eq(tbt_write_file(w.dir, "mtls.conf", text, (size_t)n), 0);
    free(text);
}

/* Starts the proxy under test with tls_extra in its listener's tls group. */
static void start(const char *tls_extra)
{
    char err[TBT_PROC_ERRLEN], conf[700];
    const char *args[] = {"-c", conf, NULL};
    int attempt, rc = -1;

    snprintf(conf, sizeof(conf), "%s/mtls.conf", w.dir);
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        tbt_proc_stop(&px);
        px_port = tbt_port_free();
        cr_assert_gt(px_port, 0, "no free port: %s", strerror(errno));
        write_conf(px_port, tls_extra);
        rc = tbt_proc_start(&px, tbt_world_bin(&w, "tbproxy"), args, w.dir, "mtls", err,
                            sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        rc = tbt_proc_wait_port(&px, (uint16_t)px_port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        if (rc != 0 && tbt_proc_alive(&px))
            break;
    }
    cr_assert_eq(rc, 0, "%s\n%s", err, tbt_log_tail(&px));
}

#define OPTIONAL "client_certificate = \"optional\"; client_ca = \"client-ca.pem\";"
#define REQUIRED                                                                                   \
    "client_certificate = \"required\"; client_ca = \"client-ca.pem\"; client_crl = \"crl.pem\";"

/* GET /echo on c: the status, or -1 when no response came (c->err says why). */
static int get_status(struct tbt_tls *c, const char *tb)
{
    struct tbt_http_response r = {0};
    char req[HDR_CAP + 128];
    int status = -1;

    snprintf(req, sizeof(req), "GET /echo HTTP/1.1\r\nHost: localhost\r\n%s%s%s\r\n",
             tb != NULL ? "Token-Binding: " : "", tb != NULL ? tb : "", tb != NULL ? "\r\n" : "");
    if (tbt_tls_send_str(c, req) == 0 && tbt_tls_read_response(c, &r, 0, 0) == 0)
        status = r.status;
    tbt_http_response_dispose(&r);
    return status;
}

/* A client with cert (NULL: none) at the given highest version gets 200 for GET /echo. */
static void expect_served(X509 *cert, int version, const char *what)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1",
                             .max_version = version,
                             .cert = cert,
                             .key = cert != NULL ? pki.key : NULL};
    struct tbt_tls c;
    int status;

    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)px_port, &o), 0, "%s (%#x): connect: %s\n%s", what,
                 (unsigned)version, c.err, tbt_log_tail(&px));
    cr_expect_eq(c.version, version);
    status = get_status(&c, NULL);
    cr_expect_eq(status, 200, "%s (%#x): status %d: %s\n%s", what, (unsigned)version, status, c.err,
                 tbt_log_tail(&px));
    tbt_tls_close(&c);
}

/* The proxy refuses a client with cert: the handshake fails (TLS 1.2: before the client's
 * Finished), or (TLS 1.3, where the client finishes first) the connection is dropped before any
 * response. */
static void expect_refused(X509 *cert, int version, const char *what)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1",
                             .max_version = version,
                             .cert = cert,
                             .key = cert != NULL ? pki.key : NULL};
    struct tbt_tls c;
    int status;

    if (tbt_tls_connect(&c, (uint16_t)px_port, &o) != 0) {
        cr_expect(version == TLS1_3_VERSION || strstr(c.err, "handshake") != NULL, "%s: %s", what,
                  c.err);
        tbt_tls_close(&c);
        return;
    }
    cr_expect_eq(version, TLS1_3_VERSION, "%s: a TLS 1.2 handshake finished", what);
    status = get_status(&c, NULL);
    cr_expect_eq(status, -1, "%s (%#x): served with status %d", what, (unsigned)version, status);
    tbt_tls_close(&c);
}

static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

Test(mtls, optional_lets_everyone_in,
     .description = "optional: no certificate, CA-signed, self-signed, expired, unknown CA: 200")
{
    size_t v;

    world_and_pki();
    start(OPTIONAL);
    for (v = 0; v < 2; v++) {
        expect_served(NULL, versions[v], "no certificate");
        expect_served(pki.alice, versions[v], "CA-signed");
        expect_served(pki.selfsigned, versions[v], "self-signed");
        expect_served(pki.expired, versions[v], "expired");
        expect_served(pki.unknown, versions[v], "unknown CA");
    }
}

Test(mtls, required_refuses_all_but_a_verified_certificate,
     .description = "required: no certificate, self-signed, expired, unknown CA, revoked refused")
{
    size_t v;

    world_and_pki();
    start(REQUIRED);
    for (v = 0; v < 2; v++) {
        expect_refused(NULL, versions[v], "no certificate");
        expect_refused(pki.selfsigned, versions[v], "self-signed");
        expect_refused(pki.expired, versions[v], "expired");
        expect_refused(pki.unknown, versions[v], "unknown CA");
        expect_refused(pki.revoked, versions[v], "revoked");
        expect_served(pki.alice, versions[v], "CA-signed, after the refusals");
    }
    cr_expect(tbt_proc_alive(&px), "the proxy exited:\n%s", tbt_log_tail(&px));
}

Test(mtls, required_session_resumes, .description = "required: a verified session resumes")
{
    size_t v;

    world_and_pki();
    start(REQUIRED);
    for (v = 0; v < 2; v++) {
        struct tbt_tls_opts o = {
            .alpn = "http/1.1", .max_version = versions[v], .cert = pki.alice, .key = pki.key};
        struct tbt_tls c;
        SSL_SESSION *s;

        cr_assert_eq(tbt_tls_connect(&c, (uint16_t)px_port, &o), 0, "%s", c.err);
        cr_expect_eq(get_status(&c, NULL), 200, "%s", c.err); /* TLS 1.3: tickets read */
        s = tbt_tls_session(&c);
        tbt_tls_close(&c);
        cr_assert_not_null(s);
        o.resume = s;
        cr_assert_eq(tbt_tls_connect(&c, (uint16_t)px_port, &o), 0, "%s", c.err);
        cr_expect(c.reused, "not resumed (%#x)", (unsigned)versions[v]);
        cr_expect_eq(get_status(&c, NULL), 200, "%s", c.err);
        tbt_tls_close(&c);
        SSL_SESSION_free(s);
    }
}

/* The origin's view of header `name` (lower case) in an /echo body, or NULL. */
static const char *origin_header(json_t *doc, const char *name)
{
    json_t *h = json_object_get(json_object_get(doc, "headers"), name);

    return json_is_string(h) ? json_string_value(h) : NULL;
}

Test(mtls, token_binding_beside_a_client_certificate,
     .description = "required + Token Binding: TLS 1.2, EMS, the TB id, the origin gets the ID")
{
    struct tbt_tls_opts o = {.alpn = "http/1.1_tb_p256,http/1.1", .cert = NULL, .key = NULL};
    struct tbt_http_response r = {0};
    char tb[HDR_CAP], id[1024], req[HDR_CAP + 128];
    EVP_PKEY *k = NULL;
    struct tbt_tls c;
    json_error_t e;
    json_t *doc;

    world_and_pki();
    start(REQUIRED);
    o.cert = pki.alice;
    o.key = pki.key;
    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &k), 0);
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)px_port, &o), 0, "%s\n%s", c.err, tbt_log_tail(&px));
    cr_expect_str_eq(c.alpn, "http/1.1_tb_p256");
    cr_expect_eq(c.version, TLS1_2_VERSION);
    cr_expect(c.ems);
    cr_assert_gt(tbt_tls_tb_header(&c, TB_KP_ECDSAP256, k, -1, NULL, tb, sizeof(tb)), 0, "%s",
                 c.err);
    cr_assert_gt(tbt_tb_id_b64(TB_KP_ECDSAP256, k, id, sizeof(id)), 0);
    snprintf(req, sizeof(req), "GET /echo HTTP/1.1\r\nHost: localhost\r\nToken-Binding: %s\r\n\r\n",
             tb);
    cr_assert_eq(tbt_tls_send_str(&c, req), 0, "%s", c.err);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "%s\n%s", c.err, tbt_log_tail(&px));
    cr_assert_eq(r.status, 200, "%d %s", r.status, (const char *)r.body);
    doc = json_loadb((const char *)r.body, r.body_len, 0, &e);
    cr_assert_not_null(doc, "%s", e.text);
    cr_expect_str_eq(origin_header(doc, "sec-provided-token-binding-id"), id);
    json_decref(doc);
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    EVP_PKEY_free(k);
}

/* `tbproxy -t` on a config whose listener's tls group holds tls_extra: exit 1, output has want. */
static void expect_check_fails(const char *tls_extra, const char *want)
{
    char conf[700], *log = NULL;
    const char *args[] = {"-t", "-c", conf, NULL};
    int status;

    write_conf(tbt_port_free(), tls_extra);
    snprintf(conf, sizeof(conf), "%s/mtls.conf", w.dir);
    status = tbt_world_run(&w, tbt_world_bin(&w, "tbproxy"), args, "check", 30000, &log);
    cr_expect_eq(status, 1, "tbproxy -t exit %d for: %s\n%s", status, tls_extra, log);
    cr_expect(log != NULL && strstr(log, want) != NULL, "for: %s\nwant \"%s\" in:\n%s", tls_extra,
              want, log);
    free(log);
}

Test(mtls, check_reports_bad_settings,
     .description = "tbproxy -t: bad mode, missing or unreadable CA file, junk CA or CRL file")
{
    char *log = NULL, conf[700];
    const char *args[] = {"-t", "-c", conf, NULL};
    int status;

    world_and_pki();
    cr_assert_eq(tbt_write_file(w.dir, "junk.pem", "junk\n", 5), 0);
    expect_check_fails("client_certificate = \"maybe\"; client_ca = \"client-ca.pem\";",
                       "mtls.conf:3: listen[0].tls.client_certificate: unknown value \"maybe\"");
    expect_check_fails("client_certificate = \"required\";",
                       "mtls.conf:3: listen[0].tls.client_ca: missing");
    expect_check_fails("client_certificate = \"optional\"; client_ca = \"nope.pem\";",
                       "mtls.conf:3: listen[0].tls.client_ca: cannot read \"nope.pem\"");
    expect_check_fails("client_ca = \"client-ca.pem\";",
                       "mtls.conf:3: listen[0].tls.client_ca: needs client_certificate");
    expect_check_fails("client_certificate = \"optional\"; client_ca = \"junk.pem\";",
                       "client CA file");
    expect_check_fails(OPTIONAL " client_crl = \"junk.pem\";", "client CRL file");
    /* and the good one passes */
    write_conf(tbt_port_free(), REQUIRED);
    snprintf(conf, sizeof(conf), "%s/mtls.conf", w.dir);
    status = tbt_world_run(&w, tbt_world_bin(&w, "tbproxy"), args, "check", 30000, &log);
    cr_expect_eq(status, 0, "tbproxy -t exit %d:\n%s", status, log);
    free(log);
}

/* --- what the origin is told: Authentication-Results (issue 9) ------------------------------- */

#define ROUTES_POLICY                                                                              \
    "authserv_id = \"mtls.test\";\n"                                                               \
    "routes = ( { prefix = \"/api/strict/\"; upstream = \"app\"; client_certificate = "            \
    "\"required\"; "                                                                               \
    "},\n"                                                                                         \
    "           { prefix = \"/api/nocert/\"; upstream = \"app\"; client_certificate = \"off\"; "   \
    "},\n"                                                                                         \
    "           { upstream = \"app\"; } );\n"

/* GET path with cert (NULL: none) over TLS 1.2: the status, and the Authentication-Results the
 * origin got (parsed, *ar; NULL when the request was refused). */
static int get_results(X509 *cert, const char *path, struct tb_authres **ar)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1",
                             .max_version = TLS1_2_VERSION,
                             .cert = cert,
                             .key = cert != NULL ? pki.key : NULL};
    struct tbt_http_response r = {0};
    char req[512];
    struct tbt_tls c;
    json_error_t e;
    json_t *doc;
    const char *v;
    int status;

    *ar = NULL;
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)px_port, &o), 0, "%s\n%s", c.err, tbt_log_tail(&px));
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    cr_assert_eq(tbt_tls_send_str(&c, req), 0, "%s", c.err);
    cr_assert_eq(tbt_tls_read_response(&c, &r, 0, 0), 0, "%s\n%s", c.err, tbt_log_tail(&px));
    status = r.status;
    if (status == 200) {
        doc = json_loadb((const char *)r.body, r.body_len, 0, &e);
        cr_assert_not_null(doc, "%s", e.text);
        v = origin_header(doc, "authentication-results");
        cr_assert_not_null(v, "no Authentication-Results at the origin");
        cr_assert_eq(tb_authres_parse(v, strlen(v), ar), 0, "not RFC 8601: %s", v);
        json_decref(doc);
    }
    tbt_http_response_dispose(&r);
    tbt_tls_close(&c);
    return status;
}

static const char *prop(const struct tb_authres_method *m, const char *ptype, const char *name)
{
    const struct tb_authres_prop *p = tb_authres_find_prop(m, ptype, name, NULL);

    return p != NULL ? p->value : NULL;
}

/* The tls method of a header from mtls.test with the given result (and comment, if not NULL). */
static const struct tb_authres_method *tls_method(const struct tb_authres *ar, const char *result,
                                                  const char *comment, const char *what)
{
    const struct tb_authres_method *m;

    cr_assert_not_null(ar, "%s: no header", what);
    cr_expect_str_eq(ar->authserv_id, "mtls.test");
    m = tb_authres_find_method(ar, "tls", NULL);
    cr_assert_not_null(m, "%s: no tls method", what);
    cr_expect_str_eq(m->result, result, "%s", what);
    if (comment != NULL)
        cr_expect(m->n_comments == 1 && strcmp(m->comments[0], comment) == 0,
                  "%s: comment \"%s\", want \"%s\"", what, m->n_comments ? m->comments[0] : "",
                  comment);
    cr_expect_str_eq(prop(m, "tls", "v"), "TLS1.2", "%s", what);
    cr_expect_str_eq(prop(m, "key", "strength"), "high", "%s", what);
    return m;
}

Test(mtls, results_header_reports_each_certificate_and_route_policy,
     .description = "Authentication-Results: pass, selfsigned, fail, permerror; required route")
{
    unsigned char der_md[32];
    char fp[32 * 3];
    const struct tb_authres_method *m;
    struct tb_authres *ar;
    unsigned md_len = 0;
    size_t i;

    world_and_pki();
    routes_text = ROUTES_POLICY;
    start(OPTIONAL);
    routes_text = "routes = ( { upstream = \"app\"; } );\n";

    cr_assert_eq(get_results(pki.alice, "/echo", &ar), 200);
    m = tls_method(ar, "pass", NULL, "CA-signed");
    cr_expect_str_eq(prop(m, "cert", "verif"), "CA");
    cr_expect_str_eq(prop(m, "cert", "client"), "CN=alice,O=Example");
    cr_expect_str_eq(prop(m, "cert", "clientissuer"), "CN=Test Client CA,O=Example");
    cr_expect(prop(m, "cert", "clientalt") != NULL &&
                  strstr(prop(m, "cert", "clientalt"), "DNS:alice.example.com") != NULL,
              "clientalt %s", prop(m, "cert", "clientalt"));
    cr_assert_eq(X509_digest(pki.alice, EVP_sha256(), der_md, &md_len), 1);
    for (i = 0; i < 32; i++)
        snprintf(fp + i * 3, sizeof(fp) - i * 3, i < 31 ? "%02X:" : "%02X", der_md[i]);
    cr_expect_str_eq(prop(m, "key", "fingerprint"), fp);
    tb_authres_free(ar);

    cr_assert_eq(get_results(pki.selfsigned, "/echo", &ar), 200);
    m = tls_method(ar, "selfsigned", NULL, "self-signed");
    cr_expect_str_eq(prop(m, "cert", "client"), "CN=mallory,O=Self");
    cr_expect_null(prop(m, "cert", "verif"), "only a verified certificate has cert.verif");
    tb_authres_free(ar);

    cr_assert_eq(get_results(pki.expired, "/echo", &ar), 200);
    tls_method(ar, "fail", "certificate has expired", "expired");
    tb_authres_free(ar);

    cr_assert_eq(get_results(pki.unknown, "/echo", &ar), 200);
    tls_method(ar, "fail", NULL, "unknown CA");
    tb_authres_free(ar);

    cr_assert_eq(get_results(NULL, "/echo", &ar), 200);
    m = tls_method(ar, "permerror", "no client certificate", "no certificate");
    cr_expect_null(prop(m, "cert", "client"));
    tb_authres_free(ar);

    /* client_certificate = "required" on the route: 403 for all but the verified one */
    cr_expect_eq(get_results(pki.alice, "/api/strict/x", &ar), 200);
    tb_authres_free(ar);
    cr_expect_eq(get_results(NULL, "/api/strict/x", &ar), 403);
    cr_expect_eq(get_results(pki.expired, "/api/strict/x", &ar), 403);
    cr_expect_eq(get_results(pki.selfsigned, "/api/strict/x", &ar), 403);
    /* client_certificate = "off" on the route: the certificate is not reported */
    cr_assert_eq(get_results(pki.alice, "/api/nocert/x", &ar), 200);
    m = tls_method(ar, "permerror", "no client certificate", "off route");
    cr_expect_null(prop(m, "cert", "client"));
    cr_expect_null(prop(m, "key", "fingerprint"));
    tb_authres_free(ar);
}

/* The same over HTTP/2: GET path with cert (NULL: none); the stream's status, *ar as above. */
static int h2_results(X509 *cert, const char *path, struct tb_authres **ar)
{
    struct tbt_h2_opts o = {.alpn = "h2", .cert = cert, .key = cert != NULL ? pki.key : NULL};
    struct tbt_h2_stream *st;
    struct tbt_h2 h;
    json_error_t e;
    json_t *doc;
    const char *v;
    int32_t id;
    int status;

    *ar = NULL;
    cr_assert_eq(tbt_h2_connect(&h, (uint16_t)px_port, &o), 0, "%s\n%s", h.err, tbt_log_tail(&px));
    id = tbt_h2_submit(&h, "GET", path, NULL, NULL, 0);
    cr_assert_gt(id, 0, "%s", h.err);
    cr_assert_eq(tbt_h2_run(&h, &id, 1, 15000), 0, "%s\n%s", h.err, tbt_log_tail(&px));
    st = tbt_h2_stream(&h, id);
    status = st->status;
    if (status == 200) {
        doc = json_loadb((const char *)st->body, st->body_len, 0, &e);
        cr_assert_not_null(doc, "%s", e.text);
        v = origin_header(doc, "authentication-results");
        cr_assert_not_null(v, "no Authentication-Results at the origin (h2)");
        cr_assert_eq(tb_authres_parse(v, strlen(v), ar), 0, "not RFC 8601: %s", v);
        json_decref(doc);
    }
    tbt_h2_close(&h);
    return status;
}

Test(mtls, results_header_and_route_policy_over_h2,
     .description = "HTTP/2: tls=pass with the subject; client_certificate required: 403")
{
    const struct tb_authres_method *m;
    struct tb_authres *ar;

    world_and_pki();
    routes_text = ROUTES_POLICY;
    start(OPTIONAL);
    routes_text = "routes = ( { upstream = \"app\"; } );\n";

    cr_assert_eq(h2_results(pki.alice, "/echo", &ar), 200);
    cr_assert_not_null(ar);
    cr_expect_str_eq(ar->authserv_id, "mtls.test");
    m = tb_authres_find_method(ar, "tls", NULL);
    cr_assert_not_null(m);
    cr_expect_str_eq(m->result, "pass");
    cr_expect_str_eq(prop(m, "cert", "client"), "CN=alice,O=Example");
    tb_authres_free(ar);
    cr_assert_eq(h2_results(pki.expired, "/echo", &ar), 200);
    cr_expect_str_eq(tb_authres_find_method(ar, "tls", NULL)->result, "fail");
    tb_authres_free(ar);

    cr_expect_eq(h2_results(pki.alice, "/api/strict/x", &ar), 200);
    tb_authres_free(ar);
    cr_expect_eq(h2_results(NULL, "/api/strict/x", &ar), 403, "h2, no certificate, required");
    cr_expect_eq(h2_results(pki.unknown, "/api/strict/x", &ar), 403, "h2, unknown CA, required");
}
