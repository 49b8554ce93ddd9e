/*
 * tbclient end to end: the binary against the real tbproxy and tborigin (tests/support/world.h),
 * asserting on what the origin received (/echo's JSON) and on what tbclient printed.
 *
 * Each test builds its own world (certificate, origin, proxy on free ports) and a key store
 * home ($TBCLIENT_HOME) in a temporary directory of its own, removed by the suite's .fini,
 * which also stops every process (the world's and any tbclient still running). Every tbclient
 * run has -m (its own limit) and a harness timeout, so nothing waits unbounded. The body goes to
 * a file with -o where the test reads JSON, so -v output (stderr, in the run's log) never mixes
 * with it.
 *
 * RFC 8471-8473 (--tb-version rfc): the world's proxy started with `--tb-version rfc` (or
 * `both`: tbt_world_opts.tb_version), so tbclient's token_binding extension, Sec-Token-Binding
 * over the EKM and rfc TBIDs meet the real verifier; /echo shows what the proxy forwarded. The
 * rfc federation test runs a second pair beside the world's (a tborigin that is IdP and RP at
 * once, and a tbproxy from a config file with refer_token_binding routes): that origin's
 * arguments name the proxy's port, and the world writes no such routes.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "tb/base64url.h"
#include "tb/sign.h"
#include "tb/tbh.h"

#include "world.h"

#define RUN_TIMEOUT_MS 60000
#define MAX_TIME "30" /* tbclient -m, seconds */
#define MAX_ARGS 40

static struct tbt_world w;
static char home[512];       /* $TBCLIENT_HOME of the test */
static struct tbt_proc fedp; /* the federation proxy, when one runs */
static int fed_port;         /* its port */
static struct tbt_proc fedo; /* the federation origin (IdP and RP at once), when one runs */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0;
}

static void teardown(void)
{
    if (fedp.pid > 0) {
        tbt_proc_stop(&fedp);
        tbt_world_check_log(&fedp);
    }
    if (fedo.pid > 0) {
        tbt_proc_stop(&fedo);
        tbt_world_check_log(&fedo);
    }
    memset(&fedp, 0, sizeof(fedp));
    memset(&fedo, 0, sizeof(fedo));
    fed_port = 0;
    tbt_world_teardown(&w);
    if (home[0] != '\0' && getenv("TBT_KEEP") == NULL)
        nftw(home, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    home[0] = '\0';
}

TestSuite(tbclient, .fini = teardown, .timeout = 120);

/* A world (o as tbt_world_start takes it) and a key store home; TBCLIENT_HOME points there for
 * every tbclient run. */
static void start_with(const struct tbt_world_opts *o)
{
    char dir[600];

    tbt_world_start(&w, o);
    cr_assert_eq(tbt_tempdir("tbclient-home", home, sizeof(home)), 0);
    snprintf(dir, sizeof(dir), "%s/tb", home); /* created by tbclient, mode 0700 */
    cr_assert_eq(setenv("TBCLIENT_HOME", dir, 1), 0);
}

static void start(void)
{
    start_with(NULL);
}

/* start() with the world's proxy speaking Token Binding `version` ("rfc" or "both"). */
static void start_rfc(const char *version)
{
    start_with(&(struct tbt_world_opts){.tb_version = version});
}

/* https://host:port/path, in one of four rotating static buffers. */
static const char *url_on(int port, const char *host, const char *path)
{
    static char buf[4][1024];
    static int next;
    char *b = buf[next++ % 4];

    snprintf(b, sizeof(buf[0]), "https://%.64s:%d%.900s", host, port, path);
    return b;
}

/* A URL of the world's proxy. */
static const char *url(const char *host, const char *path)
{
    return url_on(w.proxy_port, host, path);
}

static const char *path_in(const char *name)
{
    static char buf[4][700];
    static int next;
    char *b = buf[next++ % 4];

    snprintf(b, sizeof(buf[0]), "%s/%s", w.dir, name);
    return b;
}

/*
 * Runs tbclient -m MAX_TIME with args (NULL-terminated); returns its exit status and its
 * output (stdout + stderr) in *log (caller frees), which must hold no sanitizer report.
 */
static int run(char **log, const char *const *args)
{
    const char *argv[MAX_ARGS + 3];
    char *out = NULL;
    size_t n = 0;
    int st;

    argv[n++] = "-m";
    argv[n++] = MAX_TIME;
    for (; *args != NULL && n < MAX_ARGS; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    st = tbt_world_run(&w, tbt_world_bin(&w, "tbclient"), argv, "tbclient", RUN_TIMEOUT_MS, &out);
    cr_assert_not_null(out);
    cr_expect_null(strstr(out, "ERROR: AddressSanitizer"), "%s", out);
    cr_expect_null(strstr(out, "ERROR: LeakSanitizer"), "%s", out);
    cr_expect_null(strstr(out, "runtime error:"), "%s", out);
    if (log != NULL)
        *log = out;
    else
        free(out);
    return st;
}

#define RUN(log, ...) run((log), (const char *const[]){__VA_ARGS__, NULL})

/* The rest of the line after prefix in text, malloc'd; NULL when no line has it. */
static char *line_value(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);

    if (p == NULL)
        return NULL;
    p += strlen(prefix);
    return strndup(p, strcspn(p, "\r\n"));
}

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *doc = json_load_file(path, 0, &e);

    cr_assert_not_null(doc, "%s: %s", path, e.text);
    return doc;
}

