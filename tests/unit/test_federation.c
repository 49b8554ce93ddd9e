/*
 * Federation end to end: Token Binding across two origins (RFC 8473 section 5 style), with the
 * real binaries on loopback: a relying party (tbproxy RP -> tborigin --idp-url) and an identity
 * provider (tbproxy IdP -> tborigin --idp-key), and tbclient as the browser.
 *
 *   tbclient -L https://localhost:RP/login
 *     RP /login      302 to IdP /idp/authorize; the RP route's refer_token_binding adds
 *                    Include-Referer-Token-Binding-ID, so tbclient proves its RP key to the IdP
 *     IdP authorize  302 back to RP /callback?code=C (the code remembers both IDs)
 *     RP /callback   302 to IdP /idp/token?code=C, again with a referral
 *     IdP token      200 {"access_token": ES256 JWT with cnf.tbh = tbh(the client's RP key)}
 *   tbclient -H "Authorization: Bearer T" https://localhost:RP/api/...   the RP route's jwt
 *
 * Each test builds the whole world in a temporary directory: a self-signed localhost certificate
 * (tbclient runs with -k), the IdP's P-256 key pair, both origins on 127.0.0.1:0 (their ports
 * read from their "listening" lines), both proxies on free ports from config files written here
 * (a proxy that cannot take its port is retried on another), and a tbclient key store
 * ($TBCLIENT_HOME) per client. The IdP's issuer and audience are left to their defaults (the
 * IdP's own origin as requested, the redirect_uri's origin), which the RP's jwt route requires.
 * The suite's .fini stops every process, flags sanitizer reports in the daemons' logs and removes
 * the directory; every tbclient run has -m and a harness timeout.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "proc.h"
#include "run.h"
#include "tb/base64url.h"
#include "tb/tbh.h"
#include "world.h"

#define START_TIMEOUT_MS 10000
#define START_ATTEMPTS 3
#define RUN_TIMEOUT_MS 60000
#define MAX_TIME "30" /* tbclient -m, seconds */
#define MAX_ARGS 32

/* The two sides and the test's directory. */
static struct fed {
    char dir[512];
    struct tbt_proc idp_origin, idp_proxy, rp_origin, rp_proxy;
    int idp_port, rp_port; /* the proxies' */
    char bin[4096];
} f;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void teardown(void)
{
    struct tbt_proc *all[] = {&f.rp_proxy, &f.rp_origin, &f.idp_proxy, &f.idp_origin};
    size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        tbt_proc_stop(all[i]);
    tbt_proc_kill_all();
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        tbt_world_check_log(all[i]);
    if (f.dir[0] != '\0' && getenv("TBT_KEEP") == NULL)
        nftw(f.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* the key stores are nested */
    memset(&f, 0, sizeof(f));
}

TestSuite(federation, .fini = teardown, .timeout = 180);

/* $TB_BIN/name, else build/rel/bin/name. */
static const char *bin(const char *name)
{
    cr_assert_eq(tbt_run_path(name, f.bin, sizeof(f.bin)), 0);
    cr_assert_eq(access(f.bin, X_OK), 0, "%s: %s (build it, or set TB_BIN)", f.bin,
                 strerror(errno));
    return f.bin;
}

/* --- the world ------------------------------------------------------------------------------ */

/* Writes a PEM of key (private, or public with pub) or of cert into f.dir/name. */
static void write_pem(const char *name, EVP_PKEY *key, int pub, X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int ok;

    cr_assert_not_null(b);
    if (cert != NULL)
        ok = PEM_write_bio_X509(b, cert);
    else if (pub)
        ok = PEM_write_bio_PUBKEY(b, key);
    else
        ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    cr_assert_eq(ok, 1);
    len = BIO_get_mem_data(b, &data);
    cr_assert_eq(tbt_write_file(f.dir, name, data, (size_t)len), 0);
    BIO_free(b);
}

/* cert.pem + key.pem: self-signed P-256, CN localhost, an hour; idp.pem + idp.pub.pem. */
static void make_keys(void)
{
    EVP_PKEY *tls = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *idp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *name;

    cr_assert(tls != NULL && idp != NULL && x != NULL);
    name = X509_get_subject_name(x);
    cr_assert(X509_set_version(x, 2) == 1 && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -60) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), 3600) != NULL &&
              X509_set_pubkey(x, tls) == 1 &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
              X509_set_issuer_name(x, name) == 1 && X509_sign(x, tls, EVP_sha256()) != 0);
    write_pem("cert.pem", NULL, 0, x);
    write_pem("key.pem", tls, 0, NULL);
    write_pem("idp.pem", idp, 0, NULL);
    write_pem("idp.pub.pem", idp, 1, NULL);
    X509_free(x);
    EVP_PKEY_free(tls);
    EVP_PKEY_free(idp);
}

