/*
 * The daemon's command line (see cli.h): a small hand-written parser rather than getopt, which
 * keeps global state and prints on its own; this one is reentrant, so tests can call it
 * repeatedly, and every message goes to the caller's buffer for main to print with the usage
 * hint. Options are a table; short ones cluster ("-tc FILE"), long ones take "--opt VALUE" or
 * "--opt=VALUE", "--" ends them.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <libconfig.h>
#include <llhttp.h>
#include <microhttpd.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>

#include "tb/error.h"
#include "tb/tb.h"

enum cli_opt {
    OPT_CONFIG,
    OPT_TEST,
    OPT_LISTEN,
    OPT_UPSTREAM,
    OPT_CERT,
    OPT_KEY,
    OPT_ADMIN,
    OPT_PID_FILE,
    OPT_CLIENT_CERT,
    OPT_CLIENT_CA,
    OPT_CLIENT_CRL,
    OPT_TB_VERSION,
    OPT_HELP,
    OPT_VERSION,
    OPT_N
};

static const struct {
    char short_name;
    const char *long_name;
    int has_arg;         /* 1: takes a value; 2: a value that may be empty */
    const char *display; /* how messages name it */
} cli_opts[OPT_N] = {
    [OPT_CONFIG] = {'c', "config", 1, "-c"},
    [OPT_TEST] = {'t', "test", 0, "-t"},
    [OPT_LISTEN] = {0, "listen", 1, "--listen"},
    [OPT_UPSTREAM] = {0, "upstream", 1, "--upstream"},
    [OPT_CERT] = {0, "cert", 1, "--cert"},
    [OPT_KEY] = {0, "key", 1, "--key"},
    [OPT_ADMIN] = {0, "admin", 2, "--admin"},
    [OPT_PID_FILE] = {0, "pid-file", 1, "--pid-file"},
    [OPT_HELP] = {'h', "help", 0, "-h"},
    [OPT_VERSION] = {'v', "version", 0, "-v"},
    [OPT_CLIENT_CERT] = {0, "client-cert", 1, "--client-cert"},
    [OPT_CLIENT_CA] = {0, "client-ca", 1, "--client-ca"},
    [OPT_CLIENT_CRL] = {0, "client-crl", 1, "--client-crl"},
    [OPT_TB_VERSION] = {0, "tb-version", 1, "--tb-version"},
};

struct cli_state {
    const char *val[OPT_N];
    int seen[OPT_N];
    char *err; /* the caller's buffer: what fits, NUL-terminated when errlen > 0 */
    size_t errlen, len;
};

/* Appends to the message. */
__attribute__((format(printf, 2, 0))) static void cli_vappend(struct cli_state *st, const char *fmt,
                                                              va_list ap)
{
    size_t room = st->len < st->errlen ? st->errlen - st->len : 0;
    int n = vsnprintf(room ? st->err + st->len : NULL, room, fmt, ap);

    if (n > 0)
        st->len += (size_t)n;
}

__attribute__((format(printf, 2, 3))) static void cli_append(struct cli_state *st, const char *fmt,
                                                             ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_vappend(st, fmt, ap);
    va_end(ap);
}

/* Replaces the message; returns TB_EINVAL. */
__attribute__((format(printf, 2, 3))) static int cli_fail(struct cli_state *st, const char *fmt,
                                                          ...)
{
    va_list ap;

    st->len = 0;
    va_start(ap, fmt);
    cli_vappend(st, fmt, ap);
    va_end(ap);
    return TB_EINVAL;
}

static int cli_set(struct cli_state *st, int opt, const char *val)
{
    if (st->seen[opt])
        return cli_fail(st, "%s given twice", cli_opts[opt].display);
    if (cli_opts[opt].has_arg == 1 && val[0] == '\0')
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
    if (st->seen[OPT_ADMIN] && n_quick == 0)
        return cli_fail(st, "--admin is for quick mode; with -c, set admin.listen in the file");
    for (k = OPT_CLIENT_CERT; k <= OPT_CLIENT_CRL; k++)
        if (st->seen[k] && n_quick == 0)
            return cli_fail(st,
                            "%s is for quick mode; with -c, set the listener's "
                            "tls.client_certificate, client_ca and client_crl in the file",
                            cli_opts[k].display);
    if (st->seen[OPT_TB_VERSION] && n_quick == 0)
        return cli_fail(st, "--tb-version is for quick mode; with -c, set token_binding.version "
                            "(or a listener's token_binding_version) in the file");
    if (n_quick > 0 && n_quick < 4) {
        cli_fail(st, "quick mode needs --listen, --upstream, --cert and --key (missing:");
        for (k = 0; k < 4; k++)
            if (!st->seen[quick[k]])
                cli_append(st, " %s", cli_opts[quick[k]].display);
        cli_append(st, ")");
        return TB_EINVAL;
    }
    out->action = st->seen[OPT_TEST] ? TBP_CLI_CHECK : TBP_CLI_RUN;
    out->config = st->val[OPT_CONFIG];
    out->listen = st->val[OPT_LISTEN];
    out->upstream = st->val[OPT_UPSTREAM];
    out->cert = st->val[OPT_CERT];
    out->key = st->val[OPT_KEY];
    out->admin = st->val[OPT_ADMIN];
    out->pid_file = st->val[OPT_PID_FILE];
    out->client_cert = st->val[OPT_CLIENT_CERT];
    out->client_ca = st->val[OPT_CLIENT_CA];
    out->client_crl = st->val[OPT_CLIENT_CRL];
    out->tb_version = st->val[OPT_TB_VERSION];
    return 0;
}