/* A request header as /echo saw it, or NULL. Valid while doc is. */
static const char *echo_header(json_t *doc, const char *name)
{
    return json_string_value(json_object_get(json_object_get(doc, "headers"), name));
}

/* GET /echo with Token Binding over proto ("--http1.1" / "--http2"), checked end to end. */
static void echo_with_tb(const char *proto, const char *alpn)
{
    char *log = NULL, *id, *tbh, *tu;
    json_t *doc;
    int st;

    start();
    st = RUN(&log, "-v", proto, "--cacert", w.cert, "-o", path_in("echo.json"),
             url("localhost", "/echo"));
    cr_assert_eq(st, 0, "exit %d: %s", st, log);
    cr_assert_not_null(strstr(log, alpn), "%s", log);
    cr_assert_not_null(strstr(log, "TLSv1.2"), "%s", log);
    cr_assert_not_null(strstr(log, "extended master secret yes"), "%s", log);
    tu = line_value(log, "* tls_unique: ");
    cr_assert(tu != NULL && strlen(tu) == 24, "%s", log);
    id = line_value(log, "* Token Binding provided ID: ");
    tbh = line_value(log, "* Token Binding provided tbh: ");
    cr_assert(id != NULL && tbh != NULL, "%s", log);
    cr_assert_eq(strlen(tbh), 43);
    doc = load_json(path_in("echo.json"));
    cr_assert_str_eq(echo_header(doc, "sec-provided-token-binding-id"), id);
    cr_assert_null(echo_header(doc, "sec-referred-token-binding-id"));
    cr_assert_null(echo_header(doc, "token-binding"), "the proxy strips the header");
    cr_assert_null(strstr(log, "PRIVATE KEY"));
    json_decref(doc);
    free(tu);
    free(id);
    free(tbh);
    free(log);
}

Test(tbclient, echo_h1_with_token_binding)
{
    echo_with_tb("--http1.1", "ALPN http/1.1_tb_p256");
}

Test(tbclient, echo_h2_with_token_binding)
{
    echo_with_tb("--http2", "ALPN h2_tb_p256");
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return st.st_mode & 07777;
}

/* Every base64 line of the PEM file at path is absent from text. */
static void expect_no_key_material(const char *text, const char *path)
{
    char line[256];
    FILE *f = fopen(path, "r");

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] != '-' && strlen(line) > 16)
            cr_expect_null(strstr(text, line), "key material printed");
    }
    fclose(f);
}

Test(tbclient, key_persists_per_origin)
{
    char *log1 = NULL, *log2 = NULL, *id1, *id2, keys[600], key[700];

    start();
    cr_assert_eq(RUN(&log1, "-v", "-k", "-o", path_in("1.json"), url("localhost", "/echo")), 0);
    cr_assert_eq(RUN(&log2, "-v", "-k", "-o", path_in("2.json"), url("localhost", "/echo")), 0);
    id1 = line_value(log1, "* Token Binding provided ID: ");
    id2 = line_value(log2, "* Token Binding provided ID: ");
    cr_assert(id1 != NULL && id2 != NULL);
    cr_assert_str_eq(id1, id2, "the same key on the second run");
    cr_assert_not_null(strstr(log1, "(created)"), "%s", log1);
    cr_assert_not_null(strstr(log2, "(loaded)"), "%s", log2);
    snprintf(keys, sizeof(keys), "%s/tb/keys", home);
    snprintf(key, sizeof(key), "%s/localhost:%d.p256.pem", keys, w.proxy_port);
    cr_assert_eq(mode_of(key), 0600);
    cr_assert_eq(mode_of(keys), 0700);
    cr_assert_eq(mode_of(getenv("TBCLIENT_HOME")), 0700);
    expect_no_key_material(log1, key);
    free(id1);
    free(id2);
    free(log1);
    free(log2);
}

