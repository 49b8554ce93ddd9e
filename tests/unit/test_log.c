/*
 * The logs (issue 7): access-log lines, error-log lines, reopening.
 *
 * - accesslog: tbp_accesslog_format on hand-made records: every field of both formats (the exact
 *   line), absent fields ("-" / null), the stable key order, every byte value in the request
 *   fields (combined: printable ASCII that unescapes to the original bytes; json: parses with
 *   jansson, valid UTF-8 kept, each invalid byte U+FFFD), the escapers cut only between whole
 *   escapes (every output cap, every truncation and split of the input), the longest line.
 * - xlog: the exchange record through exchange.c on a connection made by hand (no socket):
 *   bounded raw copies, the request line for error messages, one write(2) per line (checked on a
 *   SOCK_SEQPACKET pair, where each write is one packet).
 * - errorlog: ISO time with milliseconds, level, worker tag, control bytes escaped, one line.
 * - reopen: tbp_log_reopen after a rename (logrotate): the old lines in the renamed file, the new
 *   ones in the new file, the descriptor number and FD_CLOEXEC kept, mode 0640; a failure keeps
 *   the old file; standard streams untouched; writers on four threads during fifty reopens lose
 *   no line and never write to a closed descriptor.
 * - proxy: the real tbproxy with access and error logs in files, driven by tbclient (Token
 *   Binding over HTTP/1.1 and HTTP/2, and without) and the support TLS client (hostile header
 *   bytes, a bad Token-Binding header): the json and combined lines say what happened and never
 *   hold the TBID, the full tbh or the Token-Binding header; SIGUSR1 after a rename (logrotate)
 *   moves both logs to new files.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "accesslog.h"
#include "exchange.h"
#include "proc.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "worker.h"
#include "world.h"

/* One timeout for every suite: under ASan, Criterion 2.4's runner leaks a timeout entry at exit
 * when tests with different timeouts run side by side (--jobs 2), and run-tests fails on that. */
#define SUITE_TIMEOUT_S 120
#define T_SEC 1735787045 /* 2025-01-02T03:04:05Z */
#define T_NSEC 678901234

/* --- helpers ---------------------------------------------------------------------------------- */

static const struct tbp_accesslog_env env_full = {"192.0.2.7", "h1", "p256", {T_SEC, T_NSEC}, 3003};
static const struct tbp_accesslog_env env_bare = {"2001:db8::1", "h2", NULL, {T_SEC, 5000000}, 0};

static void set_raw(char *dst, size_t cap, void *len, size_t len_size, const void *s, size_t n)
{
    cr_assert_leq(n, cap);
    memcpy(dst, s, n);
    if (len_size == 1)
        *(uint8_t *)len = (uint8_t)n;
    else
        *(uint16_t *)len = (uint16_t)n;
}

#define SET(x, field, s, n)                                                                        \
    set_raw((x)->field, sizeof((x)->field), &(x)->field##_len, sizeof((x)->field##_len), (s), (n))

/* A record with every field set. */
static void full_record(struct tbp_xlog *x)
{
    memset(x, 0, sizeof(*x));
    x->t_start = 1000;
    x->t_upstream = 1002;
    x->resp_bytes = 1234;
    x->status = 201;
    x->tb = "ok";
    snprintf(x->tbh, sizeof(x->tbh), "AbCdEfGhIjKl");
    x->has_head = x->has_referer = x->has_ua = 1;
    x->version_major = 1;
    x->version_minor = 1;
    SET(x, method, "POST", 4);
    SET(x, target, "/api/x?y=1", 10);
    SET(x, referer, "https://a.example/", 18);
    SET(x, ua, "tbclient/0.1", 12);
    snprintf(x->upstream, sizeof(x->upstream), "127.0.0.1:8080");
    x->co.cookies = 1;
    x->co.ck.kept = 2;
    x->co.ck.dropped = 1;
    x->co.ck.bound = 3;
    x->co.jwt = 1;
    x->co.jwt_outcome = TBP_JWT_OK;
}

/* The record of an exchange that never got a request line (h1.c resets it this way). */
static void bare_record(struct tbp_xlog *x)
{
    memset(x, 0, sizeof(*x));
    x->tb = "none";
}

static char linebuf[TBP_ACCESSLOG_LINE + 1];

/* The line of x as a NUL-terminated string (static buffer), checked to be one line. */
static const char *line_of(enum tbp_log_format f, const struct tbp_xlog *x,
                           const struct tbp_accesslog_env *env)
{
    size_t n = tbp_accesslog_format(f, x, env, linebuf, TBP_ACCESSLOG_LINE);

    cr_assert_gt(n, 0);
    cr_assert_leq(n, TBP_ACCESSLOG_LINE);
    cr_assert_eq(linebuf[n - 1], '\n');
    cr_assert_null(memchr(linebuf, '\n', n - 1), "a newline inside the line");
    linebuf[n] = '\0';
    return linebuf;
}

/* Parses a json line (newline excluded), NULs allowed in strings; the caller decrefs. */
static json_t *parse_json_line(const char *line)
{
    json_error_t e;
    json_t *doc = json_loadb(line, strlen(line) - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);

    cr_assert_not_null(doc, "not JSON (%s at %d): %s", e.text, e.position, line);
    cr_assert(json_is_object(doc));
    return doc;
}

static const char *const json_keys[] = {
    "time",   "remote_addr", "method",        "target",          "protocol",
    "status", "bytes",       "referer",       "user_agent",      "tb",
    "tb_key", "tbh_prefix",  "cookies_kept",  "cookies_dropped", "cookies_bound",
    "jwt",    "upstream",    "upstream_time", "request_time"};
#define N_JSON_KEYS (sizeof(json_keys) / sizeof(json_keys[0]))

/* Every key, in order, nothing else. */
static void expect_keys(json_t *doc)
{
    void *it = json_object_iter(doc);
    size_t i;

    for (i = 0; i < N_JSON_KEYS; i++, it = json_object_iter_next(doc, it)) {
        cr_assert_not_null(it, "key %s missing", json_keys[i]);
        cr_assert_str_eq(json_object_iter_key(it), json_keys[i]);
    }
    cr_assert_null(it, "an extra key");
}

static void expect_jstr(json_t *doc, const char *key, const char *want)
{
    json_t *v = json_object_get(doc, key);

    cr_assert(json_is_string(v), "%s is not a string", key);
    cr_assert_str_eq(json_string_value(v), want, "%s", key);
}

static void expect_jnull(json_t *doc, const char *key)
{
    cr_assert(json_is_null(json_object_get(doc, key)), "%s is not null", key);
}

static void expect_jint(json_t *doc, const char *key, json_int_t want)
{
    json_t *v = json_object_get(doc, key);

    cr_assert(json_is_integer(v), "%s is not an integer", key);
    cr_assert_eq(json_integer_value(v), want, "%s", key);
}

/* A string value's bytes (NULs included) equal want[0..n). */
static void expect_jbytes(json_t *doc, const char *key, const void *want, size_t n)
{
    json_t *v = json_object_get(doc, key);

    cr_assert(json_is_string(v), "%s is not a string", key);
    cr_assert_eq(json_string_length(v), n, "%s: length %zu, want %zu", key, json_string_length(v),
                 n);
    cr_assert_eq(memcmp(json_string_value(v), want, n), 0, "%s", key);
}

/* --- accesslog: the formats ------------------------------------------------------------------- */

TestSuite(accesslog, .timeout = SUITE_TIMEOUT_S);

Test(accesslog, combined_every_field)
{
    struct tbp_xlog x;

    full_record(&x);
    cr_assert_str_eq(
        line_of(TBP_LOG_COMBINED, &x, &env_full),
        "192.0.2.7 - - [02/Jan/2025:03:04:05 +0000] \"POST /api/x?y=1 HTTP/1.1\" 201 "
        "1234 \"https://a.example/\" \"tbclient/0.1\" h1 tb=ok tbkey=p256 "
        "tbh=AbCdEfGhIjKl up=127.0.0.1:8080 ut=0.002 rt=2.003 ck=2/1 setck=3 jwt=ok\n");
}

Test(accesslog, combined_absent_fields)
{
    struct tbp_xlog x;

    bare_record(&x);
    cr_assert_str_eq(
        line_of(TBP_LOG_COMBINED, &x, &env_bare),
        "2001:db8::1 - - [02/Jan/2025:03:04:05 +0000] \"-\" 0 0 \"-\" \"-\" h2 tb=none "
        "tbkey=- tbh=- up=- ut=- rt=0.000 ck=- setck=- jwt=-\n");
    /* a head without Referer / User-Agent, an empty User-Agent, a route binding cookies and no
     * JWT, a failed check */
    full_record(&x);
    x.has_referer = 0;
    x.ua_len = 0;
    x.co.jwt = 0;
    x.co.ck.bound = 0;
    x.tb = "signature";
    x.tbh[0] = '\0';
    x.t_upstream = 0;
    x.upstream[0] = '\0';
    x.status = 400;
    x.resp_bytes = 0;
    x.version_major = 2;
    x.version_minor = 0;
    cr_assert_str_eq(line_of(TBP_LOG_COMBINED, &x, &env_full),
                     "192.0.2.7 - - [02/Jan/2025:03:04:05 +0000] \"POST /api/x?y=1 HTTP/2.0\" 400 "
                     "0 \"-\" \"-\" h1 tb=signature tbkey=p256 tbh=- up=- ut=- rt=2.003 ck=2/1 "
                     "setck=0 jwt=-\n");
}

Test(accesslog, json_every_field)
{
    struct tbp_xlog x;
    const char *line;
    json_t *doc;

    full_record(&x);
    line = line_of(TBP_LOG_JSON, &x, &env_full);
    cr_assert_str_eq(line,
                     "{\"time\":\"2025-01-02T03:04:05.678Z\",\"remote_addr\":\"192.0.2.7\","
                     "\"method\":\"POST\",\"target\":\"/api/x?y=1\",\"protocol\":\"HTTP/1.1\","
                     "\"status\":201,\"bytes\":1234,\"referer\":\"https://a.example/\","
                     "\"user_agent\":\"tbclient/0.1\",\"tb\":\"ok\",\"tb_key\":\"p256\","
                     "\"tbh_prefix\":\"AbCdEfGhIjKl\",\"cookies_kept\":2,"
                     "\"cookies_dropped\":1,\"cookies_bound\":3,\"jwt\":\"ok\","
                     "\"upstream\":\"127.0.0.1:8080\",\"upstream_time\":0.002,"
                     "\"request_time\":2.003}\n");
    doc = parse_json_line(line);
    expect_keys(doc);
    expect_jstr(doc, "time", "2025-01-02T03:04:05.678Z");
    expect_jstr(doc, "protocol", "HTTP/1.1");
    expect_jint(doc, "status", 201);
    expect_jint(doc, "bytes", 1234);
    expect_jint(doc, "cookies_bound", 3);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "upstream_time")), 0.002, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "request_time")), 2.003, 1e-9);
    json_decref(doc);
}