int tbp_cli_parse(int argc, char **argv, struct tbp_cli *out, char *err, size_t errlen)
{
    struct cli_state st = {.err = err, .errlen = err != NULL ? errlen : 0};
    int i, ret, options_done = 0;

    if (st.errlen > 0)
        err[0] = '\0';

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
    int ret;

    if (cli->config != NULL)
        return tbp_config_load(cli->config, out, err, errlen);
    ret = tbp_config_quick(cli->listen, cli->upstream, cli->cert, cli->key, out, err, errlen);
    if (ret < 0)
        return ret;
    ret = tbp_config_quick_admin(*out, cli->admin != NULL ? cli->admin : TBP_DEF_ADMIN_LISTEN, err,
                                 errlen);
    if (ret == 0 && (cli->client_cert != NULL || cli->client_ca != NULL || cli->client_crl != NULL))
        ret = tbp_config_quick_client_cert(*out, cli->client_cert, cli->client_ca, cli->client_crl,
                                           err, errlen);
    if (ret == 0 && cli->tb_version != NULL)
        ret = tbp_config_quick_tb_version(*out, cli->tb_version, err, errlen);
    if (ret < 0) {
        tbp_config_free(*out);
        *out = NULL;
    }
    return ret;
}

void tbp_cli_usage(FILE *f, const char *prog)
{
    const char *p = prog != NULL ? prog : "tbproxy";

    fprintf(f,
            "usage: %s -c FILE [-t] [--pid-file PATH]\n"
            "       %s --listen ADDR --upstream ADDR --cert FILE --key FILE [--admin ADDR] [-t]\n"
            "          [--client-cert MODE --client-ca FILE [--client-crl FILE]]\n"
            "          [--tb-version draft|rfc|both] [--pid-file PATH]\n"
            "       %s -h | -v\n"
            "\n"
            "A TLS reverse proxy that negotiates and verifies Token Binding (the 2014 drafts and\n"
            "RFC 8471-8473).\n"
            "\n"
            "  -c, --config FILE   configuration file (libconfig; reference: conf/README.md)\n"
            "  -t, --test          load and check the configuration, report, exit\n"
            "      --listen ADDR   quick mode: listen on ADDR (127.0.0.1:8443, [::1]:8443)\n"
            "      --upstream ADDR quick mode: forward to the origin at ADDR (127.0.0.1:8080)\n"
            "      --cert FILE     quick mode: certificate chain (PEM, leaf first)\n"
            "      --key FILE      quick mode: private key (PEM)\n"
            "      --admin ADDR    quick mode: the admin server's address "
            "(default " TBP_DEF_ADMIN_LISTEN ";\n"
            "                      \"\" for none)\n"
            "      --client-cert MODE\n"
            "                      quick mode: client certificates: off (default), optional\n"
            "                      (verified and reported to the origin) or required (no\n"
            "                      handshake without one that verifies); needs --client-ca\n"
            "      --client-ca FILE\n"
            "                      quick mode: the CA certificates (PEM) they are verified with\n"
            "      --client-crl FILE\n"
            "                      quick mode: CRLs (PEM) checked for them\n"
            "      --tb-version V  quick mode: the Token Binding version: draft (default: ALPN\n"
            "                      ids, Token-Binding), rfc (RFC 8471-8473: TLS extension 24,\n"
            "                      Sec-Token-Binding) or both\n"
            "      --pid-file PATH write the process id there once listening; removed at exit\n"
            "  -h, --help          this text\n"
            "  -v, --version       print the version and the libraries' versions\n"
            "\n"
            "Quick mode needs all four of its options and no -c: one listener, one origin, Token\n"
            "Binding on (draft unless --tb-version; p256, rsa2048), session tickets on, every\n"
            "other option at its default.\n"
            "Signals: TERM, QUIT graceful stop (in-flight requests finish, up to\n"
            "timeouts.shutdown); INT fast stop; HUP reload; USR1 reopen the log files.\n"
            "Exit status: 0 ok, 1 bad configuration or failure, 2 bad usage.\n",
            p, p, p);
}

void tbp_cli_version(FILE *f)
{
    const nghttp2_info *ng = nghttp2_version(0);

    fprintf(f, "tbproxy %s\n", TBP_VERSION);
    fprintf(f, "  libtb %s\n", TB_VERSION_STRING);
    fprintf(f, "  %s\n", OpenSSL_version(OPENSSL_VERSION));
    fprintf(f, "  nghttp2 %s\n", ng != NULL ? ng->version_str : "(unknown)");
    fprintf(f, "  libmicrohttpd %s\n", MHD_get_version());
    fprintf(f, "  libconfig %d.%d.%d\n", LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
            LIBCONFIG_VER_REVISION);
    fprintf(f, "  jansson %s\n", jansson_version_str());
    /* jwt.h has no version macro or call: the API the code is written for */
    fprintf(f, "  libjwt 1.10 API\n");
    fprintf(f, "  llhttp %d.%d.%d\n", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
            LLHTTP_VERSION_PATCH);
    /* sd-daemon.h has no version either; sd_notify is the one call used */
    fprintf(f, "  libsystemd (sd_notify)\n");
}
