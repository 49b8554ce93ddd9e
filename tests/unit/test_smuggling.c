/*
 * Request smuggling: a corpus of hostile HTTP/1.1 requests against the real tbproxy, with a
 * recording origin behind it that shows exactly what the proxy forwarded.
 *
 * The corpus is tests/data/smuggling/<name>.req, one request per file: a header of "# key: value"
 * lines giving the expected outcome, a "#--" line, then the raw bytes sent (to the end of the
 * file, byte for byte; .gitattributes keeps git from touching line endings):
 *
 *     #! tbproxy smuggling case
 *     # about: what the request tries (free text, for failure messages)
 *     # status: 400 501             statuses the client may get; "close": no answer, just closed
 *     # origin: none                what the origin may see, one or more of:
 *                                   none (no byte), one (exactly one complete request, and the
 *                                   client got its 200), incomplete (nothing, or the start of one
 *                                   request on a connection the proxy then closed)
 *     # eof: yes                    (optional) the client sends close_notify after the request
 *     # splits: bytes               (optional) also send it one byte per TLS record
 *     # fill: 70000 a               (optional) the one "@@@" in the request is N copies of a char
 *     # origin-body: 5              (optional) the forwarded body's length when origin is one
 *     # origin-method: POST         (optional) its method
 *     # origin-target: /x           (optional) its target
 *     # origin-lacks: upgrade te    (optional) fields the forwarded head must not have
 *     #--
 *
 * tests/data/smuggling/make-corpus.py wrote the files (edit it and run it again rather than
 * editing CR, LF and NUL bytes by hand). Files named control-* are plain requests that must be
 * forwarded: they prove the harness sees forwarding at all, and do not count toward the corpus size
 * (at least 40 hostile requests).
 *
 * Every case is sent over TLS (ALPN http/1.1, no Token Binding) on a fresh connection in several
 * ways: whole in one TLS record, cut in two at several points (after the first byte, after the
 * request line, in the middle, around the end of the header section, before the last byte), cut
 * in three, and for cases marked `splits: bytes` one byte per record. tbproxy reads one record
 * per SSL_read, so each piece reaches its parser as a separate feed: the outcome must not depend
 * on segmentation. For each variant the test asserts:
 *  - the client: a status from the list (or a close when allowed); a 200 is the origin's answer;
 *    no byte follows the answer (no second answer); after "Connection: close" the connection
 *    closes. A connection left open must still be in step: one more, plain request on it gets
 *    the origin's 200 and the origin sees exactly that request (or the proxy closes instead), so
 *    bytes after a refused request are never read as the start of another one. When the proxy
 *    closes while the request is still being sent (it refused it early), the answer is read if
 *    the reset left it readable, and otherwise the case must allow a refusal;
 *  - the origin (tests/support/recorigin.h): whatever it got parses, by a reader stricter than
 *    any real origin, as at most one request, never two; a complete one only with a 200, with
 *    the body length, method, target the case states and none of the fields it must lack; an
 *    unfinished one only on a connection the proxy closed.
 * Failures are collected per variant and reported together, so one run shows every broken case.
 *
 * The corpus runs in SHARDS parameterized tests, each with its own world (directory and
 * certificate), recording origin and tbproxy (tests/support/confproxy.h), so Criterion's two jobs
 * run them side by side. Binaries: $TB_BIN/tbproxy (make test sets TB_BIN), else build/rel/bin.
 * TBT_SMUGGLING_CASE=text in the environment runs only the cases whose name contains text;
 * TBT_SMUGGLING_VERBOSE=1 prints the outcome of every variant.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <criterion/parameterized.h>
#include <openssl/ssl.h>

#include "confproxy.h"
#include "proc.h"
#include "recorigin.h"
#include "tlsclient.h"
#include "world.h"

#define DATA_DIR "tests/data/smuggling"
#define MAGIC "#! tbproxy smuggling case\n"
#define MIN_HOSTILE 40
#define MAX_CASES 512
#define MAX_CASE_BYTES (2u << 20)
#define MAX_STATUSES 8
#define MAX_LACKS 8
#define MAX_VARIANTS 16
#define SHARDS 4
#define QUIET_MS 25            /* the origin is settled after this long without an event */
#define SETTLE_MAX_MS 3000     /* ... or gives up */
#define CLIENT_TIMEOUT_MS 5000 /* waiting for an answer or a close */
#define REPORT_CAP 16384

