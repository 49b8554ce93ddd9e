/*
 * tbbench: an HTTP/1.1 and HTTP/2 load generator that signs Token Binding.
 *
 *   tbbench [-c CONNS] [-m STREAMS] [-d DURATION] [-n REQUESTS [--hold]] [-t THREADS]
 *           [--http1.1|--http2] [--new-conn] [--idle] [--ramp D] [--no-tb] [--rate R]
 *           [--tb-version draft|rfc] [--key-type
 * p256|rsa2048|ecdsap256|rsa2048_pss|rsa2048_pkcs1.5]
 *           [--timeout D] [--tls-max 1.2|1.3] [--ciphers LIST] [-H 'Name: value']... [--json] URL
 *
 * Design. One worker thread per core (at most one per connection), each an epoll loop over
 * non-blocking sockets and non-blocking OpenSSL (tbbench_conn.c), HTTP/1.1 through the proxy's
 * own response parser and HTTP/2 through nghttp2 client sessions (tbbench_proto.c). With Token
 * Binding (the default for https URLs) every connection offers the draft ALPN ids
 * ("h2_tb_p256", "http/1.1_tb_p256", ...) before the plain ones, with Extended Master Secret
 * and TLS 1.2 at most (tls_unique does not exist in 1.3), and after the handshake signs a fresh
 * Token-Binding header over its own tls_unique with its worker's key; the header is reused for
 * every request on that connection. With --tb-version rfc (RFC 8471-8473) the ALPN ids are the
 * plain ones and each connection offers the token_binding TLS extension instead (version 1.0,
 * the --key-type's key parameters; libtb's tb/tlsext.h), and signs Sec-Token-Binding over its
 * EKM. Keys are generated before the clock starts. Sessions are
 * never resumed: with --new-conn every request pays a full handshake (and the server a full TB
 * verify).
 *
 * This file: the command line, the URL, the TLS context, starting and joining the workers, and
 * the report (text, or one JSON object with --json). Figures are summed over the workers; rates
 * divide by the measured run time. Latency comes from an HDR-style histogram per worker
 * (tbbench_hist.h), merged.
 *
 * Exit status: 0 when the run completed at least one request with a status below 400, 1 when
 * none did or the run could not start, 2 for bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>

#include "tbbench.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

static const char *const err_names[TBB_ERR_COUNT] = {
    "connect", "tls", "tb", "status_4xx", "status_5xx", "protocol", "io", "timeout",
};

const char *tbb_err_kind_to_str(enum tbb_err_kind k)
{
    return (unsigned)k < TBB_ERR_COUNT ? err_names[k] : "unknown";
}

void tbb_stats_init(struct tbb_stats *s)
{
    memset(s, 0, sizeof(*s));
    tbb_hist_init(&s->latency);
    tbb_hist_init(&s->connect);
}

void tbb_stats_merge(struct tbb_stats *d, const struct tbb_stats *s)
{
    size_t i, j;

    d->responses += s->responses;
    for (i = 0; i < 6; i++)
        d->status[i] += s->status[i];
    d->handshakes += s->handshakes;
    d->tb_signed += s->tb_signed;
    d->bytes_in += s->bytes_in;
    d->bytes_out += s->bytes_out;
    for (i = 0; i < TBB_ERR_COUNT; i++) {
        d->errors[i] += s->errors[i];
        if (d->first_err[i][0] == '\0')
            memcpy(d->first_err[i], s->first_err[i], sizeof(d->first_err[i]));
    }
    d->abandoned += s->abandoned;
    d->unsent += s->unsent;
    d->open_at_end += s->open_at_end;
    if (s->stop_ns > d->stop_ns)
        d->stop_ns = s->stop_ns;
    tbb_hist_merge(&d->latency, &s->latency);
    tbb_hist_merge(&d->connect, &s->connect);
    for (i = 0; i < s->n_alpn; i++) {
        for (j = 0; j < d->n_alpn && strcmp(d->alpn_name[j], s->alpn_name[i]) != 0; j++)
            ;
        if (j == d->n_alpn) {
            if (d->n_alpn == TBB_ALPN_NAMES)
                continue;
            memcpy(d->alpn_name[j], s->alpn_name[i], sizeof(d->alpn_name[j]));
            d->n_alpn++;
        }
        d->alpn_count[j] += s->alpn_count[i];
    }
}

/* --- command line --------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tbbench [options] URL\n"
            "\n"
            "Loads an HTTPS (or HTTP) server with HTTP/1.1 or HTTP/2 requests, signing a Token\n"
            "Binding per connection (draft: over tls_unique; rfc: over the EKM).\n"
            "\n"
            "  -c, --connections N  connections (with --new-conn: at once)          [10]\n"
            "  -m, --max-streams N  HTTP/2 requests in flight per connection        [1]\n"
            "  -d, --duration D     run time: 10, 10s, 500ms, 2m    [10s; with -n: 1h]\n"
            "  -n, --requests N     end the run after N complete responses\n"
            "      --hold           with -n: then send no more requests but hold the connections\n"
            "                       open until SIGINT/SIGTERM or -d (says \"tbbench: holding\")\n"
            "  -t, --threads N      worker threads            [cores, at most -c]\n"
            "      --http1.1        HTTP/1.1 only (one request in flight per connection)\n"
            "      --http2          HTTP/2 only                    [default: ALPN decides]\n"
            "      --new-conn       a new TLS connection (full handshake) per request\n"
            "      --idle           one request per connection, then hold it open, idle\n"
            "      --ramp D         open the connections over D (not all at once)      [0]\n"
            "      --no-tb          plain client: no Token Binding ALPN ids, no header\n"
            "      --rate R         open loop: R requests/s in total (latency from due time)\n"
            "      --tb-version V   draft (TB ALPN ids, Token-Binding) | rfc (RFC 8471-8473:\n"
            "                       token_binding TLS extension, Sec-Token-Binding)   [draft]\n"
            "      --key-type K     p256 | rsa2048; with rfc also ecdsap256 |\n"
            "                       rsa2048_pss (= rsa2048) | rsa2048_pkcs1.5          [p256]\n"
            "      --timeout D      connect+handshake, and each response            [10s]\n"
            "      --tls-max V      1.2 | 1.3 (Token Binding forces 1.2)\n"
            "      --ciphers LIST   TLS 1.2 cipher list (OpenSSL syntax)\n"
            "  -H, --header 'N: V'  extra request header (up to %d)\n"
            "      --json           print one JSON object instead of the text report\n"
            "  -h, --help           this text\n"
            "  -V, --version        print the version\n"
            "\n"
            "Exit status: 0 if at least one request succeeded (status < 400), 1 if none did or\n"
            "the run could not start, 2 for bad usage.\n",
            TBB_MAX_HEADERS);
}

/* A duration: a number of seconds, or with a unit (ms, s, m). Returns seconds, or -1. */
static double parse_duration(const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !(v >= 0) || !isfinite(v))
        return -1;
    if (strcmp(end, "ms") == 0)
        v /= 1000;
    else if (strcmp(end, "m") == 0)
        v *= 60;
    else if (*end != '\0' && strcmp(end, "s") != 0)
        return -1;
    return v;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int add_header(struct tbb_opts *o, const char *arg, char *err, size_t errlen)
{
    const char *colon = strchr(arg, ':');
    struct tbb_header *h;
    size_t n, i;

    if (o->n_headers == TBB_MAX_HEADERS || colon == NULL || colon == arg ||
        strpbrk(arg, "\r\n") != NULL) {
        snprintf(err, errlen, "bad or too many -H: %s", arg);
        return -1;
    }
    h = &o->headers[o->n_headers];
    n = (size_t)(colon - arg);
    h->name = strndup(arg, n);
    h->lower = strndup(arg, n);
    colon++;
    while (*colon == ' ' || *colon == '\t')
        colon++;
    h->value = strdup(colon);
    if (h->name == NULL || h->lower == NULL || h->value == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++)
        h->lower[i] =
            (char)(h->lower[i] >= 'A' && h->lower[i] <= 'Z' ? h->lower[i] + 32 : h->lower[i]);
    o->n_headers++;
    return 0;
}

