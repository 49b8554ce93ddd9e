/*
 * Test support: the world of an integration test of tbproxy (see world.h for the contract).
 *
 * The certificate is made in memory (EVP_PKEY_Q_keygen, an X509 signed by its own key) and
 * written as PEM through a memory BIO, so no openssl command and no shell is involved. The
 * config file mirrors what quick mode sets up (both key types, the Token Binding version asked
 * for, one upstream, one catch-all route, the error log on stderr) so that tests may switch
 * between the two without changing what the proxy does, plus the upstream read timeout and the
 * caller's extra top-level settings. One difference: quick mode runs one worker per online core
 * (tbp_config_quick in src/proxy/config.c), while the file pins workers = 2. The admin server is
 * off unless asked for (world.h): a proxy on the default 127.0.0.1:9901 would collide with every
 * other proxy that tests run in parallel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "world.h"

#define LOG_TAIL 2048

const char *tbt_world_bin(struct tbt_world *w, const char *name)
{
    const char *dir = getenv("TB_BIN");

    snprintf(w->bin, sizeof(w->bin), "%s/%s", dir != NULL && *dir ? dir : "build/rel/bin", name);
    cr_assert_eq(access(w->bin, X_OK), 0, "%s: %s (build it, or set TB_BIN to its directory)",
                 w->bin, strerror(errno));
    return w->bin;
}

const char *tbt_world_proxy_log(const struct tbt_world *w)
{
    static char buf[LOG_TAIL];
    char *log;

    if (w->proxy.log[0] == '\0')
        return "(no proxy)";
    log = tbt_proc_log(&w->proxy, sizeof(buf) - 1);
    snprintf(buf, sizeof(buf), "%s", log != NULL ? log : "");
    free(log);
    return buf;
}

/* A self-signed certificate for key (CN localhost), valid for an hour. NULL on failure. */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name;

    if (x == NULL)
        return NULL;
    name = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || X509_set_pubkey(x, key) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 || X509_sign(x, key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes what a PEM writer puts into a memory BIO to dir/name. */
static void write_pem(struct tbt_world *w, const char *name, EVP_PKEY *key, X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;

    cr_assert_not_null(b);
    cr_assert_eq(cert != NULL ? PEM_write_bio_X509(b, cert)
                              : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL),
                 1);
    len = BIO_get_mem_data(b, &data);
    cr_assert_gt(len, 0);
    cr_assert_eq(tbt_write_file(w->dir, name, data, (size_t)len), 0, "writing %s/%s", w->dir, name);
    BIO_free(b);
}

static void make_certificate(struct tbt_world *w)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert;

    cr_assert_not_null(key);
    cert = self_signed(key);
    cr_assert_not_null(cert);
    write_pem(w, "cert.pem", NULL, cert);
    write_pem(w, "key.pem", key, NULL);
    snprintf(w->cert, sizeof(w->cert), "%s/cert.pem", w->dir);
    snprintf(w->key, sizeof(w->key), "%s/key.pem", w->dir);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void start_origin(struct tbt_world *w)
{
    char err[TBT_PROC_ERRLEN];
    const char *args[] = {"--listen", "127.0.0.1:0", NULL};

    cr_assert_eq(tbt_proc_start(&w->origin, tbt_world_bin(w, "tborigin"), args, w->dir, "tborigin",
                                err, sizeof(err)),
                 0, "%s", err);
    w->origin_port = tbt_proc_wait_listen_line(&w->origin, "tborigin listening on ",
                                               TBT_WORLD_START_TIMEOUT_MS, err, sizeof(err));
    cr_assert_gt(w->origin_port, 0, "%s", err);
}

/* The Token Binding version the proxy is to speak: opts.tb_version, "draft" by default. */
static const char *tb_version(const struct tbt_world_opts *o)
{
    return o->tb_version != NULL ? o->tb_version : "draft";
}

static void write_config(struct tbt_world *w, const struct tbt_world_opts *o, const char *admin)
{
    char *text = NULL;
    int n;

    n = asprintf(&text,
                 "# written by tests/support/world.c\n"
                 "workers = 2;\n"
                 "listen = ( { address = \"127.0.0.1:%d\";\n"
                 "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
                 "token_binding = { enabled = true; version = \"%s\";\n"
                 "                  key_types = [ \"p256\", \"rsa2048\" ]; };\n"
                 "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ];\n"
                 "                      connect_timeout = \"2s\"; read_timeout = \"%s\"; }; };\n"
                 "routes = ( { host = \"*\"; prefix = \"/\"; upstream = \"app\"; } );\n"
                 "log = { error = \"-\"; level = \"info\"; };\n"
                 "admin = { listen = \"%s\"; };\n"
                 "%s\n",
                 w->proxy_port, tb_version(o), w->origin_port,
                 o->read_timeout != NULL ? o->read_timeout : "60s", admin,
                 o->extra_config != NULL ? o->extra_config : "");
    cr_assert(n > 0 && text != NULL);
    cr_assert_eq(tbt_write_file(w->dir, "tbproxy.conf", text, (size_t)n), 0);
    free(text);
    snprintf(w->conf, sizeof(w->conf), "%s/tbproxy.conf", w->dir);
}