Test(accesslog, json_absent_fields)
{
    static const char *const nulls[] = {
        "method", "target",     "protocol",     "referer",         "user_agent",
        "tb_key", "tbh_prefix", "cookies_kept", "cookies_dropped", "cookies_bound",
        "jwt",    "upstream",   "upstream_time"};
    struct tbp_xlog x;
    json_t *doc;
    size_t i;

    bare_record(&x);
    doc = parse_json_line(line_of(TBP_LOG_JSON, &x, &env_bare));
    expect_keys(doc);
    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        expect_jnull(doc, nulls[i]);
    expect_jstr(doc, "time", "2025-01-02T03:04:05.005Z");
    expect_jstr(doc, "remote_addr", "2001:db8::1");
    expect_jstr(doc, "tb", "none");
    expect_jint(doc, "status", 0);
    expect_jint(doc, "bytes", 0);
    json_decref(doc);
    /* present but empty headers are "", absent ones null */
    full_record(&x);
    x.ua_len = 0;
    x.has_referer = 0;
    x.co.jwt = 1;
    x.co.jwt_outcome = TBP_JWT_MISMATCH;
    x.co.cookies = 0;
    doc = parse_json_line(line_of(TBP_LOG_JSON, &x, &env_full));
    expect_jstr(doc, "user_agent", "");
    expect_jnull(doc, "referer");
    expect_jstr(doc, "jwt", "mismatch");
    expect_jnull(doc, "cookies_kept");
    json_decref(doc);
}

Test(accesslog, companion_outcome_names)
{
    static const struct {
        enum tbp_jwt_outcome o;
        const char *name;
    } v[] = {{TBP_JWT_OK, "ok"},
             {TBP_JWT_NO_TB, "no_tb"},
             {TBP_JWT_EXPIRED, "expired"},
             {TBP_JWT_MISMATCH, "mismatch"},
             {TBP_JWT_KEYID, "unknown_key"}};
    struct tbp_xlog x;
    char want[64];
    size_t i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        json_t *doc;
        full_record(&x);
        x.co.jwt_outcome = v[i].o;
        snprintf(want, sizeof(want), " jwt=%s\n", v[i].name);
        cr_assert_not_null(strstr(line_of(TBP_LOG_COMBINED, &x, &env_full), want));
        doc = parse_json_line(line_of(TBP_LOG_JSON, &x, &env_full));
        expect_jstr(doc, "jwt", v[i].name);
        json_decref(doc);
    }
}

/* --- accesslog: escaping ---------------------------------------------------------------------- */

/* Undoes the combined escapes of a quoted field starting after its opening quote at *p; stops
 * at the closing quote (*p then points after it). Returns the byte count written to out. */
static size_t unescape_combined(const char **p, unsigned char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;

    while (*s != '"') {
        unsigned v;
        cr_assert_neq(*s, '\0', "unterminated quoted field");
        cr_assert_lt(n, cap);
        if (*s != '\\') {
            out[n++] = (unsigned char)*s++;
        } else if (s[1] == '"' || s[1] == '\\') {
            out[n++] = (unsigned char)s[1];
            s += 2;
        } else {
            cr_assert_eq(s[1], 'x', "unknown escape \\%c", s[1]);
            cr_assert_eq(sscanf(s + 2, "%2x", &v), 1);
            cr_assert(((s[2] >= '0' && s[2] <= '9') || (s[2] >= 'a' && s[2] <= 'f')) &&
                      ((s[3] >= '0' && s[3] <= '9') || (s[3] >= 'a' && s[3] <= 'f')));
            out[n++] = (unsigned char)v;
            s += 4;
        }
    }
    *p = s + 1;
    return n;
}

/* Every byte value in the request fields: both formats give them back. (A field is cut at its
 * output budget, twice its raw cap: the values are spread so that none is cut here.) */
Test(accesslog, every_byte_value)
{
    unsigned char all[256], got[512];
    struct tbp_xlog x;
    const char *line, *p;
    json_t *doc;
    size_t i, n;

    for (i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    /* combined: printable ASCII only, and the quoted fields unescape to the bytes */
    full_record(&x);
    SET(&x, target, all, 256);
    SET(&x, ua, all, 128);
    SET(&x, referer, all + 128, 128);
    line = line_of(TBP_LOG_COMBINED, &x, &env_full);
    for (p = line; *p != '\n'; p++)
        cr_assert(*p >= 0x20 && *p <= 0x7e, "byte 0x%02x in a combined line", (unsigned char)*p);
    p = strchr(line, '"');
    cr_assert_not_null(p);
    p++;
    n = unescape_combined(&p, got, sizeof(got));
    cr_assert_eq(n, 5 + 256 + 9);
    cr_assert_eq(memcmp(got, "POST ", 5), 0);
    cr_assert_eq(memcmp(got + 5, all, 256), 0);
    cr_assert_eq(memcmp(got + 261, " HTTP/1.1", 9), 0);
    p = strchr(p, '"');
    cr_assert_not_null(p);
    p++;
    n = unescape_combined(&p, got, sizeof(got));
    cr_assert_eq(n, 128);
    cr_assert_eq(memcmp(got, all + 128, 128), 0);
    cr_assert_eq(*p++, ' ');
    cr_assert_eq(*p++, '"');
    n = unescape_combined(&p, got, sizeof(got));
    cr_assert_eq(n, 128);
    cr_assert_eq(memcmp(got, all, 128), 0);
    /* json: parses; bytes < 0x80 come back as they were (NUL included), each byte >= 0x80 (none
     * of them forms a valid UTF-8 sequence here, in that order) is U+FFFD */
    full_record(&x);
    SET(&x, ua, all, 128);
    SET(&x, target, all + 128, 128);
    SET(&x, referer, all + 128, 85);
    line = line_of(TBP_LOG_JSON, &x, &env_full);
    for (p = line; *p != '\n'; p++)
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "raw control byte in a json line");
    doc = parse_json_line(line);
    {
        unsigned char want[128 * 3];
        for (i = 0; i < 128; i++)
            memcpy(want + 3 * i, "\xef\xbf\xbd", 3);
        expect_jbytes(doc, "user_agent", all, 128);
        expect_jbytes(doc, "target", want, 128 * 3);
        expect_jbytes(doc, "referer", want, 85 * 3);
    }
    json_decref(doc);
}