/* Copies src[0..n) into dst (cap bytes) NUL-terminated; -1 if it does not fit. */
static int copy_part(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Splits the URL into scheme, host, port, authority and path (no resolution). */
static int parse_url(struct tbb_opts *o, const char *url, char *err, size_t errlen)
{
    const char *rest, *auth_end, *hp, *path_end;
    size_t alen;

    if (strncmp(url, "https://", 8) == 0) {
        o->use_tls = 1;
        rest = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else {
        snprintf(err, errlen, "URL must start with https:// or http://: %s", url);
        return -1;
    }
    alen = strcspn(rest, "/?#");
    auth_end = rest + alen;
    if (alen == 0 || memchr(rest, '@', alen) != NULL ||
        copy_part(o->authority, sizeof(o->authority), rest, alen) != 0)
        goto Bad;
    if (rest[0] == '[') {
        hp = memchr(rest, ']', alen);
        if (hp == NULL || copy_part(o->host, sizeof(o->host), rest + 1, (size_t)(hp - rest - 1)))
            goto Bad;
        hp++;
        if (hp < auth_end && *hp != ':')
            goto Bad;
    } else {
        hp = memchr(rest, ':', alen);
        if (hp == NULL)
            hp = auth_end;
        if (copy_part(o->host, sizeof(o->host), rest, (size_t)(hp - rest)) != 0)
            goto Bad;
    }
    if (hp < auth_end) {
        if (copy_part(o->port, sizeof(o->port), hp + 1, (size_t)(auth_end - hp - 1)) != 0 ||
            o->port[0] == '\0' || strspn(o->port, "0123456789") != strlen(o->port))
            goto Bad;
    } else {
        snprintf(o->port, sizeof(o->port), "%s", o->use_tls ? "443" : "80");
    }
    path_end = auth_end + strcspn(auth_end, "#");
    if (*auth_end == '/' || *auth_end == '\0' || *auth_end == '#') {
        if (auth_end == path_end)
            snprintf(o->path, sizeof(o->path), "/");
        else if (copy_part(o->path, sizeof(o->path), auth_end, (size_t)(path_end - auth_end)))
            goto Bad;
    } else if (snprintf(o->path, sizeof(o->path), "/%.*s", (int)(path_end - auth_end), auth_end) >=
               (int)sizeof(o->path)) {
        goto Bad;
    }
    if (o->host[0] == '\0' || strpbrk(o->path, " \t\r\n") != NULL)
        goto Bad;
    return 0;
Bad:
    snprintf(err, errlen, "bad URL: %s", url);
    return -1;
}

static int resolve(struct tbb_opts *o, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    unsigned char tmp[sizeof(struct in6_addr)];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(o->host, o->port, &hints, &res)) != 0 || res == NULL) {
        snprintf(err, errlen, "%s:%s: %s", o->host, o->port, gai_strerror(rc));
        return -1;
    }
    memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
    o->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    o->sni = inet_pton(AF_INET, o->host, tmp) != 1 && inet_pton(AF_INET6, o->host, tmp) != 1;
    return 0;
}

