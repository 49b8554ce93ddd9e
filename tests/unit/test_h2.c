/*
 * Integration tests of tbproxy's HTTP/2 front end (ALPN h2, h2_tb_p256, h2_tb_rsa2048).
 *
 * Each test builds a world (tests/support/world.h: a certificate, tborigin, tbproxy on a free
 * port) and drives the proxy over HTTP/2: with real clients spawned without a shell (curl
 * --http2, nghttp, h2load) and with the support client (tests/support/h2test.h: nghttp2 over
 * the tlsclient TLS connection, so a Token Binding connection's tls_unique signs the header).
 * Assertions are on what the client received (status per stream, GOAWAY, the connection
 * closing) and on what the origin saw: /echo answers the request's headers (names lower-cased)
 * and body length and SHA-256.
 *
 * Token Binding on h2 is the same check as on HTTP/1.1, on every request: a valid header is
 * replaced by Sec-Provided-/Sec-Referred-Token-Binding-ID toward the origin; a failure answers
 * 400 on that stream and then GOAWAY, and the proxy closes the connection; client-supplied
 * Sec-*-Token-Binding-ID fields never reach the origin.
 *
 * Every client operation has a deadline, every test a Criterion timeout; the .fini tears the
 * world down and kills whatever child is left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "h2test.h"
#include "proc.h"
#include "tb/tb.h"
#include "tlsclient.h"
#include "world.h"

#define SUITE_TIMEOUT_S 90
#define RUN_MS 15000 /* one exchange, however many streams */
#define HDR_CAP (TB_MAX_HEADER + 1)
#define ID_CAP 1024

#define ALPN_TB_P256 "h2_tb_p256,h2"
#define ALPN_TB_RSA "h2_tb_rsa2048,h2"

static struct tbt_world w;

/* What a test holds, kept where the .fini finds it: a failed assertion ends the test at once,
 * and the .fini releases what it left (so a failure is not followed by leak reports). */
static struct tbt_h2 clients[2];
static EVP_PKEY *keys[128];
static size_t n_keys;
static void *blocks[4];
static size_t n_blocks;

static void teardown(void)
{
    size_t i;

    for (i = 0; i < sizeof(clients) / sizeof(clients[0]); i++)
        tbt_h2_close(&clients[i]);
    for (i = 0; i < n_keys; i++)
        EVP_PKEY_free(keys[i]);
    for (i = 0; i < n_blocks; i++)
        free(blocks[i]);
    n_keys = n_blocks = 0;
    tbt_world_teardown(&w);
}