/* A hostile field is cut at its budget, on a whole escape, and the line stays valid. */
Test(accesslog, hostile_fields_are_cut_whole)
{
    unsigned char ff[TBP_XLOG_HEADER];
    struct tbp_xlog x;
    json_t *doc;
    const char *line, *ua;

    memset(ff, 0xff, sizeof(ff));
    full_record(&x);
    SET(&x, ua, ff, sizeof(ff));
    doc = parse_json_line(line_of(TBP_LOG_JSON, &x, &env_full));
    /* 2 * 256 bytes of budget: 85 escapes of 6 bytes */
    cr_assert_eq(json_string_length(json_object_get(doc, "user_agent")), 85 * 3);
    json_decref(doc);
    line = line_of(TBP_LOG_COMBINED, &x, &env_full);
    ua = strstr(line, "\" \"\\xff");
    cr_assert_not_null(ua, "%s", line);
    cr_assert_eq(strncmp(ua + 3 + 128 * 4, "\" h1 tb=ok", 10), 0, "%s", line);
}

/* UTF-8 vectors for the json escape: input and the string a JSON parser gets back. */
static const struct {
    const char *in, *out;
} utf8_vectors[] = {
    {"caf\xc3\xa9", "caf\xc3\xa9"},                                           /* 2 bytes */
    {"\xe2\x82\xac 5", "\xe2\x82\xac 5"},                                     /* 3 bytes */
    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},                                 /* 4 bytes */
    {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},                                 /* U+10FFFF */
    {"\xef\xbf\xbd", "\xef\xbf\xbd"},                                         /* U+FFFD itself */
    {"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},                                 /* overlong NUL */
    {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                 /* surrogate */
    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
    {"\xf5\x80", "\xef\xbf\xbd\xef\xbf\xbd"},                                 /* F5 never valid */
    {"a\x80z", "a\xef\xbf\xbdz"},               /* lone continuation */
    {"\xe2\x82z", "\xef\xbf\xbd\xef\xbf\xbdz"}, /* cut sequence */
    {"\xc3", "\xef\xbf\xbd"},                   /* cut at the end */
    {"q\"b\\s/\x7f", "q\"b\\s/\x7f"},           /* quote, backslash, DEL */
    {"\t\r\n\x1b[31m", "\t\r\n\x1b[31m"},       /* controls, ANSI escape */
};

Test(accesslog, json_utf8_vectors)
{
    char out[256], wrapped[300];
    json_error_t e;
    size_t i, n;

    for (i = 0; i < sizeof(utf8_vectors) / sizeof(utf8_vectors[0]); i++) {
        json_t *s;
        n = tbp_log_escape_json(out, sizeof(out), utf8_vectors[i].in, strlen(utf8_vectors[i].in));
        snprintf(wrapped, sizeof(wrapped), "\"%.*s\"", (int)n, out);
        s = json_loads(wrapped, JSON_DECODE_ANY, &e);
        cr_assert_not_null(s, "vector %zu: %s: %s", i, e.text, wrapped);
        cr_assert_str_eq(json_string_value(s), utf8_vectors[i].out, "vector %zu", i);
        json_decref(s);
    }
    /* the escapes are the usual ones */
    n = tbp_log_escape_json(out, sizeof(out), "\"\\\n\r\t\x01\x7f", 7);
    cr_assert_eq(n, 2 + 2 + 2 + 2 + 2 + 6 + 6);
    cr_assert_eq(memcmp(out, "\\\"\\\\\\n\\r\\t\\u0001\\u007f", n), 0);
    n = tbp_log_escape_combined(out, sizeof(out),
                                "\"\\\n\xff"
                                "a",
                                5);
    cr_assert_eq(n, 2 + 2 + 4 + 4 + 1);
    cr_assert_eq(memcmp(out, "\\\"\\\\\\x0a\\xffa", n), 0);
}

/* Length of the escape unit starting at out[i] (json: \X, \uXXXX, a UTF-8 sequence, a byte). */
static size_t json_unit(const char *out, size_t i)
{
    unsigned char c = (unsigned char)out[i];

    if (c == '\\')
        return out[i + 1] == 'u' ? 6 : 2;
    if (c >= 0xf0)
        return 4;
    if (c >= 0xe0)
        return 3;
    if (c >= 0xc0)
        return 2;
    return 1;
}

static size_t combined_unit(const char *out, size_t i)
{
    return out[i] == '\\' ? (out[i + 1] == 'x' ? 4 : 2) : 1;
}

/* For every cap: a prefix of the whole output, made of whole units, as many as fit. */
static void expect_cuts(size_t (*esc)(char *, size_t, const void *, size_t),
                        size_t (*unit)(const char *, size_t), const char *in, size_t n)
{
    char full[1024], part[1024];
    size_t len = esc(full, sizeof(full), in, n), cap;

    cr_assert_lt(len, sizeof(full));
    for (cap = 0; cap <= len + 1; cap++) {
        size_t got = esc(part, cap, in, n), at = 0;
        cr_assert_leq(got, cap);
        cr_assert_eq(memcmp(part, full, got), 0, "cap %zu: not a prefix", cap);
        while (at < got)
            at += unit(full, at);
        cr_assert_eq(at, got, "cap %zu: cut inside an escape", cap);
        if (got < len)
            cr_assert_gt(got + unit(full, got), cap, "cap %zu: stopped early", cap);
    }
}

Test(accesslog, escapes_cut_between_units)
{
    static const char in[] = "a\"\\\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\xc0\x80z\n";

    expect_cuts(tbp_log_escape_json, json_unit, in, sizeof(in) - 1);
    expect_cuts(tbp_log_escape_combined, combined_unit, in, sizeof(in) - 1);
}

/* Every truncation of a UTF-8 text still escapes to a valid JSON string, and splitting the text
 * between characters escapes to the same as the whole. */
Test(accesslog, truncated_and_split_input)
{
    static const char in[] = "x\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"\\y";
    char out[256], a[256], b[256], wrapped[300];
    size_t n, k, full, na, nb;
    json_error_t e;

    for (n = 0; n <= sizeof(in) - 1; n++) {
        json_t *s;
        k = tbp_log_escape_json(out, sizeof(out), in, n);
        snprintf(wrapped, sizeof(wrapped), "\"%.*s\"", (int)k, out);
        s = json_loads(wrapped, JSON_DECODE_ANY, &e);
        cr_assert_not_null(s, "prefix %zu: %s", n, e.text);
        json_decref(s);
    }
    full = tbp_log_escape_json(out, sizeof(out), in, sizeof(in) - 1);
    for (n = 0; n <= sizeof(in) - 1; n++) {
        if (n < sizeof(in) - 1 && ((unsigned char)in[n] & 0xc0) == 0x80)
            continue; /* inside a character */
        na = tbp_log_escape_json(a, sizeof(a), in, n);
        nb = tbp_log_escape_json(b, sizeof(b), in + n, sizeof(in) - 1 - n);
        cr_assert_eq(na + nb, full, "split at %zu", n);
        cr_assert_eq(memcmp(a, out, na), 0);
        cr_assert_eq(memcmp(b, out + na, nb), 0);
    }
}

/* The longest line the worst bytes can make fits, and stays valid. */
Test(accesslog, longest_line_is_bounded)
{
    char worst[TBP_XLOG_TARGET];
    struct tbp_xlog x;
    const char *line;
    json_t *doc;

    memset(worst, 0x01, sizeof(worst)); /* the longest escape in both formats */
    full_record(&x);
    SET(&x, method, worst, TBP_XLOG_METHOD);
    SET(&x, target, worst, TBP_XLOG_TARGET);
    SET(&x, referer, worst, TBP_XLOG_HEADER);
    SET(&x, ua, worst, TBP_XLOG_HEADER);
    x.resp_bytes = UINT64_MAX; /* json: INT64_MAX below, the most jansson reads */
    x.status = 599;
    x.t_start = 1;
    x.t_upstream = UINT64_MAX - 1;
    x.co.ck.kept = x.co.ck.dropped = x.co.ck.bound = 4000000000u;
    x.tb = "key_params";
    memset(x.upstream, '9', sizeof(x.upstream) - 1);
    x.upstream[sizeof(x.upstream) - 1] = '\0';
    struct tbp_accesslog_env env = env_full;
    env.remote = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    env.now_ms = UINT64_MAX;
    line = line_of(TBP_LOG_COMBINED, &x, &env);
    cr_assert(strstr(line, " jwt=ok\n") != NULL, "the line was cut: %s", line);
    x.resp_bytes = INT64_MAX;
    line = line_of(TBP_LOG_JSON, &x, &env);
    doc = parse_json_line(line);
    expect_keys(doc);
    /* the target was cut at its budget: 2 * 512 bytes of \u0001 escapes = 170 characters */
    cr_assert_eq(json_string_length(json_object_get(doc, "target")), 2 * TBP_XLOG_TARGET / 6);
    json_decref(doc);
    /* a benign target of the maximum length is kept whole in both formats */
    memset(worst, 'a', sizeof(worst));
    worst[0] = '/';
    SET(&x, target, worst, TBP_XLOG_TARGET);
    doc = parse_json_line(line_of(TBP_LOG_JSON, &x, &env));
    expect_jbytes(doc, "target", worst, TBP_XLOG_TARGET);
    json_decref(doc);
    cr_assert_not_null(
        memmem(line_of(TBP_LOG_COMBINED, &x, &env), TBP_ACCESSLOG_LINE, worst, TBP_XLOG_TARGET));
    /* a buffer below TBP_ACCESSLOG_LINE is refused */
    cr_assert_eq(tbp_accesslog_format(TBP_LOG_JSON, &x, &env, linebuf, TBP_ACCESSLOG_LINE - 1), 0);
}

/* --- xlog: the record through exchange.c ------------------------------------------------------ */

static struct tbp_config cfg;
static struct tbp_proxy px;
static struct tbp_worker wk;
static struct tbp_conn conn;
static char dir[512];
static char access_path[600], error_path[600];

static void fake_fini(void)
{
    if (px.access_fd > 2)
        close(px.access_fd);
    if (px.error_fd > 2)
        close(px.error_fd);
    px.access_fd = px.error_fd = -1;
    if (dir[0] != '\0')
        tbt_rmdir_all(dir);
    dir[0] = '\0';
}

static int open_append(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    cr_assert_neq(fd, -1, "%s: %s", path, strerror(errno));
    return fd;
}

/* A proxy, a worker and a connection made by hand, with access.log and error.log in a temporary
 * directory (access_fd -1 when access is 0). */
static void fake_start(enum tbp_log_format f, int access)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(&px, 0, sizeof(px));
    memset(&wk, 0, sizeof(wk));
    memset(&conn, 0, sizeof(conn));
    cr_assert_eq(tbt_tempdir("test-log", dir, sizeof(dir)), 0);
    snprintf(access_path, sizeof(access_path), "%s/access.log", dir);
    snprintf(error_path, sizeof(error_path), "%s/error.log", dir);
    cfg.log.format = f;
    cfg.log.level = TBP_LOG_INFO;
    cfg.log.access = access ? access_path : "";
    cfg.log.error = error_path;
    px.cfg = &cfg;
    px.access_fd = access ? open_append(access_path) : -1;
    px.error_fd = open_append(error_path);
    wk.px = &px;
    wk.loop.now = 50000;
    conn.w = &wk;
    snprintf(conn.ip, sizeof(conn.ip), "198.51.100.4");
    conn.port = 40000;
    conn.tb.key_params = -1;
}