Test(tbclient, rsa2048_and_explicit_key_file)
{
    char *log = NULL, *id_rsa, *id_file, *id_again;
    json_t *doc;

    start();
    cr_assert_eq(RUN(&log, "-v", "-k", "--key-type", "rsa2048", "-o", path_in("r.json"),
                     url("localhost", "/echo")),
                 0, "%s", log);
    cr_assert_not_null(strstr(log, "ALPN h2_tb_rsa2048"), "%s", log);
    id_rsa = line_value(log, "* Token Binding provided ID: ");
    cr_assert_not_null(id_rsa);
    doc = load_json(path_in("r.json"));
    cr_assert_str_eq(echo_header(doc, "sec-provided-token-binding-id"), id_rsa);
    json_decref(doc);
    free(log);
    /* --key FILE: made on first use, then used again */
    cr_assert_eq(RUN(&log, "-v", "-k", "--key", path_in("mine.pem"), "-o", path_in("k.json"),
                     url("localhost", "/echo")),
                 0);
    id_file = line_value(log, "* Token Binding provided ID: ");
    free(log);
    cr_assert_eq(RUN(&log, "-v", "-k", "--key", path_in("mine.pem"), "-o", path_in("k.json"),
                     url("localhost", "/echo")),
                 0);
    id_again = line_value(log, "* Token Binding provided ID: ");
    cr_assert(id_file != NULL && id_again != NULL);
    cr_assert_str_eq(id_file, id_again);
    cr_assert_str_neq(id_file, id_rsa);
    cr_assert_eq(mode_of(path_in("mine.pem")), 0600);
    free(log);
    /* a P-256 key file is not an RSA key */
    cr_assert_eq(RUN(&log, "-k", "--key-type", "rsa2048", "--key", path_in("mine.pem"),
                     url("localhost", "/echo")),
                 58, "%s", log);
    free(log);
    free(id_rsa);
    free(id_file);
    free(id_again);
}

Test(tbclient, no_tb_is_a_plain_client)
{
    char *log = NULL, keys[600];
    json_t *doc;

    start();
    cr_assert_eq(
        RUN(&log, "-v", "--no-tb", "-k", "-o", path_in("e.json"), url("localhost", "/echo")), 0,
        "%s", log);
    cr_assert_null(strstr(log, "Token Binding provided ID"), "%s", log);
    cr_assert_not_null(strstr(log, "ALPN h2,"), "%s", log);
    doc = load_json(path_in("e.json"));
    cr_assert_null(echo_header(doc, "sec-provided-token-binding-id"));
    json_decref(doc);
    snprintf(keys, sizeof(keys), "%s/tb", home);
    cr_assert_eq(access(keys, F_OK), -1, "no key store without Token Binding");
    free(log);
}

/* POST a few MB from a file over proto; /echo's length and SHA-256 match. */
static void post_file(const char *proto)
{
    size_t len = 3 * 1024 * 1024 + 7, i;
    unsigned char *data = malloc(len);
    char want[65], name[64], *log = NULL, *at;
    json_t *doc;

    cr_assert_not_null(data);
    for (i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    tbt_world_sha256_hex(data, len, want);
    cr_assert_eq(tbt_write_file(w.dir, "upload.bin", data, len), 0);
    free(data);
    snprintf(name, sizeof(name), "post%s.json", proto);
    cr_assert(asprintf(&at, "@%s", path_in("upload.bin")) > 0);
    cr_assert_eq(RUN(&log, proto, "-k", "-X", "POST", "--data-binary", at, "-o", path_in(name),
                     url("localhost", "/echo")),
                 0, "%s", log);
    doc = load_json(path_in(name));
    cr_assert_eq(json_integer_value(json_object_get(doc, "body_length")), (json_int_t)len);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "body_sha256")), want);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "method")), "POST");
    cr_assert_not_null(echo_header(doc, "sec-provided-token-binding-id"));
    json_decref(doc);
    free(at);
    free(log);
}

Test(tbclient, post_file_h1)
{
    start();
    post_file("--http1.1");
}

Test(tbclient, post_file_h2)
{
    start();
    post_file("--http2");
}

Test(tbclient, output_file_and_include)
{
    char *log = NULL, *body = NULL;
    size_t i, n = 0;
    FILE *f;

    start();
    cr_assert_eq(RUN(&log, "-k", "-o", path_in("bytes"), url("localhost", "/bytes/100000")), 0,
                 "%s", log);
    f = fopen(path_in("bytes"), "r");
    cr_assert_not_null(f);
    body = malloc(100001);
    n = fread(body, 1, 100001, f);
    fclose(f);
    cr_assert_eq(n, 100000);
    for (i = 0; i < n; i++)
        cr_assert_eq(body[i], 'a' + (char)(i % 26), "byte %zu", i);
    free(body);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "-i", "--http1.1", url("localhost", "/healthz")), 0);
    cr_assert_eq(strncmp(log, "HTTP/1.1 200 ", 13), 0, "%s", log);
    cr_assert_not_null(strstr(log, "\r\n\r\nok"), "%s", log);
    free(log);
}

