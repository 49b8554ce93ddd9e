/*
 * Tests of tbbench: its histogram (compiled in from bench/tbbench_hist.c) and short runs of the
 * real binary against the real proxy and origin.
 *
 * Integration: each test builds a world (tests/support/world.h: certificate, tborigin, tbproxy
 * in quick mode with Token Binding on), runs `tbbench -c 4 -d 2 --json ...` at /healthz through
 * the proxy and checks tbbench's own figures: it exits 0, completed requests, counted no error
 * of any kind, and negotiated what it was asked to (the ALPN id, Token-Binding signatures per
 * connection, one handshake per request with --new-conn). The proxy answers 400 to a missing
 * or bad Token-Binding header on a TB connection, so "no status_4xx" also says every signature
 * verified.
 *
 * RFC 8471-8473 (--tb-version rfc): the world's proxy started with `--tb-version rfc` (or
 * `both`: tbt_world_opts.tb_version) takes the runs; tbbench then offers the token_binding
 * extension and plain ALPN ids and signs Sec-Token-Binding over the EKM; the proxy answers 400
 * to a bad one, so "no status_4xx" again says every signature verified.
 *
 * Binaries: $TB_BIN/tbbench (make test sets TB_BIN), else build/rel/bin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "../../bench/tbbench_hist.c" /* the module under test: not in any library */
#include "world.h"

#define SUITE_TIMEOUT_S 120
#define RUN_MS 30000 /* a 2 s run, with slack for sanitizers */
#define MAX_ARGS 16

static struct tbt_world w;

static void teardown(void)
{
    tbt_world_teardown(&w);
}

/* The world with its proxy speaking Token Binding `version` ("rfc" or "both"). */
static void start_rfc(const char *version)
{
    tbt_world_start(&w, &(struct tbt_world_opts){.tb_version = version});
}

