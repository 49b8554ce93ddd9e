/*
 * tborigin: the demo origin behind tbproxy, on libmicrohttpd.
 *
 *   tborigin [--listen HOST:PORT] [--delay-ms N] [--exit-with-stdin]
 *            [--idp-key FILE [--idp-issuer URL] [--idp-audience AUD] [--idp-code-ttl N]]
 *            [--idp-url URL]
 *
 * It shows what the proxy forwarded and gives the tests an origin that misbehaves on request:
 *
 *   /echo          any method: JSON {"method", "version", "path", "query", "headers",
 *                  "body_length", "body_sha256"} of the request as received
 *   /              a small HTML page with the forwarded binding: Sec-Provided- and
 *                  Sec-Referred-Token-Binding-ID (or "none") and the tbh of each
 *   /bytes/N       N bytes, chunked; byte i is 'a' + i % 26
 *   /status/N      an empty-ish response with status N (200..599)
 *   /slow?ms=N     answers 200 after N ms (N <= 600000)
 *   /redirect?to=U[&status=N]
 *                  N (301, 302, 303, 307 or 308; default 302) to U with
 *                  `Include-Referer-Token-Binding-ID: true`
 *   /cookies/set?NAME=VALUE[&...]
 *                  200 "ok" with one `Set-Cookie: NAME=VALUE; Path=/; HttpOnly` per query
 *                  parameter, in order (400 if a name is not an RFC 6265 token or a value has
 *                  other than cookie-octets: no CTLs, spaces, '"', ',', ';' or '\')
 *   /healthz       200 "ok"
 *   /api/...       what /echo answers, for any path under /api/ (the demo's JWT-protected API)
 *   /idp/authorize, /idp/token
 *                  the identity provider of the federation demo (tborigin/fed.c), with --idp-key
 *   /login, /callback
 *                  the relying party's side of it, with --idp-url (the IdP as clients see it)
 *   anything else  404
 *
 * In /echo, "path" and "query" are the request-target as received, split at the first '?', not
 * percent-decoded ("query" is null when there is no '?'); header names are lower-cased, values are
 * as received; a name that came more than once maps to an array of its values in order. Header
 * bytes that are not UTF-8 are read as Latin-1. Every request body (on every path) is read as it
 * arrives and dropped; /echo hashes it on the way, so uploads of any size run in bounded memory.
 * --delay-ms N holds every response N ms (a slow origin for 504 tests).
 *
 * Threads: libmicrohttpd's thread per connection, so /slow and --delay-ms hold only their own
 * connection. That is fine for a demo and test origin; the proxy itself never blocks a worker.
 * The handler state is one struct request per request, made by the URI-log callback (which also
 * gives the raw request-target) and freed by the request-completed callback.
 *
 * Startup and shutdown: the listening socket is bound here (so port 0 works and the real port is
 * known), then handed to the daemon. One line "tborigin listening on HOST:PORT" on stdout means it
 * is accepting. SIGINT or SIGTERM (or, with --exit-with-stdin, end of file on stdin: test
 * harnesses use it so the origin dies with them) stops the daemon and exits 0. Bad usage exits 2;
 * a failure to start (an unusable --listen address included) exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#include "tb/base64url.h"
#include "tb/tbh.h"
#include "tborigin/fed.h"

#define EXIT_START_FAILED 1
#define EXIT_USAGE 2

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define MAX_DELAY_MS 600000u            /* --delay-ms and /slow?ms= are capped at 10 minutes */
#define SLEEP_SLICE_MS 10               /* sleeps wake this often to notice shutdown */
#define CONNECTION_TIMEOUT_S 300u       /* idle connections (the proxy's pool) closed after this */
#define CONNECTION_LIMIT 4096u          /* one thread each */
#define CONNECTION_MEMORY (256u * 1024) /* per-connection pool: request line and headers */
#define BYTES_BLOCK (64u * 1024)        /* /bytes/N is produced in blocks of at most this */
#define MAX_ID_CHARS 16384              /* longer Sec-*-Token-Binding-ID values are not decoded */
#define MAX_PAGE (256u * 1024)          /* cap on the HTML page */
#define MAX_SET_COOKIES 64              /* /cookies/set: at most this many parameters */
#define MAX_SET_COOKIE_LEN 4096         /* one Set-Cookie value, attributes included */