/* The whole file, NUL-terminated, malloc'd ("" when it does not exist). */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, k;

    if (f != NULL) {
        do {
            if (cap - n < 65536) {
                cap = cap * 2 + 65536;
                buf = realloc(buf, cap + 1);
                cr_assert_not_null(buf);
            }
            k = fread(buf + n, 1, cap - n, f);
            n += k;
        } while (k > 0);
        fclose(f);
    }
    if (buf == NULL)
        buf = calloc(1, 1);
    cr_assert_not_null(buf);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* A request head over the given fields (name/value pairs, NULL-terminated). */
static void make_head(struct tbp_http_head *h, struct tbp_header *f, const char *method,
                      const char *target, size_t target_len, const char *const *fields)
{
    size_t n = 0;

    memset(h, 0, sizeof(*h));
    h->is_request = 1;
    h->method = (struct tbp_str){method, strlen(method)};
    h->target = (struct tbp_str){target, target_len};
    h->version_major = 1;
    h->version_minor = 1;
    for (; fields != NULL && fields[0] != NULL; fields += 2, n++) {
        f[n].name = (struct tbp_str){fields[0], strlen(fields[0])};
        f[n].value = (struct tbp_str){fields[1], strlen(fields[1])};
    }
    h->headers = f;
    h->n_headers = n;
}

TestSuite(xlog, .fini = fake_fini, .timeout = SUITE_TIMEOUT_S);

Test(xlog, begin_keeps_bounded_copies)
{
    static const char *const fields[] = {"Host", "x", "User-Agent", NULL, "REFERER", "r", NULL};
    char target[700], ua[400];
    const char *f2[7];
    struct tbp_http_head h;
    struct tbp_header hf[4];
    struct tbp_xlog x;

    fake_start(TBP_LOG_COMBINED, 1);
    memset(target, 'a', sizeof(target));
    target[0] = '/';
    memset(ua, 'u', sizeof(ua) - 1);
    ua[sizeof(ua) - 1] = '\0';
    memcpy(f2, fields, sizeof(f2));
    f2[3] = ua;
    make_head(&h, hf, "VERYLONGMETHODNAME", target, sizeof(target), f2);
    memset(&x, 0x5a, sizeof(x)); /* whatever was there before */
    tbp_xlog_begin(&x, &conn, &h);
    cr_assert_eq(x.t_start, 50000);
    cr_assert_eq(x.t_upstream, 0);
    cr_assert_eq(x.status, 0);
    cr_assert_eq(x.resp_bytes, 0);
    cr_assert_str_eq(x.tb, "none");
    cr_assert_str_eq(x.tbh, "");
    cr_assert_str_eq(x.upstream, "");
    cr_assert_eq(x.co.cookies, 0);
    cr_assert_eq(x.co.jwt, 0);
    cr_assert(x.has_head && x.has_ua && x.has_referer);
    cr_assert_eq(x.method_len, TBP_XLOG_METHOD);
    cr_assert_eq(memcmp(x.method, "VERYLONGMETHODNA", TBP_XLOG_METHOD), 0);
    cr_assert_eq(x.target_len, TBP_XLOG_TARGET);
    cr_assert_eq(memcmp(x.target, target, TBP_XLOG_TARGET), 0);
    cr_assert_eq(x.ua_len, TBP_XLOG_HEADER);
    cr_assert_eq(x.referer_len, 1);
    cr_assert_eq(x.referer[0], 'r');
    /* requests are counted with their status (tbp_xlog_status), not here */
    cr_assert_eq(wk.metrics.c[TBP_M_REQUESTS][tbp_metrics_request_label(TBP_ML_PROTO_H1, 200)], 0);
    /* the request line for error messages: bounded, NUL-terminated, the version kept */
    cr_assert_lt(strlen(x.req), sizeof(x.req));
    cr_assert_eq(strncmp(x.req, "VERYLONGMETHODNA /aaaa", 22), 0, "%s", x.req);
    cr_assert_eq(strcmp(x.req + strlen(x.req) - 9, " HTTP/1.1"), 0, "%s", x.req);
}

Test(xlog, begin_escapes_the_request_line_and_no_headers)
{
    static const char target[] = "/a b\"\\\x01\xff";
    struct tbp_http_head h;
    struct tbp_header hf[1];
    struct tbp_xlog x;
    json_t *doc;

    fake_start(TBP_LOG_JSON, 1);
    make_head(&h, hf, "GET", target, sizeof(target) - 1, NULL);
    tbp_xlog_begin(&x, &conn, &h);
    cr_assert_str_eq(x.req, "GET /a b\\\"\\\\\\x01\\xff HTTP/1.1");
    cr_assert(!x.has_ua && !x.has_referer);
    doc = parse_json_line(line_of(TBP_LOG_JSON, &x, &env_full));
    expect_jnull(doc, "user_agent");
    expect_jnull(doc, "referer");
    expect_jbytes(doc, "target", "/a b\"\\\x01\xef\xbf\xbd", 10);
    json_decref(doc);
}