/* Starts a tborigin with args into p; returns its port. */
static int start_origin(struct tbt_proc *p, const char *name, const char *const *args)
{
    char err[TBT_PROC_ERRLEN];
    int port;

    cr_assert_eq(tbt_proc_start(p, bin("tborigin"), args, f.dir, name, err, sizeof(err)), 0, "%s",
                 err);
    port =
        tbt_proc_wait_listen_line(p, "tborigin listening on ", START_TIMEOUT_MS, err, sizeof(err));
    cr_assert_gt(port, 0, "%s", err);
    return port;
}

/*
 * Starts tbproxy -c <dir>/<name>.conf with the config made by write(port) on a free port, retried
 * on another port when the proxy exits before accepting. Returns the port.
 */
static int start_proxy(struct tbt_proc *p, const char *name, void (*write)(const char *, int))
{
    char err[TBT_PROC_ERRLEN] = "", conf[600];
    const char *args[] = {"-c", conf, NULL};
    int attempt, port = -1, rc = -1;

    snprintf(conf, sizeof(conf), "%s/%s.conf", f.dir, name);
    for (attempt = 0; attempt < START_ATTEMPTS && rc != 0; attempt++) {
        tbt_proc_stop(p);
        port = tbt_port_free();
        cr_assert_gt(port, 0);
        write(name, port);
        cr_assert_eq(tbt_proc_start(p, bin("tbproxy"), args, f.dir, name, err, sizeof(err)), 0,
                     "%s", err);
        rc = tbt_proc_wait_port(p, (uint16_t)port, START_TIMEOUT_MS, err, sizeof(err));
        if (rc != 0 && tbt_proc_alive(p))
            break;
    }
    cr_assert_eq(rc, 0, "%s", err);
    return port;
}

static int idp_origin_port, rp_origin_port;

/* The settings both proxies share, for a listener on port and an origin on origin_port. */
static char *common_conf(int port, int origin_port)
{
    char *s = NULL;

    cr_assert_gt(asprintf(&s,
                          "workers = 2;\n"
                          "listen = ( { address = \"127.0.0.1:%d\";\n"
                          "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
                          "token_binding = { enabled = true; version = \"draft\";\n"
                          "                  key_types = [ \"p256\", \"rsa2048\" ]; };\n"
                          "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ];\n"
                          "                      connect_timeout = \"2s\"; }; };\n"
                          "log = { error = \"-\"; level = \"info\"; };\n"
                          "admin = { listen = \"\"; };\n",
                          port, origin_port),
                 0);
    return s;
}

static void write_conf(const char *name, const char *common, const char *routes)
{
    char *text = NULL, file[128];
    int n = asprintf(&text, "# written by tests/unit/test_federation.c\n%s%s", common, routes);

    cr_assert_gt(n, 0);
    snprintf(file, sizeof(file), "%s.conf", name);
    cr_assert_eq(tbt_write_file(f.dir, file, text, (size_t)n), 0);
    free(text);
}

/* The IdP's proxy: nothing but a route; it forwards provided and referred IDs. */
static void write_idp_conf(const char *name, int port)
{
    char *common = common_conf(port, idp_origin_port);

    write_conf(name, common,
               "routes = ( { host = \"*\"; prefix = \"/\"; upstream = \"app\"; } );\n");
    free(common);
}

/* The RP's proxy: referrals on /login and /callback, a jwt route on /api/. */
static void write_rp_conf(const char *name, int port)
{
    char *common = common_conf(port, rp_origin_port), *routes = NULL;

    cr_assert_gt(
        asprintf(
            &routes,
            "routes = (\n"
            "  { host = \"*\"; prefix = \"/login\"; upstream = \"app\";\n"
            "    refer_token_binding = true; },\n"
            "  { host = \"*\"; prefix = \"/callback\"; upstream = \"app\";\n"
            "    refer_token_binding = true; },\n"
            "  { host = \"*\"; prefix = \"/api/\"; upstream = \"app\";\n"
            "    jwt = { keys = \"idp.pub.pem\"; algs = [ \"ES256\" ];\n"
            "            issuer = \"https://localhost:%d\"; audience = \"https://localhost:%d\";\n"
            "            sub_header = \"X-Auth-Sub\"; }; },\n"
            "  { host = \"*\"; prefix = \"/\"; upstream = \"app\"; }\n"
            ");\n",
            f.idp_port, port),
        0);
    write_conf(name, common, routes);
    free(common);
    free(routes);
}