/* Where a request goes; decided once from the raw path. */
enum route {
    ROUTE_NOT_FOUND, /* no such path: 404 */
    ROUTE_ECHO,      /* /echo: JSON of the request */
    ROUTE_INDEX,     /* /: the binding page */
    ROUTE_BYTES,     /* /bytes/N: streamed download */
    ROUTE_STATUS,    /* /status/N: that status */
    ROUTE_SLOW,      /* /slow?ms=N: wait, then 200 */
    ROUTE_REDIRECT,  /* /redirect?to=URL: 302 */
    ROUTE_HEALTHZ,   /* /healthz: 200 */
    ROUTE_COOKIES,   /* /cookies/set?N=V: Set-Cookie each */
    ROUTE_FED,       /* /idp/..., /login, /callback: tborigin/fed.c */
};

/* One request. Made by uri_logged() (or the handler), freed by request_completed(). */
struct request {
    char *target;           /* the request-target as received, NUL-terminated; owned */
    size_t path_len;        /* bytes of target before the first '?' */
    int started;            /* the handler has seen the headers */
    enum route route;       /* set when started */
    enum tbo_fed_route fed; /* ROUTE_FED: which one */
    uint64_t number;        /* N of /bytes/N and /status/N */
    EVP_MD_CTX *md;         /* /echo: running SHA-256 of the body; NULL otherwise */
    uint64_t body_len;
};

struct options {
    const char *listen;
    unsigned delay_ms;
    int exit_with_stdin;
    struct tbo_fed_options fed;
};

static struct options opt = {.listen = DEFAULT_LISTEN};
static atomic_int stopping;
static int stop_pipe[2] = {-1, -1}; /* written by the stop signals and --exit-with-stdin */
/* The /bytes pattern, long enough to copy a whole block from any phase of the alphabet. */
static char pattern[26 * (BYTES_BLOCK / 26 + 2)];

static int usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "tborigin: %s\n", why);
    fprintf(stderr,
            "usage: tborigin [--listen HOST:PORT] [--delay-ms N] [--exit-with-stdin]\n"
            "                [--idp-key FILE [--idp-issuer URL] [--idp-audience AUD]]\n"
            "                [--idp-url URL]\n"
            "  --listen HOST:PORT  address to listen on (default " DEFAULT_LISTEN
            "; port 0 picks a free one;\n"
            "                      IPv6 as [::1]:PORT)\n"
            "  --delay-ms N        hold every response N ms (default 0)\n"
            "  --exit-with-stdin   also exit when stdin reaches end of file\n"
            "  --idp-key FILE      be the demo identity provider (/idp/authorize,\n"
            "                      /idp/token), signing ES256 with this P-256 key (PEM)\n"
            "  --idp-issuer URL    the tokens' \"iss\" (default: this origin as requested)\n"
            "  --idp-audience AUD  the tokens' \"aud\" (default: the redirect_uri's origin)\n"
            "  --idp-code-ttl N    authorization codes expire after N seconds (default 300)\n"
            "  --idp-url URL       be the demo relying party (/login, /callback) of the\n"
            "                      identity provider at URL, as clients reach it\n");
    return EXIT_USAGE;
}