/* The whole path: begin, status, write, in each format, to a file. */
Test(xlog, write_to_the_access_log)
{
    static const char *const fields[] = {"User-Agent", "ua \"1\"", NULL};
    struct tbp_http_head h;
    struct tbp_header hf[2];
    struct tbp_xlog x;
    char *text, *nl;
    json_t *doc;

    fake_start(TBP_LOG_JSON, 1);
    conn.tb.key_params = TB_KP_ECDSAP256;
    make_head(&h, hf, "GET", "/p", 2, fields);
    tbp_xlog_begin(&x, &conn, &h);
    x.tb = "ok";
    snprintf(x.tbh, sizeof(x.tbh), "0123456789ab");
    snprintf(x.upstream, sizeof(x.upstream), "127.0.0.1:9");
    wk.loop.now = 50007;
    x.t_upstream = wk.loop.now;
    tbp_xlog_status(&x, &conn, 204);
    wk.loop.now = 50012;
    tbp_xlog_write(&x, &conn, "h1");
    cr_assert_eq(wk.metrics.c[TBP_M_REQUESTS][tbp_metrics_request_label(TBP_ML_PROTO_H1, 204)], 1);
    /* the same exchange in combined, then with the access log off */
    cfg.log.format = TBP_LOG_COMBINED;
    conn.tb.key_params = TB_KP_RSA2048_PKCS1;
    tbp_xlog_write(&x, &conn, "h2");
    close(px.access_fd);
    px.access_fd = -1;
    tbp_xlog_write(&x, &conn, "h1");
    text = read_text(access_path, NULL);
    cr_assert_eq(count_lines(text), 2, "%s", text);
    nl = strchr(text, '\n');
    {
        char first[TBP_ACCESSLOG_LINE + 2];
        size_t n = (size_t)(nl - text) + 1;
        memcpy(first, text, n);
        first[n] = '\0';
        doc = parse_json_line(first);
    }
    expect_keys(doc);
    expect_jstr(doc, "remote_addr", "198.51.100.4");
    expect_jstr(doc, "method", "GET");
    expect_jstr(doc, "target", "/p");
    expect_jstr(doc, "protocol", "HTTP/1.1");
    expect_jint(doc, "status", 204);
    expect_jstr(doc, "user_agent", "ua \"1\"");
    expect_jstr(doc, "tb", "ok");
    expect_jstr(doc, "tb_key", "p256");
    expect_jstr(doc, "tbh_prefix", "0123456789ab");
    expect_jstr(doc, "upstream", "127.0.0.1:9");
    cr_assert_float_eq(json_real_value(json_object_get(doc, "upstream_time")), 0.007, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(doc, "request_time")), 0.012, 1e-9);
    json_decref(doc);
    cr_assert_not_null(strstr(nl + 1, "198.51.100.4 - - ["), "%s", nl + 1);
    cr_assert_not_null(strstr(nl + 1, "] \"GET /p HTTP/1.1\" 204 0 \"-\" \"ua \\\"1\\\"\" h2 tb=ok "
                                      "tbkey=rsa2048 tbh=0123456789ab up=127.0.0.1:9 ut=0.007 "
                                      "rt=0.012 ck=- setck=- jwt=-\n"),
                       "%s", nl + 1);
    free(text);
}

/* Each line is one write(2): on a SOCK_SEQPACKET pair every write is one packet. */
Test(xlog, one_write_per_line)
{
    char big[TBP_XLOG_HEADER], pkt[TBP_ACCESSLOG_LINE * 2];
    const char *fields[] = {"User-Agent", big, "Referer", big, NULL};
    struct tbp_http_head h;
    struct tbp_header hf[3];
    struct tbp_xlog x;
    int sv[2], i;

    fake_start(TBP_LOG_JSON, 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    px.access_fd = sv[0];
    memset(big, '\x02', sizeof(big) - 1); /* long escapes: about 3 KiB lines */
    big[sizeof(big) - 1] = '\0';
    make_head(&h, hf, "GET", big, sizeof(big) - 1, fields);
    for (i = 0; i < 4; i++) {
        ssize_t n;
        cfg.log.format = i % 2 ? TBP_LOG_COMBINED : TBP_LOG_JSON;
        tbp_xlog_begin(&x, &conn, &h);
        tbp_xlog_write(&x, &conn, "h1");
        n = recv(sv[1], pkt, sizeof(pkt), MSG_DONTWAIT);
        cr_assert_gt(n, 1000, "line %d: %zd", i, n);
        cr_assert_leq(n, TBP_ACCESSLOG_LINE);
        cr_assert_eq(pkt[n - 1], '\n');
        cr_assert_null(memchr(pkt, '\n', (size_t)n - 1));
    }
    cr_assert_eq(recv(sv[1], pkt, sizeof(pkt), MSG_DONTWAIT), -1);
    close(sv[1]);
}

/* --- errorlog --------------------------------------------------------------------------------- */

TestSuite(errorlog, .fini = fake_fini, .timeout = SUITE_TIMEOUT_S);

#define ERROR_LINE_RE                                                                              \
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "                          \
    "\\[(debug|info|warn|error)\\] "

/* Each line of text matches ERROR_LINE_RE followed by rest_re. */
static void expect_lines_match(const char *text, const char *rest_re)
{
    char re_text[512], line[4096];
    const char *p = text;
    regex_t re;

    snprintf(re_text, sizeof(re_text), "%s%s$", ERROR_LINE_RE, rest_re);
    cr_assert_eq(regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB), 0);
    while (*p != '\0') {
        size_t n = strcspn(p, "\n");
        cr_assert_eq(p[n], '\n', "unterminated line");
        cr_assert_lt(n, sizeof(line));
        memcpy(line, p, n);
        line[n] = '\0';
        cr_expect_eq(regexec(&re, line, 0, NULL, 0), 0, "line %s does not match %s", line, re_text);
        p += n + 1;
    }
    regfree(&re);
}

static void *log_from_worker(void *arg)
{
    tbp_log_thread_worker(*(int *)arg);
    tbp_log_error(&px, TBP_LOG_WARN, "from a worker");
    return NULL;
}

static void *log_from_thread(void *arg)
{
    (void)arg;
    tbp_log_error(&px, TBP_LOG_ERROR, "from another thread");
    return NULL;
}

Test(errorlog, line_format_levels_and_worker)
{
    pthread_t t;
    char *text;
    int id = 3;

    fake_start(TBP_LOG_COMBINED, 0);
    tbp_log_error(&px, TBP_LOG_DEBUG, "not written at level info");
    tbp_log_error(&px, TBP_LOG_INFO, "hello %s %d", "world", 42);
    cr_assert_eq(pthread_create(&t, NULL, log_from_worker, &id), 0);
    pthread_join(t, NULL);
    cr_assert_eq(pthread_create(&t, NULL, log_from_thread, NULL), 0);
    pthread_join(t, NULL);
    cfg.log.level = TBP_LOG_DEBUG;
    tbp_log_error(&px, TBP_LOG_DEBUG, "now written");
    tbp_log_thread_worker(0);
    tbp_log_error(&px, TBP_LOG_ERROR, "worker 0");
    tbp_log_thread_worker(-1);
    tbp_log_error(&px, TBP_LOG_INFO, "none again");
    text = read_text(error_path, NULL);
    cr_assert_eq(count_lines(text), 6, "%s", text);
    expect_lines_match(text, "(\\[w[0-9]+\\] )?[ -~]+");
    cr_assert_null(strstr(text, "not written"));
    cr_assert_not_null(strstr(text, "Z [info] hello world 42\n"), "%s", text);
    cr_assert_not_null(strstr(text, "Z [warn] [w3] from a worker\n"), "%s", text);
    cr_assert_not_null(strstr(text, "Z [error] from another thread\n"), "%s", text);
    cr_assert_not_null(strstr(text, "Z [debug] now written\n"), "%s", text);
    cr_assert_not_null(strstr(text, "Z [error] [w0] worker 0\n"), "%s", text);
    cr_assert_not_null(strstr(text, "Z [info] none again\n"), "%s", text);
    free(text);
}