enum {
    OPT_HTTP1 = 256,
    OPT_HTTP2,
    OPT_NEW_CONN,
    OPT_NO_TB,
    OPT_RATE,
    OPT_KEY_TYPE,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_TLS_MAX,
    OPT_CIPHERS,
    OPT_IDLE,
    OPT_RAMP,
    OPT_HOLD,
    OPT_TB_VERSION,
};

static const struct option long_opts[] = {
    {"connections", required_argument, NULL, 'c'},
    {"max-streams", required_argument, NULL, 'm'},
    {"duration", required_argument, NULL, 'd'},
    {"requests", required_argument, NULL, 'n'},
    {"threads", required_argument, NULL, 't'},
    {"header", required_argument, NULL, 'H'},
    {"http1.1", no_argument, NULL, OPT_HTTP1},
    {"http2", no_argument, NULL, OPT_HTTP2},
    {"new-conn", no_argument, NULL, OPT_NEW_CONN},
    {"idle", no_argument, NULL, OPT_IDLE},
    {"ramp", required_argument, NULL, OPT_RAMP},
    {"hold", no_argument, NULL, OPT_HOLD},
    {"no-tb", no_argument, NULL, OPT_NO_TB},
    {"rate", required_argument, NULL, OPT_RATE},
    {"key-type", required_argument, NULL, OPT_KEY_TYPE},
    {"tb-version", required_argument, NULL, OPT_TB_VERSION},
    {"json", no_argument, NULL, OPT_JSON},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"tls-max", required_argument, NULL, OPT_TLS_MAX},
    {"ciphers", required_argument, NULL, OPT_CIPHERS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int bad(char *err, size_t errlen, const char *opt, const char *arg)
{
    snprintf(err, errlen, "bad %s: %s", opt, arg);
    return -1;
}

/* One option. Returns 0, 1 for "exit 0 now" (help, version), -1 with err on bad usage. */
static int parse_opt(struct tbb_opts *o, int c, const char *arg, char *err, size_t errlen)
{
    double v;

    switch (c) {
    case 'c':
        return parse_uint(arg, 1, TBB_MAX_CONNS, &o->conns) == 0 ? 0 : bad(err, errlen, "-c", arg);
    case 'm':
        return parse_uint(arg, 1, TBB_MAX_STREAMS, &o->streams) == 0 ? 0
                                                                     : bad(err, errlen, "-m", arg);
    case 't':
        return parse_uint(arg, 1, 1024, &o->threads) == 0 ? 0 : bad(err, errlen, "-t", arg);
    case 'd':
        o->duration = parse_duration(arg);
        o->duration_set = 1;
        return o->duration > 0 ? 0 : bad(err, errlen, "-d", arg);
    case 'n':
        if (parse_u64(arg, &o->max_requests) != 0 || o->max_requests == 0)
            return bad(err, errlen, "-n", arg);
        return 0;
    case 'H':
        return add_header(o, arg, err, errlen);
    case OPT_HTTP1:
        o->proto = TBB_PROTO_H1;
        return 0;
    case OPT_HTTP2:
        o->proto = TBB_PROTO_H2;
        return 0;
    case OPT_NEW_CONN:
        o->new_conn = 1;
        return 0;
    case OPT_IDLE:
        o->idle = 1;
        return 0;
    case OPT_HOLD:
        o->hold = 1;
        return 0;
    case OPT_RAMP:
        o->ramp = parse_duration(arg);
        return o->ramp >= 0 && o->ramp <= 3600 ? 0 : bad(err, errlen, "--ramp", arg);
    case OPT_NO_TB:
        o->tb = 0;
        return 0;
    case OPT_RATE:
        v = parse_duration(arg); /* a plain non-negative number */
        if (v <= 0 || strpbrk(arg, "sm") != NULL)
            return bad(err, errlen, "--rate", arg);
        o->rate = v;
        return 0;
    case OPT_KEY_TYPE:
        o->key_type = arg; /* its meaning depends on --tb-version, which may come later */
        return 0;
    case OPT_TB_VERSION:
        if ((v = tb_version_parse(arg)) < 0)
            return bad(err, errlen, "--tb-version (draft or rfc)", arg);
        o->tb_version = (enum tb_version)v;
        return 0;
    case OPT_JSON:
        o->json = 1;
        return 0;
    case OPT_TIMEOUT:
        v = parse_duration(arg);
        if (v <= 0 || v > 3600)
            return bad(err, errlen, "--timeout", arg);
        o->timeout_ms = (unsigned)ceil(v * 1000);
        return 0;
    case OPT_TLS_MAX:
        if (strcmp(arg, "1.2") != 0 && strcmp(arg, "1.3") != 0)
            return bad(err, errlen, "--tls-max (1.2 or 1.3)", arg);
        o->tls_max = arg[2] == '2' ? TLS1_2_VERSION : TLS1_3_VERSION;
        return 0;
    case OPT_CIPHERS:
        o->ciphers = arg;
        return 0;
    case 'h':
        usage(stdout);
        return 1;
    case 'V':
        printf("tbbench %s (libtb %s, %s, nghttp2 %s)\n", TBB_VERSION, TB_VERSION_STRING,
               OpenSSL_version(OPENSSL_VERSION), nghttp2_version(0)->version_str);
        return 1;
    default:
        snprintf(err, errlen, "unknown option");
        return -1;
    }
}

/* --key-type for --tb-version (tokbind.h's names), and what the version needs per connection. */
static int set_key_type(struct tbb_opts *o, char *err, size_t errlen)
{
    const char *name = o->key_type != NULL ? o->key_type : "p256";
    int kp = tbc_tb_key_type(o->tb_version, name);

    if (kp < 0) {
        snprintf(err, errlen, "bad --key-type: %s (%s)", name,
                 o->tb_version == TB_VERSION_RFC
                     ? "p256, rsa2048, ecdsap256, rsa2048_pss or rsa2048_pkcs1.5"
                     : "p256 or rsa2048; the RFC names need --tb-version rfc");
        return -1;
    }
    o->key_params = kp;
    /* draft keeps its own names in the report; rfc shows the RFC name of what is offered */
    o->key_name = o->tb_version == TB_VERSION_RFC ? tbc_tb_key_name(TB_VERSION_RFC, kp) : name;
    tbc_tb_offer(kp, &o->tb_offer);
    o->tb_field = tbc_tb_header_name(o->tb_version);
    o->tb_field_lower = o->tb_version == TB_VERSION_RFC ? "sec-token-binding" : "token-binding";
    return 0;
}

static int parse_args(int argc, char **argv, struct tbb_opts *o, char *err, size_t errlen)
{
    long cores;
    int c, rc;

    o->conns = 10;
    o->streams = 1;
    o->duration = 10;
    o->timeout_ms = 10000;
    o->tb = 1;
    o->tb_version = TB_VERSION_DRAFT;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:m:d:n:t:H:hV", long_opts, NULL)) != -1) {
        if (c == '?') {
            snprintf(err, errlen, "unknown option or missing argument: %s", argv[optind - 1]);
            return -1;
        }
        if ((rc = parse_opt(o, c, optarg, err, errlen)) != 0)
            return rc;
    }
    if (optind != argc - 1) {
        snprintf(err, errlen, "one URL expected");
        return -1;
    }
    o->url = argv[optind];
    if (parse_url(o, o->url, err, errlen) != 0 || set_key_type(o, err, errlen) != 0)
        return -1;
    if (!o->use_tls)
        o->tb = 0; /* Token Binding lives in TLS */
    if (o->tb && o->tls_max == TLS1_3_VERSION) {
        snprintf(err, errlen, "Token Binding needs TLS 1.2: --tls-max 1.3 needs --no-tb");
        return -1;
    }
    if (o->idle && (o->new_conn || o->rate > 0)) {
        snprintf(err, errlen, "--idle goes with neither --new-conn nor --rate");
        return -1;
    }
    if (o->hold && (o->max_requests == 0 || o->idle || o->new_conn || o->rate > 0)) {
        snprintf(err, errlen,
                 "--hold needs -n and goes with neither --idle, --new-conn nor --rate");
        return -1;
    }
    if (o->max_requests > 0 && !o->duration_set)
        o->duration = 3600; /* -n decides; the duration is only a safety net */
    if (o->proto == TBB_PROTO_H1 || o->new_conn || o->idle)
        o->streams = 1; /* one request in flight per connection */
    if (o->threads == 0) {
        cores = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = cores > 0 ? (unsigned)cores : 1;
    }
    if (o->threads > o->conns)
        o->threads = o->conns;
    if (o->max_requests > 0 && o->threads > o->max_requests)
        o->threads = (unsigned)o->max_requests; /* every worker has a share of -n */
    return 0;
}