/* Parses a decimal number of at most max into *out. Returns 0, or -1 if s is not one. */
static int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || d > max || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv)
{
    uint64_t v;
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--listen") == 0 && i + 1 < argc) {
            opt.listen = argv[++i];
        } else if (strcmp(a, "--delay-ms") == 0 && i + 1 < argc) {
            if (parse_u64(argv[i + 1], strlen(argv[i + 1]), MAX_DELAY_MS, &v) != 0)
                return usage("--delay-ms: a number of milliseconds up to 600000");
            opt.delay_ms = (unsigned)v;
            i++;
        } else if (strcmp(a, "--exit-with-stdin") == 0) {
            opt.exit_with_stdin = 1;
        } else if (strcmp(a, "--idp-key") == 0 && i + 1 < argc) {
            opt.fed.idp_key = argv[++i];
        } else if (strcmp(a, "--idp-issuer") == 0 && i + 1 < argc) {
            opt.fed.idp_issuer = argv[++i];
        } else if (strcmp(a, "--idp-audience") == 0 && i + 1 < argc) {
            opt.fed.idp_audience = argv[++i];
        } else if (strcmp(a, "--idp-url") == 0 && i + 1 < argc) {
            opt.fed.idp_url = argv[++i];
        } else if (strcmp(a, "--idp-code-ttl") == 0 && i + 1 < argc) {
            if (parse_u64(argv[i + 1], strlen(argv[i + 1]), 86400, &v) != 0 || v == 0)
                return usage("--idp-code-ttl: a number of seconds, 1 to 86400");
            opt.fed.code_ttl_s = (unsigned)v;
            i++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(NULL);
            exit(0);
        } else {
            fprintf(stderr, "tborigin: bad argument: %s\n", a);
            return usage(NULL);
        }
    }
    return 0;
}

/* Sleeps ms milliseconds, or less if shutdown starts meanwhile. */
static void sleep_ms(unsigned ms)
{
    while (ms > 0 && !atomic_load(&stopping)) {
        unsigned slice = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
        struct timespec ts = {0, (long)slice * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
        ms -= slice;
    }
}

/* --- small growable text buffer (capped), for the HTML page ------------------------------ */

struct sbuf {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed or the cap was reached: the content is incomplete */
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > MAX_PAGE || (p = realloc(b->p, cap)) == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_str(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        b->failed = 1;
    else
        sbuf_add(b, tmp, (size_t)n);
}

/* Appends s with &, <, >, " and ' escaped. */
static void sbuf_html(struct sbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            sbuf_str(b, "&amp;");
            break;
        case '<':
            sbuf_str(b, "&lt;");
            break;
        case '>':
            sbuf_str(b, "&gt;");
            break;
        case '"':
            sbuf_str(b, "&quot;");
            break;
        case '\'':
            sbuf_str(b, "&#39;");
            break;
        default:
            sbuf_add(b, s, 1);
        }
    }
}

/* --- responses --------------------------------------------------------------------------- */

/*
 * Queues a response with body[0..len), which it takes (freed with free() by MHD or here), the
 * given content type and, when name is not NULL, one more header. Returns MHD_NO (close the
 * connection) if anything fails, including a header value MHD refuses.
 */
static enum MHD_Result send_owned(struct MHD_Connection *conn, unsigned status, char *body,
                                  size_t len, const char *type, const char *name, const char *value)
{
    struct MHD_Response *resp;
    enum MHD_Result ret = MHD_NO;

    if (body == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
        (name == NULL || MHD_add_response_header(resp, name, value) == MHD_YES))
        ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Queues a text/plain response with a copy of text. */
static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return send_owned(conn, status, strdup(text), strlen(text), "text/plain; charset=utf-8", NULL,
                      NULL);
}

/* --- /echo ------------------------------------------------------------------------------- */

/* A JSON string of s[0..n): as is when it is UTF-8, else read as Latin-1. NULL on ENOMEM. */
static json_t *json_bytes(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    char *u;
    size_t i, k = 0;

    if (j != NULL || (u = malloc(2 * n + 1)) == NULL)
        return j;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            u[k++] = (char)c;
        } else {
            u[k++] = (char)(0xc0 | c >> 6);
            u[k++] = (char)(0x80 | (c & 0x3f));
        }
    }
    j = json_stringn(u, k);
    free(u);
    return j;
}