TestSuite(tbbench, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- the histogram -------------------------------------------------------------------------- */

static struct tbb_hist h1, h2; /* 58 KiB each: not on the stack */

Test(tbbench, hist_buckets, .description = "buckets tile the values, each within 1/128")
{
    uint64_t v;
    size_t i;

    for (i = 0; i + 1 < TBB_HIST_BUCKETS; i++) {
        cr_assert_eq(tbb_hist_bucket_high(i) + 1, tbb_hist_bucket_low(i + 1), "gap after %zu", i);
        cr_assert_eq(tbb_hist_index(tbb_hist_bucket_low(i)), i);
        cr_assert_eq(tbb_hist_index(tbb_hist_bucket_high(i)), i);
    }
    cr_assert_eq(tbb_hist_index(UINT64_MAX), TBB_HIST_BUCKETS - 1);
    for (v = 1; v < ((uint64_t)1 << 40); v = v * 3 + 1) {
        i = tbb_hist_index(v);
        cr_assert(tbb_hist_bucket_low(i) <= v && v <= tbb_hist_bucket_high(i));
        cr_assert((double)(tbb_hist_bucket_high(i) - tbb_hist_bucket_low(i)) <= (double)v / 128.0,
                  "bucket of %llu too wide", (unsigned long long)v);
    }
}

Test(tbbench, hist_percentiles, .description = "percentiles of a known distribution, merge")
{
    uint64_t v;

    tbb_hist_init(&h1);
    tbb_hist_init(&h2);
    cr_assert_eq(tbb_hist_percentile(&h1, 50), 0);
    for (v = 1; v <= 100000; v++)
        tbb_hist_record(v % 2 ? &h1 : &h2, v * 1000); /* 1 us .. 100 ms, in ns */
    tbb_hist_merge(&h1, &h2);
    cr_assert_eq(h1.count, 100000);
    cr_assert_eq(h1.min, 1000);
    cr_assert_eq(h1.max, 100000000);
    cr_assert_eq(tbb_hist_percentile(&h1, 100), 100000000);
    cr_assert_eq(tbb_hist_percentile(&h1, 0), 1000);
    cr_expect_float_eq(tbb_hist_mean(&h1), 50000500.0, 1.0);
    /* the true value at p is p% of 100 ms; the histogram may round up by < 1/128 */
    cr_expect(tbb_hist_percentile(&h1, 50) >= 50000000 && tbb_hist_percentile(&h1, 50) <= 50400000,
              "p50 %llu", (unsigned long long)tbb_hist_percentile(&h1, 50));
    cr_expect(tbb_hist_percentile(&h1, 99) >= 99000000 && tbb_hist_percentile(&h1, 99) <= 99800000,
              "p99 %llu", (unsigned long long)tbb_hist_percentile(&h1, 99));
    cr_expect(tbb_hist_percentile(&h1, 99.9) >= 99900000 &&
                  tbb_hist_percentile(&h1, 99.9) <= 100000000,
              "p99.9 %llu", (unsigned long long)tbb_hist_percentile(&h1, 99.9));
}

/* --- running tbbench ------------------------------------------------------------------------ */

/* The one-line JSON object of tbbench's output, parsed; fails the test if there is none. */
static json_t *find_json(const char *log)
{
    const char *p = log;
    json_error_t je;
    json_t *doc;

    while (p != NULL && *p != '{') {
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    cr_assert_not_null(p, "no JSON in tbbench's output: %.2000s", log);
    doc = json_loads(p, JSON_DISABLE_EOF_CHECK, &je);
    cr_assert_not_null(doc, "bad JSON (%s): %.2000s", je.text, p);
    return doc;
}

static double real(json_t *doc, const char *a, const char *b)
{
    json_t *v = json_object_get(doc, a);

    if (b != NULL)
        v = json_object_get(v, b);
    cr_assert(json_is_number(v), "no number %s%s%s", a, b ? "." : "", b ? b : "");
    return json_number_value(v);
}

static long long num(json_t *doc, const char *a, const char *b)
{
    return (long long)real(doc, a, b);
}

/*
 * Runs `tbbench -c 4 -d 2 --json EXTRA... URL` (extra: NULL-terminated) against the world's
 * proxy and returns its report; asserts exit status `want_status`.
 */
static json_t *bench(const char *path, int want_status, const char *const *extra)
{
    const char *args[MAX_ARGS];
    char url[128], *log = NULL;
    json_t *doc;
    size_t n = 0;
    int st;

    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", w.proxy_port, path);
    args[n++] = "-c";
    args[n++] = "4";
    args[n++] = "-d";
    args[n++] = "2";
    args[n++] = "--json";
    while (*extra != NULL && n < MAX_ARGS - 2)
        args[n++] = *extra++;
    args[n++] = url;
    args[n] = NULL;
    st = tbt_world_run(&w, tbt_world_bin(&w, "tbbench"), args, "tbbench", RUN_MS, &log);
    cr_assert_not_null(log);
    cr_assert_eq(st, want_status, "tbbench exit status %d: %.2000s; proxy log: %s", st, log,
                 tbt_world_proxy_log(&w));
    doc = find_json(log);
    cr_log_info("%s", log);
    free(log);
    return doc;
}

/* The common checks of a run that should have gone well. */
static void expect_clean(json_t *doc, const char *alpn, int tb, int new_conn)
{
    long long req = num(doc, "requests", NULL), hs = num(doc, "handshakes", NULL);
    char *text = json_dumps(doc, JSON_COMPACT);

    cr_log_info("%s", text);
    free(text);
    cr_expect_gt(req, 0, "no request completed");
    cr_expect_eq(num(doc, "errors", "total"), 0, "errors: %s",
                 json_dumps(json_object_get(doc, "first_errors"), JSON_COMPACT));
    cr_expect_eq(num(doc, "status", "2xx"), req);
    cr_expect_gt(num(doc, "alpn", alpn), 0, "ALPN %s never selected", alpn);
    cr_expect_eq(num(doc, "alpn", alpn), hs, "not every connection selected %s", alpn);
    cr_expect_eq(num(doc, "tb_signatures", NULL), tb ? hs : 0);
    cr_expect(json_is_true(json_object_get(doc, "token_binding")) == (tb != 0));
    if (new_conn)
        cr_expect_geq(hs, req, "fewer handshakes (%lld) than requests (%lld)", hs, req);
    else
        cr_expect_leq(hs, 8, "keep-alive connections were remade (%lld handshakes)", hs);
    cr_expect_gt(num(doc, "bytes_in", NULL), 0);
    cr_expect_eq(num(doc, "latency_us", "samples"), num(doc, "responses", NULL));
    cr_expect_leq(num(doc, "latency_us", "p50"), num(doc, "latency_us", "p99"));
    cr_expect_leq(num(doc, "latency_us", "p99"), num(doc, "latency_us", "max"));
    cr_expect_geq(real(doc, "duration_s", NULL), 2.0, "the run was shorter than -d 2");
    /* bounded by -d (the slack is for a box loaded by parallel tests: the end timer can fire
     * late when the worker is not scheduled) */
    cr_expect_lt(real(doc, "duration_s", NULL), 5.0, "the run overran -d 2: %.3f s",
                 real(doc, "duration_s", NULL));
    json_decref(doc);
}

#define RUN(path, ...) bench(path, 0, (const char *const[]){__VA_ARGS__, NULL})

Test(tbbench, h1_tb, .description = "HTTP/1.1 keep-alive with Token Binding")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http1.1"), "http/1.1_tb_p256", 1, 0);
}

Test(tbbench, h1_no_tb, .description = "HTTP/1.1 keep-alive, plain TLS")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http1.1", "--no-tb"), "http/1.1", 0, 0);
}

