/*
 * tbclient: a curl-like HTTPS client that speaks Token Binding (the 2014 drafts, or RFC
 * 8471-8473 with --tb-version rfc), for people.
 *
 *   tbclient [options] URL
 *
 * The transfer itself (connections, Token Binding, cookies, redirects) is src/client/fetch.c;
 * this file is the command line: options into a struct tbc_fetch_opts, the response into
 * stdout or -o FILE (heads too with -i), the cookie jar read before and written after, errors
 * as curl prints and numbers them. See usage() for the options, README for examples.
 *
 * Exit status: 0 ok (whatever the HTTP status, unless --fail), 2 bad usage, else curl's code
 * for the failure (6 resolve, 7 connect, 22 HTTP >= 400 with --fail, 28 timeout, 35 TLS
 * handshake, 47 redirects, 58 key store, 60 certificate, ...; errors.h has the list).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cookiejar.h"
#include "errors.h"
#include "fetch.h"
#include "request.h"
#include "tb/message.h"
#include "tb/tb.h"

#define EXIT_USAGE 2
#define FORM_TYPE "application/x-www-form-urlencoded"

/* Long options without a short form. */
enum {
    OPT_DATA_BINARY = 256,
    OPT_CACERT,
    OPT_TB_VERSION,
    OPT_KEY_TYPE,
    OPT_NO_TB,
    OPT_KEY,
    OPT_MAX_REDIRS,
    OPT_HTTP11,
    OPT_HTTP2,
    OPT_CONNECT_TIMEOUT,
};

struct cli {
    struct tbc_fetch_opts fo;
    struct tbc_headers headers, removed;
    struct tbc_body body;
    int have_body, body_fd;
    const char *output;     /* -o; NULL or "-": stdout */
    const char *cookie_in;  /* -b FILE */
    const char *cookie_out; /* -c FILE */
    struct tbc_jar jar;
    int include, fail, silent;
    const char *key_type; /* --key-type, resolved once --tb-version is known */
};

/* Where the response goes. */
struct out {
    const char *path; /* NULL: stdout */
    int fd;           /* -1 until opened */
    int include, fail;
    int failed_status; /* the status --fail stopped on */
};

static int usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "tbclient: %s\n", why);
    fprintf(
        stderr,
        "usage: tbclient [options] https://HOST[:PORT]/PATH\n"
        "  -X, --request METHOD      request method (default GET, POST with data)\n"
        "  -H, --header 'N: V'       add a field (repeatable); 'N:' drops a default, 'N;' sends "
        "it empty\n"
        "  -d, --data DATA|@FILE     request body, sent as is (newlines kept, unlike curl -d),\n"
        "      --data-binary ...     streamed from FILE (@- is stdin), with Content-Type\n"
        "                            " FORM_TYPE " unless -H gives one\n"
        "  -o, --output FILE         write the body to FILE instead of stdout\n"
        "  -i, --include             write the response head(s) before the body\n"
        "  -I, --head                HEAD request, the head written (-X HEAD -i)\n"
        "  -v, --verbose             TLS, Token Binding and the heads on stderr\n"
        "  -s, --silent              no error messages\n"
        "  -f, --fail                exit 22 (and write nothing) on HTTP status >= 400\n"
        "  -L, --location            follow redirects (--max-redirs N, default 10)\n"
        "  -b, --cookie FILE|'N=V'   read cookies from a Netscape cookie file, or send N=V\n"
        "  -c, --cookie-jar FILE     write the cookies to FILE at the end (mode 0600)\n"
        "  -k, --insecure            do not verify the server's certificate and name\n"
        "      --cacert FILE         trust the CA certificates in FILE (PEM)\n"
        "      --http1.1 | --http2   HTTP/1.1 only | HTTP/2 only (default: the server picks)\n"
        "      --no-tb               do not offer Token Binding\n"
        "      --tb-version draft|rfc  Token Binding version (default draft): draft offers the\n"
        "                            TB ALPN ids and signs Token-Binding over tls_unique; rfc\n"
        "                            (RFC 8471-8473) offers the token_binding TLS extension\n"
        "                            (version 1.0) and signs Sec-Token-Binding over the EKM\n"
        "      --key-type TYPE       Token Binding key type (default p256): p256 | rsa2048;\n"
        "                            with rfc also ecdsap256 | rsa2048_pss (= rsa2048) |\n"
        "                            rsa2048_pkcs1.5 (one RSA key per origin serves both)\n"
        "      --key FILE            this key for every origin (made if missing) instead of\n"
        "                            ~/.tbclient/keys/HOST:PORT.KEYTYPE.pem ($TBCLIENT_HOME)\n"
        "  -A, --user-agent UA       User-Agent (default " TBC_USER_AGENT ")\n"
        "  -m, --max-time SECONDS    limit for the whole transfer\n"
        "      --connect-timeout SECONDS  limit for TCP connect and TLS handshake (default 30)\n"
        "  -h, --help | -V, --version\n");
    return EXIT_USAGE;
}