/* Adds one header to the object: lower-cased name, repeated names collected into an array. */
static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    json_t *headers = cls, *v = json_bytes(value, value_size), *old, *arr = NULL;
    char name[256];
    size_t i;

    (void)kind;
    if (v == NULL)
        return MHD_YES;
    if (key_size >= sizeof(name))
        key_size = sizeof(name) - 1; /* MHD's header names are tokens; 255 chars is plenty */
    for (i = 0; i < key_size; i++)
        name[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] - 'A' + 'a' : key[i]);
    name[key_size] = '\0';
    old = json_object_get(headers, name);
    /* the _new calls take v (and arr) even when they fail: nothing to undo then */
    if (old == NULL) {
        json_object_set_new(headers, name, v);
    } else if (json_is_array(old)) {
        json_array_append_new(old, v);
    } else if ((arr = json_array()) != NULL && json_array_append(arr, old) == 0) {
        json_array_append_new(arr, v);
        json_object_set_new(headers, name, arr);
    } else {
        json_decref(arr);
        json_decref(v);
    }
    return MHD_YES; /* a header that cannot be shown is left out, the others still are */
}

static enum MHD_Result echo(struct MHD_Connection *conn, struct request *rq, const char *method,
                            const char *version)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    char digest_hex[2 * EVP_MAX_MD_SIZE + 1];
    unsigned dlen = 0, i;
    json_t *doc = NULL, *headers = json_object(), *path, *query;
    char *body = NULL;

    if (rq->md == NULL || EVP_DigestFinal_ex(rq->md, digest, &dlen) != 1 || headers == NULL)
        goto Exit;
    for (i = 0; i < dlen; i++) {
        digest_hex[2 * i] = hex[digest[i] >> 4];
        digest_hex[2 * i + 1] = hex[digest[i] & 15];
    }
    digest_hex[2 * dlen] = '\0';
    if (MHD_get_connection_values_n(conn, MHD_HEADER_KIND, add_header, headers) < 0)
        goto Exit;
    path = json_bytes(rq->target, rq->path_len);
    query = rq->target[rq->path_len] != '?'
                ? json_null()
                : json_bytes(rq->target + rq->path_len + 1, strlen(rq->target + rq->path_len + 1));
    /* "o" takes the references to path and query, even when packing fails */
    doc = json_pack("{s:s, s:s, s:o, s:o, s:O, s:I, s:s}", "method", method, "version", version,
                    "path", path, "query", query, "headers", headers, "body_length",
                    (json_int_t)rq->body_len, "body_sha256", digest_hex);
    if (doc != NULL)
        body = json_dumps(doc, JSON_COMPACT);
Exit:
    json_decref(doc);
    json_decref(headers);
    if (body == NULL)
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "echo failed\n");
    return send_owned(conn, MHD_HTTP_OK, body, strlen(body), "application/json", NULL, NULL);
}

/* --- / ------------------------------------------------------------------------------------ */

/* Two table rows for one forwarded ID header: its value (or "none") and its tbh. */
static void binding_rows(struct sbuf *b, struct MHD_Connection *conn, const char *header)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, header);
    char tbh[TB_TBH_LEN + 1];
    size_t n = v != NULL ? strlen(v) : 0;
    uint8_t *id = NULL;
    int len = -1;

    sbuf_addf(b, "<tr><th>%s</th><td><code>", header);
    sbuf_html(b, v != NULL ? v : "none");
    sbuf_str(b, "</code></td></tr>\n<tr><th>tbh</th><td><code>");
    if (v == NULL) {
        sbuf_str(b, "none");
    } else if (n > MAX_ID_CHARS || (id = malloc(tb_base64url_decoded_max(n))) == NULL) {
        sbuf_str(b, "(too long)");
    } else if ((len = tb_base64url_decode(v, n, id, tb_base64url_decoded_max(n))) < 0 ||
               tb_tbh(id, (size_t)len, tbh, sizeof(tbh)) < 0) {
        sbuf_str(b, "(not base64url)");
    } else {
        sbuf_str(b, tbh);
    }
    sbuf_str(b, "</code></td></tr>\n");
    free(id);
}