/* Everything: keys, IdP origin and proxy, RP origin (pointed at the IdP proxy) and proxy. */
static void start_world(void)
{
    char idp_key[600], idp_url[64];
    const char *idp_args[] = {"--listen", "127.0.0.1:0", "--idp-key", idp_key, NULL};
    const char *rp_args[] = {"--listen", "127.0.0.1:0", "--idp-url", idp_url, NULL};

    cr_assert_eq(tbt_tempdir("tbproxy-fed", f.dir, sizeof(f.dir)), 0, "mkdtemp: %s",
                 strerror(errno));
    make_keys();
    snprintf(idp_key, sizeof(idp_key), "%s/idp.pem", f.dir);
    idp_origin_port = start_origin(&f.idp_origin, "tborigin-idp", idp_args);
    f.idp_port = start_proxy(&f.idp_proxy, "tbproxy-idp", write_idp_conf);
    snprintf(idp_url, sizeof(idp_url), "https://localhost:%d", f.idp_port);
    rp_origin_port = start_origin(&f.rp_origin, "tborigin-rp", rp_args);
    f.rp_port = start_proxy(&f.rp_proxy, "tbproxy-rp", write_rp_conf);
}

/* --- clients -------------------------------------------------------------------------------- */

/*
 * Runs tbclient -k -m MAX_TIME as client 'a' or 'b' (its own key store) with args
 * (NULL-terminated). Returns its exit status; its output (stdout + stderr) in *log (caller
 * frees), which must hold no sanitizer report.
 */