Test(tbclient, fail_on_http_error)
{
    char *log = NULL;

    start();
    cr_assert_eq(RUN(&log, "-k", "--fail", "-o", path_in("404"), url("localhost", "/status/404")),
                 22, "%s", log);
    cr_assert_not_null(strstr(log, "404"), "%s", log);
    cr_assert_eq(access(path_in("404"), F_OK), -1, "nothing written with --fail");
    free(log);
    cr_assert_eq(RUN(&log, "-k", "-o", path_in("404"), url("localhost", "/status/404")), 0, "%s",
                 log);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "--fail", url("localhost", "/status/200")), 0, "%s", log);
    free(log);
}

/* -L across origins: localhost redirects to 127.0.0.1 asking for the referred ID. */
static void redirect_referred(const char *proto)
{
    char *log = NULL, *first = NULL, *second = NULL, *referred, target[1100];
    json_t *doc;

    start();
    /* the IDs of both origins, from runs of their own */
    cr_assert_eq(RUN(&log, "-v", "-k", "-o", path_in("a"), url("localhost", "/echo")), 0);
    first = line_value(log, "* Token Binding provided ID: ");
    free(log);
    cr_assert_eq(RUN(&log, "-v", "-k", "-o", path_in("b"), url("127.0.0.1", "/echo")), 0);
    second = line_value(log, "* Token Binding provided ID: ");
    free(log);
    cr_assert(first != NULL && second != NULL);
    cr_assert_str_neq(first, second, "one key per origin");
    snprintf(target, sizeof(target), "/redirect?to=%s", url("127.0.0.1", "/echo"));
    cr_assert_eq(
        RUN(&log, "-v", "-k", "-L", proto, "-o", path_in("r.json"), url("localhost", target)), 0,
        "%s", log);
    cr_assert_not_null(strstr(log, " 302"), "%s", log);
    referred = line_value(log, "* Token Binding referred ID: ");
    cr_assert_not_null(referred, "%s", log);
    cr_assert_str_eq(referred, first);
    doc = load_json(path_in("r.json"));
    cr_assert_str_eq(echo_header(doc, "sec-provided-token-binding-id"), second);
    cr_assert_str_eq(echo_header(doc, "sec-referred-token-binding-id"), first);
    json_decref(doc);
    free(referred);
    free(first);
    free(second);
    free(log);
}

Test(tbclient, redirect_carries_referred_binding_h2)
{
    redirect_referred("--http2");
}

Test(tbclient, redirect_carries_referred_binding_h1)
{
    redirect_referred("--http1.1");
}

/* draft-balfanz asks for the referred binding on 301 and 302: the header on another redirect
 * is followed without one (an rfc client takes it on any redirect: test_client_rfc). */
Test(tbclient, draft_referral_on_301_and_302_only)
{
    static const struct {
        const char *status;
        int referred;
    } cases[] = {{"301", 1}, {"303", 0}, {"307", 0}, {"308", 0}};
    char *log = NULL, target[1100];
    size_t i;
    json_t *doc;

    start();
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(target, sizeof(target), "/redirect?to=%s&status=%s", url("127.0.0.1", "/echo"),
                 cases[i].status);
        cr_assert_eq(RUN(&log, "-v", "-k", "-L", "-o", path_in("r.json"), url("localhost", target)),
                     0, "%s", log);
        cr_assert_not_null(strcasestr(log, "< include-referer-token-binding-id: true"), "%s", log);
        cr_expect_eq(strstr(log, "* Token Binding referred ID: ") != NULL, cases[i].referred,
                     "%s: %s", cases[i].status, log);
        doc = load_json(path_in("r.json"));
        cr_expect_not_null(echo_header(doc, "sec-provided-token-binding-id"), "%s",
                           cases[i].status);
        cr_expect_eq(echo_header(doc, "sec-referred-token-binding-id") != NULL, cases[i].referred,
                     "%s", cases[i].status);
        json_decref(doc);
        free(log);
        log = NULL;
    }
}

Test(tbclient, redirect_same_origin_reuses_connection)
{
    char *log = NULL, *id;
    json_t *doc;

    start();
    cr_assert_eq(RUN(&log, "-v", "-k", "-L", "--http1.1", "-o", path_in("s.json"),
                     url("localhost", "/redirect?to=/echo%3Fx=1")),
                 0, "%s", log);
    cr_assert_not_null(strstr(log, "Re-using the connection"), "%s", log);
    id = line_value(log, "* Token Binding provided ID: ");
    doc = load_json(path_in("s.json"));
    cr_assert_str_eq(json_string_value(json_object_get(doc, "query")), "x=1");
    cr_assert_str_eq(echo_header(doc, "sec-provided-token-binding-id"), id);
    cr_assert_str_eq(echo_header(doc, "sec-referred-token-binding-id"), id);
    json_decref(doc);
    free(id);
    free(log);
    /* without -L the 302 is the answer */
    cr_assert_eq(RUN(&log, "-k", "-i", url("localhost", "/redirect?to=/echo")), 0);
    cr_assert_not_null(strstr(log, " 302"), "%s", log);
    free(log);
    /* a loop ends at --max-redirs */
    cr_assert_eq(RUN(&log, "-k", "-L", "--max-redirs", "3",
                     url("localhost", "/redirect?to=/redirect%3Fto=/redirect%253Fto=/redirect%25"
                                      "253Fto=/echo")),
                 47, "%s", log);
    free(log);
}