Test(errorlog, one_line_whatever_the_message)
{
    char big[5000];
    char *text;

    fake_start(TBP_LOG_COMBINED, 0);
    tbp_log_error(&px, TBP_LOG_WARN, "a\nb\r\x1b[2Jc \"q\" \\ %s", "\xc3\xa9");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tbp_log_error(&px, TBP_LOG_WARN, "%s", big);
    text = read_text(error_path, NULL);
    cr_assert_eq(count_lines(text), 2, "%s", text);
    cr_assert_not_null(strstr(text, "Z [warn] a\\x0ab\\x0d\\x1b[2Jc \"q\" \\ \xc3\xa9\n"), "%s",
                       text);
    cr_assert_lt(strlen(strchr(text, '\n') + 1), 2048);
    free(text);
}

/* --- reopen ----------------------------------------------------------------------------------- */

TestSuite(reopen, .fini = fake_fini, .timeout = SUITE_TIMEOUT_S);

static void write_str(int fd, const char *s)
{
    tbp_log_write(fd, s, strlen(s));
}

/*
 * The descriptors this process has open, as a bit set of the first 1024 (the directory's own
 * descriptor left out). Which numbers a test runner leaves open differs between machines, so a
 * leak check compares two snapshots instead of guessing the next free number.
 */
struct fd_set_snap {
    unsigned char open[1024 / 8];
    int count;
};

static void snap_fds(struct fd_set_snap *s)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    cr_assert_not_null(d);
    memset(s, 0, sizeof(*s));
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);

        if (e->d_name[0] == '.' || *end != '\0' || fd == dirfd(d))
            continue;
        cr_assert(fd >= 0 && fd < 1024, "descriptor %ld out of range", fd);
        s->open[fd / 8] |= (unsigned char)(1u << (fd % 8));
        s->count++;
    }
    closedir(d);
}

static ino_t inode_of_fd(int fd)
{
    struct stat st;

    cr_assert_eq(fstat(fd, &st), 0);
    return st.st_ino;
}

Test(reopen, after_rename)
{
    char old_access[700], old_error[700], *a, *b;
    struct fd_set_snap before, after;
    int afd, efd, flags;
    struct stat st;

    umask(022);
    fake_start(TBP_LOG_COMBINED, 1);
    afd = px.access_fd;
    efd = px.error_fd;
    snap_fds(&before);
    write_str(px.access_fd, "access 1\n");
    tbp_log_error(&px, TBP_LOG_INFO, "error 1");
    snprintf(old_access, sizeof(old_access), "%s.1", access_path);
    snprintf(old_error, sizeof(old_error), "%s.1", error_path);
    cr_assert_eq(rename(access_path, old_access), 0);
    cr_assert_eq(rename(error_path, old_error), 0);
    write_str(px.access_fd, "access 2\n"); /* before the reopen: still the renamed file */
    cr_assert_eq(tbp_log_reopen(&px), 0);
    write_str(px.access_fd, "access 3\n");
    tbp_log_error(&px, TBP_LOG_INFO, "error 3");
    cr_assert_eq(px.access_fd, afd, "the descriptor number changed");
    cr_assert_eq(px.error_fd, efd);
    flags = fcntl(px.access_fd, F_GETFD);
    cr_assert(flags != -1 && (flags & FD_CLOEXEC), "FD_CLOEXEC lost");
    flags = fcntl(px.error_fd, F_GETFD);
    cr_assert(flags != -1 && (flags & FD_CLOEXEC), "FD_CLOEXEC lost");
    cr_assert_eq(stat(access_path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640);
    cr_assert_eq(inode_of_fd(px.access_fd), st.st_ino);
    a = read_text(old_access, NULL);
    b = read_text(access_path, NULL);
    cr_assert_str_eq(a, "access 1\naccess 2\n");
    cr_assert_str_eq(b, "access 3\n");
    free(a);
    free(b);
    a = read_text(old_error, NULL);
    b = read_text(error_path, NULL);
    cr_assert_not_null(strstr(a, "error 1\n"));
    cr_assert_null(strstr(a, "error 3"));
    cr_assert_not_null(strstr(b, "[info] logs reopened\n"), "%s", b);
    cr_assert_not_null(strstr(b, "error 3\n"));
    cr_assert_null(strstr(b, "error 1"));
    free(a);
    free(b);
    /* no descriptor leaked or lost: the same ones are open as before the reopen */
    snap_fds(&after);
    cr_assert_eq(after.count, before.count, "%d descriptors open, were %d", after.count,
                 before.count);
    cr_assert_eq(memcmp(after.open, before.open, sizeof(before.open)), 0,
                 "the set of open descriptors changed");
}

Test(reopen, failure_keeps_the_old_file)
{
    char sub[600], path[700], moved[700], *a, *e;

    fake_start(TBP_LOG_COMBINED, 0);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/access.log", sub);
    snprintf(moved, sizeof(moved), "%s/access.moved", dir);
    cfg.log.access = path;
    px.access_fd = open_append(path);
    write_str(px.access_fd, "before\n");
    cr_assert_eq(rename(path, moved), 0);
    cr_assert_eq(rmdir(sub), 0); /* the configured path cannot be created any more */
    cr_assert_eq(tbp_log_reopen(&px), -1);
    write_str(px.access_fd, "after\n");
    a = read_text(moved, NULL);
    cr_assert_str_eq(a, "before\nafter\n");
    e = read_text(error_path, NULL);
    cr_assert_not_null(strstr(e, "[error] cannot reopen the access log"), "%s", e);
    cr_assert_not_null(strstr(e, "No such file or directory"), "%s", e);
    cr_assert_null(strstr(e, "logs reopened"), "%s", e);
    free(a);
    free(e);
}

Test(reopen, standard_streams_and_off_untouched)
{
    int p[2], e[2], afd, efd;
    ino_t ai, ei;

    fake_start(TBP_LOG_COMBINED, 0);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(e, O_CLOEXEC), 0);
    close(px.error_fd);
    afd = px.access_fd = p[1];
    efd = px.error_fd = e[1];
    ai = inode_of_fd(afd);
    ei = inode_of_fd(efd);
    cfg.log.access = "-";
    cfg.log.error = "-";
    cr_assert_eq(tbp_log_reopen(&px), 0);
    cr_assert_eq(inode_of_fd(px.access_fd), ai);
    cr_assert_eq(inode_of_fd(px.error_fd), ei);
    cr_assert_eq(px.access_fd, afd);
    /* access log off */
    cfg.log.access = "";
    px.access_fd = -1;
    cr_assert_eq(tbp_log_reopen(&px), 0);
    cr_assert_eq(px.access_fd, -1);
    cr_assert_eq(access(access_path, F_OK), -1, "nothing created for a log that is off");
    close(p[0]);
    close(p[1]);
    close(e[0]);
    px.error_fd = -1;
    close(e[1]);
}

#define WRITERS 4
#define LINES_EACH 20000
#define REOPENS 50

static volatile int writers_go;

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg, i;
    char line[32];

    while (!__atomic_load_n(&writers_go, __ATOMIC_ACQUIRE))
        ;
    for (i = 0; i < LINES_EACH; i++) {
        int n = snprintf(line, sizeof(line), "w%d %06d\n", id, i);
        tbp_log_write(px.access_fd, line, (size_t)n);
    }
    return NULL;
}

/* Counts the lines of one file into seen[writer][line]; each must be whole. */
static void tally(const char *path, unsigned char (*seen)[LINES_EACH], size_t *total)
{
    char *text = read_text(path, NULL), *p = text;

    while (*p != '\0') {
        int id, k, used = 0;
        cr_assert_eq(sscanf(p, "w%d %d\n%n", &id, &k, &used), 2, "bad line at %.20s", p);
        cr_assert(id >= 0 && id < WRITERS && k >= 0 && k < LINES_EACH);
        cr_assert_eq(used, 10, "a cut or mixed line: %.20s", p);
        seen[id][k]++;
        (*total)++;
        p += 10;
    }
    free(text);
}