TestSuite(h2, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- helpers -------------------------------------------------------------------------------- */

static const char *proxy_log(void)
{
    return tbt_world_proxy_log(&w);
}

static void connect_h2(struct tbt_h2 *h, const struct tbt_h2_opts *o)
{
    cr_assert_eq(tbt_h2_connect(h, (uint16_t)w.proxy_port, o), 0, "h2 connect: %s; proxy log: %s",
                 h->err, proxy_log());
}

/* An h2 connection that negotiated Token Binding with expect_id (so TLS 1.2 with EMS). */
static void connect_tb(struct tbt_h2 *h, const char *offer, const char *expect_id)
{
    struct tbt_h2_opts o = {.alpn = offer};

    connect_h2(h, &o);
    cr_assert_str_eq(h->tls.alpn, expect_id, "ALPN %s selected for the offer %s", h->tls.alpn,
                     offer);
    cr_assert_eq(h->tls.version, TLS1_2_VERSION, "TB connection is not TLS 1.2 (%#x)",
                 (unsigned)h->tls.version);
    cr_assert(h->tls.ems, "TB connection without EMS");
    cr_assert(h->tls.has_tls_unique);
}

/* A new key of type kp, freed by the .fini. */
static EVP_PKEY *key_new(int kp)
{
    EVP_PKEY *k = NULL;

    cr_assert_lt(n_keys, sizeof(keys) / sizeof(keys[0]));
    cr_assert_eq(tb_key_generate(kp, &k), 0);
    keys[n_keys++] = k;
    return k;
}

/* p (malloc'd, may be NULL) is freed by the .fini. */
static void *keep(void *p)
{
    cr_assert_lt(n_blocks, sizeof(blocks) / sizeof(blocks[0]));
    blocks[n_blocks++] = p;
    return p;
}

static void id_b64(int kp, EVP_PKEY *key, char *out)
{
    cr_assert_gt(tbt_tb_id_b64(kp, key, out, ID_CAP), 0);
}

/* The Token-Binding value for a provided (and optional referred) binding on h's tls_unique. */
static void tb_header(struct tbt_h2 *h, int kp, EVP_PKEY *key, int rkp, EVP_PKEY *rkey, char *out)
{
    cr_assert_gt(tbt_tls_tb_header(&h->tls, kp, key, rkp, rkey, out, HDR_CAP), 0,
                 "tbt_tls_tb_header: %s", h->tls.err);
}

static int32_t submit(struct tbt_h2 *h, const char *method, const char *path,
                      const char *const *extra, const void *body, size_t len)
{
    int32_t id = tbt_h2_submit(h, method, path, extra, body, len);

    cr_assert_gt(id, 0, "submit %s %s: %s", method, path, h->err);
    return id;
}

/* Runs h until stream id is closed; returns the stream. */
static struct tbt_h2_stream *run_one(struct tbt_h2 *h, int32_t id)
{
    cr_assert_eq(tbt_h2_run(h, &id, 1, RUN_MS), 0, "stream %d: %s; proxy log: %s", (int)id, h->err,
                 proxy_log());
    return tbt_h2_stream(h, id);
}

/* GET path with the extra fields, run to completion. */
static struct tbt_h2_stream *get(struct tbt_h2 *h, const char *path, const char *const *extra)
{
    return run_one(h, submit(h, "GET", path, extra, NULL, 0));
}

/* The JSON document of a complete /echo response (200 expected); the caller decrefs it. */
static json_t *echo_doc(const struct tbt_h2_stream *st)
{
    json_error_t e;
    json_t *doc;

    cr_assert_eq(st->status, 200, "stream %d: status %d, expected 200: %s; proxy log: %s",
                 (int)st->id, st->status, (const char *)st->body, proxy_log());
    cr_assert(st->end_stream, "stream %d: the response did not end (close code %u)", (int)st->id,
              (unsigned)st->close_error);
    doc = json_loadb((const char *)st->body, st->body_len, 0, &e);
    cr_assert(json_is_object(doc), "stream %d: /echo body is not JSON (%s): %s", (int)st->id,
              e.text, (const char *)st->body);
    return doc;
}

/* The origin's view of header `name`: its string value or NULL; more than once fails. */
static const char *origin_header(json_t *doc, const char *name)
{
    json_t *v = json_object_get(json_object_get(doc, "headers"), name);

    if (v == NULL)
        return NULL;
    cr_assert(json_is_string(v), "the origin got %s more than once or not as a string", name);
    return json_string_value(v);
}

/* The origin saw exactly these IDs (NULL: absent) and no Token-Binding header. */
static void expect_ids(json_t *doc, const char *provided, const char *referred, const char *what)
{
    const char *p = origin_header(doc, "sec-provided-token-binding-id");
    const char *r = origin_header(doc, "sec-referred-token-binding-id");

    if (provided == NULL)
        cr_expect_null(p, "%s: origin got sec-provided-token-binding-id \"%s\"", what, p);
    else
        cr_expect(p != NULL && strcmp(p, provided) == 0,
                  "%s: origin got sec-provided-token-binding-id \"%s\", expected \"%s\"", what,
                  p != NULL ? p : "(none)", provided);
    if (referred == NULL)
        cr_expect_null(r, "%s: origin got sec-referred-token-binding-id \"%s\"", what, r);
    else
        cr_expect(r != NULL && strcmp(r, referred) == 0,
                  "%s: origin got sec-referred-token-binding-id \"%s\", expected \"%s\"", what,
                  r != NULL ? r : "(none)", referred);
    cr_expect_null(origin_header(doc, "token-binding"), "%s: Token-Binding reached the origin",
                   what);
}

/* GET /echo with the fields; the origin must have seen the given IDs. */
static void echo_expect_ids(struct tbt_h2 *h, const char *const *extra, const char *provided,
                            const char *referred, const char *what)
{
    json_t *doc = echo_doc(get(h, "/echo", extra));

    expect_ids(doc, provided, referred, what);
    json_decref(doc);
}

/*
 * The request on stream id was rejected: 400 on the stream, then GOAWAY (naming a last stream
 * at or after it), then the proxy closes the connection.
 */
static void expect_rejected(struct tbt_h2 *h, int32_t id, const char *what)
{
    struct tbt_h2_stream *st = run_one(h, id);
    int closed;

    cr_expect_eq(st->status, 400, "%s: status %d, expected 400: %s", what, st->status,
                 (const char *)st->body);
    closed = tbt_h2_wait_closed(h, 5000);
    cr_expect(h->goaway, "%s: no GOAWAY after the 400", what);
    cr_expect_geq(h->goaway_last_stream, id, "%s: GOAWAY names last stream %d before stream %d",
                  what, (int)h->goaway_last_stream, (int)id);
    cr_expect_eq(closed, 1, "%s: the proxy did not close the connection after GOAWAY (%s)", what,
                 closed == 0 ? "still open after 5 s" : h->err);
}

/* --- real clients --------------------------------------------------------------------------- */

/* The whole file at path (up to 1 MiB), NUL-terminated, malloc'd; NULL if it cannot be read. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc((1u << 20) + 1);

    *len = 0;
    if (f == NULL || buf == NULL) {
        if (f != NULL)
            fclose(f);
        free(buf);
        return NULL;
    }
    *len = fread(buf, 1, 1u << 20, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

Test(h2, curl_http2, .description = "curl --http2 -sk: HTTP/2 through the proxy, spoof stripped")
{
    char url[128], out[700], *log, *body;
    const char *args[] = {"--http2",
                          "-sS",
                          "-k",
                          "--max-time",
                          "10",
                          "-o",
                          out,
                          "-w",
                          "%{http_code} %{http_version}\\n",
                          "-H",
                          "Sec-Provided-Token-Binding-ID: c3Bvb2ZlZA",
                          url,
                          NULL};
    json_t *doc;
    json_error_t je;
    size_t len;
    int st;

    tbt_world_start(&w, NULL);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo?from=curl", w.proxy_port);
    snprintf(out, sizeof(out), "%s/curl.out", w.dir);
    st = tbt_world_run(&w, "curl", args, "curl", 15000, &log);
    keep(log);
    cr_assert_eq(st, 0, "curl exit status %d: %s; proxy log: %s", st, log, proxy_log());
    cr_expect_str_eq(log, "200 2\n", "curl (status, HTTP version): %s", log);

    body = keep(read_text(out, &len));
    cr_assert_not_null(body, "%s: %s", out, strerror(errno));
    doc = json_loadb(body, len, 0, &je);
    cr_assert(json_is_object(doc), "curl got no JSON: %s", body);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "query")), "from=curl");
    cr_expect_null(
        json_object_get(json_object_get(doc, "headers"), "sec-provided-token-binding-id"),
        "a spoofed ID from curl reached the origin");
    json_decref(doc);
}

/* How many times needle occurs in text. */
static int count_of(const char *text, const char *needle)
{
    const char *p = text;
    int n = 0;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

Test(h2, nghttp, .description = "nghttp -n: two requests on one h2 connection, both 200")
{
    char u1[128], u2[128], *log;
    const char *args[] = {"-n", "-v", "-t", "10", u1, u2, NULL};
    int st;

    tbt_world_start(&w, NULL);
    snprintf(u1, sizeof(u1), "https://127.0.0.1:%d/echo?n=1", w.proxy_port);
    snprintf(u2, sizeof(u2), "https://127.0.0.1:%d/bytes/100000", w.proxy_port);
    st = tbt_world_run(&w, "nghttp", args, "nghttp", 15000, &log);
    keep(log);
    cr_assert_eq(st, 0, "nghttp exit status %d: %.3000s; proxy log: %s", st, log, proxy_log());
    cr_expect_eq(count_of(log, ") :status: 200"), 2, "not two 200s: %.3000s", log);
    cr_expect_eq(count_of(log, ":status: "), 2, "not two responses: %.3000s", log);
    cr_expect_null(strstr(log, "recv GOAWAY"), "the proxy sent GOAWAY: %.3000s", log);
}

/* --- Token Binding -------------------------------------------------------------------------- */

Test(h2, tb_provided, .description = "h2_tb_p256: a valid provided binding reaches the origin")
{
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[ID_CAP];

    tbt_world_start(&w, NULL);
    id_b64(TB_KP_ECDSAP256, k, id);
    connect_tb(h, ALPN_TB_P256, "h2_tb_p256");
    tb_header(h, TB_KP_ECDSAP256, k, 0, NULL, tb);
    {
        const char *extra[] = {"token-binding", tb, NULL};

        echo_expect_ids(h, extra, id, NULL, "provided");
    }
    cr_expect_not(h->goaway, "GOAWAY after a valid binding");
    tbt_h2_close(h);
}

Test(h2, tb_rsa2048, .description = "h2_tb_rsa2048: a valid RSA provided binding")
{
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_RSA2048_PKCS1);
    char tb[HDR_CAP], id[ID_CAP];

    tbt_world_start(&w, NULL);
    id_b64(TB_KP_RSA2048_PKCS1, k, id);
    connect_tb(h, ALPN_TB_RSA, "h2_tb_rsa2048");
    tb_header(h, TB_KP_RSA2048_PKCS1, k, 0, NULL, tb);
    {
        const char *extra[] = {"token-binding", tb, NULL};

        echo_expect_ids(h, extra, id, NULL, "rsa2048 provided");
    }
    tbt_h2_close(h);
}

Test(h2, tb_provided_referred, .description = "provided + referred: both IDs reach the origin")
{
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256), *r = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[ID_CAP], rid[ID_CAP];

    tbt_world_start(&w, NULL);
    id_b64(TB_KP_ECDSAP256, k, id);
    id_b64(TB_KP_ECDSAP256, r, rid);
    connect_tb(h, ALPN_TB_P256, "h2_tb_p256");
    tb_header(h, TB_KP_ECDSAP256, k, TB_KP_ECDSAP256, r, tb);
    {
        const char *extra[] = {"token-binding", tb, NULL};

        echo_expect_ids(h, extra, id, rid, "provided + referred");
    }
    tbt_h2_close(h);
}