Test(tbclient, certificate_checks)
{
    char *log = NULL;

    start();
    cr_assert_eq(RUN(&log, url("localhost", "/echo")), 60, "%s", log);
    cr_assert_not_null(strstr(log, "certificate"), "%s", log);
    free(log);
    /* the right CA but another name */
    cr_assert_eq(RUN(&log, "--cacert", w.cert, url("127.0.0.1", "/echo")), 60, "%s", log);
    free(log);
    cr_assert_eq(RUN(&log, "--cacert", path_in("none.pem"), url("localhost", "/echo")), 77, "%s",
                 log);
    free(log);
    cr_assert_eq(RUN(&log, "--cacert", w.cert, "-o", path_in("ok"), url("localhost", "/echo")), 0,
                 "%s", log);
    free(log);
}

Test(tbclient, cookie_jar)
{
    static const char jar[] = "# Netscape HTTP Cookie File\n"
                              "localhost\tFALSE\t/\tTRUE\t0\tsid\tabc\n"
                              "localhost\tFALSE\t/echo\tFALSE\t0\tdeep\t1\n"
                              "localhost\tFALSE\t/other\tFALSE\t0\tnot\tsent\n"
                              "example.com\tFALSE\t/\tFALSE\t0\tforeign\tx\n";
    char *log = NULL;
    json_t *doc;
    size_t n;

    start();
    cr_assert_eq(tbt_write_file(w.dir, "jar.txt", jar, sizeof(jar) - 1), 0);
    cr_assert_eq(RUN(&log, "-k", "-b", path_in("jar.txt"), "-c", path_in("out.txt"), "-o",
                     path_in("c.json"), url("localhost", "/echo")),
                 0, "%s", log);
    doc = load_json(path_in("c.json"));
    cr_assert_str_eq(echo_header(doc, "cookie"), "deep=1; sid=abc");
    json_decref(doc);
    cr_assert_eq(mode_of(path_in("out.txt")), 0600);
    {
        FILE *f = fopen(path_in("out.txt"), "r");
        char buf[2048];

        cr_assert_not_null(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        cr_assert_not_null(strstr(buf, "localhost\tFALSE\t/\tTRUE\t0\tsid\tabc\n"), "%s", buf);
        cr_assert_not_null(strstr(buf, "foreign"), "%s", buf);
    }
    free(log);
    /* -b NAME=VALUE is sent as is */
    cr_assert_eq(RUN(&log, "-k", "-b", "a=1", "-o", path_in("d.json"), url("localhost", "/echo")),
                 0);
    doc = load_json(path_in("d.json"));
    cr_assert_str_eq(echo_header(doc, "cookie"), "a=1");
    json_decref(doc);
    free(log);
}

Test(tbclient, exit_codes)
{
    char *log = NULL, u[128];
    int fd, port = tbt_port_closed(&fd);

    start();
    cr_assert_gt(port, 0);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", port);
    cr_assert_eq(RUN(&log, "-k", u), 7, "%s", log);
    free(log);
    close(fd);
    /* TLS to a plain HTTP port: the handshake fails */
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", w.origin_port);
    cr_assert_eq(RUN(&log, "-k", u), 35, "%s", log);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "https://nonexistent.invalid/"), 6, "%s", log);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "http://localhost/"), 1, "%s", log);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "https://a b/"), 3, "%s", log);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "--tb-version", "rfc8471", url("localhost", "/echo")), 2, "%s",
                 log);
    cr_assert_not_null(strstr(log, "--tb-version is draft or rfc"), "%s", log);
    free(log);
    /* the RFC key names need --tb-version rfc, wherever --key-type comes */
    cr_assert_eq(RUN(&log, "-k", "--key-type", "rsa2048_pss", url("localhost", "/echo")), 2, "%s",
                 log);
    cr_assert_not_null(strstr(log, "need --tb-version rfc"), "%s", log);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "--key-type", "ecdsap256", "--tb-version", "draft",
                     url("localhost", "/echo")),
                 2, "%s", log);
    free(log);
    cr_assert_eq(
        RUN(&log, "-k", "--tb-version", "rfc", "--key-type", "p384", url("localhost", "/echo")), 2,
        "%s", log);
    cr_assert_not_null(strstr(log, "rsa2048_pkcs1.5"), "the rfc names are listed: %s", log);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "--bogus", url("localhost", "/echo")), 2);
    free(log);
    cr_assert_eq(RUN(&log, "-k"), 2);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "-H", "Bad Name: x", url("localhost", "/echo")), 2);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "-d", "@/nonexistent/file", url("localhost", "/echo")), 26);
    free(log);
    cr_assert_eq(RUN(&log, "-k", "-m", "0.5", url("localhost", "/slow?ms=5000")), 28, "%s", log);
    free(log);
}