/* --- TLS ------------------------------------------------------------------------------------ */

/* The ALPN offer in wire format: draft Token Binding ids first (unless --no-tb or rfc), then
 * plain ones. */
static size_t alpn_offer(const struct tbb_opts *o, unsigned char *out, size_t cap)
{
    const char *ids[4];
    char tb_h2[32], tb_h1[32];
    size_t n = 0, len = 0, i, l;

    int draft_tb = o->tb && o->tb_version == TB_VERSION_DRAFT; /* rfc: the extension */

    snprintf(tb_h2, sizeof(tb_h2), "h2_tb_%s", o->key_name);
    snprintf(tb_h1, sizeof(tb_h1), "http/1.1_tb_%s", o->key_name);
    if (draft_tb && o->proto != TBB_PROTO_H1)
        ids[n++] = tb_h2;
    if (draft_tb && o->proto != TBB_PROTO_H2)
        ids[n++] = tb_h1;
    if (o->proto != TBB_PROTO_H1)
        ids[n++] = "h2";
    if (o->proto != TBB_PROTO_H2)
        ids[n++] = "http/1.1";
    for (i = 0; i < n; i++) {
        l = strlen(ids[i]);
        if (len + 1 + l > cap)
            break;
        out[len++] = (unsigned char)l;
        memcpy(out + len, ids[i], l);
        len += l;
    }
    return len;
}