#define REPEATS 50

Test(h2, tb_same_header_many_requests,
     .description = "the same Token-Binding header on 50 requests, one after the other")
{
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[ID_CAP], what[32];
    const char *extra[] = {"token-binding", tb, NULL};
    int i;

    tbt_world_start(&w, NULL);
    id_b64(TB_KP_ECDSAP256, k, id);
    connect_tb(h, ALPN_TB_P256, "h2_tb_p256");
    tb_header(h, TB_KP_ECDSAP256, k, 0, NULL, tb);
    for (i = 0; i < REPEATS; i++) {
        snprintf(what, sizeof(what), "request %d", i + 1);
        echo_expect_ids(h, extra, id, NULL, what);
    }
    cr_expect_not(h->goaway);
    tbt_h2_close(h);
}

/*
 * A connection with no stream open for half a second gives back the pages of nghttp2's frame
 * buffer (h2.c, "Memory"); whatever is written there afterwards goes out intact: response heads,
 * DATA frames filling the whole buffer, several streams at once, on a Token Binding connection
 * whose header is checked on every request. Idle pauses of 0.8 s between the rounds.
 */
Test(h2, idle_frame_buffer_release,
     .description = "after idle pauses, heads and full-size DATA frames go out intact")
{
    struct tbt_h2 *h = &clients[0];
    struct tbt_h2_opts o = {.alpn = ALPN_TB_P256, .max_body = 100000};
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[ID_CAP], what[48];
    const char *extra[] = {"token-binding", tb, NULL};
    struct tbt_h2_stream *st;
    int32_t ids[4];
    size_t i, bad;
    int round, j;

    tbt_world_start(&w, NULL);
    id_b64(TB_KP_ECDSAP256, k, id);
    connect_h2(h, &o);
    cr_assert_str_eq(h->tls.alpn, "h2_tb_p256");
    tb_header(h, TB_KP_ECDSAP256, k, 0, NULL, tb);
    for (round = 0; round < 3; round++) {
        usleep(800 * 1000); /* idle: the frame buffer's pages go */
        snprintf(what, sizeof(what), "round %d: /echo", round + 1);
        echo_expect_ids(h, extra, id, NULL, what);
        st = get(h, "/bytes/100000", extra);
        cr_assert_eq(st->status, 200, "round %d: /bytes: status %d", round + 1, st->status);
        cr_assert(st->end_stream, "round %d: /bytes did not end", round + 1);
        cr_assert_eq(st->body_total, 100000, "round %d: %zu bytes", round + 1, st->body_total);
        for (i = 0, bad = 0; i < st->body_len; i++)
            bad += st->body[i] != (unsigned char)('a' + i % 26);
        cr_assert_eq(bad, 0, "round %d: %zu bytes differ from the pattern", round + 1, bad);
        usleep(800 * 1000);
        for (j = 0; j < 4; j++)
            ids[j] = submit(h, "GET", j % 2 ? "/bytes/40000" : "/echo", extra, NULL, 0);
        cr_assert_eq(tbt_h2_run(h, ids, 4, RUN_MS), 0, "%s; proxy log: %s", h->err, proxy_log());
        for (j = 0; j < 4; j++) {
            st = tbt_h2_stream(h, ids[j]);
            cr_assert_eq(st->status, 200, "round %d stream %d: status %d", round + 1, j,
                         st->status);
            cr_assert(st->end_stream);
            if (j % 2 == 0) {
                json_t *doc = echo_doc(st);
                snprintf(what, sizeof(what), "round %d: concurrent /echo", round + 1);
                expect_ids(doc, id, NULL, what);
                json_decref(doc);
                continue;
            }
            cr_assert_eq(st->body_total, 40000);
            for (i = 0, bad = 0; i < st->body_len; i++)
                bad += st->body[i] != (unsigned char)('a' + i % 26);
            cr_assert_eq(bad, 0, "round %d stream %d: %zu bytes differ", round + 1, j, bad);
        }
    }
    cr_expect_not(h->goaway);
    tbt_h2_close(h);
}