static enum MHD_Result index_page(struct MHD_Connection *conn, struct request *rq,
                                  const char *method)
{
    const char *other =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Other-Token-Binding-ID");
    struct sbuf b = {0};

    (void)rq;
    sbuf_str(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>tborigin</title>\n"
                 "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:"
                 "1em;vertical-align:top}code{word-break:break-all}</style></head>\n<body>\n"
                 "<h1>tborigin</h1>\n<p>The Token Binding that tbproxy verified and forwarded "
                 "with this ");
    sbuf_html(&b, method);
    sbuf_str(&b, " request:</p>\n<table>\n");
    binding_rows(&b, conn, "Sec-Provided-Token-Binding-ID");
    binding_rows(&b, conn, "Sec-Referred-Token-Binding-ID");
    sbuf_str(&b, "<tr><th>Sec-Other-Token-Binding-ID</th><td><code>");
    sbuf_html(&b, other != NULL ? other : "none");
    sbuf_str(&b, "</code></td></tr>\n</table>\n<p>tbh = base64url(SHA-256(Token Binding ID)), the "
                 "value bound tokens carry. <a href=\"/echo\">/echo</a> shows every header.</p>\n"
                 "</body></html>\n");
    if (b.failed) {
        free(b.p);
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "page failed\n");
    }
    return send_owned(conn, MHD_HTTP_OK, b.p, b.len, "text/html; charset=utf-8", NULL, NULL);
}

/* --- /bytes/N ----------------------------------------------------------------------------- */

static ssize_t bytes_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    const uint64_t *total = cls;
    size_t n, done = 0;

    if (pos >= *total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = *total - pos < max ? (size_t)(*total - pos) : max;
    if (n > BYTES_BLOCK)
        n = BYTES_BLOCK;
    while (done < n) {
        size_t phase = (size_t)((pos + done) % 26), k = n - done;
        if (k > sizeof(pattern) - 26)
            k = sizeof(pattern) - 26;
        memcpy(buf + done, pattern + phase, k);
        done += k;
    }
    return (ssize_t)n;
}

static enum MHD_Result bytes(struct MHD_Connection *conn, uint64_t n)
{
    uint64_t *total = malloc(sizeof(*total));
    struct MHD_Response *resp;
    enum MHD_Result ret = MHD_NO;

    if (total == NULL)
        return MHD_NO;
    *total = n;
    resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, BYTES_BLOCK, bytes_read, total, free);
    if (resp == NULL) {
        free(total);
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream") ==
        MHD_YES)
        ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* --- the rest ----------------------------------------------------------------------------- */

static enum MHD_Result status(struct MHD_Connection *conn, unsigned code)
{
    char text[32];

    if (code == MHD_HTTP_NO_CONTENT || code == MHD_HTTP_NOT_MODIFIED)
        return send_owned(conn, code, strdup(""), 0, "text/plain; charset=utf-8", NULL, NULL);
    snprintf(text, sizeof(text), "status %u\n", code);
    return send_text(conn, code, text);
}

static enum MHD_Result slow(struct MHD_Connection *conn)
{
    const char *ms = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ms");
    char text[48];
    uint64_t v;

    if (ms == NULL || parse_u64(ms, strlen(ms), MAX_DELAY_MS, &v) != 0)
        return send_text(conn, MHD_HTTP_BAD_REQUEST, "/slow?ms=N with N <= 600000\n");
    sleep_ms((unsigned)v);
    snprintf(text, sizeof(text), "slept %u ms\n", (unsigned)v);
    return send_text(conn, MHD_HTTP_OK, text);
}

static enum MHD_Result redirect(struct MHD_Connection *conn)
{
    const char *to = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
    const char *st = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "status");
    struct MHD_Response *resp;
    enum MHD_Result ret = MHD_NO;
    static const char text[] = "redirecting\n";
    uint64_t status = MHD_HTTP_FOUND;

    if (to == NULL || *to == '\0' || strpbrk(to, "\r\n") != NULL ||
        (st != NULL && (parse_u64(st, strlen(st), 308, &status) != 0 ||
                        !(status == 301 || status == 302 || status == 303 || status == 307 ||
                          status == 308))))
        return send_text(conn, MHD_HTTP_BAD_REQUEST,
                         "/redirect?to=URL[&status=N] with N 301, 302, 303, 307 or 308\n");
    resp = MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, to) == MHD_YES &&
        MHD_add_response_header(resp, "Include-Referer-Token-Binding-ID", "true") == MHD_YES &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") ==
            MHD_YES)
        ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* --- /cookies/set ------------------------------------------------------------------------- */