/*
 * Starts the proxy on a free port and waits until it accepts connections. The port is free when
 * chosen but another process may take it first: a proxy that exits before accepting is retried
 * on a new port (TBT_WORLD_START_ATTEMPTS in all); its last log is in the failure message.
 */
static void start_proxy(struct tbt_world *w, const struct tbt_world_opts *o)
{
    char err[TBT_PROC_ERRLEN], listen[64], upstream[64], admin[64] = "";
    int attempt, rc = -1;

    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", w->origin_port);
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        tbt_proc_stop(&w->proxy);
        w->proxy_port = tbt_port_free();
        cr_assert_gt(w->proxy_port, 0, "no free port: %s", strerror(errno));
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", w->proxy_port);
        w->admin_port = 0;
        if (o->admin) {
            w->admin_port = tbt_port_free();
            cr_assert_gt(w->admin_port, 0, "no free port: %s", strerror(errno));
            snprintf(admin, sizeof(admin), "127.0.0.1:%d", w->admin_port);
        }
        if (o->config_file) {
            const char *args[] = {"-c", w->conf, NULL};

            write_config(w, o, admin);
            rc = tbt_proc_start(&w->proxy, tbt_world_bin(w, "tbproxy"), args, w->dir, "tbproxy",
                                err, sizeof(err));
        } else {
            const char *args[] = {"--listen",     listen,        "--upstream", upstream,  "--cert",
                                  w->cert,        "--key",       w->key,       "--admin", admin,
                                  "--tb-version", tb_version(o), NULL};

            rc = tbt_proc_start(&w->proxy, tbt_world_bin(w, "tbproxy"), args, w->dir, "tbproxy",
                                err, sizeof(err));
        }
        cr_assert_eq(rc, 0, "%s", err);
        rc = tbt_proc_wait_port(&w->proxy, (uint16_t)w->proxy_port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        /* the listeners accept before the admin server starts: wait for it too (its port may
         * have been taken, and the proxy then exits) */
        if (rc == 0 && o->admin)
            rc = tbt_world_wait_log(&w->proxy, " admin server on ", TBT_WORLD_START_TIMEOUT_MS, err,
                                    sizeof(err));
        if (rc != 0 && tbt_proc_alive(&w->proxy))
            break; /* running but not accepting: no point in another port */
    }
    cr_assert_eq(rc, 0, "%s", err);
}

int tbt_world_wait_log(struct tbt_proc *p, const char *needle, int timeout_ms, char *err,
                       size_t errlen)
{
    long long deadline = tbt_now_ms() + timeout_ms;

    for (;;) {
        char *log = tbt_proc_log(p, 0);
        int found = log != NULL && strstr(log, needle) != NULL;

        free(log);
        if (found)
            return 0;
        if (!tbt_proc_alive(p) || tbt_now_ms() >= deadline) {
            log = tbt_proc_log(p, 1500);
            snprintf(err, errlen, "%s: no \"%s\" in its log (%s): %s", p->name, needle,
                     p->pid > 0 ? "still running" : "it exited", log != NULL ? log : "");
            free(log);
            return -1;
        }
        usleep(20 * 1000);
    }
}

void tbt_world_start(struct tbt_world *w, const struct tbt_world_opts *o)
{
    static const struct tbt_world_opts quick;

    if (o == NULL)
        o = &quick;
    cr_assert_eq(tbt_tempdir("tbproxy-test", w->dir, sizeof(w->dir)), 0, "mkdtemp: %s",
                 strerror(errno));
    make_certificate(w);
    if (o->origin_down) {
        w->origin_port = tbt_port_closed(&w->closed_fd);
        cr_assert_gt(w->origin_port, 0);
        w->closed_fd_open = 1;
    } else {
        start_origin(w);
    }
    start_proxy(w, o);
}

void tbt_world_check_log(const struct tbt_proc *p)
{
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:"};
    char *log;
    size_t i;

    if (p->log[0] == '\0' || (log = tbt_proc_log(p, 0)) == NULL)
        return;
    for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        const char *hit = strstr(log, marks[i]);

        cr_expect_null(hit, "%s reported: %.3000s", p->name, hit);
    }
    free(log);
}

void tbt_world_teardown(struct tbt_world *w)
{
    tbt_proc_stop(&w->proxy);
    tbt_proc_stop(&w->origin);
    tbt_proc_kill_all();
    tbt_world_check_log(&w->proxy);
    tbt_world_check_log(&w->origin);
    if (w->closed_fd_open)
        close(w->closed_fd);
    if (w->dir[0] != '\0' && getenv("TBT_KEEP") == NULL)
        tbt_rmdir_all(w->dir);
    memset(w, 0, sizeof(*w));
}

int tbt_world_run(struct tbt_world *w, const char *prog, const char *const *args, const char *name,
                  int timeout_ms, char **log)
{
    char err[TBT_PROC_ERRLEN];
    struct tbt_proc p;
    int st;

    cr_assert_eq(tbt_proc_start(&p, prog, args, w->dir, name, err, sizeof(err)), 0, "%s", err);
    st = tbt_proc_wait_exit(&p, timeout_ms);
    if (st == -1)
        tbt_proc_stop(&p);
    if (log != NULL)
        *log = tbt_proc_log(&p, 0);
    return st;
}

long tbt_world_peak_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

void tbt_world_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    int i;

    cr_assert_eq(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}