Test(tbclient, headers_method_and_data)
{
    char *log = NULL;
    json_t *doc, *h;

    start();
    cr_assert_eq(RUN(&log, "-k", "-X", "PUT", "-H", "X-One: 1", "-H", "User-Agent: mine/2", "-H",
                     "Accept:", "-H", "X-Empty;", "-d", "a=b&c=d", "-o", path_in("h.json"),
                     url("localhost", "/echo")),
                 0, "%s", log);
    doc = load_json(path_in("h.json"));
    h = json_object_get(doc, "headers");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "method")), "PUT");
    cr_assert_eq(json_integer_value(json_object_get(doc, "body_length")), 7);
    cr_assert_str_eq(json_string_value(json_object_get(h, "x-one")), "1");
    cr_assert_str_eq(json_string_value(json_object_get(h, "user-agent")), "mine/2");
    cr_assert_str_eq(json_string_value(json_object_get(h, "x-empty")), "");
    cr_assert_null(json_object_get(h, "accept"));
    cr_assert_str_eq(json_string_value(json_object_get(h, "content-type")),
                     "application/x-www-form-urlencoded");
    json_decref(doc);
    free(log);
}

/* --- RFC 8471-8473 --------------------------------------------------------------------------- */

/* GET /echo with --tb-version rfc over proto at the world's proxy (rfc or both); the ID -v printed
 * is the one the origin got, signed over the EKM of a TLS 1.2 connection with plain ALPN ids. */
static char *echo_rfc(const char *proto, const char *key_type, const char *alpn, const char *kp)
{
    char *log = NULL, *id, *tbh, want[64];
    json_t *doc;
    int st;

    st = RUN(&log, "-v", proto, "--tb-version", "rfc", "--key-type", key_type, "--cacert", w.cert,
             "-o", path_in("rfc.json"), url("localhost", "/echo"));
    cr_assert_eq(st, 0, "exit %d: %s", st, log);
    cr_assert_not_null(strstr(log, alpn), "%s", log);
    cr_assert_null(strstr(log, "_tb_"), "no draft ALPN ids with rfc: %s", log);
    cr_assert_not_null(strstr(log, "TLSv1.2"), "%s", log);
    snprintf(want, sizeof(want), "RFC 8471 version 1.0, key parameters %s", kp);
    cr_assert_not_null(strstr(log, want), "%s", log);
    cr_assert_not_null(strstr(log, "> Sec-Token-Binding: ["), "%s", log);
    id = line_value(log, "* Token Binding provided ID: ");
    tbh = line_value(log, "* Token Binding provided tbh: ");
    cr_assert(id != NULL && tbh != NULL, "%s", log);
    doc = load_json(path_in("rfc.json"));
    cr_assert_str_eq(echo_header(doc, "sec-provided-token-binding-id"), id);
    cr_assert_null(echo_header(doc, "sec-token-binding"), "the proxy strips the header");
    cr_assert_null(echo_header(doc, "token-binding"));
    cr_assert_null(strstr(log, "PRIVATE KEY"));
    json_decref(doc);
    free(tbh);
    free(log);
    return id;
}

Test(tbclient, rfc_echo_h1)
{
    start_rfc("rfc");
    free(echo_rfc("--http1.1", "p256", "ALPN http/1.1,", "ecdsap256"));
}

Test(tbclient, rfc_echo_h2)
{
    start_rfc("rfc");
    free(echo_rfc("--http2", "ecdsap256", "ALPN h2,", "ecdsap256"));
}

/* rsa2048 is rsa2048_pss with rfc; rsa2048_pkcs1.5 on request; one RSA key per origin serves
 * both paddings and the draft too (a proxy speaking both versions). */