Test(h2, tb_invalid_signature, .description = "a bad signature: 400 on the stream, GOAWAY, close")
{
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], err[256];
    const char *extra[] = {"token-binding", tb, NULL};
    uint8_t chan[TB_TLS_UNIQUE_LEN];
    int32_t id;

    tbt_world_start(&w, NULL);
    connect_tb(h, ALPN_TB_P256, "h2_tb_p256");
    /* first a valid request: the connection works */
    tb_header(h, TB_KP_ECDSAP256, k, 0, NULL, tb);
    cr_assert_eq(get(h, "/healthz", extra)->status, 200, "valid binding: proxy log: %s",
                 proxy_log());
    /* then one signed over a different channel value */
    memcpy(chan, h->tls.tls_unique, sizeof(chan));
    chan[0] ^= 0x01;
    cr_assert_gt(tbt_tb_header(TB_KP_ECDSAP256, k, 0, NULL, chan, sizeof(chan), tb, sizeof(tb), err,
                               sizeof(err)),
                 0, "%s", err);
    id = submit(h, "GET", "/echo", extra, NULL, 0);
    expect_rejected(h, id, "signature over the wrong channel");
    tbt_h2_close(h);
}

Test(h2, tb_missing_header, .description = "a TB connection's request without the header: 400")
{
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP];
    const char *extra[] = {"token-binding", tb, NULL};

    tbt_world_start(&w, NULL);
    connect_tb(h, ALPN_TB_P256, "h2_tb_p256");
    tb_header(h, TB_KP_ECDSAP256, k, 0, NULL, tb);
    cr_assert_eq(get(h, "/healthz", extra)->status, 200, "valid binding: proxy log: %s",
                 proxy_log());
    /* spec: on a TB connection every request carries the header */
    expect_rejected(h, submit(h, "GET", "/echo", NULL, NULL, 0), "request without the header");
    tbt_h2_close(h);
}