Test(tbbench, h2_tb, .description = "HTTP/2 keep-alive, 4 streams, Token Binding")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http2", "-m", "4"), "h2_tb_p256", 1, 0);
}

Test(tbbench, h2_no_tb, .description = "HTTP/2 keep-alive, 4 streams, plain TLS")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http2", "-m", "4", "--no-tb"), "h2", 0, 0);
}

Test(tbbench, h1_new_conn_tb, .description = "a new TLS connection per request, Token Binding")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http1.1", "--new-conn"), "http/1.1_tb_p256", 1, 1);
}

Test(tbbench, h1_new_conn_no_tb, .description = "a new TLS connection per request, plain TLS")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http1.1", "--new-conn", "--no-tb"), "http/1.1", 0, 1);
}

Test(tbbench, h2_new_conn_tb, .description = "HTTP/2, a new connection per request, RSA-2048 TB")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http2", "--new-conn", "--key-type", "rsa2048"), "h2_tb_rsa2048",
                 1, 1);
}

Test(tbbench, h2_new_conn_no_tb, .description = "HTTP/2, a new connection per request, plain")
{
    tbt_world_start(&w, NULL);
    expect_clean(RUN("/healthz", "--http2", "--new-conn", "--no-tb"), "h2", 0, 1);
}

Test(tbbench, rate, .description = "--rate paces the requests (open loop)")
{
    json_t *doc;
    long long req, sched, threads;
    double want;

    tbt_world_start(&w, NULL);
    doc = RUN("/healthz", "--http2", "-m", "8", "--rate", "200");
    /* each worker's share is due from t0 on (its first request at t0) until that worker
     * stops: 200/s over -d 2 at least (over duration_s, the last stop, at most), plus one per
     * worker; each is done, in flight or not sent when the run ends */
    req = num(doc, "requests", NULL);
    threads = num(doc, "threads", NULL);
    sched = req + num(doc, "abandoned", NULL) + num(doc, "unsent", NULL);
    want = 200 * real(doc, "duration_s", NULL);
    cr_expect(sched >= 400 - 2 && sched <= want + threads + 2,
              "%lld requests scheduled in %.3f s at 200/s", sched, real(doc, "duration_s", NULL));
    cr_expect(req > 0 && req <= sched, "%lld requests done of %lld", req, sched);
    expect_clean(doc, "h2_tb_p256", 1, 0);
}

Test(tbbench, status_errors, .description = "404s are counted as status_4xx errors")
{
    json_t *doc;

    tbt_world_start(&w, NULL);
    doc = bench("/nope", 1, (const char *const[]){"--http1.1", NULL});
    cr_expect_eq(num(doc, "requests", NULL), 0);
    cr_expect_gt(num(doc, "responses", NULL), 0);
    cr_expect_eq(num(doc, "errors", "status_4xx"), num(doc, "responses", NULL));
    cr_expect_eq(num(doc, "errors", "total"), num(doc, "errors", "status_4xx"));
    json_decref(doc);
}

Test(tbbench, connect_errors, .description = "a refused port: connect errors, exit 1")
{
    const char *args[] = {"-c", "2", "-d", "1", "--json", NULL, NULL};
    char url[64], *log = NULL;
    json_t *doc;
    int st, port;

    tbt_world_start(&w, &(struct tbt_world_opts){.origin_down = 1});
    port = w.origin_port; /* refuses connections for as long as the world lives */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
    args[5] = url;
    st = tbt_world_run(&w, tbt_world_bin(&w, "tbbench"), args, "tbbench", RUN_MS, &log);
    cr_assert_eq(st, 1, "exit status %d: %s", st, log);
    doc = find_json(log);
    free(log);
    cr_expect_eq(num(doc, "requests", NULL), 0);
    cr_expect_gt(num(doc, "errors", "connect"), 0);
    cr_expect_eq(num(doc, "errors", "total"), num(doc, "errors", "connect"));
    json_decref(doc);
}