/* --- options --------------------------------------------------------------------------------- */

/* -H value: "Name: value", "Name:" (remove), "Name;" (empty value). */
static int add_header(struct cli *c, const char *arg)
{
    size_t n = strcspn(arg, ":;");
    const char *v;

    if (arg[n] == '\0' || n == 0)
        return usage("-H wants 'Name: value'");
    v = arg + n + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!tbc_header_valid(arg, n, v, strlen(v)))
        return usage("-H: bad field name or a CR/LF in the value");
    if (arg[n] == ';') {
        if (*v != '\0')
            return usage("-H 'Name;' takes no value");
        return tbc_headers_add(&c->headers, arg, n, "", 0) == 0 ? 0 : EXIT_USAGE;
    }
    if (*v == '\0')
        return tbc_headers_add(&c->removed, arg, n, "", 0) == 0 ? 0 : EXIT_USAGE;
    return tbc_headers_add(&c->headers, arg, n, v, strlen(v)) == 0 ? 0 : EXIT_USAGE;
}

/* -d / --data-binary: literal text or @FILE (opened here, streamed later). */
static int set_data(struct cli *c, const char *arg)
{
    if (c->have_body)
        return usage("one -d / --data-binary only");
    c->have_body = 1;
    if (arg[0] != '@') {
        tbc_body_mem(&c->body, arg, strlen(arg));
        return 0;
    }
    c->body_fd = strcmp(arg + 1, "-") == 0 ? 0 : open(arg + 1, O_RDONLY | O_CLOEXEC);
    if (c->body_fd == -1 || tbc_body_fd(&c->body, c->body_fd) != 0) {
        fprintf(stderr, "tbclient: (26) cannot read %s: %s\n", arg + 1, strerror(errno));
        return tbc_exit_code(TBC_EREAD);
    }
    return 0;
}

/* SECONDS (decimals allowed) as milliseconds. */
static int seconds_ms(const char *arg, long long *ms)
{
    char *end;
    double s;

    errno = 0;
    s = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(s > 0) || s > 86400.0 * 365)
        return usage("a time wants SECONDS > 0");
    *ms = (long long)(s * 1000.0 + 0.5);
    return 0;
}

static int set_tb_option(struct cli *c, int opt, const char *arg)
{
    int v;

    if (opt == OPT_TB_VERSION) {
        if ((v = tb_version_parse(arg)) < 0)
            return usage("--tb-version is draft or rfc");
        c->fo.tb_version = (enum tb_version)v;
    } else if (opt == OPT_KEY_TYPE) {
        c->key_type = arg; /* its meaning depends on --tb-version, which may come later */
    } else if (opt == OPT_NO_TB) {
        c->fo.tb = 0;
    } else if (opt == OPT_KEY) {
        c->fo.key_file = arg;
    }
    return 0;
}

/* --key-type for the version: default p256; the rfc names only with --tb-version rfc. */
static int set_key_type(struct cli *c)
{
    int kp = tbc_tb_key_type(c->fo.tb_version, c->key_type != NULL ? c->key_type : "p256");

    if (kp >= 0) {
        c->fo.key_params = kp;
        return 0;
    }
    if (c->fo.tb_version == TB_VERSION_DRAFT && tbc_tb_key_type(TB_VERSION_RFC, c->key_type) >= 0)
        return usage("--key-type: ecdsap256, rsa2048_pss and rsa2048_pkcs1.5 need "
                     "--tb-version rfc (draft: p256 or rsa2048)");
    return usage(c->fo.tb_version == TB_VERSION_RFC
                     ? "--key-type is p256, rsa2048, ecdsap256, rsa2048_pss or rsa2048_pkcs1.5"
                     : "--key-type is p256 or rsa2048");
}