Test(tbclient, rfc_rsa_paddings_and_shared_key)
{
    char *pss, *pkcs, *log = NULL, key[700];

    start_rfc("both");
    pss = echo_rfc("--http2", "rsa2048", "ALPN h2,", "rsa2048_pss");
    pkcs = echo_rfc("--http1.1", "rsa2048_pkcs1.5", "ALPN http/1.1,", "rsa2048_pkcs1.5");
    cr_assert_str_neq(pss, pkcs, "the key parameters are part of the TBID");
    cr_assert_str_eq(pss + 4, pkcs + 4, "one RSA key: the same modulus and exponent");
    cr_assert_eq(RUN(&log, "-v", "-k", "--key-type", "rsa2048", "-o", path_in("d.json"),
                     url("localhost", "/echo")),
                 0, "%s", log);
    cr_assert_not_null(strstr(log, "ALPN h2_tb_rsa2048"), "draft on the same proxy: %s", log);
    cr_assert_not_null(strstr(log, ".rsa2048.pem (loaded)"), "%s", log);
    snprintf(key, sizeof(key), "%s/tb/keys/localhost:%d.rsa2048.pem", home, w.proxy_port);
    cr_assert_eq(mode_of(key), 0600);
    free(log);
    free(pss);
    free(pkcs);
}

/* An rfc offer the server does not answer: a plain connection, no ID forwarded, no key made. */
Test(tbclient, rfc_against_a_draft_proxy)
{
    char *log = NULL, keys[600];
    json_t *doc;

    start();
    cr_assert_eq(RUN(&log, "-v", "-k", "--tb-version", "rfc", "-o", path_in("n.json"),
                     url("localhost", "/echo")),
                 0, "%s", log);
    cr_assert_not_null(strstr(log, "did not answer the token_binding extension"), "%s", log);
    cr_assert_null(strstr(log, "Token Binding provided ID"), "%s", log);
    doc = load_json(path_in("n.json"));
    cr_assert_null(echo_header(doc, "sec-provided-token-binding-id"));
    cr_assert_null(echo_header(doc, "sec-token-binding"));
    json_decref(doc);
    snprintf(keys, sizeof(keys), "%s/tb", home);
    cr_assert_eq(access(keys, F_OK), -1, "no key store without Token Binding");
    free(log);
}

/* A draft redirect header does not ask an rfc client for a referred binding (RFC 8473 names it
 * Include-Referred-Token-Binding-ID); tborigin's /redirect sends the draft one. */
Test(tbclient, rfc_ignores_the_draft_redirect_header)
{
    char *log = NULL, target[1100];
    json_t *doc;

    start_rfc("rfc");
    snprintf(target, sizeof(target), "/redirect?to=%s", url("127.0.0.1", "/echo"));
    cr_assert_eq(RUN(&log, "-v", "-k", "-L", "--tb-version", "rfc", "-o", path_in("r.json"),
                     url("localhost", target)),
                 0, "%s", log);
    cr_assert_not_null(strstr(log, " 302"), "%s", log);
    cr_assert_null(strstr(log, "* Token Binding referred ID: "), "%s", log);
    doc = load_json(path_in("r.json"));
    cr_assert_not_null(echo_header(doc, "sec-provided-token-binding-id"));
    cr_assert_null(echo_header(doc, "sec-referred-token-binding-id"));
    json_decref(doc);
    free(log);
}

/*
 * Federation over rfc through the real proxy: one tborigin is both the demo IdP (--idp-key) and
 * RP (--idp-url https://127.0.0.1:PORT, the proxy under its other name: another origin for the
 * client), behind one rfc proxy whose /login and /callback routes have refer_token_binding; on
 * rfc connections the proxy adds Include-Referred-Token-Binding-ID to their redirects.
 */