Test(reopen, concurrent_writers_lose_nothing)
{
    static unsigned char seen[WRITERS][LINES_EACH];
    pthread_t t[WRITERS];
    char moved[700];
    size_t total = 0, i, k;
    int r;

    fake_start(TBP_LOG_COMBINED, 1);
    for (i = 0; i < WRITERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
    __atomic_store_n(&writers_go, 1, __ATOMIC_RELEASE);
    for (r = 0; r < REOPENS; r++) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        snprintf(moved, sizeof(moved), "%s.%d", access_path, r);
        cr_assert_eq(rename(access_path, moved), 0);
        cr_assert_eq(tbp_log_reopen(&px), 0);
    }
    for (i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    tally(access_path, seen, &total);
    for (r = 0; r < REOPENS; r++) {
        snprintf(moved, sizeof(moved), "%s.%d", access_path, r);
        tally(moved, seen, &total);
    }
    cr_assert_eq(total, (size_t)WRITERS * LINES_EACH);
    for (i = 0; i < WRITERS; i++)
        for (k = 0; k < LINES_EACH; k++)
            cr_assert_eq(seen[i][k], 1, "line w%zu %zu seen %u times", i, k, seen[i][k]);
}

/* --- proxy: the real daemon ------------------------------------------------------------------- */

static struct tbt_world w;
static struct tbt_proc lp; /* tbproxy with its logs in files */
static int lp_port;
static struct tbt_tls tc;
static EVP_PKEY *tkey;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void proxy_fini(void)
{
    char home[700];

    tbt_tls_close(&tc);
    EVP_PKEY_free(tkey);
    tkey = NULL;
    if (lp.pid > 0 || lp.log[0] != '\0') {
        tbt_proc_stop(&lp);
        tbt_world_check_log(&lp);
    }
    memset(&lp, 0, sizeof(lp));
    if (w.dir[0] != '\0') {
        snprintf(home, sizeof(home), "%s/tbhome", w.dir);
        nftw(home, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    tbt_world_teardown(&w);
}

TestSuite(proxy, .fini = proxy_fini, .timeout = SUITE_TIMEOUT_S);

/* The world (origin), then tbproxy with access.log (format) and error.log in the world's dir. */
static void proxy_start(const char *format)
{
    char err[TBT_PROC_ERRLEN], home[700], *text = NULL;
    int attempt, rc = -1, n;

    tbt_world_start(&w, NULL);
    snprintf(access_path, sizeof(access_path), "%s/access.log", w.dir);
    snprintf(error_path, sizeof(error_path), "%s/error.log", w.dir);
    snprintf(home, sizeof(home), "%s/tbhome", w.dir);
    cr_assert_eq(setenv("TBCLIENT_HOME", home, 1), 0);
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        const char *args[] = {"-c", NULL, NULL};
        char conf[700];
        tbt_proc_stop(&lp);
        lp_port = tbt_port_free();
        cr_assert_gt(lp_port, 0);
        n = asprintf(&text,
                     "workers = 1;\n"
                     "listen = ( { address = \"127.0.0.1:%d\";\n"
                     "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
                     "token_binding = { enabled = true; version = \"draft\";\n"
                     "                  key_types = [ \"p256\", \"rsa2048\" ]; };\n"
                     "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ]; }; };\n"
                     "routes = ( { host = \"*\"; prefix = \"/\"; upstream = \"app\"; } );\n"
                     "log = { access = \"access.log\"; error = \"error.log\"; level = \"info\";\n"
                     "        format = \"%s\"; };\n"
                     "admin = { listen = \"\"; };\n",
                     lp_port, w.origin_port, format);
        cr_assert_gt(n, 0);
        cr_assert_eq(tbt_write_file(w.dir, "logproxy.conf", text, (size_t)n), 0);
        free(text);
        snprintf(conf, sizeof(conf), "%s/logproxy.conf", w.dir);
        args[1] = conf;
        rc = tbt_proc_start(&lp, tbt_world_bin(&w, "tbproxy"), args, w.dir, "logproxy", err,
                            sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        rc = tbt_proc_wait_port(&lp, (uint16_t)lp_port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        if (rc != 0 && tbt_proc_alive(&lp))
            break;
    }
    if (rc != 0) {
        char *log = tbt_proc_log(&lp, 4096), *elog = read_text(error_path, NULL);
        cr_assert_fail("tbproxy: %s\n%s\n%s", err, log != NULL ? log : "", elog);
    }
}

/* Waits up to 5 s for the file to hold n lines; returns its text (caller frees). */
static char *wait_lines(const char *path, size_t n)
{
    long long end = tbt_now_ms() + 5000;
    char *text;

    for (;;) {
        text = read_text(path, NULL);
        if (count_lines(text) >= n || tbt_now_ms() > end)
            return text;
        free(text);
        usleep(20000);
    }
}

/* Line i (0-based) of text, malloc'd with its newline. */
static char *nth_line(const char *text, size_t i)
{
    const char *p = text;
    size_t n;

    for (; i > 0; i--) {
        p = strchr(p, '\n');
        cr_assert_not_null(p);
        p++;
    }
    n = strcspn(p, "\n");
    cr_assert_eq(p[n], '\n');
    return strndup(p, n + 1);
}

/* The rest of the line after prefix in text, malloc'd; NULL when no line has it. */
static char *line_value(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);

    if (p == NULL)
        return NULL;
    p += strlen(prefix);
    return strndup(p, strcspn(p, "\r\n"));
}

/* tbclient -m 30 args...; returns its -v output (caller frees), which must say exit 0. */
static char *tbclient(const char *const *args)
{
    const char *argv[24];
    char *out = NULL;
    size_t n = 0;
    int st;

    argv[n++] = "-m";
    argv[n++] = "30";
    for (; *args != NULL && n < 23; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    st = tbt_world_run(&w, tbt_world_bin(&w, "tbclient"), argv, "tbclient", 60000, &out);
    cr_assert_not_null(out);
    cr_assert_eq(st, 0, "tbclient exit %d: %s", st, out);
    return out;
}

#define TBCLIENT(...) tbclient((const char *const[]){__VA_ARGS__, NULL})

static const char *url(const char *path)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "https://localhost:%d%s", lp_port, path);
    return buf;
}

/* The log files hold none of these (the IDs, the full tbh, header values). */
static void expect_absent(const char *what, const char *needle)
{
    char *a = read_text(access_path, NULL), *e = read_text(error_path, NULL);

    cr_expect_null(strstr(a, needle), "the access log holds the %s", what);
    cr_expect_null(strstr(e, needle), "the error log holds the %s", what);
    free(a);
    free(e);
}

Test(proxy, json_lines_for_token_binding_h1_h2_and_none)
{
    static const char ua[] = "tester \"q\" \\ caf\xc3\xa9";
    char key[700], upstream[64], *out1, *out2, *out3, *text, *line, *id, *tbh;
    const char *const protos[2] = {"HTTP/1.1", "HTTP/2.0"};
    json_t *doc;
    int i;

    proxy_start("json");
    snprintf(key, sizeof(key), "%s/client.pem", w.dir);
    snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", w.origin_port);
    out1 = TBCLIENT("-v", "-k", "--http1.1", "--key", key, "-A", ua, "-H",
                    "Referer: https://r.example/x", "-o", "/dev/null", url("/echo?a=1"));
    out2 = TBCLIENT("-v", "-k", "--http2", "--key", key, "-A", ua, "-o", "/dev/null",
                    url("/bytes/100"));
    out3 = TBCLIENT("-v", "-k", "--no-tb", "-o", "/dev/null", url("/status/404"));
    id = line_value(out1, "* Token Binding provided ID: ");
    tbh = line_value(out1, "* Token Binding provided tbh: ");
    cr_assert(id != NULL && tbh != NULL && strlen(tbh) == TB_TBH_LEN, "%s", out1);
    text = wait_lines(access_path, 3);
    cr_assert_eq(count_lines(text), 3, "%s", text);
    for (i = 0; i < 2; i++) {
        char prefix[TBP_XLOG_TBH + 1];
        line = nth_line(text, (size_t)i);
        doc = parse_json_line(line);
        expect_keys(doc);
        expect_jstr(doc, "remote_addr", "127.0.0.1");
        expect_jstr(doc, "method", "GET");
        expect_jstr(doc, "target", i == 0 ? "/echo?a=1" : "/bytes/100");
        expect_jstr(doc, "protocol", protos[i]);
        expect_jint(doc, "status", 200);
        expect_jstr(doc, "user_agent", ua);
        if (i == 0)
            expect_jstr(doc, "referer", "https://r.example/x");
        else
            expect_jnull(doc, "referer");
        expect_jstr(doc, "tb", "ok");
        expect_jstr(doc, "tb_key", "p256");
        memcpy(prefix, tbh, TBP_XLOG_TBH);
        prefix[TBP_XLOG_TBH] = '\0';
        expect_jstr(doc, "tbh_prefix", prefix);
        expect_jnull(doc, "cookies_kept");
        expect_jnull(doc, "jwt");
        expect_jstr(doc, "upstream", upstream);
        cr_assert(json_is_number(json_object_get(doc, "upstream_time")));
        cr_assert(json_is_number(json_object_get(doc, "request_time")));
        cr_assert_geq(json_number_value(json_object_get(doc, "request_time")),
                      json_number_value(json_object_get(doc, "upstream_time")));
        if (i == 1)
            expect_jint(doc, "bytes", 100);
        else
            cr_assert_gt(json_integer_value(json_object_get(doc, "bytes")), 0);
        json_decref(doc);
        free(line);
    }
    line = nth_line(text, 2);
    doc = parse_json_line(line);
    expect_jint(doc, "status", 404);
    expect_jstr(doc, "tb", "none");
    expect_jnull(doc, "tb_key");
    expect_jnull(doc, "tbh_prefix");
    json_decref(doc);
    free(line);
    free(text);
    expect_absent("provided ID", id);
    expect_absent("full tbh", tbh);
    /* the error log: ISO time with milliseconds and a level on every line */
    text = read_text(error_path, NULL);
    cr_assert_gt(count_lines(text), 0);
    expect_lines_match(text, "(\\[w[0-9]+\\] )?[ -~]+");
    free(text);
    free(out1);
    free(out2);
    free(out3);
    free(id);
    free(tbh);
}

/* The support client: hostile header bytes over a verified binding, then a bad header. */
Test(proxy, combined_lines_hostile_bytes_and_rejection)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1_tb_p256,http/1.1"};
    char hdr[TB_MAX_HEADER + 1], bad[TB_MAX_HEADER + 1], req[TB_MAX_HEADER + 512];
    char idb64[256], tbh[TB_TBH_LEN + 1], want_tb[128], *text, *line, *rej;
    uint8_t raw[256];
    struct tbt_http_response r = {0};
    int n;

    proxy_start("combined");
    cr_assert_eq(tb_key_generate(TB_KP_ECDSAP256, &tkey), 0);
    cr_assert_gt(tbt_tb_id_b64(TB_KP_ECDSAP256, tkey, idb64, sizeof(idb64)), 0);
    n = tb_base64url_decode(idb64, strlen(idb64), raw, sizeof(raw));
    cr_assert_gt(n, 0);
    cr_assert_eq(tb_tbh(raw, (size_t)n, tbh, sizeof(tbh)), TB_TBH_LEN);
    cr_assert_eq(tbt_tls_connect(&tc, (uint16_t)lp_port, &o), 0, "%s", tc.err);
    cr_assert_str_eq(tc.alpn, "http/1.1_tb_p256");
    cr_assert_gt(tbt_tls_tb_header(&tc, TB_KP_ECDSAP256, tkey, -1, NULL, hdr, sizeof(hdr)), 0);
    n = snprintf(req, sizeof(req),
                 "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
                 "User-Agent: ua \"x\" \\ \x80\xff\xc3\xa9\r\n"
                 "Referer: https://r.example/\t\"\r\nToken-Binding: %s\r\n\r\n",
                 hdr);
    cr_assert_eq(tbt_tls_send(&tc, req, (size_t)n), 0, "%s", tc.err);
    cr_assert_eq(tbt_tls_read_response(&tc, &r, 0, 0), 0, "%s", tc.err);
    cr_assert_eq(r.status, 200);
    tbt_http_response_dispose(&r);
    /* a header that does not verify: 400 and the reason */
    snprintf(bad, sizeof(bad), "%s", hdr);
    bad[strlen(bad) / 2] = bad[strlen(bad) / 2] == 'A' ? 'B' : 'A';
    n = snprintf(req, sizeof(req),
                 "GET /echo HTTP/1.1\r\nHost: localhost\r\nToken-Binding: %s\r\n\r\n", bad);
    cr_assert_eq(tbt_tls_send(&tc, req, (size_t)n), 0, "%s", tc.err);
    cr_assert_eq(tbt_tls_read_response(&tc, &r, 0, 0), 0, "%s", tc.err);
    cr_assert_eq(r.status, 400);
    tbt_http_response_dispose(&r);
    text = wait_lines(access_path, 2);
    cr_assert_eq(count_lines(text), 2, "%s", text);
    line = nth_line(text, 0);
    {
        char want[512];
        cr_assert_not_null(strstr(line, "] \"GET /echo HTTP/1.1\" 200 "), "%s", line);
        cr_assert_not_null(strstr(line, "\"https://r.example/\\x09\\\"\" "
                                        "\"ua \\\"x\\\" \\\\ \\x80\\xff\\xc3\\xa9\" h1 tb=ok "
                                        "tbkey=p256 tbh="),
                           "%s", line);
        snprintf(want, sizeof(want), " tbh=%.12s up=127.0.0.1:%d ut=", tbh, w.origin_port);
        cr_assert_not_null(strstr(line, want), "%s", line);
        cr_assert_not_null(strstr(line, " ck=- setck=- jwt=-\n"), "%s", line);
        cr_assert_eq(strncmp(line, "127.0.0.1 - - [", 15), 0, "%s", line);
    }
    free(line);
    line = nth_line(text, 1);
    free(text);
    text = read_text(error_path, NULL);
    rej = line_value(text, "token binding rejected: ");
    cr_assert_not_null(rej, "%s", text);
    snprintf(want_tb, sizeof(want_tb), " tb=%s tbkey=p256 tbh=- up=- ut=- rt=", rej);
    cr_assert_not_null(strstr(line, "\"GET /echo HTTP/1.1\" 400 "), "%s", line);
    cr_assert_not_null(strstr(line, want_tb), "%s", line);
    free(line);
    free(text);
    free(rej);
    expect_absent("provided ID", idb64);
    expect_absent("full tbh", tbh);
    expect_absent("Token-Binding header", hdr);
    expect_absent("bad Token-Binding header", bad);
}

/* logrotate: rename both files, SIGUSR1, and the next lines go to new files at the same paths. */
Test(proxy, sigusr1_reopens_the_logs)
{
    char old_access[700], old_error[700], *a, *b, *e;
    long long end;

    proxy_start("combined");
    free(TBCLIENT("-k", "--no-tb", "-o", "/dev/null", url("/before")));
    a = wait_lines(access_path, 1);
    cr_assert_eq(count_lines(a), 1, "%s", a);
    free(a);
    snprintf(old_access, sizeof(old_access), "%s.1", access_path);
    snprintf(old_error, sizeof(old_error), "%s.1", error_path);
    cr_assert_eq(rename(access_path, old_access), 0);
    cr_assert_eq(rename(error_path, old_error), 0);
    cr_assert_eq(kill(lp.pid, SIGUSR1), 0);
    for (end = tbt_now_ms() + 5000;; usleep(20000)) {
        e = read_text(error_path, NULL);
        if (strstr(e, "logs reopened") != NULL || tbt_now_ms() > end)
            break;
        free(e);
    }
    cr_assert_not_null(strstr(e, "[info] logs reopened\n"), "no reopen in the new error log: %s",
                       e);
    free(e);
    free(TBCLIENT("-k", "--no-tb", "-o", "/dev/null", url("/after")));
    b = wait_lines(access_path, 1);
    a = read_text(old_access, NULL);
    cr_assert_eq(count_lines(a), 1, "%s", a);
    cr_assert_not_null(strstr(a, "\"GET /before HTTP/"), "%s", a);
    cr_assert_eq(count_lines(b), 1, "%s", b);
    cr_assert_not_null(strstr(b, "\"GET /after HTTP/"), "%s", b);
    free(a);
    free(b);
    e = read_text(old_error, NULL);
    cr_assert_not_null(strstr(e, "listening on"), "%s", e);
    cr_assert_null(strstr(e, "logs reopened"), "%s", e);
    free(e);
    cr_assert(tbt_proc_alive(&lp), "tbproxy died on SIGUSR1");
}