static const struct option long_opts[] = {
    {"request", required_argument, NULL, 'X'},
    {"header", required_argument, NULL, 'H'},
    {"data", required_argument, NULL, 'd'},
    {"data-binary", required_argument, NULL, OPT_DATA_BINARY},
    {"output", required_argument, NULL, 'o'},
    {"include", no_argument, NULL, 'i'},
    {"head", no_argument, NULL, 'I'},
    {"verbose", no_argument, NULL, 'v'},
    {"silent", no_argument, NULL, 's'},
    {"fail", no_argument, NULL, 'f'},
    {"location", no_argument, NULL, 'L'},
    {"max-redirs", required_argument, NULL, OPT_MAX_REDIRS},
    {"cookie", required_argument, NULL, 'b'},
    {"cookie-jar", required_argument, NULL, 'c'},
    {"insecure", no_argument, NULL, 'k'},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"http1.1", no_argument, NULL, OPT_HTTP11},
    {"http2", no_argument, NULL, OPT_HTTP2},
    {"no-tb", no_argument, NULL, OPT_NO_TB},
    {"tb-version", required_argument, NULL, OPT_TB_VERSION},
    {"key-type", required_argument, NULL, OPT_KEY_TYPE},
    {"key", required_argument, NULL, OPT_KEY},
    {"user-agent", required_argument, NULL, 'A'},
    {"max-time", required_argument, NULL, 'm'},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* An option without argument. 1 if opt is one (and was applied), else 0. */
// clang-format off
static int set_flag(struct cli *c, int opt)
{
    switch (opt) {
    case 'i': c->include = 1; break;
    case 'I': c->fo.method = "HEAD"; c->include = 1; break;
    case 'v': c->fo.verbose = stderr; break;
    case 's': c->silent = 1; break;
    case 'f': c->fail = 1; break;
    case 'L': c->fo.follow = 1; break;
    case 'k': c->fo.tls.insecure = 1; break;
    case OPT_HTTP11: c->fo.proto = TBC_PROTO_H1; break;
    case OPT_HTTP2: c->fo.proto = TBC_PROTO_H2; break;
    default: return 0;
    }
    return 1;
}

/* One option. 0 or an exit status. */
static int set_option(struct cli *c, int opt, const char *arg)
{
    char *end;
    long v;

    if (set_flag(c, opt))
        return 0;
    switch (opt) {
    case 'X':
        c->fo.method = arg;
        return tbc_header_valid(arg, strlen(arg), "", 0) ? 0 : usage("-X wants a method token");
    case 'H': return add_header(c, arg);
    case 'd': /* fall through: -d does not strip newlines here (see usage) */
    case OPT_DATA_BINARY: return set_data(c, arg);
    case 'o': c->output = strcmp(arg, "-") == 0 ? NULL : arg; return 0;
    case 'A': c->fo.user_agent = arg; return 0;
    case OPT_CACERT: c->fo.tls.cafile = arg; return 0;
    case 'm': return seconds_ms(arg, &c->fo.max_time_ms);
    case OPT_CONNECT_TIMEOUT: return seconds_ms(arg, &c->fo.connect_timeout_ms);
    case 'c': c->cookie_out = arg; return 0;
    case 'b':
        if (strchr(arg, '=') != NULL)
            return tbc_headers_add_str(&c->headers, "Cookie", arg) == 0 ? 0 : EXIT_USAGE;
        c->cookie_in = arg;
        return 0;
    case OPT_MAX_REDIRS:
        errno = 0;
        v = strtol(arg, &end, 10);
        if (errno != 0 || *end != '\0' || end == arg || v < 0 || v > 1000)
            return usage("--max-redirs wants 0..1000");
        c->fo.max_redirs = (int)v;
        return 0;
    default: return set_tb_option(c, opt, arg);
    }
}
// clang-format on

/* Parses argv into c. 0, or an exit status (-1: exit 0 after --help / --version). */
static int parse_args(struct cli *c, int argc, char **argv)
{
    int opt, rc;

    c->fo.tb = 1;
    c->fo.tb_version = TB_VERSION_DRAFT;
    c->fo.key_params = TB_KP_ECDSAP256;
    c->fo.max_redirs = TBC_DEFAULT_MAX_REDIRS;
    c->fo.connect_timeout_ms = 30000;
    c->fo.msg = stderr;
    c->body_fd = -1;
    while ((opt = getopt_long(argc, argv, "X:H:d:o:iIvsfLb:c:kA:m:hV", long_opts, NULL)) != -1) {
        if (opt == '?')
            return usage(NULL);
        if (opt == 'h') {
            usage(NULL);
            return -1;
        }
        if (opt == 'V') {
            printf("tbclient " TB_VERSION_STRING " (Token Binding draft and RFC 8471-8473; %s)\n",
                   OpenSSL_version(OPENSSL_VERSION));
            return -1;
        }
        if ((rc = set_option(c, opt, optarg)) != 0)
            return rc;
    }
    if (optind != argc - 1)
        return usage(optind == argc ? "no URL" : "one URL only");
    c->fo.url = argv[optind];
    return set_key_type(c);
}

/* --- output ---------------------------------------------------------------------------------- */