#define PROXY_CONFIG                                                                               \
    "routes = ( { upstream = \"app\"; } );\n"                                                      \
    "limits = { max_header_bytes = 65536; max_headers = 100; };\n"

enum { O_NONE = 1, O_ONE = 2, O_INCOMPLETE = 4 };

struct scase {
    char name[96];
    char about[256];
    int statuses[MAX_STATUSES];
    size_t n_statuses;
    int allow_close;
    unsigned origin;  /* O_* bits */
    long long body;   /* origin-body, -1 when not given */
    char method[32];  /* origin-method, "" when not given */
    char target[256]; /* origin-target, "" when not given */
    char lacks[MAX_LACKS][64];
    size_t n_lacks;
    int bytewise, eof, control;
    unsigned char *raw;
    size_t len;
};

/* One way of sending a case: pieces cut at cuts[0..n) (each piece its own TLS record), or one
 * byte per record. */
struct variant {
    size_t cuts[2];
    size_t n;
    int bytewise;
    char label[64];
};

static struct tbt_world w;
static struct tbt_confproxy px;
static struct tbt_recorigin rec;

static void fini(void)
{
    tbt_confproxy_stop(&px);
    tbt_recorigin_stop(&rec);
    tbt_world_teardown(&w);
}

TestSuite(smuggling, .fini = fini, .timeout = 150);

/* --- the corpus ------------------------------------------------------------------------------- */