static int client(char who, char **log, const char *const *args)
{
    const char *argv[MAX_ARGS + 4];
    char err[TBT_PROC_ERRLEN], home[600], name[32];
    struct tbt_proc p;
    size_t n = 0;
    int st;

    snprintf(home, sizeof(home), "%s/home-%c", f.dir, who);
    mkdir(home, 0700);
    snprintf(home, sizeof(home), "%s/home-%c/tb", f.dir, who);
    cr_assert_eq(setenv("TBCLIENT_HOME", home, 1), 0);
    snprintf(name, sizeof(name), "tbclient-%c", who);
    argv[n++] = "-k";
    argv[n++] = "-m";
    argv[n++] = MAX_TIME;
    for (; *args != NULL && n < MAX_ARGS; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    cr_assert_eq(tbt_proc_start(&p, bin("tbclient"), argv, f.dir, name, err, sizeof(err)), 0, "%s",
                 err);
    st = tbt_proc_wait_exit(&p, RUN_TIMEOUT_MS);
    if (st == -1)
        tbt_proc_stop(&p);
    tbt_world_check_log(&p);
    if (log != NULL) {
        *log = tbt_proc_log(&p, 0);
        cr_assert_not_null(*log);
    }
    return st;
}

#define CLIENT(who, log, ...) client((who), (log), (const char *const[]){__VA_ARGS__, NULL})

static const char *rp(const char *path)
{
    static char buf[4][1024];
    static int next;
    char *b = buf[next++ % 4];

    snprintf(b, sizeof(buf[0]), "https://localhost:%d%s", f.rp_port, path);
    return b;
}

static const char *idp(const char *path)
{
    static char buf[2][1024];
    static int next;
    char *b = buf[next++ % 2];

    snprintf(b, sizeof(buf[0]), "https://localhost:%d%s", f.idp_port, path);
    return b;
}

static const char *in_dir(const char *name)
{
    static char buf[4][700];
    static int next;
    char *b = buf[next++ % 4];

    snprintf(b, sizeof(buf[0]), "%s/%s", f.dir, name);
    return b;
}

/* Reads f.dir/name whole (NUL-terminated, caller frees). */
static char *slurp(const char *name)
{
    FILE *fp = fopen(in_dir(name), "rb");
    char *buf = malloc(1 << 16);
    size_t n;

    cr_assert(fp != NULL && buf != NULL, "%s: %s", in_dir(name), strerror(errno));
    n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* The JSON body of a response written with -o (no -i). Caller decrefs. */
static json_t *load_json(const char *name)
{
    json_error_t e;
    json_t *doc = json_load_file(in_dir(name), 0, &e);

    cr_assert_not_null(doc, "%s: %s", name, e.text);
    return doc;
}

static const char *str_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The access token the IdP answered with (written to f.dir/name), malloc'd. */
static char *access_token(const char *name)
{
    json_t *doc = load_json(name);
    const char *t = str_of(doc, "access_token");
    char *copy;

    cr_assert_not_null(t, "no access_token in %s", name);
    cr_expect_str_eq(str_of(doc, "token_type"), "Bearer");
    copy = strdup(t);
    json_decref(doc);
    return copy;
}

/* The claims of a JWT (its payload decoded, not verified: the RP's proxy verifies). */
static json_t *claims_of(const char *jwt)
{
    const char *p = strchr(jwt, '.'), *end = p != NULL ? strchr(p + 1, '.') : NULL;
    uint8_t buf[4096];
    json_t *doc;
    int n;

    cr_assert(p != NULL && end != NULL, "not a JWT: %s", jwt);
    n = tb_base64url_decode(p + 1, (size_t)(end - p - 1), buf, sizeof(buf) - 1);
    cr_assert_gt(n, 0);
    doc = json_loadb((const char *)buf, (size_t)n, 0, NULL);
    cr_assert(json_is_object(doc));
    return doc;
}

/* The tbh of a base64url Token Binding ID. */
static void tbh_of_b64(const char *id64, char out[TB_TBH_LEN + 1])
{
    uint8_t id[1024];
    int n = tb_base64url_decode(id64, strlen(id64), id, sizeof(id));

    cr_assert_gt(n, 0, "not base64url: %s", id64);
    cr_assert_eq(tb_tbh(id, (size_t)n, out, TB_TBH_LEN + 1), TB_TBH_LEN);
}

/* The code in the last "location: .../callback?code=C" line tbclient -v printed, into out. */
static void code_from_log(const char *log, char *out, size_t cap)
{
    const char *p = NULL, *q = log, *c;
    size_t n;

    while ((q = strstr(q, "/callback?code=")) != NULL)
        p = q++;
    cr_assert_not_null(p, "no redirect to /callback with a code in: %s", log);
    c = p + strlen("/callback?code=");
    n = strcspn(c, "&\r\n");
    cr_assert(n > 0 && n < cap);
    memcpy(out, c, n);
    out[n] = '\0';
}

/*
 * The first steps of a login as client who: RP /login -> IdP /idp/authorize (with the referral)
 * -> the 302 back to RP /callback?code=C, where --max-redirs 1 stops tbclient (exit 47). The
 * code C goes into out.
 */
static void get_code(char who, char *out, size_t cap)
{
    char *log = NULL;

    cr_assert_eq(
        CLIENT(who, &log, "-v", "-L", "--max-redirs", "1", "-o", in_dir("stop.out"), rp("/login")),
        47, "%s", log);
    code_from_log(log, out, cap);
    free(log);
}

/* The status line and body of a response written with -i -o name. */
static char *response(const char *name)
{
    return slurp(name);
}

/* --- tests ---------------------------------------------------------------------------------- */

Test(federation, login_token_api,
     .description = "tbclient -L gets a token the RP accepts "
                    "only from the client's own key")
{
    char *log = NULL, *tok, *out, tbh[TB_TBH_LEN + 1], auth[4096];
    json_t *claims, *echo, *headers;

    start_world();
    cr_assert_eq(CLIENT('a', &log, "-v", "-L", "-o", in_dir("token.json"), rp("/login?user=alice")),
                 0, "%s", log);
    cr_expect(strstr(log, "Token Binding referred origin: localhost") != NULL,
              "the IdP requests carried a referred binding: %s", log);
    free(log);
    tok = access_token("token.json");
    claims = claims_of(tok);
    cr_expect_str_eq(str_of(claims, "sub"), "alice");
    cr_expect_str_eq(str_of(claims, "iss"), idp(""), "iss: the IdP's origin");
    cr_expect_str_eq(str_of(claims, "aud"), rp(""), "aud: the RP's origin");

    /* the RP's /api/ accepts it from the same client: X-Auth-Sub set, bound to its RP key */
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    cr_assert_eq(CLIENT('a', &log, "-o", in_dir("api.json"), "-H", auth, rp("/api/me")), 0, "%s",
                 log);
    free(log);
    echo = load_json("api.json");
    headers = json_object_get(echo, "headers");
    cr_expect_str_eq(str_of(echo, "path"), "/api/me");
    cr_expect_str_eq(str_of(headers, "x-auth-sub"), "alice", "%s", json_dumps(echo, JSON_COMPACT));
    cr_assert_not_null(str_of(headers, "sec-provided-token-binding-id"));
    tbh_of_b64(str_of(headers, "sec-provided-token-binding-id"), tbh);
    cr_expect_str_eq(str_of(json_object_get(claims, "cnf"), "tbh"), tbh,
                     "cnf.tbh is the tbh of the client's key for the RP");
    json_decref(echo);
    json_decref(claims);

    /* another client (another key) with the stolen token: 401 */
    cr_assert_eq(CLIENT('b', &log, "-i", "-o", in_dir("b.out"), "-H", auth, rp("/api/me")), 0, "%s",
                 log);
    free(log);
    out = response("b.out");
    cr_expect(strncmp(out, "HTTP/2 401", 10) == 0, "another key: %s", out);
    cr_expect(strstr(out, "Bearer error=\"invalid_token\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"path\"") == NULL, "the origin was not reached: %s", out);
    free(out);

    /* the same client without Token Binding: 401 */
    cr_assert_eq(
        CLIENT('a', &log, "--no-tb", "-i", "-o", in_dir("notb.out"), "-H", auth, rp("/api/me")), 0,
        "%s", log);
    free(log);
    out = response("notb.out");
    cr_expect(strncmp(out, "HTTP/2 401", 10) == 0, "without Token Binding: %s", out);
    free(out);

    /* and no token at all: 401 */
    cr_assert_eq(CLIENT('a', &log, "-i", "-o", in_dir("none.out"), rp("/api/me")), 0, "%s", log);
    free(log);
    out = response("none.out");
    cr_expect(strncmp(out, "HTTP/2 401", 10) == 0, "no token: %s", out);
    free(out);
    free(tok);
}

Test(federation, code_single_use_and_referral,
     .description = "a code needs the referral and "
                    "the same client, and works once")
{
    char code[128], cb[256], tok_path[256], *log = NULL, *out;
    char *tok;

    start_world();
    get_code('a', code, sizeof(code));
    snprintf(cb, sizeof(cb), "/callback?code=%s", code);
    snprintf(tok_path, sizeof(tok_path), "/idp/token?code=%s", code);

    /* straight to the IdP: the client's IdP key alone, no referred binding -> invalid_grant */
    cr_assert_eq(CLIENT('a', &log, "-i", "-o", in_dir("direct.out"), idp(tok_path)), 0, "%s", log);
    free(log);
    out = response("direct.out");
    cr_expect(strncmp(out, "HTTP/2 400", 10) == 0, "%s", out);
    cr_expect(strstr(out, "\"invalid_grant\"") != NULL, "%s", out);
    cr_expect(strstr(out, "no referred token binding") != NULL, "%s", out);
    cr_expect(strstr(out, "access_token") == NULL, "%s", out);
    free(out);

    /* another client through the RP (a referral, but other keys) -> invalid_grant */
    cr_assert_eq(CLIENT('b', &log, "-L", "-i", "-o", in_dir("b.out"), rp(cb)), 0, "%s", log);
    free(log);
    out = response("b.out");
    cr_expect(strstr(out, "HTTP/2 400") != NULL && strstr(out, "\"invalid_grant\"") != NULL,
              "another client: %s", out);
    cr_expect(strstr(out, "access_token") == NULL, "%s", out);
    free(out);

    /* neither consumed it: the client it belongs to redeems it through the RP */
    cr_assert_eq(CLIENT('a', &log, "-L", "-o", in_dir("token.json"), rp(cb)), 0, "%s", log);
    free(log);
    tok = access_token("token.json");
    cr_expect_gt(strlen(tok), 100);
    free(tok);

    /* and only once */
    cr_assert_eq(CLIENT('a', &log, "-L", "-i", "-o", in_dir("again.out"), rp(cb)), 0, "%s", log);
    free(log);
    out = response("again.out");
    cr_expect(strstr(out, "HTTP/2 400") != NULL && strstr(out, "\"invalid_grant\"") != NULL,
              "a code is single-use: %s", out);
    cr_expect(strstr(out, "access_token") == NULL, "%s", out);
    free(out);
}

Test(federation, authorize_needs_referral,
     .description = "/idp/authorize reached without the "
                    "RP's referral is refused")
{
    char *log = NULL, *out;

    start_world();
    cr_assert_eq(CLIENT('a', &log, "-i", "-o", in_dir("auth.out"),
                        idp("/idp/authorize?redirect_uri=https%3A%2F%2Flocalhost%2Fcallback")),
                 0, "%s", log);
    free(log);
    out = response("auth.out");
    cr_expect(strncmp(out, "HTTP/2 400", 10) == 0, "%s", out);
    cr_expect(strstr(out, "no referred token binding: the relying party must send "
                          "Include-Referer-Token-Binding-ID") != NULL,
              "%s", out);
    free(out);
}