static SSL_CTX *make_ctx(const struct tbb_opts *o, char *err, size_t errlen)
{
    unsigned char alpn[128];
    size_t alpn_len = alpn_offer(o, alpn, sizeof(alpn));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int max = o->tb ? TLS1_2_VERSION : o->tls_max;

    if (ctx == NULL)
        goto Fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (max != 0)
        SSL_CTX_set_max_proto_version(ctx, max);
    /* no resumption, ever: every connection is a full handshake */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* a load generator, like h2load and wrk */
    if (o->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1)
        goto Fail;
    if (SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned)alpn_len) != 0)
        goto Fail;
    if (o->tb && o->tb_version == TB_VERSION_RFC && tb_ext_client_ctx_init(ctx) != 0)
        goto Fail;
    return ctx;
Fail:
    snprintf(err, errlen, "TLS context: %s",
             ERR_peek_last_error() ? ERR_error_string(ERR_peek_last_error(), NULL) : "failed");
    SSL_CTX_free(ctx);
    return NULL;
}

/* --- report --------------------------------------------------------------------------------- */

/* "123us", "1.23ms", "1.23s" for a nanosecond count. */
static const char *fmt_ns(uint64_t ns, char *buf, size_t cap)
{
    if (ns < 1000000)
        snprintf(buf, cap, "%.0fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.2fms", (double)ns / 1e6);
    else
        snprintf(buf, cap, "%.2fs", (double)ns / 1e9);
    return buf;
}