static void start_rfc_federation(void)
{
    char err[TBT_PROC_ERRLEN], idp_url[64], idp_key[700], origin_l[32], conf[700], *text = NULL;
    char pem[4096];
    const char *oargs[] = {"--listen",  "127.0.0.1:0", "--idp-key", idp_key,
                           "--idp-url", idp_url,       NULL};
    const char *pargs[] = {"-c", conf, NULL};
    EVP_PKEY *k = NULL;
    int attempt, rc = -1, n, oport;

    start();
    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &k), 0);
    n = tb_key_to_pem(k, pem, sizeof(pem));
    EVP_PKEY_free(k);
    cr_assert_gt(n, 0);
    cr_assert_eq(tbt_write_file(w.dir, "idp.pem", pem, (size_t)n), 0);
    snprintf(idp_key, sizeof(idp_key), "%s/idp.pem", w.dir);
    snprintf(conf, sizeof(conf), "%s/fed.conf", w.dir);
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        tbt_proc_stop(&fedp);
        tbt_proc_stop(&fedo);
        fed_port = tbt_port_free();
        cr_assert_gt(fed_port, 0);
        snprintf(idp_url, sizeof(idp_url), "https://127.0.0.1:%d", fed_port);
        cr_assert_eq(tbt_proc_start(&fedo, tbt_world_bin(&w, "tborigin"), oargs, w.dir,
                                    "tborigin-fed", err, sizeof(err)),
                     0, "%s", err);
        oport = tbt_proc_wait_listen_line(&fedo, "tborigin listening on ",
                                          TBT_WORLD_START_TIMEOUT_MS, err, sizeof(err));
        cr_assert_gt(oport, 0, "%s", err);
        snprintf(origin_l, sizeof(origin_l), "127.0.0.1:%d", oport);
        n = asprintf(&text,
                     "workers = 2;\n"
                     "listen = ( { address = \"127.0.0.1:%d\";\n"
                     "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
                     "token_binding = { enabled = true; version = \"rfc\";\n"
                     "                  key_types = [ \"p256\", \"rsa2048\" ]; };\n"
                     "upstreams = { app = { servers = [ \"%s\" ]; connect_timeout = \"2s\"; }; };\n"
                     "routes = (\n"
                     "  { host = \"*\"; prefix = \"/login\"; upstream = \"app\";\n"
                     "    refer_token_binding = true; },\n"
                     "  { host = \"*\"; prefix = \"/callback\"; upstream = \"app\";\n"
                     "    refer_token_binding = true; },\n"
                     "  { host = \"*\"; prefix = \"/\"; upstream = \"app\"; } );\n"
                     "log = { error = \"-\"; level = \"info\"; };\n"
                     "admin = { listen = \"\"; };\n",
                     fed_port, origin_l);
        cr_assert(n > 0 && text != NULL);
        cr_assert_eq(tbt_write_file(w.dir, "fed.conf", text, (size_t)n), 0);
        free(text);
        text = NULL;
        cr_assert_eq(tbt_proc_start(&fedp, tbt_world_bin(&w, "tbproxy"), pargs, w.dir,
                                    "tbproxy-fed", err, sizeof(err)),
                     0, "%s", err);
        rc = tbt_proc_wait_port(&fedp, (uint16_t)fed_port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        if (rc != 0 && tbt_proc_alive(&fedp))
            break;
    }
    cr_assert_eq(rc, 0, "the federation proxy did not start: %s", err);
}

/* The tbh of a base64url Token Binding ID. */
static void tbh_of_b64(const char *id64, char out[TB_TBH_LEN + 1])
{
    uint8_t id[1024];
    int n = tb_base64url_decode(id64, strlen(id64), id, sizeof(id));

    cr_assert_gt(n, 0, "not base64url: %s", id64);
    cr_assert_eq(tb_tbh(id, (size_t)n, out, TB_TBH_LEN + 1), TB_TBH_LEN);
}

Test(tbclient, rfc_federation_referred_binding)
{
    char *log = NULL, *rp_id, *ref_id, want[TB_TBH_LEN + 1], buf[4096];
    const char *tok, *p, *end;
    json_t *doc, *claims;
    int n;

    start_rfc_federation();
    /* the client's rfc ID with the RP (localhost) */
    cr_assert_eq(RUN(&log, "-v", "-k", "--tb-version", "rfc", "-o", path_in("e.json"),
                     url_on(fed_port, "localhost", "/echo")),
                 0, "%s", log);
    rp_id = line_value(log, "* Token Binding provided ID: ");
    cr_assert_not_null(rp_id, "%s", log);
    free(log);
    tbh_of_b64(rp_id, want);
    /* RP /login -> IdP authorize -> RP /callback -> IdP token, each IdP request with a referred
     * binding for the RP key, asked for by the proxy's Include-Referred-Token-Binding-ID */
    cr_assert_eq(RUN(&log, "-v", "-k", "-L", "--tb-version", "rfc", "-o", path_in("token.json"),
                     url_on(fed_port, "localhost", "/login?user=alice")),
                 0, "%s", log);
    cr_assert_not_null(strstr(log, "< include-referred-token-binding-id: true"), "%s", log);
    cr_assert_null(strstr(log, "include-referer-token-binding-id"), "%s", log);
    cr_assert_not_null(strstr(log, "* Token Binding referred origin: localhost"), "%s", log);
    ref_id = line_value(log, "* Token Binding referred ID: ");
    cr_assert_not_null(ref_id, "%s", log);
    cr_assert_str_eq(ref_id, rp_id, "the referred binding is the RP key's");
    free(ref_id);
    free(log);
    /* the token is bound to the RP key: cnf.tbh is the tbh of its rfc ID */
    doc = load_json(path_in("token.json"));
    tok = json_string_value(json_object_get(doc, "access_token"));
    cr_assert_not_null(tok);
    p = strchr(tok, '.');
    end = p != NULL ? strchr(p + 1, '.') : NULL;
    cr_assert(p != NULL && end != NULL, "not a JWT: %s", tok);
    n = tb_base64url_decode(p + 1, (size_t)(end - p - 1), (uint8_t *)buf, sizeof(buf) - 1);
    cr_assert_gt(n, 0);
    claims = json_loadb(buf, (size_t)n, 0, NULL);
    cr_assert_not_null(claims);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(claims, "cnf"), "tbh")),
                     want);
    json_decref(claims);
    json_decref(doc);
    free(rp_id);
}