/* 1 if s is an RFC 6265 cookie-name: a non-empty RFC 2616 token. */
static int is_cookie_name(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c) != NULL)
            return 0;
    }
    return 1;
}

/* 1 if s is an RFC 6265 cookie-value without quotes: cookie-octets only (may be empty). */
static int is_cookie_value(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\')
            return 0;
    }
    return 1;
}

/* What /cookies/set collects from the query: the response and whether every pair was good. */
struct cookie_set {
    struct MHD_Response *resp;
    unsigned count;
    const char *error; /* the 400 text once a parameter is refused; NULL while all are good */
};

/* MHD_get_connection_values callback: one query parameter, already percent-decoded by MHD. */
static enum MHD_Result add_set_cookie(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct cookie_set *cs = cls;
    char line[MAX_SET_COOKIE_LEN];
    int n;

    (void)kind;
    if (value == NULL || !is_cookie_name(key) || !is_cookie_value(value)) {
        cs->error = "/cookies/set?NAME=VALUE: NAME must be a token, VALUE cookie-octets\n";
        return MHD_NO;
    }
    if (++cs->count > MAX_SET_COOKIES) {
        cs->error = "/cookies/set: too many cookies\n";
        return MHD_NO;
    }
    n = snprintf(line, sizeof(line), "%s=%s; Path=/; HttpOnly", key, value);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        cs->error = "/cookies/set: cookie too long\n";
        return MHD_NO;
    }
    if (MHD_add_response_header(cs->resp, MHD_HTTP_HEADER_SET_COOKIE, line) != MHD_YES) {
        cs->error = "/cookies/set: cookie refused\n";
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result cookies_set(struct MHD_Connection *conn)
{
    static const char text[] = "ok\n";
    struct cookie_set cs = {NULL, 0, NULL};
    enum MHD_Result ret = MHD_NO;

    cs.resp = MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text,
                                              MHD_RESPMEM_PERSISTENT);
    if (cs.resp == NULL)
        return MHD_NO;
    if (MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_set_cookie, &cs) < 0)
        cs.error = "/cookies/set: bad query\n";
    if (cs.error == NULL && cs.count == 0)
        cs.error = "/cookies/set?NAME=VALUE[&NAME=VALUE...]\n";
    if (cs.error != NULL) {
        MHD_destroy_response(cs.resp);
        return send_text(conn, MHD_HTTP_BAD_REQUEST, cs.error);
    }
    if (MHD_add_response_header(cs.resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "text/plain; charset=utf-8") == MHD_YES)
        ret = MHD_queue_response(conn, MHD_HTTP_OK, cs.resp);
    MHD_destroy_response(cs.resp);
    return ret;
}

/* Sets rq->route (and rq->number) from the raw path. */
static void route(struct request *rq)
{
    const char *p = rq->target;
    size_t n = rq->path_len;

#define IS(lit) (n == sizeof(lit) - 1 && memcmp(p, lit, n) == 0)
#define HAS_PREFIX(lit) (n > sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0)
    rq->route = ROUTE_NOT_FOUND;
    if (IS("/echo"))
        rq->route = ROUTE_ECHO;
    else if (IS("/"))
        rq->route = ROUTE_INDEX;
    else if (IS("/slow"))
        rq->route = ROUTE_SLOW;
    else if (IS("/redirect"))
        rq->route = ROUTE_REDIRECT;
    else if (IS("/healthz"))
        rq->route = ROUTE_HEALTHZ;
    else if (IS("/cookies/set"))
        rq->route = ROUTE_COOKIES;
    else if (n >= 5 && memcmp(p, "/api/", 5) == 0)
        rq->route = ROUTE_ECHO;
    else if ((rq->fed = tbo_fed_match(p, n)) != TBO_FED_NONE)
        rq->route = ROUTE_FED;
    else if (HAS_PREFIX("/bytes/") && parse_u64(p + 7, n - 7, UINT64_MAX, &rq->number) == 0)
        rq->route = ROUTE_BYTES;
    else if (HAS_PREFIX("/status/") && parse_u64(p + 8, n - 8, 599, &rq->number) == 0 &&
             rq->number >= 200)
        rq->route = ROUTE_STATUS;
#undef IS
#undef HAS_PREFIX
}