Test(h2, tb_header_without_tb,
     .description = "Token-Binding on a plain h2 connection: 400 + GOAWAY")
{
    struct tbt_h2 *h = &clients[0], *t = &clients[1];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP];
    const char *extra[] = {"token-binding", tb, NULL};
    struct tbt_h2_opts plain = {.alpn = "h2"};

    tbt_world_start(&w, NULL);
    /* a header that would be valid on its own TB connection... */
    connect_tb(t, ALPN_TB_P256, "h2_tb_p256");
    tb_header(t, TB_KP_ECDSAP256, k, 0, NULL, tb);
    tbt_h2_close(t);
    /* ...sent on a connection that did not negotiate Token Binding */
    connect_h2(h, &plain);
    cr_assert_str_eq(h->tls.alpn, "h2");
    expect_rejected(h, submit(h, "GET", "/echo", extra, NULL, 0), "TB header on plain h2");
    tbt_h2_close(h);
}

Test(h2, spoofed_ids_stripped,
     .description = "client Sec-*-Token-Binding-ID never reach the origin")
{
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char tb[HDR_CAP], id[ID_CAP];
    const char *spoof_tb[] = {"token-binding",
                              tb,
                              "sec-provided-token-binding-id",
                              "c3Bvb2ZlZA",
                              "sec-referred-token-binding-id",
                              "c3Bvb2ZlZDI",
                              NULL};
    const char *spoof_only[] = {"sec-provided-token-binding-id", "c3Bvb2ZlZA",
                                "sec-referred-token-binding-id", "c3Bvb2ZlZDI", NULL};
    struct tbt_h2_opts plain = {.alpn = "h2"};

    tbt_world_start(&w, NULL);
    id_b64(TB_KP_ECDSAP256, k, id);
    connect_tb(h, ALPN_TB_P256, "h2_tb_p256");
    tb_header(h, TB_KP_ECDSAP256, k, 0, NULL, tb);
    echo_expect_ids(h, spoof_tb, id, NULL, "TB request with spoofed IDs");
    tbt_h2_close(h);

    connect_h2(h, &plain);
    echo_expect_ids(h, spoof_only, NULL, NULL, "spoofed IDs on plain h2");
    cr_expect_not(h->goaway);
    tbt_h2_close(h);
}

#define CONCURRENT 100

/*
 * 100 streams at once on one TB connection (the proxy's MAX_CONCURRENT_STREAMS): even streams
 * carry the same provided-only header, odd ones the provided key plus a referred key of their
 * own, so a response that answers another stream's request shows as a wrong referred ID.
 */