static int parse_statuses(struct scase *k, char *v, char *err, size_t errlen)
{
    char *save = NULL, *t;

    for (t = strtok_r(v, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        char *end;
        long s;

        if (strcmp(t, "close") == 0) {
            k->allow_close = 1;
            continue;
        }
        s = strtol(t, &end, 10);
        if (*end != '\0' || s < 100 || s > 599 || k->n_statuses == MAX_STATUSES) {
            snprintf(err, errlen, "bad status \"%s\"", t);
            return -1;
        }
        k->statuses[k->n_statuses++] = (int)s;
    }
    return 0;
}

static int parse_origin(struct scase *k, char *v, char *err, size_t errlen)
{
    char *save = NULL, *t;

    for (t = strtok_r(v, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        if (strcmp(t, "none") == 0)
            k->origin |= O_NONE;
        else if (strcmp(t, "one") == 0)
            k->origin |= O_ONE;
        else if (strcmp(t, "incomplete") == 0)
            k->origin |= O_INCOMPLETE;
        else {
            snprintf(err, errlen, "bad origin outcome \"%s\"", t);
            return -1;
        }
    }
    return 0;
}

static int parse_lacks(struct scase *k, char *v, char *err, size_t errlen)
{
    char *save = NULL, *t;

    for (t = strtok_r(v, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        if (k->n_lacks == MAX_LACKS || strlen(t) >= sizeof(k->lacks[0])) {
            snprintf(err, errlen, "origin-lacks: too many or too long");
            return -1;
        }
        snprintf(k->lacks[k->n_lacks++], sizeof(k->lacks[0]), "%s", t);
    }
    return 0;
}

/* "N C": the one "@@@" of the raw bytes becomes N copies of C. */
static int apply_fill(struct scase *k, const char *v, char *err, size_t errlen)
{
    unsigned long n;
    char c, extra;
    unsigned char *at, *raw;

    if (sscanf(v, "%lu %c %c", &n, &c, &extra) != 2 || n == 0 || n > MAX_CASE_BYTES ||
        (at = memmem(k->raw, k->len, "@@@", 3)) == NULL ||
        memmem(at + 3, k->len - (size_t)(at - k->raw) - 3, "@@@", 3) != NULL) {
        snprintf(err, errlen, "fill: wants \"N C\" and exactly one @@@ in the request");
        return -1;
    }
    raw = malloc(k->len - 3 + n);
    cr_assert_not_null(raw);
    memcpy(raw, k->raw, (size_t)(at - k->raw));
    memset(raw + (at - k->raw), c, n);
    memcpy(raw + (at - k->raw) + n, at + 3, k->len - (size_t)(at - k->raw) - 3);
    free(k->raw);
    k->raw = raw;
    k->len = k->len - 3 + n;
    return 0;
}

/* One "key: value" header line (key and value NUL-terminated in place). fill is applied later,
 * once the raw bytes are known. */
static int header_line(struct scase *k, char *key, char *v, char **fill, char *err, size_t errlen)
{
    if (strcmp(key, "about") == 0)
        snprintf(k->about, sizeof(k->about), "%s", v);
    else if (strcmp(key, "status") == 0)
        return parse_statuses(k, v, err, errlen);
    else if (strcmp(key, "origin") == 0)
        return parse_origin(k, v, err, errlen);
    else if (strcmp(key, "eof") == 0 && strcmp(v, "yes") == 0)
        k->eof = 1;
    else if (strcmp(key, "splits") == 0 && strcmp(v, "bytes") == 0)
        k->bytewise = 1;
    else if (strcmp(key, "fill") == 0)
        *fill = v;
    else if (strcmp(key, "origin-body") == 0)
        k->body = strtoll(v, NULL, 10);
    else if (strcmp(key, "origin-method") == 0)
        snprintf(k->method, sizeof(k->method), "%s", v);
    else if (strcmp(key, "origin-target") == 0)
        snprintf(k->target, sizeof(k->target), "%s", v);
    else if (strcmp(key, "origin-lacks") == 0)
        return parse_lacks(k, v, err, errlen);
    else {
        snprintf(err, errlen, "unknown header line \"%s: %s\"", key, v);
        return -1;
    }
    return 0;
}

/* The outcome lists must agree: a 200 is the origin's answer to the one request it got. */
static int check_case(const struct scase *k, char *err, size_t errlen)
{
    int has200 = 0;
    size_t i;

    for (i = 0; i < k->n_statuses; i++)
        has200 |= k->statuses[i] == 200;
    if (k->n_statuses == 0 && !k->allow_close)
        snprintf(err, errlen, "no status");
    else if (k->origin == 0)
        snprintf(err, errlen, "no origin outcome");
    else if (has200 != ((k->origin & O_ONE) != 0))
        snprintf(err, errlen, "status 200 goes with origin \"one\", and only it");
    else if (k->len == 0)
        snprintf(err, errlen, "no request bytes");
    else
        return 0;
    return -1;
}

/* Parses the file text (text[0..n), NUL-terminated at n) into k. */
static int parse_case(struct scase *k, char *text, size_t n, char *err, size_t errlen)
{
    char *p = text + sizeof(MAGIC) - 1, *fill = NULL;

    if (n < sizeof(MAGIC) - 1 || memcmp(text, MAGIC, sizeof(MAGIC) - 1) != 0) {
        snprintf(err, errlen, "does not start with \"%.*s\"", (int)sizeof(MAGIC) - 2, MAGIC);
        return -1;
    }
    for (;;) {
        char *eol = memchr(p, '\n', (size_t)(text + n - p)), *colon;

        if (eol == NULL) {
            snprintf(err, errlen, "no \"#--\" line");
            return -1;
        }
        *eol = '\0';
        if (strcmp(p, "#--") == 0) {
            p = eol + 1;
            break;
        }
        if (strncmp(p, "# ", 2) != 0 || (colon = strstr(p, ": ")) == NULL) {
            snprintf(err, errlen, "header line \"%s\" is not \"# key: value\"", p);
            return -1;
        }
        *colon = '\0';
        if (header_line(k, p + 2, colon + 2, &fill, err, errlen) != 0)
            return -1;
        p = eol + 1;
    }
    k->len = (size_t)(text + n - p);
    k->raw = malloc(k->len + 1);
    cr_assert_not_null(k->raw);
    memcpy(k->raw, p, k->len);
    if (fill != NULL && apply_fill(k, fill, err, errlen) != 0)
        return -1;
    return check_case(k, err, errlen);
}

static void load_case(struct scase *k, const char *file)
{
    char path[512], err[256];
    size_t n;
    char *text;
    FILE *f;

    memset(k, 0, sizeof(*k));
    k->body = -1;
    snprintf(k->name, sizeof(k->name), "%.*s", (int)(strlen(file) - 4), file);
    k->control = strncmp(file, "control-", 8) == 0;
    snprintf(path, sizeof(path), "%s/%s", DATA_DIR, file);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    text = malloc(MAX_CASE_BYTES + 1);
    cr_assert_not_null(text);
    n = fread(text, 1, MAX_CASE_BYTES + 1, f);
    fclose(f);
    cr_assert_leq(n, MAX_CASE_BYTES, "%s: larger than %u bytes", path, MAX_CASE_BYTES);
    text[n] = '\0';
    if (parse_case(k, text, n, err, sizeof(err)) != 0) {
        free(text);
        cr_assert_fail("%s: %s", path, err);
    }
    free(text);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.req of the corpus, sorted by name. The caller frees with free_corpus. */
static struct scase *load_corpus(size_t *count)
{
    char *names[MAX_CASES];
    struct scase *cases;
    struct dirent *e;
    size_t n = 0, i;
    DIR *d = opendir(DATA_DIR);

    cr_assert_not_null(d, "%s: %s (run from the repository root)", DATA_DIR, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        if (len < 5 || strcmp(e->d_name + len - 4, ".req") != 0)
            continue;
        cr_assert_lt(n, MAX_CASES, "more than %d cases", MAX_CASES);
        names[n] = strdup(e->d_name);
        cr_assert_not_null(names[n++]);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_name);
    cases = calloc(n > 0 ? n : 1, sizeof(*cases));
    cr_assert_not_null(cases);
    for (i = 0; i < n; i++) {
        load_case(&cases[i], names[i]);
        free(names[i]);
    }
    *count = n;
    return cases;
}

static void free_corpus(struct scase *cases, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(cases[i].raw);
    free(cases);
}

/* --- sending ---------------------------------------------------------------------------------- */

static void add_cut(struct variant *v, size_t *nv, const struct scase *k, size_t at,
                    const char *what)
{
    size_t i;

    if (at == 0 || at >= k->len || *nv == MAX_VARIANTS)
        return;
    for (i = 0; i < *nv; i++)
        if (v[i].n == 1 && v[i].cuts[0] == at)
            return;
    v[*nv] = (struct variant){.cuts = {at, 0}, .n = 1};
    snprintf(v[*nv].label, sizeof(v[*nv].label), "cut at %zu (%s)", at, what);
    (*nv)++;
}

/* The ways case k is sent. */
static size_t variants(const struct scase *k, struct variant *v)
{
    const unsigned char *lf = memchr(k->raw, '\n', k->len);
    const unsigned char *eoh = memmem(k->raw, k->len, "\r\n\r\n", 4);
    size_t nv = 0;

    v[nv++] = (struct variant){.n = 0, .label = "whole"};
    add_cut(v, &nv, k, 1, "first byte");
    if (lf != NULL)
        add_cut(v, &nv, k, (size_t)(lf - k->raw) + 1, "after the first line");
    add_cut(v, &nv, k, k->len / 2, "middle");
    if (eoh != NULL) {
        add_cut(v, &nv, k, (size_t)(eoh - k->raw) + 3, "between the last CR and LF of the head");
        add_cut(v, &nv, k, (size_t)(eoh - k->raw) + 4, "after the head");
    }
    add_cut(v, &nv, k, k->len - 1, "before the last byte");
    if (k->len >= 3 && nv < MAX_VARIANTS) {
        v[nv] = (struct variant){.cuts = {k->len / 3, 2 * k->len / 3}, .n = 2};
        snprintf(v[nv].label, sizeof(v[nv].label), "three pieces");
        nv++;
    }
    if (k->bytewise && nv < MAX_VARIANTS)
        v[nv++] = (struct variant){.bytewise = 1, .label = "one byte per record"};
    return nv;
}

static int send_variant(struct tbt_tls *c, const struct scase *k, const struct variant *v)
{
    size_t i, from = 0;

    if (v->bytewise) {
        for (i = 0; i < k->len; i++)
            if (tbt_tls_send(c, k->raw + i, 1) != 0)
                return -1;
        return 0;
    }
    for (i = 0; i <= v->n; i++) {
        size_t to = i < v->n ? v->cuts[i] : k->len;

        if (to > from && tbt_tls_send(c, k->raw + from, to - from) != 0)
            return -1;
        from = to;
    }
    return 0;
}

/* --- checking --------------------------------------------------------------------------------- */

static int status_allowed(const struct scase *k, int status)
{
    size_t i;

    for (i = 0; i < k->n_statuses; i++)
        if (k->statuses[i] == status)
            return 1;
    return 0;
}

/* The case expects the proxy to refuse it in some way (a status other than 200, or a close). */
static int refusal_allowed(const struct scase *k)
{
    size_t i;

    for (i = 0; i < k->n_statuses; i++)
        if (k->statuses[i] != 200)
            return 1;
    return k->allow_close;
}

/* How a variant ended on the client's side. */
struct client_end {
    int status;     /* the answer's status; 0: none */
    int kept_alive; /* the connection stays open for another request */
    int reset;      /* the proxy reset the connection before its answer could be read */
};

/* The client's side: an allowed status (or a close where allowed) and nothing after it that
 * could be the answer to a second request. send_failed: the proxy closed while the request was
 * still being sent (it had already refused it); its answer may then be lost to the reset. */
static int check_client(const struct scase *k, struct tbt_tls *c, int send_failed,
                        struct client_end *e, char *why, size_t cap)
{
    struct tbt_http_response r = {0};
    int closed = tbt_tls_peer_closed(c, CLIENT_TIMEOUT_MS), ret = -1, more;

    memset(e, 0, sizeof(*e));
    if (closed == 0 && !send_failed) {
        snprintf(why, cap, "neither an answer nor a close within %d ms", CLIENT_TIMEOUT_MS);
        return -1;
    }
    if (closed != -1) {
        e->reset = send_failed;
        if (send_failed ? !refusal_allowed(k) : !k->allow_close)
            snprintf(why, cap, "closed without an answer");
        return (send_failed ? refusal_allowed(k) : k->allow_close) ? 0 : -1;
    }
    if (tbt_tls_read_response(c, &r, 0, 0) != 0) {
        snprintf(why, cap, "reading the answer: %.300s", c->err);
        goto Exit;
    }
    e->status = r.status;
    if (!status_allowed(k, r.status)) {
        snprintf(why, cap, "status %d", r.status);
        goto Exit;
    }
    if (r.status == 200 && strcmp((const char *)r.body, TBT_REC_BODY) != 0) {
        snprintf(why, cap, "a 200 that is not the origin's answer");
        goto Exit;
    }
    if (tbt_http_header_has(&r, "Connection", "close")) {
        more = tbt_tls_peer_closed(c, CLIENT_TIMEOUT_MS);
        if (more != 1) {
            snprintf(why, cap, "after \"Connection: close\": %s",
                     more < 0 ? "more bytes (a second answer)" : "still open");
            goto Exit;
        }
    } else {
        more = tbt_tls_peer_closed(c, QUIET_MS);
        if (more < 0) {
            snprintf(why, cap, "more bytes after the answer (a second answer)");
            goto Exit;
        }
        e->kept_alive = more == 0 && !send_failed && !k->eof;
    }
    ret = 0;
Exit:
    tbt_http_response_dispose(&r);
    return ret;
}

/* The complete request the origin got matches what the case says the proxy decided. */
static int check_forwarded(const struct scase *k, const struct tbt_rec_view *v, char *why,
                           size_t cap)
{
    size_t i, hl = strlen(v->first_head), tl = strlen(v->first_trailers);

    if (k->body >= 0 && v->first.body_len != (size_t)k->body)
        snprintf(why, cap, "origin got a body of %zu bytes, not %lld", v->first.body_len, k->body);
    else if (k->method[0] != '\0' && strcmp(v->first.method, k->method) != 0)
        snprintf(why, cap, "origin got method %s, not %s", v->first.method, k->method);
    else if (k->target[0] != '\0' && strcmp(v->first.target, k->target) != 0)
        snprintf(why, cap, "origin got target %.100s, not %.100s", v->first.target, k->target);
    else {
        for (i = 0; i < k->n_lacks; i++)
            if (tbt_rec_has_field(v->first_head, hl, k->lacks[i]) ||
                tbt_rec_has_field(v->first_trailers, tl, k->lacks[i])) {
                snprintf(why, cap, "origin got a field named %s", k->lacks[i]);
                return -1;
            }
        return 0;
    }
    return -1;
}

/* The origin's side, given the client's status (0: closed without an answer). */
static int check_origin(const struct scase *k, int status, char *why, size_t cap)
{
    struct tbt_rec_view *v = malloc(sizeof(*v));
    int ret = -1;

    cr_assert_not_null(v);
    if (tbt_recorigin_settle(&rec, QUIET_MS, SETTLE_MAX_MS) != 0) {
        snprintf(why, cap, "the origin never settled");
        goto Exit;
    }
    tbt_recorigin_view(&rec, v);
    if (v->n_bad > 0)
        snprintf(why, cap, "origin got bytes that are not one request: %s", v->why);
    else if (v->n_requests > 1)
        snprintf(why, cap, "origin got %zu requests", v->n_requests);
    else if (v->refused > 0)
        snprintf(why, cap, "origin refused %zu connections (table full)", v->refused);
    else if (v->n_requests == 1 && !(k->origin & O_ONE))
        snprintf(why, cap, "origin got a complete %s %.100s", v->first.method, v->first.target);
    else if (v->n_requests == 1 && (status != 200 || v->n_incomplete > 0))
        snprintf(why, cap,
                 "origin got a complete request and %zu unfinished ones on %zu connections (%zu "
                 "bytes), the client status %d",
                 v->n_incomplete, v->n_conns, v->total_bytes, status);
    else if (v->n_requests == 0 && status == 200)
        snprintf(why, cap, "a 200 without a request at the origin");
    else if (v->n_requests == 1)
        ret = check_forwarded(k, v, why, cap);
    else if (v->total_bytes == 0 && !(k->origin & (O_NONE | O_INCOMPLETE)))
        snprintf(why, cap, "origin got nothing");
    else if (v->total_bytes > 0 && !(k->origin & O_INCOMPLETE))
        snprintf(why, cap, "origin got %zu bytes of an unfinished request: %s", v->total_bytes,
                 v->unfinished);
    else if (v->incomplete_open > 0)
        snprintf(why, cap, "the proxy left an unfinished request open at the origin");
    else
        ret = 0;
Exit:
    free(v);
    return ret;
}

/* A connection the proxy kept open after its answer must be in step with its client: one more
 * request gets the origin's answer, and the origin sees exactly that request. (A close instead
 * is safe too.) */
static int check_follow_up(struct tbt_tls *c, char *why, size_t cap)
{
    static const char req[] = "GET /follow-up HTTP/1.1\r\nHost: app.example\r\n\r\n";
    struct scase follow = {.statuses = {200},
                           .n_statuses = 1,
                           .allow_close = 1,
                           .origin = O_ONE,
                           .body = 0,
                           .target = "/follow-up"};
    struct client_end e;
    char sub[400] = "";
    int ret = 0;

    tbt_recorigin_mark(&rec);
    if (tbt_tls_send_str(c, req) != 0)
        return 0;
    if (check_client(&follow, c, 0, &e, sub, sizeof(sub)) != 0 ||
        (e.status != 0 && check_origin(&follow, e.status, sub, sizeof(sub)) != 0)) {
        snprintf(why, cap, "the request after it: %s", sub);
        ret = -1;
    }
    return ret;
}

static size_t resets; /* variants whose answer was lost to a reset (see check_client) */
static int verbose;   /* TBT_SMUGGLING_VERBOSE set: print each variant's outcome */

/* Sends case k one way on a fresh connection and checks both sides. */
static int run_variant(const struct scase *k, const struct variant *var, char *why, size_t cap)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1", .timeout_ms = CLIENT_TIMEOUT_MS};
    struct tbt_tls c = {.fd = -1};
    struct client_end e;
    int ret = -1, send_failed;

    tbt_recorigin_mark(&rec);
    if (tbt_tls_connect(&c, (uint16_t)px.port, &o) != 0) {
        snprintf(why, cap, "connect: %.300s", c.err);
        goto Exit;
    }
    send_failed = send_variant(&c, k, var) != 0;
    if (k->eof && !send_failed)
        (void)SSL_shutdown(c.ssl);
    if (check_client(k, &c, send_failed, &e, why, cap) != 0)
        goto Exit;
    resets += e.reset;
    if (verbose)
        fprintf(stderr, "smuggling: %s [%s]: %d%s%s%s\n", k->name, var->label, e.status,
                e.kept_alive ? " kept alive" : "", send_failed ? " (closed while sending)" : "",
                e.reset ? " (answer lost)" : "");
    if (check_origin(k, e.status, why, cap) != 0)
        goto Exit;
    ret = e.kept_alive ? check_follow_up(&c, why, cap) : 0;
Exit:
    tbt_tls_close(&c);
    return ret;
}

struct report {
    char text[REPORT_CAP];
    size_t len, failures, variants;
};

static void report_add(struct report *r, const struct scase *k, const struct variant *v,
                       const char *why)
{
    int n;

    r->failures++;
    if (r->len >= sizeof(r->text) - 1)
        return;
    n = snprintf(r->text + r->len, sizeof(r->text) - r->len, "\n  %s [%s]: %s (%s)", k->name,
                 v->label, why, k->about);
    if (n > 0)
        r->len += (size_t)n < sizeof(r->text) - r->len ? (size_t)n : sizeof(r->text) - r->len - 1;
}

static void run_case(const struct scase *k, struct report *r)
{
    struct variant v[MAX_VARIANTS];
    size_t nv = variants(k, v), i;
    char why[512];

    for (i = 0; i < nv; i++) {
        r->variants++;
        why[0] = '\0';
        if (run_variant(k, &v[i], why, sizeof(why)) != 0)
            report_add(r, k, &v[i], why);
    }
}

/* --- the tests -------------------------------------------------------------------------------- */

Test(smuggling, corpus_loads, .description = "every case file parses; at least 40 hostile ones")
{
    size_t n = 0, i, hostile = 0, controls = 0;
    struct scase *cases = load_corpus(&n);

    for (i = 0; i < n; i++) {
        hostile += !cases[i].control;
        controls += cases[i].control;
    }
    cr_log_info("smuggling corpus: %zu hostile requests, %zu controls", hostile, controls);
    cr_expect_geq(hostile, MIN_HOSTILE, "only %zu hostile requests in %s", hostile, DATA_DIR);
    cr_expect_geq(controls, 1, "no control-* case: nothing shows that forwarding is seen");
    free_corpus(cases, n);
}

ParameterizedTestParameters(smuggling, corpus)
{
    static int shards[SHARDS];
    size_t i;

    for (i = 0; i < SHARDS; i++)
        shards[i] = (int)i;
    return cr_make_param_array(int, shards, SHARDS);
}

ParameterizedTest(int *shard, smuggling, corpus,
                  .description = "each hostile request, whole and split: answered, never two")
{
    struct report *r = calloc(1, sizeof(*r));
    size_t n = 0, i, ran = 0;
    struct scase *cases = load_corpus(&n);
    struct tbt_world_opts o = {.origin_down = 1};
    const char *only = getenv("TBT_SMUGGLING_CASE");
    char err[TBT_PROC_ERRLEN];

    cr_assert_not_null(r);
    verbose = getenv("TBT_SMUGGLING_VERBOSE") != NULL;
    tbt_world_start(&w, &o);
    cr_assert_eq(tbt_recorigin_start(&rec, err, sizeof(err)), 0, "%s", err);
    tbt_confproxy_start(&w, &px, "smuggling", rec.port, PROXY_CONFIG);
    for (i = (size_t)*shard; i < n; i += SHARDS) {
        if (only != NULL && *only != '\0' && strstr(cases[i].name, only) == NULL)
            continue;
        run_case(&cases[i], r);
        ran++;
    }
    cr_log_info("smuggling shard %d: %zu cases, %zu variants, %zu failed, %zu answers lost to a "
                "reset while the request was still being sent",
                *shard, ran, r->variants, r->failures, resets);
    cr_expect(tbt_proc_alive(&px.proc), "tbproxy died: %s", tbt_world_proxy_log(&w));
    cr_expect_eq(r->failures, 0, "%zu of %zu variants failed:%s\nproxy log: %s", r->failures,
                 r->variants, r->text, tbt_world_proxy_log(&w));
    free_corpus(cases, n);
    free(r);
}

/* --- the recording origin's reader ------------------------------------------------------------ */

static long parse_str(const char *s, struct tbt_rec_request *rq)
{
    return tbt_rec_parse((const unsigned char *)s, strlen(s), rq, NULL, 0);
}

Test(smuggling, origin_reader_accepts, .description = "what tbproxy writes reads as one request")
{
    static const char *const good[] = {
        "GET /a?b HTTP/1.1\r\nHost: h\r\nX-A: b c\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\na\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-Empty: \r\n\r\n",
    };
    static const size_t bodies[] = {0, 5, 15, 0};
    struct tbt_rec_request rq;
    size_t i, cut;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t len = strlen(good[i]);
        char twice[512];

        cr_assert_eq(parse_str(good[i], &rq), (long)len, "case %zu", i);
        cr_assert_eq(rq.body_len, bodies[i], "case %zu: body %zu", i, rq.body_len);
        for (cut = 0; cut < len; cut++)
            cr_assert_eq(tbt_rec_parse((const unsigned char *)good[i], cut, &rq, NULL, 0), 0,
                         "case %zu truncated at %zu", i, cut);
        snprintf(twice, sizeof(twice), "%s%s", good[i], good[i]);
        cr_assert_eq(parse_str(twice, &rq), (long)len, "case %zu twice: the first one only", i);
    }
    cr_assert_eq(parse_str(good[2], &rq), (long)strlen(good[2]));
    cr_assert(rq.chunked);
    cr_assert_eq(rq.n_trailers, 1);
    cr_assert_str_eq(rq.method, "POST");
}

Test(smuggling, origin_reader_rejects, .description = "anything ambiguous is not a request")
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\x01\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\nContent-Length: 5\r\n\r\n",
    };
    struct tbt_rec_request rq;
    char why[128];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long n =
            tbt_rec_parse((const unsigned char *)bad[i], strlen(bad[i]), &rq, why, sizeof(why));
        cr_assert_eq(n, -1, "case %zu read as a request (%ld)", i, n);
        cr_assert_neq(why[0], '\0', "case %zu: no reason", i);
    }
}