static enum MHD_Result respond(struct MHD_Connection *conn, struct request *rq, const char *method,
                               const char *version)
{
    if (opt.delay_ms > 0)
        sleep_ms(opt.delay_ms);
    switch (rq->route) {
    case ROUTE_ECHO:
        return echo(conn, rq, method, version);
    case ROUTE_INDEX:
        return index_page(conn, rq, method);
    case ROUTE_BYTES:
        return bytes(conn, rq->number);
    case ROUTE_STATUS:
        return status(conn, (unsigned)rq->number);
    case ROUTE_SLOW:
        return slow(conn);
    case ROUTE_REDIRECT:
        return redirect(conn);
    case ROUTE_HEALTHZ:
        return send_text(conn, MHD_HTTP_OK, "ok\n");
    case ROUTE_COOKIES:
        return cookies_set(conn);
    case ROUTE_FED:
        return tbo_fed_respond(conn, rq->fed);
    case ROUTE_NOT_FOUND:
        break;
    }
    return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* --- request lifetime --------------------------------------------------------------------- */

static struct request *request_new(const char *target)
{
    struct request *rq = calloc(1, sizeof(*rq));

    if (rq == NULL)
        return NULL;
    if ((rq->target = strdup(target)) == NULL) {
        free(rq);
        return NULL;
    }
    rq->path_len = strcspn(rq->target, "?");
    return rq;
}

static void request_free(struct request *rq)
{
    if (rq == NULL)
        return;
    EVP_MD_CTX_free(rq->md);
    free(rq->target);
    free(rq);
}

/* MHD_OPTION_URI_LOG_CALLBACK: the raw request-target, before MHD decodes it. */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    return request_new(uri);
}

/* MHD_OPTION_NOTIFY_COMPLETED: every request ends here, answered or not. */
static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    request_free(*con_cls);
    *con_cls = NULL;
}

/*
 * The access handler: called once with the headers, once per piece of body, and once more at
 * the end, when the response is queued.
 */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct request *rq = *con_cls;

    (void)cls;
    if (rq == NULL) { /* the URI-log callback ran out of memory */
        if ((rq = request_new(url)) == NULL)
            return MHD_NO;
        *con_cls = rq;
    }
    if (!rq->started) {
        rq->started = 1;
        route(rq);
        if (rq->route == ROUTE_ECHO) {
            if ((rq->md = EVP_MD_CTX_new()) == NULL ||
                EVP_DigestInit_ex(rq->md, EVP_sha256(), NULL) != 1)
                return MHD_NO;
        }
        if (*upload_data_size == 0)
            return MHD_YES;
    }
    if (*upload_data_size > 0) {
        rq->body_len += *upload_data_size;
        if (rq->md != NULL && EVP_DigestUpdate(rq->md, upload_data, *upload_data_size) != 1)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    return respond(conn, rq, method, version);
}

/* --- startup ------------------------------------------------------------------------------ */

/*
 * Binds and listens on spec ("HOST:PORT" or "[V6]:PORT"). Returns the socket, with the address
 * it got formatted into shown ("HOST:PORT" with the real port), or -1 after a message.
 */
static int listen_on(const char *spec, int *family, char *shown, size_t shown_cap)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[256], port[16], hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
    const char *colon = strrchr(spec, ':'), *h = spec;
    size_t hlen;
    int fd = -1, one = 1, rc;

    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(port))
        goto Bad;
    hlen = (size_t)(colon - spec);
    if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        goto Bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "tborigin: --listen %s: %s\n", spec, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        (res->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
        bind(fd, res->ai_addr, res->ai_addrlen) == -1 || listen(fd, 511) == -1 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) == -1 ||
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        fprintf(stderr, "tborigin: --listen %s: %s\n", spec, strerror(errno));
        if (fd != -1)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    *family = res->ai_family;
    freeaddrinfo(res);
    snprintf(shown, shown_cap, *family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, pbuf);
    return fd;