Test(h2, tb_100_concurrent_streams, .description = "100 concurrent TB streams: all 200, right IDs")
{
    static char tbs[CONCURRENT][HDR_CAP], rids[CONCURRENT][ID_CAP];
    struct tbt_h2 *h = &clients[0];
    EVP_PKEY *k = key_new(TB_KP_ECDSAP256);
    char id[ID_CAP], path[64], what[64];
    const char *extra[CONCURRENT][3];
    int32_t ids[CONCURRENT];
    int i;

    tbt_world_start(&w, NULL);
    id_b64(TB_KP_ECDSAP256, k, id);
    connect_tb(h, ALPN_TB_P256, "h2_tb_p256");
    for (i = 0; i < CONCURRENT; i++) {
        if (i % 2 == 0) {
            tb_header(h, TB_KP_ECDSAP256, k, 0, NULL, tbs[i]);
            rids[i][0] = '\0';
        } else {
            EVP_PKEY *r = key_new(TB_KP_ECDSAP256);

            tb_header(h, TB_KP_ECDSAP256, k, TB_KP_ECDSAP256, r, tbs[i]);
            id_b64(TB_KP_ECDSAP256, r, rids[i]);
        }
        extra[i][0] = "token-binding";
        extra[i][1] = tbs[i];
        extra[i][2] = NULL;
        snprintf(path, sizeof(path), "/echo?i=%d", i);
        ids[i] = submit(h, "GET", path, extra[i], NULL, 0);
    }
    cr_assert_eq(tbt_h2_run(h, ids, CONCURRENT, 30000), 0, "%s; proxy log: %s", h->err,
                 proxy_log());
    for (i = 0; i < CONCURRENT; i++) {
        json_t *doc = echo_doc(tbt_h2_stream(h, ids[i]));
        const char *q = json_string_value(json_object_get(doc, "query"));
        char want[16];

        snprintf(want, sizeof(want), "i=%d", i);
        cr_expect(q != NULL && strcmp(q, want) == 0, "stream %d answers %s, expected %s",
                  (int)ids[i], q ? q : "(null)", want);
        snprintf(what, sizeof(what), "stream %d", (int)ids[i]);
        expect_ids(doc, id, rids[i][0] ? rids[i] : NULL, what);
        json_decref(doc);
    }
    cr_expect_not(h->goaway, "GOAWAY (code %u)", (unsigned)h->goaway_error);
    tbt_h2_close(h);
}

/* --- bodies and flow control ---------------------------------------------------------------- */

#define DOWNLOAD_BYTES 20000000u
#define DOWNLOAD_GROWTH_KIB (DOWNLOAD_BYTES / 1024 / 4) /* a quarter of the body */

/*
 * A 20 MB download read by a client that opens its window 32 KiB at a time every 5 ms: the
 * origin is much faster, so the proxy must stop reading it rather than buffer the body. Every
 * byte arrives, and the proxy's peak memory grows by far less than the body.
 *
 * Under ASan freed memory waits in a quarantine (8 MiB here, as in test_proxy.c) that fills
 * with whatever the proxy frees (TLS records, buffers) and shows as growth of several MiB
 * whatever the body size; a first full-speed download fills it before the measurement.
 */
Test(h2, slow_reader_large_download, .description = "/bytes/20000000 to a slow reader")
{
    struct tbt_h2 *h = &clients[0], *warm = &clients[1];
    struct tbt_h2_opts o = {.alpn = "h2",
                            .max_body = DOWNLOAD_BYTES,
                            .window = 32768,
                            .slow_read_bytes = 32768,
                            .slow_read_delay_ms = 5};
    struct tbt_h2_opts fast = {.alpn = "h2", .max_body = 1};
    struct tbt_h2_stream *st;
    long before, after;
    size_t i, bad = 0;
    char path[64];
    int32_t id;

    setenv("ASAN_OPTIONS", "quarantine_size_mb=8:thread_local_quarantine_size_kb=256", 1);
    tbt_world_start(&w, NULL);
    snprintf(path, sizeof(path), "/bytes/%u", DOWNLOAD_BYTES);
    connect_h2(warm, &fast);
    st = get(warm, path, NULL);
    cr_assert_eq(st->body_total, DOWNLOAD_BYTES, "warm-up download: %zu bytes", st->body_total);
    tbt_h2_close(warm);

    connect_h2(h, &o);
    cr_assert_eq(get(h, "/healthz", NULL)->status, 200);
    before = tbt_world_peak_rss_kib(w.proxy.pid);
    cr_assert_gt(before, 0);
    id = submit(h, "GET", path, NULL, NULL, 0);
    cr_assert_eq(tbt_h2_run(h, &id, 1, 60000), 0, "%s; proxy log: %s", h->err, proxy_log());
    st = tbt_h2_stream(h, id);
    after = tbt_world_peak_rss_kib(w.proxy.pid);
    cr_expect_eq(st->status, 200);
    cr_expect(st->end_stream, "the download did not end cleanly (close code %u, RST %d)",
              (unsigned)st->close_error, st->rst_received);
    cr_expect_eq(st->body_total, DOWNLOAD_BYTES, "got %zu bytes, expected %u", st->body_total,
                 DOWNLOAD_BYTES);
    for (i = 0; i < st->body_len; i++)
        bad += st->body[i] != (unsigned char)('a' + i % 26);
    cr_expect_eq(bad, 0, "%zu bytes differ from the pattern", bad);
    cr_expect_lt(after - before, DOWNLOAD_GROWTH_KIB,
                 "a 20 MB download to a slow reader grew the proxy's peak memory by %ld KiB",
                 after - before);
    cr_log_info("slow download: proxy VmHWM %ld -> %ld KiB", before, after);
    /* the connection goes on */
    cr_expect_eq(get(h, "/healthz", NULL)->status, 200);
    tbt_h2_close(h);
}