Test(smuggling, origin_reader_has_field)
{
    static const char head[] = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nX-Up: y\r\n\r\n";

    cr_assert(tbt_rec_has_field(head, sizeof(head) - 1, "upgrade"));
    cr_assert(tbt_rec_has_field(head, sizeof(head) - 1, "HOST"));
    cr_assert_not(tbt_rec_has_field(head, sizeof(head) - 1, "up"));
    cr_assert_not(tbt_rec_has_field(head, sizeof(head) - 1, "connection"));
}

/* A plain TCP connection to the recorder, for the test below. */
static int rec_connect(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rec.port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_neq(fd, -1);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
    return fd;
}

static void rec_send(int fd, const char *s)
{
    cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

Test(smuggling, recorder_sees_what_arrived,
     .description = "the recording origin counts requests, unfinished ones and bad bytes")
{
    static const char two[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                              "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
    struct tbt_rec_view *v = malloc(sizeof(*v));
    char err[TBT_PROC_ERRLEN], answers[2 * sizeof(TBT_REC_RESPONSE)];
    size_t got = 0;
    int a, b, c;

    cr_assert_not_null(v);
    cr_assert_eq(tbt_recorigin_start(&rec, err, sizeof(err)), 0, "%s", err);
    a = rec_connect();
    b = rec_connect();
    c = rec_connect();
    rec_send(a, two);
    rec_send(b, "POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    rec_send(c, "GET /d HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n");
    while (got < 2 * (sizeof(TBT_REC_RESPONSE) - 1)) {
        ssize_t n = recv(a, answers + got, sizeof(answers) - got, 0);
        cr_assert_gt(n, 0, "the recorder did not answer both requests");
        got += (size_t)n;
    }
    cr_assert_eq(tbt_recorigin_settle(&rec, QUIET_MS, SETTLE_MAX_MS), 0);
    tbt_recorigin_view(&rec, v);
    cr_expect_eq(v->n_conns, 3);
    cr_expect_eq(v->n_requests, 2);
    cr_expect_eq(v->n_incomplete, 1);
    cr_expect_eq(v->incomplete_open, 1);
    cr_expect_eq(v->n_bad, 1, "%s", v->why);
    cr_expect(v->has_first);
    cr_expect_str_eq(v->first.target, "/a");
    close(b);
    cr_assert_eq(tbt_recorigin_settle(&rec, QUIET_MS, SETTLE_MAX_MS), 0);
    tbt_recorigin_view(&rec, v);
    cr_expect_eq(v->incomplete_open, 0, "a closed connection still counts as open");
    tbt_recorigin_mark(&rec);
    tbt_recorigin_view(&rec, v);
    cr_expect_eq(v->total_bytes, 0, "bytes before the mark are still in the view");
    rec_send(a, "GET /e HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(tbt_recorigin_settle(&rec, QUIET_MS, SETTLE_MAX_MS), 0);
    tbt_recorigin_view(&rec, v);
    cr_expect_eq(v->n_requests, 1);
    cr_expect_str_eq(v->first.target, "/e");
    close(a);
    close(c);
    free(v);
}