Bad:
    fprintf(stderr, "tborigin: --listen %s: expected HOST:PORT or [IPV6]:PORT\n", spec);
    return -1;
}

/* Asks main to stop: one byte into the stop pipe. Async-signal-safe. */
static void request_stop(char why)
{
    int saved = errno;

    if (write(stop_pipe[1], &why, 1) == -1) {
        /* the pipe is full: a stop is already pending */
    }
    errno = saved;
}

static void on_stop_signal(int sig)
{
    request_stop((char)sig);
}

/* --exit-with-stdin: reads stdin to its end, then asks main to stop. */
static void *watch_stdin(void *arg)
{
    char buf[256];
    ssize_t n;

    (void)arg;
    while ((n = read(0, buf, sizeof(buf))) != 0)
        if (n == -1 && errno != EINTR)
            break;
    request_stop(0);
    return NULL;
}

/*
 * SIGINT and SIGTERM write to the stop pipe that main waits on. They are blocked in every
 * thread started after this (MHD's included) and unblocked again in main by wait_for_stop(), so
 * they normally land there; a thread that unblocks them anyway only runs the same handler.
 */
static int stop_signals_init(sigset_t *set)
{
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};

    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
        return -1;
    sigemptyset(&sa.sa_mask);
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    if (sigaction(SIGINT, &sa, NULL) == -1 || sigaction(SIGTERM, &sa, NULL) == -1)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return pthread_sigmask(SIG_BLOCK, set, NULL) == 0 ? 0 : -1;
}

/* Unblocks the stop signals in this thread and waits for a stop request. */
static void wait_for_stop(const sigset_t *set)
{
    struct pollfd pfd = {.fd = stop_pipe[0], .events = POLLIN};

    pthread_sigmask(SIG_UNBLOCK, set, NULL);
    while (poll(&pfd, 1, -1) != 1)
        ;
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    char shown[NI_MAXHOST + NI_MAXSERV + 4];
    sigset_t stop_set;
    pthread_t watcher;
    unsigned flags;
    int rc, fd, family = AF_INET;
    size_t i;
    char err[256];

    if ((rc = parse_options(argc, argv)) != 0)
        return rc;
    if (tbo_fed_init(&opt.fed, err, sizeof(err)) != 0) {
        fprintf(stderr, "tborigin: %s\n", err);
        return EXIT_START_FAILED;
    }
    for (i = 0; i < sizeof(pattern); i++)
        pattern[i] = (char)('a' + i % 26);
    if (stop_signals_init(&stop_set) == -1) {
        fprintf(stderr, "tborigin: signal setup: %s\n", strerror(errno));
        tbo_fed_dispose();
        return EXIT_START_FAILED;
    }

    if ((fd = listen_on(opt.listen, &family, shown, sizeof(shown))) == -1) {
        tbo_fed_dispose();
        return EXIT_START_FAILED;
    }
    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
            MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* clang-format off */
    d = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
                         MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_URI_LOG_CALLBACK, uri_logged, NULL,
                         MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
                         MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
                         MHD_OPTION_END);
    /* clang-format on */
    if (d == NULL) {
        fprintf(stderr, "tborigin: the HTTP daemon did not start on %s\n", shown);
        close(fd);
        tbo_fed_dispose();
        return EXIT_START_FAILED;
    }
    if (opt.exit_with_stdin) {
        if ((rc = pthread_create(&watcher, NULL, watch_stdin, NULL)) != 0) {
            fprintf(stderr, "tborigin: pthread_create: %s\n", strerror(rc));
            MHD_stop_daemon(d);
            tbo_fed_dispose();
            return EXIT_START_FAILED;
        }
        pthread_detach(watcher);
    }
    printf("tborigin listening on %s\n", shown);
    fflush(stdout);

    wait_for_stop(&stop_set);
    atomic_store(&stopping, 1);
    MHD_stop_daemon(d);
    tbo_fed_dispose();
    return 0;
}