/*
 * The proxy stops reading the origin once a stream has STREAM_HIGH (128 KiB) buffered for a
 * client whose window is shut. Here the client's window is 16 KiB and never given back until
 * it opens by 4 MiB at once: the proxy drains its buffer, resumes the origin, reads the rest of
 * the body and its end in one go, and the stream completes inside that resumption.
 */
Test(h2, window_opens_after_pause, .description = "a paused stream completes when the window opens")
{
    struct tbt_h2 *h = &clients[0];
    struct tbt_h2_opts o = {
        .alpn = "h2", .window = 16384, .slow_read_bytes = 1, .slow_read_delay_ms = 1000};
    struct tbt_h2_stream *st;
    static const unsigned sizes[] = {150000, 140000, 200000, 300000};
    size_t i, k, bad;
    char path[64];
    int32_t id;

    tbt_world_start(&w, NULL);
    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        connect_h2(h, &o);
        snprintf(path, sizeof(path), "/bytes/%u", sizes[k]);
        id = submit(h, "GET", path, NULL, NULL, 0);
        /* the proxy fills its stream buffer and pauses the origin; nothing more can come */
        cr_assert_eq(tbt_h2_run(h, &id, 1, 500), -1, "stream ended with a shut window");
        st = tbt_h2_stream(h, id);
        cr_assert_eq(st->status, 200, "%s: status %d; proxy log: %s", path, st->status,
                     proxy_log());
        cr_assert_leq(st->body_total, 16384);
        cr_assert_eq(tbt_h2_window_update(h, id, 4 << 20), 0, "%s", h->err);
        cr_assert_eq(tbt_h2_window_update(h, 0, 4 << 20), 0, "%s", h->err);
        cr_assert_eq(tbt_h2_run(h, &id, 1, RUN_MS), 0, "%s: %s; proxy log: %s", path, h->err,
                     proxy_log());
        cr_expect(st->end_stream, "%s: the response did not end (close code %u)", path,
                  (unsigned)st->close_error);
        cr_expect_eq(st->body_total, sizes[k], "%s: got %zu bytes", path, st->body_total);
        for (i = 0, bad = 0; i < st->body_len; i++)
            bad += st->body[i] != (unsigned char)('a' + i % 26);
        cr_expect_eq(bad, 0, "%s: %zu bytes differ from the pattern", path, bad);
        tbt_h2_close(h);
    }
    /* the proxy is still there */
    connect_h2(h, NULL);
    cr_expect_eq(get(h, "/healthz", NULL)->status, 200, "proxy log: %s", proxy_log());
    tbt_h2_close(h);
}

#define UPLOAD_BYTES (3u * 1024 * 1024 + 12345)

Test(h2, upload_without_content_length,
     .description = "a 3 MB POST as DATA frames without content-length: length and SHA-256")
{
    struct tbt_h2 *h = &clients[0];
    struct tbt_h2_opts o = {.alpn = "h2", .data_chunk = 10007};
    const char *extra[] = {"content-type", "application/octet-stream", NULL};
    unsigned char *body = keep(malloc(UPLOAD_BYTES));
    char hex[65];
    const char *got;
    json_t *doc;
    int32_t id;

    cr_assert_not_null(body);
    cr_assert_eq(RAND_bytes(body, (int)UPLOAD_BYTES), 1);
    tbt_world_sha256_hex(body, UPLOAD_BYTES, hex);
    tbt_world_start(&w, NULL);
    connect_h2(h, &o);
    id = submit(h, "POST", "/echo?upload=1", extra, body, UPLOAD_BYTES);
    doc = echo_doc(run_one(h, id));
    cr_expect_str_eq(json_string_value(json_object_get(doc, "method")), "POST");
    cr_expect_eq(json_integer_value(json_object_get(doc, "body_length")), (json_int_t)UPLOAD_BYTES,
                 "origin got %lld bytes, sent %u",
                 (long long)json_integer_value(json_object_get(doc, "body_length")), UPLOAD_BYTES);
    got = json_string_value(json_object_get(doc, "body_sha256"));
    cr_expect(got != NULL && strcmp(got, hex) == 0, "origin body sha256 %s, sent %s",
              got ? got : "(none)", hex);
    json_decref(doc);

    /* a small one with content-length on the same connection */
    {
        const char *cl[] = {"content-length", "5", NULL};

        doc = echo_doc(run_one(h, submit(h, "POST", "/echo", cl, "hello", 5)));
        cr_expect_eq(json_integer_value(json_object_get(doc, "body_length")), 5);
        json_decref(doc);
    }
    tbt_h2_close(h);
}