static const char *fmt_bytes(double b, char *buf, size_t cap)
{
    if (b >= 1e9)
        snprintf(buf, cap, "%.2f GB", b / 1e9);
    else if (b >= 1e6)
        snprintf(buf, cap, "%.2f MB", b / 1e6);
    else if (b >= 1e3)
        snprintf(buf, cap, "%.2f kB", b / 1e3);
    else
        snprintf(buf, cap, "%.0f B", b);
    return buf;
}

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99.9"};

static void print_hist(const char *label, const struct tbb_hist *h)
{
    char b[6][32];
    size_t i;

    if (h->count == 0) {
        printf("%-12s (no samples)\n", label);
        return;
    }
    printf("%-12s", label);
    for (i = 0; i < 4; i++)
        printf(" %s %s,", pct_names[i],
               fmt_ns(tbb_hist_percentile(h, pcts[i]), b[i], sizeof(b[i])));
    printf(" max %s, mean %s (%llu samples)\n", fmt_ns(h->max, b[4], sizeof(b[4])),
           fmt_ns((uint64_t)tbb_hist_mean(h), b[5], sizeof(b[5])), (unsigned long long)h->count);
}

static uint64_t ok_requests(const struct tbb_stats *s)
{
    return s->responses - s->status[4] - s->status[5];
}

static uint64_t total_errors(const struct tbb_stats *s)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < TBB_ERR_COUNT; i++)
        n += s->errors[i];
    return n;
}

static const char *proto_name(const struct tbb_opts *o)
{
    return o->proto == TBB_PROTO_H1 ? "http/1.1" : o->proto == TBB_PROTO_H2 ? "h2" : "alpn";
}

static void report_text(const struct tbb_opts *o, const struct tbb_stats *s, double secs)
{
    char b1[32], b2[32], b3[32], b4[32];
    size_t i;

    printf("tbbench %s: %s\n", TBB_VERSION, o->url);
    printf("  %.2f s, %u thread%s, %u connection%s%s, %s, %u stream%s per connection, %s%s%s%s%s",
           secs, o->threads, o->threads == 1 ? "" : "s", o->conns, o->conns == 1 ? "" : "s",
           o->new_conn ? " (new connection per request)" : " (keep-alive)", proto_name(o),
           o->streams, o->streams == 1 ? "" : "s", o->tb ? "Token Binding " : "no Token Binding",
           o->tb ? tb_version_name(o->tb_version) : "", o->tb ? " " : "", o->tb ? o->key_name : "",
           o->rate > 0 ? "" : "\n");
    if (o->rate > 0)
        printf(", rate %.0f/s\n", o->rate);
    printf("  ALPN:");
    for (i = 0; i < s->n_alpn; i++)
        printf(" %s %llu", s->alpn_name[i], (unsigned long long)s->alpn_count[i]);
    printf("%s\n", s->n_alpn ? "" : " (no connection)");
    printf("requests:    %llu ok, %.1f/s (responses %llu: 1xx %llu, 2xx %llu, 3xx %llu, 4xx %llu, "
           "5xx %llu)\n",
           (unsigned long long)ok_requests(s), (double)ok_requests(s) / secs,
           (unsigned long long)s->responses, (unsigned long long)s->status[1],
           (unsigned long long)s->status[2], (unsigned long long)s->status[3],
           (unsigned long long)s->status[4], (unsigned long long)s->status[5]);
    printf("handshakes:  %llu, %.1f/s; Token-Binding signatures %llu\n",
           (unsigned long long)s->handshakes, (double)s->handshakes / secs,
           (unsigned long long)s->tb_signed);
    printf("traffic:     in %s (%s/s), out %s (%s/s), after TLS\n",
           fmt_bytes((double)s->bytes_in, b1, sizeof(b1)),
           fmt_bytes((double)s->bytes_in / secs, b2, sizeof(b2)),
           fmt_bytes((double)s->bytes_out, b3, sizeof(b3)),
           fmt_bytes((double)s->bytes_out / secs, b4, sizeof(b4)));
    printf("errors:      %llu (", (unsigned long long)total_errors(s));
    for (i = 0; i < TBB_ERR_COUNT; i++)
        printf("%s%s %llu", i ? ", " : "", err_names[i], (unsigned long long)s->errors[i]);
    printf(")\n");
    print_hist("latency:", &s->latency);
    print_hist("connect:", &s->connect);
    printf("at the end:  %llu connections open, %llu in flight (abandoned), %llu due but not "
           "sent\n",
           (unsigned long long)s->open_at_end, (unsigned long long)s->abandoned,
           (unsigned long long)s->unsent);
    for (i = 0; i < TBB_ERR_COUNT; i++) {
        if (s->errors[i] > 0 && s->first_err[i][0] != '\0')
            printf("first %s error: %s\n", err_names[i], s->first_err[i]);
    }
}