static int out_write(struct out *o, const char *p, size_t n)
{
    if (o->fd == -1) {
        o->fd = o->path == NULL ? 1 : open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (o->fd == -1)
            return TBC_EWRITE;
    }
    while (n > 0) {
        ssize_t w = write(o->fd, p, n);

        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return TBC_EWRITE;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int on_head(void *ctx, const struct tbc_response *r, int final)
{
    struct out *o = ctx;
    size_t i;
    char line[512];
    int rc = 0, n;

    if (final && o->fail && r->status >= 400) {
        o->failed_status = r->status;
        return TBC_EHTTP;
    }
    if (!o->include)
        return 0;
    if (r->version == 20)
        n = snprintf(line, sizeof(line), "HTTP/2 %d\r\n", r->status);
    else
        n = snprintf(line, sizeof(line), "HTTP/%d.%d %d %.400s\r\n", r->version / 10,
                     r->version % 10, r->status, r->reason);
    rc = out_write(o, line, (size_t)n);
    for (i = 0; rc == 0 && i < r->headers->n; i++) {
        const struct tbc_header *h = &r->headers->h[i];

        if ((rc = out_write(o, h->name, strlen(h->name))) == 0 &&
            (rc = out_write(o, ": ", 2)) == 0 &&
            (rc = out_write(o, h->value, strlen(h->value))) == 0)
            rc = out_write(o, "\r\n", 2);
    }
    return rc == 0 ? out_write(o, "\r\n", 2) : rc;
}

static int on_body(void *ctx, const char *p, size_t n)
{
    return out_write(ctx, p, n);
}

/* --- main ------------------------------------------------------------------------------------ */

/* Runs the transfer with the jar and the output; returns the TBC_E* result. */
static int transfer(struct cli *c, struct out *o, struct tbc_fetch_result *res)
{
    int rc;

    if (c->cookie_in != NULL || c->cookie_out != NULL)
        c->fo.jar = &c->jar;
    if (c->cookie_in != NULL && (rc = tbc_jar_load(&c->jar, c->cookie_in, time(NULL))) < 0) {
        snprintf(res->err, sizeof(res->err), "cannot read the cookie file %s", c->cookie_in);
        return rc;
    }
    c->fo.headers = &c->headers;
    c->fo.removed = &c->removed;
    c->fo.body = c->have_body ? &c->body : NULL;
    c->fo.content_type = c->have_body ? FORM_TYPE : NULL;
    c->fo.cb.on_head = on_head;
    c->fo.cb.on_body = on_body;
    c->fo.ctx = o;
    rc = tbc_fetch(&c->fo, res);
    if (rc == 0 && o->fd == -1 && o->path != NULL && (rc = out_write(o, "", 0)) != 0)
        snprintf(res->err, sizeof(res->err), "cannot create %s", o->path);
    if (c->cookie_out != NULL && tbc_jar_save(&c->jar, c->cookie_out, time(NULL)) != 0) {
        if (!c->silent)
            fprintf(stderr, "tbclient: cannot write the cookie jar %s\n", c->cookie_out);
        if (rc == 0)
            rc = TBC_EWRITE;
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct cli c;
    struct out o = {.fd = -1};
    struct tbc_fetch_result *res = calloc(1, sizeof(*res));
    int rc;

    memset(&c, 0, sizeof(c));
    tbc_jar_init(&c.jar);
    signal(SIGPIPE, SIG_IGN);
    if (res == NULL)
        return tbc_exit_code(TBC_ENOMEM);
    rc = parse_args(&c, argc, argv);
    if (rc == 0) {
        o.path = c.output;
        o.include = c.include;
        o.fail = c.fail;
        if (c.silent)
            c.fo.msg = NULL;
        rc = transfer(&c, &o, res);
        if (rc == TBC_EHTTP)
            snprintf(res->err, sizeof(res->err), "the requested URL returned error: %d",
                     o.failed_status);
        else if (rc == TBC_EWRITE && res->err[0] == '\0')
            snprintf(res->err, sizeof(res->err), "failed writing the output%s%s: %s",
                     o.path ? " to " : "", o.path ? o.path : "", strerror(errno));
        if (rc != 0 && !c.silent)
            fprintf(stderr, "tbclient: (%d) %s\n", tbc_exit_code(rc),
                    res->err[0] ? res->err : tbc_strerror(rc));
        rc = tbc_exit_code(rc);
    } else if (rc < 0) {
        rc = 0;
    }
    if (o.fd > 2)
        close(o.fd);
    if (c.body_fd > 2)
        close(c.body_fd);
    tbc_headers_dispose(&c.headers);
    tbc_headers_dispose(&c.removed);
    tbc_jar_dispose(&c.jar);
    free(res);
    return rc;
}