/* --- load ----------------------------------------------------------------------------------- */

/* The number before `label` in text ("3000 succeeded"), or -1. */
static long count_before(const char *text, const char *label)
{
    const char *p = strstr(text, label);
    const char *q;

    if (p == NULL || p == text)
        return -1;
    q = p - 1;
    while (q > text && *q == ' ')
        q--;
    while (q > text && q[-1] >= '0' && q[-1] <= '9')
        q--;
    return strtol(q, NULL, 10);
}

Test(h2, h2load, .description = "h2load -n 3000 -c 4 -m 10 /healthz: 0 failed, 0 errored")
{
    char url[128], *log;
    const char *args[] = {"-n", "3000", "-c", "4", "-m", "10", url, NULL};
    const char *req;
    int st;

    tbt_world_start(&w, NULL);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/healthz", w.proxy_port);
    st = tbt_world_run(&w, "h2load", args, "h2load", 40000, &log);
    keep(log);
    cr_assert_eq(st, 0, "h2load exit status %d: %.3000s; proxy log: %s", st, log, proxy_log());
    req = strstr(log, "requests: ");
    cr_assert_not_null(req, "no requests line: %.3000s", log);
    cr_expect_eq(count_before(req, " succeeded"), 3000, "%.3000s", log);
    cr_expect_eq(count_before(req, " failed"), 0, "%.3000s", log);
    cr_expect_eq(count_before(req, " errored"), 0, "%.3000s", log);
    cr_expect_eq(count_before(req, " timeout"), 0, "%.3000s", log);
    cr_expect_not_null(strstr(log, "Application protocol: h2"), "%.3000s", log);
    cr_log_info("%s", strstr(log, "finished in") ? strstr(log, "finished in") : log);
}

/* --- timeouts ------------------------------------------------------------------------------ */

/*
 * h2 connections with no open stream get GOAWAY, then close: after timeouts.first_request for a
 * connection that never opened a stream, after timeouts.idle_keepalive for one whose last stream
 * completed (both 1 s here).
 */
Test(h2, idle_timeout,
     .description = "idle h2 connections get GOAWAY and close after first_request / idle_keepalive")
{
    static const struct tbt_world_opts o = {
        .config_file = 1,
        .extra_config = "timeouts = { idle_keepalive = \"1s\"; first_request = \"1s\"; };"};
    struct tbt_h2 *h = &clients[0];
    long long t0, took;
    int closed, i;

    tbt_world_start(&w, &o);
    for (i = 0; i < 2; i++) {
        const char *what = i == 0 ? "no stream" : "after a stream";

        connect_h2(h, NULL);
        if (i == 1)
            cr_assert_eq(get(h, "/healthz", NULL)->status, 200);
        t0 = tbt_now_ms();
        closed = tbt_h2_wait_closed(h, 4000);
        took = tbt_now_ms() - t0;
        cr_expect_eq(closed, 1, "%s: still open %lld ms later with idle_keepalive 1s (%s)", what,
                     took, h->err);
        cr_expect(h->goaway, "%s: no GOAWAY before the close", what);
        cr_expect(closed != 1 || (took >= 800 && took < 3000), "%s: closed after %lld ms", what,
                  took);
        tbt_h2_close(h);
    }
}

/* --- upstream failures ---------------------------------------------------------------------- */

Test(h2, origin_down_502, .description = "origin down: 502 on the stream, the connection goes on")
{
    static const struct tbt_world_opts down = {.origin_down = 1};
    struct tbt_h2 *h = &clients[0];
    struct tbt_h2_stream *st;
    int i;

    tbt_world_start(&w, &down);
    connect_h2(h, NULL);
    for (i = 0; i < 2; i++) {
        st = get(h, "/echo", NULL);
        cr_expect_eq(st->status, 502, "request %d: status %d, expected 502: %s", i + 1, st->status,
                     (const char *)st->body);
        cr_expect(st->end_stream, "request %d: the 502 did not end the stream cleanly", i + 1);
        cr_expect_lt(st->body_len, 1024);
    }
    cr_expect_not(h->goaway, "GOAWAY after a 502 (code %u)", (unsigned)h->goaway_error);
    tbt_h2_close(h);
}