static json_t *hist_json(const struct tbb_hist *h)
{
    json_t *j = json_object();
    size_t i;

    json_object_set_new(j, "samples", json_integer((json_int_t)h->count));
    json_object_set_new(j, "min", json_real(h->count ? (double)h->min / 1e3 : 0));
    json_object_set_new(j, "mean", json_real(tbb_hist_mean(h) / 1e3));
    for (i = 0; i < 4; i++)
        json_object_set_new(j, pct_names[i],
                            json_real((double)tbb_hist_percentile(h, pcts[i]) / 1e3));
    json_object_set_new(j, "max", json_real((double)h->max / 1e3));
    return j;
}

static int report_json(const struct tbb_opts *o, const struct tbb_stats *s, double secs)
{
    json_t *j = json_object(), *e = json_object(), *st = json_object(), *a = json_object();
    static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    char *text;
    size_t i;

    json_object_set_new(j, "url", json_string(o->url));
    json_object_set_new(j, "protocol", json_string(proto_name(o)));
    json_object_set_new(j, "token_binding", json_boolean(o->tb));
    json_object_set_new(j, "key_type", o->tb ? json_string(o->key_name) : json_null());
    json_object_set_new(j, "tb_version",
                        o->tb ? json_string(tb_version_name(o->tb_version)) : json_null());
    json_object_set_new(j, "new_conn", json_boolean(o->new_conn));
    json_object_set_new(j, "threads", json_integer(o->threads));
    json_object_set_new(j, "connections", json_integer(o->conns));
    json_object_set_new(j, "streams", json_integer(o->streams));
    json_object_set_new(j, "rate", o->rate > 0 ? json_real(o->rate) : json_null());
    json_object_set_new(j, "duration_s", json_real(secs));
    json_object_set_new(j, "requests", json_integer((json_int_t)ok_requests(s)));
    json_object_set_new(j, "requests_per_s", json_real((double)ok_requests(s) / secs));
    json_object_set_new(j, "responses", json_integer((json_int_t)s->responses));
    for (i = 0; i < 6; i++)
        json_object_set_new(st, classes[i], json_integer((json_int_t)s->status[i]));
    json_object_set_new(j, "status", st);
    json_object_set_new(j, "handshakes", json_integer((json_int_t)s->handshakes));
    json_object_set_new(j, "handshakes_per_s", json_real((double)s->handshakes / secs));
    json_object_set_new(j, "tb_signatures", json_integer((json_int_t)s->tb_signed));
    for (i = 0; i < s->n_alpn; i++)
        json_object_set_new(a, s->alpn_name[i], json_integer((json_int_t)s->alpn_count[i]));
    json_object_set_new(j, "alpn", a);
    json_object_set_new(j, "bytes_in", json_integer((json_int_t)s->bytes_in));
    json_object_set_new(j, "bytes_out", json_integer((json_int_t)s->bytes_out));
    json_object_set_new(j, "bytes_in_per_s", json_real((double)s->bytes_in / secs));
    json_object_set_new(j, "bytes_out_per_s", json_real((double)s->bytes_out / secs));
    json_object_set_new(e, "total", json_integer((json_int_t)total_errors(s)));
    for (i = 0; i < TBB_ERR_COUNT; i++)
        json_object_set_new(e, err_names[i], json_integer((json_int_t)s->errors[i]));
    json_object_set_new(j, "errors", e);
    json_object_set_new(j, "abandoned", json_integer((json_int_t)s->abandoned));
    json_object_set_new(j, "unsent", json_integer((json_int_t)s->unsent));
    json_object_set_new(j, "open_at_end", json_integer((json_int_t)s->open_at_end));
    json_object_set_new(j, "idle", json_boolean(o->idle));
    json_object_set_new(j, "hold", json_boolean(o->hold));
    json_object_set_new(j, "max_requests",
                        o->max_requests > 0 ? json_integer((json_int_t)o->max_requests)
                                            : json_null());
    json_object_set_new(j, "latency_us", hist_json(&s->latency));
    json_object_set_new(j, "connect_us", hist_json(&s->connect));
    e = json_object();
    for (i = 0; i < TBB_ERR_COUNT; i++) {
        if (s->first_err[i][0] != '\0')
            json_object_set_new(e, err_names[i], json_string(s->first_err[i]));
    }
    json_object_set_new(j, "first_errors", e);
    text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (text == NULL)
        return -1;
    printf("%s\n", text);
    free(text);
    return 0;
}