/* --- RFC 8471-8473 ---------------------------------------------------------------------------- */

/* The JSON says rfc and the key parameters offered. */
static json_t *expect_rfc(json_t *doc, const char *key_type)
{
    cr_expect_str_eq(json_string_value(json_object_get(doc, "tb_version")), "rfc");
    cr_expect_str_eq(json_string_value(json_object_get(doc, "key_type")), key_type);
    cr_expect_null(json_object_get(json_object_get(doc, "alpn"), "h2_tb_p256"));
    return doc;
}

Test(tbbench, rfc_h1, .description = "rfc: HTTP/1.1 keep-alive, the extension, Sec-Token-Binding")
{
    start_rfc("rfc");
    expect_clean(expect_rfc(RUN("/healthz", "--http1.1", "--tb-version", "rfc"), "ecdsap256"),
                 "http/1.1", 1, 0);
}

Test(tbbench, rfc_h2, .description = "rfc: HTTP/2 keep-alive, 4 streams")
{
    start_rfc("rfc");
    expect_clean(
        expect_rfc(RUN("/healthz", "--tb-version", "rfc", "--http2", "-m", "4"), "ecdsap256"), "h2",
        1, 0);
}

Test(tbbench, rfc_new_conn_rsa, .description = "rfc: a new connection per request, RSA paddings")
{
    start_rfc("both");
    expect_clean(expect_rfc(RUN("/healthz", "--http2", "--new-conn", "--key-type", "rsa2048",
                                "--tb-version", "rfc"),
                            "rsa2048_pss"),
                 "h2", 1, 1);
    expect_clean(expect_rfc(RUN("/healthz", "--http1.1", "--new-conn", "--tb-version", "rfc",
                                "--key-type", "rsa2048_pkcs1.5"),
                            "rsa2048_pkcs1.5"),
                 "http/1.1", 1, 1);
    /* the same proxy still speaks draft */
    expect_clean(RUN("/healthz", "--http2"), "h2_tb_p256", 1, 0);
}

Test(tbbench, rfc_against_draft_proxy, .description = "rfc offer unanswered: tb errors, exit 1")
{
    json_t *doc;

    tbt_world_start(&w, NULL); /* draft only: the extension is not answered */
    doc = bench("/healthz", 1, (const char *const[]){"--tb-version", "rfc", NULL});
    cr_expect_eq(num(doc, "requests", NULL), 0);
    cr_expect_gt(num(doc, "errors", "tb"), 0);
    cr_expect_eq(num(doc, "errors", "total"), num(doc, "errors", "tb"));
    cr_expect_eq(num(doc, "tb_signatures", NULL), 0);
    json_decref(doc);
}

Test(tbbench, usage, .description = "bad usage exits 2")
{
    const char *bad[][6] = {
        {"-c", "0", "https://127.0.0.1:1/", NULL},
        {"--key-type", "p384", "https://127.0.0.1:1/", NULL},
        {"--tls-max", "1.3", "https://127.0.0.1:1/", NULL},
        {"ftp://127.0.0.1/", NULL, NULL, NULL},
        {"--tb-version", "rfc8471", "https://127.0.0.1:1/", NULL},
        {"--key-type", "rsa2048_pss", "https://127.0.0.1:1/", NULL}, /* rfc names need rfc */
        {"--key-type", "ecdsap256", "--tb-version", "draft", "https://127.0.0.1:1/", NULL},
        {"--tb-version", "rfc", "--key-type", "rsa2048_pkcs1", "https://127.0.0.1:1/", NULL},
        {"--tb-version", "rfc", "--tls-max", "1.3", "https://127.0.0.1:1/", NULL},
    };
    char *log = NULL;
    size_t i;
    int st;

    tbt_world_start(&w, &(struct tbt_world_opts){.origin_down = 1});
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st = tbt_world_run(&w, tbt_world_bin(&w, "tbbench"), bad[i], "tbbench", RUN_MS, &log);
        cr_expect_eq(st, 2, "case %zu: exit status %d: %s", i, st, log);
        free(log);
        log = NULL;
    }
}