/* --- the run -------------------------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    tbb_interrupted = 1;
}

static void setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Starts the workers, waits for the run, merges their figures into *total. 0 or -1. */
static int run(const struct tbb_opts *o, SSL_CTX *ctx, struct tbb_stats *total, char *err,
               size_t errlen)
{
    struct tbb_worker *ws = calloc(o->threads, sizeof(*ws));
    struct tbb_thread_arg *args = calloc(o->threads, sizeof(*args));
    struct tbb_run r = {.o = o, .ctx = ctx};
    unsigned i, n_slots;
    int ret = -1;

    if (ws == NULL || args == NULL) {
        snprintf(err, errlen, "out of memory");
        goto Exit;
    }
    for (i = 0; i < o->threads; i++) {
        n_slots = o->conns / o->threads + (i < o->conns % o->threads);
        if (tbb_worker_init(&ws[i], o, ctx, i, n_slots, o->rate * n_slots / o->conns, err,
                            errlen) != 0)
            goto Exit;
        ws[i].max_responses = o->max_requests / o->threads + (i < o->max_requests % o->threads);
    }
    if (pthread_barrier_init(&r.start, NULL, o->threads + 1) != 0) {
        snprintf(err, errlen, "pthread_barrier_init failed");
        goto Exit;
    }
    for (i = 0; i < o->threads; i++) {
        args[i].run = &r;
        args[i].w = &ws[i];
        if (pthread_create(&ws[i].thread, NULL, tbb_worker_main, &args[i]) != 0) {
            fprintf(stderr, "tbbench: cannot start thread %u\n", i);
            exit(EXIT_FAILED); /* the others wait on the barrier: nothing to unwind */
        }
    }
    r.t0_ns = tbb_now_ns();
    pthread_barrier_wait(&r.start);
    for (i = 0; i < o->threads; i++)
        pthread_join(ws[i].thread, NULL);
    pthread_barrier_destroy(&r.start);
    tbb_stats_init(total);
    for (i = 0; i < o->threads; i++)
        tbb_stats_merge(total, &ws[i].stats);
    if (total->stop_ns <= r.t0_ns)
        total->stop_ns = tbb_now_ns();
    total->stop_ns -= r.t0_ns; /* now the run's length */
    ret = 0;
Exit:
    for (i = 0; ws != NULL && i < o->threads; i++)
        tbb_worker_dispose(&ws[i]);
    free(ws);
    free(args);
    return ret;
}

static void free_opts(struct tbb_opts *o)
{
    size_t i;

    for (i = 0; i < o->n_headers; i++) {
        free(o->headers[i].name);
        free(o->headers[i].lower);
        free(o->headers[i].value);
    }
    o->n_headers = 0;
}

int main(int argc, char **argv)
{
    static struct tbb_opts o;
    static struct tbb_stats total;
    char err[512];
    SSL_CTX *ctx = NULL;
    double secs;
    int rc, ret = EXIT_FAILED;

    if ((rc = parse_args(argc, argv, &o, err, sizeof(err))) != 0) {
        if (rc > 0) {
            free_opts(&o);
            return 0;
        }
        fprintf(stderr, "tbbench: %s (tbbench --help for usage)\n", err);
        free_opts(&o);
        return EXIT_USAGE;
    }
    setup_signals();
    if (resolve(&o, err, sizeof(err)) != 0 ||
        (o.use_tls && (ctx = make_ctx(&o, err, sizeof(err))) == NULL) ||
        run(&o, ctx, &total, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbbench: %s\n", err);
        goto Exit;
    }
    secs = (double)total.stop_ns / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    if (o.json) {
        if (report_json(&o, &total, secs) != 0) {
            fprintf(stderr, "tbbench: cannot write the JSON report\n");
            goto Exit;
        }
    } else {
        report_text(&o, &total, secs);
    }
    fflush(stdout);
    ret = ok_requests(&total) > 0 ? 0 : EXIT_FAILED;
Exit:
    SSL_CTX_free(ctx);
    free_opts(&o);
    return ret;
}
