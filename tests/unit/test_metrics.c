/*
 * metrics: label mapping (ALPN ids, Token Binding reasons, status classes), counters added from
 * several threads while another thread scrapes (monotonic scrapes, exact final sums), histogram
 * buckets at and around their bounds with the exact _sum, gauges, pools merged by name across
 * workers and carried over a reload, bad pool names, label escaping, the exact text of a small
 * registry, a too-small output buffer, and `promtool check metrics` (Debian's prometheus package)
 * on a full rendering (skipped with a message when promtool is not installed).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "metrics.h"

/* Renders the sum of ms[0..n) with p into a fresh string (caller frees). */
static char *render(struct tbp_metrics *const *ms, size_t n, const struct tbp_metrics_process *p)
{
    struct tbp_buf b;
    char *s;

    tbp_buf_init(&b, 4u * 1024 * 1024);
    cr_assert_eq(tbp_metrics_scrape(ms, n, p, &b), 0);
    cr_assert_not_null(b.p);
    s = strdup(b.p);
    tbp_buf_dispose(&b);
    cr_assert_not_null(s);
    return s;
}

/* The value of the sample line that starts with `series ` in text, or -1 when absent. */
static long long sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atoll(p + n + 1);
        p += n;
    }
    return -1;
}

/* --- labels --------------------------------------------------------------------------------- */

Test(metrics, alpn_labels)
{
    cr_expect_eq(tbp_metrics_alpn_label("h2"), TBP_ML_ALPN_H2);
    cr_expect_eq(tbp_metrics_alpn_label("h2_tb_p256"), TBP_ML_ALPN_H2_TB_P256);
    cr_expect_eq(tbp_metrics_alpn_label("h2_tb_rsa2048"), TBP_ML_ALPN_H2_TB_RSA2048);
    cr_expect_eq(tbp_metrics_alpn_label("http/1.1"), TBP_ML_ALPN_HTTP11);
    cr_expect_eq(tbp_metrics_alpn_label("http/1.1_tb_p256"), TBP_ML_ALPN_HTTP11_TB_P256);
    cr_expect_eq(tbp_metrics_alpn_label("http/1.1_tb_rsa2048"), TBP_ML_ALPN_HTTP11_TB_RSA2048);
    cr_expect_eq(tbp_metrics_alpn_label(""), TBP_ML_ALPN_NONE);
    cr_expect_eq(tbp_metrics_alpn_label(NULL), TBP_ML_ALPN_NONE);
    cr_expect_eq(tbp_metrics_alpn_label("spdy/3"), TBP_ML_ALPN_NONE);
    cr_expect_eq(tbp_metrics_alpn_label("h2_tb_p25"), TBP_ML_ALPN_NONE);
}

/* Every version x key parameters pair its own label, rendered with its names; others ignored. */
Test(metrics, tb_connection_labels)
{
    struct tbp_metrics m;
    struct tbp_metrics *ms[1] = {&m};
    const char *names[] = {"app"};
    struct tbp_metrics_process p = {.version = "9.9.9", .workers = 1};
    unsigned seen = 0, l;
    int v, k;
    char *s;

    for (v = 0; v < 2; v++) {
        for (k = 0; k < 3; k++) {
            l = tbp_metrics_tb_conn_label(v, k);
            cr_assert_lt(l, TBP_M_MAX_LABELS);
            cr_expect_eq(seen & (1u << l), 0, "label %u twice", l);
            seen |= 1u << l;
        }
    }
    cr_expect_eq(tbp_metrics_tb_conn_label(2, 0), TBP_M_MAX_LABELS);
    cr_expect_eq(tbp_metrics_tb_conn_label(0, -1), TBP_M_MAX_LABELS);
    cr_expect_eq(tbp_metrics_tb_conn_label(-1, 2), TBP_M_MAX_LABELS);
    cr_expect_eq(tbp_metrics_tb_conn_label(1, 3), TBP_M_MAX_LABELS);

    cr_assert_eq(tbp_metrics_init(&m, names, 1), 0);
    tbp_metrics_inc(&m, TBP_M_TB_CONNS,
                    tbp_metrics_tb_conn_label(TB_VERSION_RFC, TB_KP_RSA2048_PSS));
    tbp_metrics_add(&m, TBP_M_TB_CONNS,
                    tbp_metrics_tb_conn_label(TB_VERSION_DRAFT, TB_KP_ECDSAP256), 2);
    tbp_metrics_inc(&m, TBP_M_TB_CONNS, tbp_metrics_tb_conn_label(TB_VERSION_DRAFT, 7));
    s = render(ms, 1, &p);
    cr_expect_eq(
        sample(s, "tbproxy_token_binding_connections_total{version=\"rfc\",key=\"rsa2048_pss\"}"),
        1, "%s", s);
    cr_expect_eq(
        sample(s, "tbproxy_token_binding_connections_total{version=\"draft\",key=\"ecdsap256\"}"),
        2);
    cr_expect_eq(sample(s, "tbproxy_token_binding_connections_total{version=\"draft\","
                           "key=\"rsa2048_pkcs1.5\"}"),
                 0);
    cr_expect_eq(
        sample(s, "tbproxy_token_binding_connections_total{version=\"rfc\",key=\"ecdsap256\"}"), 0);
    free(s);
    tbp_metrics_dispose(&m);
}

Test(metrics, tb_labels_cover_every_libtb_reason)
{
    int code;

    cr_expect_eq(tbp_metrics_tb_label("ok"), TBP_ML_TB_OK);
    cr_expect_eq(tbp_metrics_tb_label("missing"), TBP_ML_TB_MISSING);
    cr_expect_eq(tbp_metrics_tb_label("unexpected"), TBP_ML_TB_UNEXPECTED);
    cr_expect_eq(tbp_metrics_tb_label("multiple"), TBP_ML_TB_MULTIPLE);
    for (code = -1; code >= TB_ECLAIM; code--)
        cr_expect_eq(tbp_metrics_tb_label(tb_strerror(code)),
                     (unsigned)(TBP_ML_TB_ERRORS - 1 - code), "reason %s", tb_strerror(code));
    cr_expect_eq(tbp_metrics_tb_label("signature"), TBP_ML_TB_ERRORS - 1 - TB_ESIGNATURE);
    cr_expect_eq(tbp_metrics_tb_label("bogus"), TBP_ML_TB_UNKNOWN);
    cr_expect_eq(tbp_metrics_tb_label("unknown"), TBP_ML_TB_UNKNOWN);
    cr_expect_eq(tbp_metrics_tb_label(NULL), TBP_ML_TB_UNKNOWN);
}

Test(metrics, request_labels_and_out_of_range_ignored)
{
    struct tbp_metrics m;
    char *s;
    struct tbp_metrics *ms[1] = {&m};

    cr_expect_eq(tbp_metrics_request_label(TBP_ML_PROTO_H1, 100), 0);
    cr_expect_eq(tbp_metrics_request_label(TBP_ML_PROTO_H1, 599), 4);
    cr_expect_eq(tbp_metrics_request_label(TBP_ML_PROTO_H2, 200), 6);
    cr_expect_eq(tbp_metrics_request_label(TBP_ML_PROTO_H2, 503), 9);
    cr_expect_eq(tbp_metrics_request_label(TBP_ML_PROTO_H2, 99), TBP_M_MAX_LABELS);
    cr_expect_eq(tbp_metrics_request_label(TBP_ML_PROTO_H2, 600), TBP_M_MAX_LABELS);
    cr_expect_eq(tbp_metrics_request_label((enum tbp_ml_proto)2, 200), TBP_M_MAX_LABELS);

    cr_assert_eq(tbp_metrics_init(&m, NULL, 0), 0);
    tbp_metrics_inc(&m, TBP_M_REQUESTS, tbp_metrics_request_label(TBP_ML_PROTO_H2, 503));
    tbp_metrics_inc(&m, TBP_M_REQUESTS, tbp_metrics_request_label(TBP_ML_PROTO_H1, 204));
    tbp_metrics_inc(&m, TBP_M_REQUESTS, tbp_metrics_request_label(TBP_ML_PROTO_H1, 204));
    tbp_metrics_inc(&m, TBP_M_REQUESTS, tbp_metrics_request_label(TBP_ML_PROTO_H1, 42));
    tbp_metrics_inc(&m, (enum tbp_metric)TBP_M_N, 0);           /* ignored */
    tbp_metrics_inc(&m, TBP_M_CONN_ACCEPTED, TBP_M_MAX_LABELS); /* ignored */
    tbp_metrics_gauge_add(&m, (enum tbp_gauge)TBP_G_N, 5);      /* ignored */
    tbp_metrics_observe(&m, (enum tbp_histogram)TBP_H_N, 5);    /* ignored */
    tbp_metrics_pool_inc(&m, 0, TBP_MP_CONNECTS);               /* no pools: ignored */
    tbp_metrics_pool_observe(&m, 0, 5);
    s = render(ms, 1, NULL);
    cr_expect_eq(sample(s, "tbproxy_requests_total{protocol=\"h2\",class=\"5xx\"}"), 1);
    cr_expect_eq(sample(s, "tbproxy_requests_total{protocol=\"h1\",class=\"2xx\"}"), 2);
    cr_expect_eq(sample(s, "tbproxy_requests_total{protocol=\"h1\",class=\"1xx\"}"), 0);
    cr_expect_eq(sample(s, "tbproxy_connections_accepted_total"), 0);
    cr_expect_null(strstr(s, "tbproxy_upstream"), "no pools, no pool families");
    cr_expect_null(strstr(s, "tbproxy_build_info"), "no process struct, no process metrics");
    free(s);
    tbp_metrics_dispose(&m);
}

/* --- threads -------------------------------------------------------------------------------- */

#define N_WORKERS 4
#define N_ROUNDS 200000

struct worker_arg {
    struct tbp_metrics *m;
    unsigned id;
};

static void *worker_main(void *p)
{
    struct worker_arg *a = p;
    unsigned i;

    for (i = 0; i < N_ROUNDS; i++) {
        tbp_metrics_inc(a->m, TBP_M_CONN_ACCEPTED, 0);
        tbp_metrics_add(a->m, TBP_M_BYTES_IN, 0, a->id + 1);
        tbp_metrics_inc(a->m, TBP_M_TB, i % 2 ? TBP_ML_TB_OK : tbp_metrics_tb_label("signature"));
        tbp_metrics_gauge_add(a->m, TBP_G_CONN_ACTIVE, i % 2 ? -1 : 1);
        tbp_metrics_observe(a->m, TBP_H_TB_VERIFY, 20000); /* 20 us: the 2.5e-05 bucket */
        tbp_metrics_pool_inc(a->m, i % 2, TBP_MP_CONNECTS);
        tbp_metrics_pool_observe(a->m, 1, 3000000); /* 3 ms */
    }
    return NULL;
}

struct scraper_arg {
    struct tbp_metrics **ms;
    volatile int stop;
    unsigned scrapes;
    int monotonic;
};

static void *scraper_main(void *p)
{
    struct scraper_arg *a = p;
    uint64_t last = 0, now;
    struct tbp_metrics snap;
    unsigned i;

    a->monotonic = 1;
    while (!__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
        if (tbp_metrics_init(&snap, NULL, 0) != 0)
            break;
        for (i = 0; i < N_WORKERS; i++)
            tbp_metrics_sum(&snap, a->ms[i]);
        now = snap.c[TBP_M_CONN_ACCEPTED][0];
        if (now < last || now > (uint64_t)N_WORKERS * N_ROUNDS)
            a->monotonic = 0;
        last = now;
        tbp_metrics_dispose(&snap);
        a->scrapes++;
    }
    return NULL;
}

Test(metrics, threads_summed_exactly_while_scraped, .timeout = 60)
{
    static struct tbp_metrics w[N_WORKERS];
    struct tbp_metrics *ms[N_WORKERS];
    const char *names[2] = {"app", "api"};
    struct worker_arg wa[N_WORKERS];
    struct scraper_arg sa = {.ms = ms};
    pthread_t t[N_WORKERS], st;
    unsigned i;
    char *s;
    uint64_t n = (uint64_t)N_WORKERS * N_ROUNDS;

    for (i = 0; i < N_WORKERS; i++) {
        cr_assert_eq(tbp_metrics_init(&w[i], names, 2), 0);
        ms[i] = &w[i];
        wa[i] = (struct worker_arg){&w[i], i};
    }
    cr_assert_eq(pthread_create(&st, NULL, scraper_main, &sa), 0);
    for (i = 0; i < N_WORKERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker_main, &wa[i]), 0);
    for (i = 0; i < N_WORKERS; i++)
        pthread_join(t[i], NULL);
    __atomic_store_n(&sa.stop, 1, __ATOMIC_RELAXED);
    pthread_join(st, NULL);
    cr_expect(sa.monotonic, "a scrape went backwards or past the total");
    cr_expect_gt(sa.scrapes, 0);

    s = render(ms, N_WORKERS, NULL);
    cr_expect_eq(sample(s, "tbproxy_connections_accepted_total"), (long long)n);
    cr_expect_eq(sample(s, "tbproxy_client_received_bytes_total"),
                 (long long)N_ROUNDS * (1 + 2 + 3 + 4));
    cr_expect_eq(sample(s, "tbproxy_token_binding_total{outcome=\"ok\"}"), (long long)n / 2);
    cr_expect_eq(sample(s, "tbproxy_token_binding_total{outcome=\"signature\"}"), (long long)n / 2);
    cr_expect_eq(sample(s, "tbproxy_connections_active"), 0);
    cr_expect_eq(sample(s, "tbproxy_token_binding_verify_seconds_bucket{le=\"1e-05\"}"), 0);
    cr_expect_eq(sample(s, "tbproxy_token_binding_verify_seconds_bucket{le=\"2.5e-05\"}"),
                 (long long)n);
    cr_expect_eq(sample(s, "tbproxy_token_binding_verify_seconds_count"), (long long)n);
    cr_expect_eq(sample(s, "tbproxy_upstream_connects_total{pool=\"app\"}"), (long long)n / 2);
    cr_expect_eq(sample(s, "tbproxy_upstream_connects_total{pool=\"api\"}"), (long long)n / 2);
    cr_expect_eq(sample(s, "tbproxy_upstream_latency_seconds_bucket{pool=\"api\",le=\"0.0025\"}"),
                 0);
    cr_expect_eq(sample(s, "tbproxy_upstream_latency_seconds_bucket{pool=\"api\",le=\"0.005\"}"),
                 (long long)n);
    cr_expect_eq(sample(s, "tbproxy_upstream_latency_seconds_count{pool=\"app\"}"), 0);
    /* 800000 x 3 ms = 2400 s exactly */
    cr_expect_not_null(strstr(s, "\ntbproxy_upstream_latency_seconds_sum{pool=\"api\"} "
                                 "2400.000000000\n"));
    free(s);
    for (i = 0; i < N_WORKERS; i++)
        tbp_metrics_dispose(&w[i]);
}

/* --- histograms, gauges, set ---------------------------------------------------------------- */

Test(metrics, histogram_buckets_at_and_around_bounds)
{
    struct tbp_metrics m;
    struct tbp_metrics *ms[1] = {&m};
    char *s;

    cr_assert_eq(tbp_metrics_init(&m, NULL, 0), 0);
    tbp_metrics_observe(&m, TBP_H_TB_VERIFY, 0);         /* le 1e-05 */
    tbp_metrics_observe(&m, TBP_H_TB_VERIFY, 10000);     /* exactly 1e-05: inclusive */
    tbp_metrics_observe(&m, TBP_H_TB_VERIFY, 10001);     /* le 2.5e-05 */
    tbp_metrics_observe(&m, TBP_H_TB_VERIFY, 100000000); /* exactly 0.1 */
    tbp_metrics_observe(&m, TBP_H_TB_VERIFY, 100000001); /* +Inf only */
    tbp_metrics_observe(&m, TBP_H_TB_VERIFY, 5000000000u);
    cr_expect_eq(m.h[TBP_H_TB_VERIFY].bucket[0], 2);
    cr_expect_eq(m.h[TBP_H_TB_VERIFY].bucket[1], 1);
    cr_expect_eq(m.h[TBP_H_TB_VERIFY].bucket[TBP_H_BUCKETS - 1], 1);
    cr_expect_eq(m.h[TBP_H_TB_VERIFY].bucket[TBP_H_BUCKETS], 2);
    s = render(ms, 1, NULL);
    cr_expect_not_null(strstr(s, "# HELP tbproxy_token_binding_verify_seconds Time to verify a "
                                 "Token-Binding header (decode, parse, signatures).\n"
                                 "# TYPE tbproxy_token_binding_verify_seconds histogram\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"1e-05\"} 2\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"2.5e-05\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"5e-05\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.0001\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.00025\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.0005\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.001\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.0025\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.005\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.01\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.025\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.05\"} 3\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"0.1\"} 4\n"
                                 "tbproxy_token_binding_verify_seconds_bucket{le=\"+Inf\"} 6\n"
                                 "tbproxy_token_binding_verify_seconds_sum 5.200020002\n"
                                 "tbproxy_token_binding_verify_seconds_count 6\n"),
                       "%s", s);
    free(s);
    tbp_metrics_dispose(&m);
}

Test(metrics, gauges_and_set_are_summed)
{
    struct tbp_metrics a, b;
    struct tbp_metrics *ms[3] = {&a, NULL, &b};
    char *s;

    cr_assert_eq(tbp_metrics_init(&a, NULL, 0), 0);
    cr_assert_eq(tbp_metrics_init(&b, NULL, 0), 0);
    tbp_metrics_gauge_add(&a, TBP_G_CONN_ACTIVE, 7);
    tbp_metrics_gauge_add(&b, TBP_G_CONN_ACTIVE, 3);
    tbp_metrics_gauge_add(&b, TBP_G_CONN_ACTIVE, -1);
    tbp_metrics_set(&a, TBP_M_KEY_CACHE, TBP_ML_CACHE_HIT, 40);
    tbp_metrics_set(&a, TBP_M_KEY_CACHE, TBP_ML_CACHE_HIT, 41); /* a running total: replaced */
    tbp_metrics_set(&b, TBP_M_KEY_CACHE, TBP_ML_CACHE_MISS, 2);
    tbp_metrics_set(&b, TBP_M_KEY_CACHE, TBP_M_MAX_LABELS, 2); /* ignored */
    s = render(ms, 3, NULL);
    cr_expect_eq(sample(s, "tbproxy_connections_active"), 9);
    cr_expect_eq(sample(s, "tbproxy_token_binding_key_cache_total{result=\"hit\"}"), 41);
    cr_expect_eq(sample(s, "tbproxy_token_binding_key_cache_total{result=\"miss\"}"), 2);
    free(s);
    tbp_metrics_dispose(&a);
    tbp_metrics_dispose(&b);
}

/* --- pools ---------------------------------------------------------------------------------- */

Test(metrics, pools_merged_by_name_across_workers)
{
    const char *n1[] = {"app", "api"}, *n2[] = {"api", "static", "app"};
    struct tbp_metrics a, b;
    struct tbp_metrics *ms[2] = {&a, &b};
    char *s;

    cr_assert_eq(tbp_metrics_init(&a, n1, 2), 0);
    cr_assert_eq(tbp_metrics_init(&b, n2, 3), 0);
    tbp_metrics_pool_inc(&a, 0, TBP_MP_REUSES);                    /* app */
    tbp_metrics_pool_inc(&b, 2, TBP_MP_REUSES);                    /* app */
    tbp_metrics_pool_inc(&b, 0, TBP_MP_ERRORS);                    /* api */
    tbp_metrics_pool_inc(&b, 1, TBP_MP_CONNECTS);                  /* static */
    tbp_metrics_pool_inc(&b, 3, TBP_MP_CONNECTS);                  /* out of range: ignored */
    tbp_metrics_pool_inc(&b, 1, (enum tbp_mpool_counter)TBP_MP_N); /* ignored */
    s = render(ms, 2, NULL);
    cr_expect_eq(sample(s, "tbproxy_upstream_reuses_total{pool=\"app\"}"), 2);
    cr_expect_eq(sample(s, "tbproxy_upstream_errors_total{pool=\"api\"}"), 1);
    cr_expect_eq(sample(s, "tbproxy_upstream_connects_total{pool=\"static\"}"), 1);
    cr_expect_eq(sample(s, "tbproxy_upstream_connects_total{pool=\"app\"}"), 0);
    /* the first worker's order, then the new names */
    cr_expect_not_null(strstr(s, "tbproxy_upstream_reuses_total{pool=\"app\"} 2\n"
                                 "tbproxy_upstream_reuses_total{pool=\"api\"} 0\n"
                                 "tbproxy_upstream_reuses_total{pool=\"static\"} 0\n"));
    free(s);
    tbp_metrics_dispose(&a);
    tbp_metrics_dispose(&b);
}

Test(metrics, reload_keeps_counts_of_pools_still_named)
{
    const char *before[] = {"app", "old"}, *after[] = {"new", "app"}, *dup[] = {"x", "x"};
    struct tbp_metrics m;
    struct tbp_metrics *ms[1] = {&m};
    char *s;

    cr_assert_eq(tbp_metrics_init(&m, before, 2), 0);
    tbp_metrics_pool_inc(&m, 0, TBP_MP_CONNECTS);
    tbp_metrics_pool_inc(&m, 0, TBP_MP_CONNECTS);
    tbp_metrics_pool_observe(&m, 0, 2000000000u);
    tbp_metrics_pool_inc(&m, 1, TBP_MP_ERRORS);
    cr_expect_eq(tbp_metrics_set_pools(&m, dup, 2), TB_EINVAL);
    cr_expect_eq(m.n_pools, 2, "a failed reload leaves the pools as they were");
    cr_assert_eq(tbp_metrics_set_pools(&m, after, 2), 0);
    tbp_metrics_pool_inc(&m, 1, TBP_MP_CONNECTS); /* app is index 1 now */
    tbp_metrics_pool_inc(&m, 0, TBP_MP_REUSES);
    s = render(ms, 1, NULL);
    cr_expect_eq(sample(s, "tbproxy_upstream_connects_total{pool=\"app\"}"), 3);
    cr_expect_eq(sample(s, "tbproxy_upstream_latency_seconds_count{pool=\"app\"}"), 1);
    cr_expect_eq(sample(s, "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"2.5\"}"), 1);
    cr_expect_eq(sample(s, "tbproxy_upstream_reuses_total{pool=\"new\"}"), 1);
    cr_expect_null(strstr(s, "pool=\"old\""));
    free(s);
    cr_assert_eq(tbp_metrics_set_pools(&m, NULL, 0), 0);
    cr_expect_eq(m.n_pools, 0);
    cr_expect_null(m.pools);
    tbp_metrics_dispose(&m);
}

Test(metrics, bad_pool_names_rejected)
{
    char longname[TBP_METRICS_NAME_MAX + 1];
    const char *empty[] = {""}, *null[] = {NULL}, *dup[] = {"a", "b", "a"}, *lng[] = {longname};
    const char *fits[] = {longname};
    struct tbp_metrics m;

    memset(longname, 'p', TBP_METRICS_NAME_MAX);
    longname[TBP_METRICS_NAME_MAX] = '\0';
    cr_expect_eq(tbp_metrics_init(&m, empty, 1), TB_EINVAL);
    cr_expect_eq(tbp_metrics_init(&m, null, 1), TB_EINVAL);
    cr_expect_eq(tbp_metrics_init(&m, NULL, 1), TB_EINVAL);
    cr_expect_eq(tbp_metrics_init(&m, dup, 3), TB_EINVAL);
    cr_expect_eq(tbp_metrics_init(&m, lng, 1), TB_EINVAL);
    longname[TBP_METRICS_NAME_MAX - 1] = '\0'; /* 127 bytes: fits */
    cr_assert_eq(tbp_metrics_init(&m, fits, 1), 0);
    cr_expect_str_eq(m.pools[0].name, longname);
    tbp_metrics_dispose(&m);
}

/* --- text ----------------------------------------------------------------------------------- */

Test(metrics, label_values_escaped)
{
    const char *names[] = {"a\"b\\c\nd"};
    struct tbp_metrics m;
    struct tbp_metrics *ms[1] = {&m};
    struct tbp_metrics_process p = {.version = "1.0\"x\\y\nz"};
    char *s;

    cr_assert_eq(tbp_metrics_init(&m, names, 1), 0);
    tbp_metrics_pool_inc(&m, 0, TBP_MP_ERRORS);
    s = render(ms, 1, &p);
    cr_expect_not_null(strstr(s, "\ntbproxy_upstream_errors_total{pool=\"a\\\"b\\\\c\\nd\"} 1\n"),
                       "%s", s);
    cr_expect_not_null(
        strstr(s, "\ntbproxy_upstream_latency_seconds_bucket{pool=\"a\\\"b\\\\c\\nd\",le=\"10\"} "
                  "0\n"));
    cr_expect_not_null(strstr(s, "tbproxy_build_info{version=\"1.0\\\"x\\\\y\\nz\"} 1\n"));
    free(s);
    tbp_metrics_dispose(&m);
}

static const char head[] =
    "# HELP tbproxy_build_info The version of tbproxy (always 1).\n"
    "# TYPE tbproxy_build_info gauge\n"
    "tbproxy_build_info{version=\"9.9.9\"} 1\n"
    "# HELP tbproxy_start_time_seconds Unix time the process started, in "
    "seconds.\n"
    "# TYPE tbproxy_start_time_seconds gauge\n"
    "tbproxy_start_time_seconds 1700000000.500\n"
    "# HELP tbproxy_config_load_time_seconds Unix time the configuration in "
    "use was loaded, in seconds.\n"
    "# TYPE tbproxy_config_load_time_seconds gauge\n"
    "tbproxy_config_load_time_seconds 1700000100.250\n"
    "# HELP tbproxy_config_reloads_total Configuration reloads (SIGHUP), by "
    "result; a failed one keeps the old.\n"
    "# TYPE tbproxy_config_reloads_total counter\n"
    "tbproxy_config_reloads_total{result=\"ok\"} 3\n"
    "tbproxy_config_reloads_total{result=\"failed\"} 1\n"
    "# HELP tbproxy_workers Worker threads running.\n"
    "# TYPE tbproxy_workers gauge\n"
    "tbproxy_workers 2\n"
    "# HELP tbproxy_draining 1 while a graceful stop finishes in-flight "
    "requests, else 0.\n"
    "# TYPE tbproxy_draining gauge\n"
    "tbproxy_draining 1\n"
    "# HELP tbproxy_connections_accepted_total Client connections accepted.\n"
    "# TYPE tbproxy_connections_accepted_total counter\n"
    "tbproxy_connections_accepted_total 5\n"
    "# HELP tbproxy_connections_active Client connections open now.\n"
    "# TYPE tbproxy_connections_active gauge\n"
    "tbproxy_connections_active 2\n"
    "# HELP tbproxy_connections_alpn_total Client connections by the ALPN "
    "protocol their TLS handshake selected.\n"
    "# TYPE tbproxy_connections_alpn_total counter\n"
    "tbproxy_connections_alpn_total{alpn=\"h2\"} 0\n"
    "tbproxy_connections_alpn_total{alpn=\"h2_tb_p256\"} 1\n"
    "tbproxy_connections_alpn_total{alpn=\"h2_tb_rsa2048\"} 0\n"
    "tbproxy_connections_alpn_total{alpn=\"http/1.1\"} 0\n"
    "tbproxy_connections_alpn_total{alpn=\"http/1.1_tb_p256\"} 0\n"
    "tbproxy_connections_alpn_total{alpn=\"http/1.1_tb_rsa2048\"} 0\n"
    "tbproxy_connections_alpn_total{alpn=\"none\"} 0\n"
    "# HELP tbproxy_tls_handshakes_total TLS handshakes completed, full or "
    "resumed.\n"
    "# TYPE tbproxy_tls_handshakes_total counter\n"
    "tbproxy_tls_handshakes_total{type=\"full\"} 0\n"
    "tbproxy_tls_handshakes_total{type=\"resumed\"} 1\n"
    "# HELP tbproxy_tls_handshake_failures_total TLS handshakes that failed, "
    "by reason.\n"
    "# TYPE tbproxy_tls_handshake_failures_total counter\n"
    "tbproxy_tls_handshake_failures_total{reason=\"timeout\"} 0\n"
    "tbproxy_tls_handshake_failures_total{reason=\"protocol\"} 0\n"
    "tbproxy_tls_handshake_failures_total{reason=\"no_ems\"} 1\n"
    "tbproxy_tls_handshake_failures_total{reason=\"other\"} 0\n"
    "# HELP tbproxy_requests_total ";

Test(metrics, exact_text_of_a_small_registry)
{
    struct tbp_metrics m;
    struct tbp_metrics *ms[1] = {&m};
    const char *names[] = {"app"};
    struct tbp_metrics_process p = {.version = "9.9.9",
                                    .start_time = 1700000000.5,
                                    .config_load_time = 1700000100.25,
                                    .workers = 2,
                                    .reloads_ok = 3,
                                    .reloads_failed = 1,
                                    .draining = 1};
    char *s;

    cr_assert_eq(tbp_metrics_init(&m, names, 1), 0);
    tbp_metrics_add(&m, TBP_M_CONN_ACCEPTED, 0, 5);
    tbp_metrics_gauge_add(&m, TBP_G_CONN_ACTIVE, 2);
    tbp_metrics_inc(&m, TBP_M_CONN_ALPN, TBP_ML_ALPN_H2_TB_P256);
    tbp_metrics_inc(&m, TBP_M_TLS_HANDSHAKES, TBP_ML_HS_RESUMED);
    tbp_metrics_inc(&m, TBP_M_TLS_FAILURES, TBP_ML_TLSF_NO_EMS);
    tbp_metrics_inc(&m, TBP_M_COOKIES, TBP_CK_MISMATCH);
    tbp_metrics_inc(&m, TBP_M_JWT, TBP_JWT_EXPIRED);
    tbp_metrics_inc(&m, TBP_M_COOKIES_BOUND, 0);
    tbp_metrics_add(&m, TBP_M_BYTES_OUT, 0, 1234);
    tbp_metrics_pool_inc(&m, 0, TBP_MP_CONNECTS);
    tbp_metrics_pool_observe(&m, 0, 1000000);  /* exactly 1 ms */
    tbp_metrics_pool_observe(&m, 0, 30000000); /* 30 ms */
    s = render(ms, 1, &p);

    /* the whole text starts with the process metrics, then the connection families */
    cr_expect_eq(strncmp(s, head, strlen(head)), 0, "%s", s);

    /* the companion families, with their reason names from cookies.c / jwtcheck.c */
    cr_expect_not_null(strstr(s, "# TYPE tbproxy_cookies_total counter\n"
                                 "tbproxy_cookies_total{outcome=\"ok\"} 0\n"
                                 "tbproxy_cookies_total{outcome=\"pass\"} 0\n"
                                 "tbproxy_cookies_total{outcome=\"unbound\"} 0\n"
                                 "tbproxy_cookies_total{outcome=\"mismatch\"} 1\n"
                                 "tbproxy_cookies_total{outcome=\"unknown_key\"} 0\n"
                                 "tbproxy_cookies_total{outcome=\"no_tb\"} 0\n"
                                 "tbproxy_cookies_total{outcome=\"error\"} 0\n"
                                 "# HELP tbproxy_cookies_bound_total "));
    cr_expect_eq(sample(s, "tbproxy_cookies_bound_total"), 1);
    cr_expect_eq(sample(s, "tbproxy_jwt_total{outcome=\"expired\"}"), 1);
    cr_expect_eq(sample(s, "tbproxy_jwt_total{outcome=\"ok\"}"), 0);
    cr_expect_eq(sample(s, "tbproxy_client_sent_bytes_total"), 1234);

    /* the text ends with the pool families */
    cr_expect_not_null(
        strstr(s, "# HELP tbproxy_upstream_connects_total Origin connections opened, by pool.\n"
                  "# TYPE tbproxy_upstream_connects_total counter\n"
                  "tbproxy_upstream_connects_total{pool=\"app\"} 1\n"
                  "# HELP tbproxy_upstream_reuses_total Exchanges sent on an idle kept-alive "
                  "origin connection, by pool.\n"
                  "# TYPE tbproxy_upstream_reuses_total counter\n"
                  "tbproxy_upstream_reuses_total{pool=\"app\"} 0\n"
                  "# HELP tbproxy_upstream_errors_total Origin exchanges that failed (answered "
                  "502 or 504), by pool.\n"
                  "# TYPE tbproxy_upstream_errors_total counter\n"
                  "tbproxy_upstream_errors_total{pool=\"app\"} 0\n"
                  "# HELP tbproxy_upstream_latency_seconds Time from sending a request to an "
                  "origin to its response head, by pool.\n"
                  "# TYPE tbproxy_upstream_latency_seconds histogram\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.001\"} 1\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.0025\"} 1\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.005\"} 1\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.01\"} 1\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.025\"} 1\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.05\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.1\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.25\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"0.5\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"1\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"2.5\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"5\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"10\"} 2\n"
                  "tbproxy_upstream_latency_seconds_bucket{pool=\"app\",le=\"+Inf\"} 2\n"
                  "tbproxy_upstream_latency_seconds_sum{pool=\"app\"} 0.031000000\n"
                  "tbproxy_upstream_latency_seconds_count{pool=\"app\"} 2\n"),
        "%s", s);
    cr_expect_eq(s[strlen(s) - 1], '\n');
    cr_expect_str_eq(strstr(s, "tbproxy_upstream_latency_seconds_count{pool=\"app\"} 2\n"),
                     "tbproxy_upstream_latency_seconds_count{pool=\"app\"} 2\n", "the last line");
    free(s);
    tbp_metrics_dispose(&m);
}

Test(metrics, every_series_of_the_fixed_sets_is_rendered_once)
{
    struct tbp_metrics m;
    struct tbp_metrics *ms[1] = {&m};
    struct tbp_metrics_process p = {0};
    char *s, *line, *save = NULL;
    unsigned samples = 0, helps = 0, types = 0;

    cr_assert_eq(tbp_metrics_init(&m, NULL, 0), 0);
    s = render(ms, 1, &p);
    for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0)
            helps++;
        else if (strncmp(line, "# TYPE ", 7) == 0)
            types++;
        else
            samples++;
    }
    /* process 7, accepted 1, active 1, alpn 7, handshakes 2, failures 4, requests 10, tb
     * TBP_ML_TB_N, key cache 2, header cache 1, cookies TBP_CK_N, bound 1, jwt TBP_JWT_N,
     * refer 1, bytes 2, Token Binding connections 2 versions x 3 keys, verify histogram 14 + 2 */
    cr_expect_eq(samples, 7 + 1 + 1 + 7 + 2 + 4 + 10 + TBP_ML_TB_N + 2 + 1 + TBP_CK_N + 1 +
                              TBP_JWT_N + 1 + 2 + 6 + 16);
    cr_expect_eq(helps, 6 + TBP_M_N + 1 + TBP_H_N);
    cr_expect_eq(types, helps);
    free(s);
    tbp_metrics_dispose(&m);
}

Test(metrics, buffer_cap_is_reported)
{
    struct tbp_metrics m;
    struct tbp_metrics *ms[1] = {&m};
    struct tbp_buf b;

    cr_assert_eq(tbp_metrics_init(&m, NULL, 0), 0);
    tbp_buf_init(&b, 1000);
    cr_expect_eq(tbp_metrics_scrape(ms, 1, NULL, &b), TBP_EBUF);
    cr_expect_leq(b.len, 1000);
    tbp_buf_dispose(&b);
    tbp_metrics_dispose(&m);
}

/* --- promtool ------------------------------------------------------------------------------- */

/* The path of promtool in PATH (or /usr/bin), or NULL. */
static const char *find_promtool(char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    char *dir, *save = NULL;

    snprintf(dirs, sizeof(dirs), "%s:/usr/bin", path ? path : "");
    for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/promtool", dir);
        if (access(out, X_OK) == 0)
            return out;
    }
    return NULL;
}

Test(metrics, promtool_check_metrics_accepts_the_text, .timeout = 60)
{
    const char *names[] = {"app", "api-2", "weird\"pool\\name"};
    struct tbp_metrics a, b;
    struct tbp_metrics *ms[2] = {&a, &b};
    struct tbp_metrics_process p = {
        .version = "0.1.0", .start_time = 1700000000, .config_load_time = 1700000000, .workers = 2};
    char tool[4200], in[] = "/tmp/tbp-metrics-XXXXXX", cmd[9000], outp[64], report[4096];
    FILE *f;
    size_t n;
    char *s;
    int fd, st;

    if (find_promtool(tool, sizeof(tool)) == NULL) {
        cr_skip_test("promtool not found (Debian package prometheus): "
                     "`promtool check metrics` not run");
        return;
    }
    cr_assert_eq(tbp_metrics_init(&a, names, 3), 0);
    cr_assert_eq(tbp_metrics_init(&b, names, 2), 0);
    tbp_metrics_inc(&a, TBP_M_TB, TBP_ML_TB_OK);
    tbp_metrics_observe(&b, TBP_H_TB_VERIFY, 123456);
    tbp_metrics_pool_observe(&a, 2, 7000000);
    s = render(ms, 2, &p);
    fd = mkstemp(in);
    cr_assert_neq(fd, -1);
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs(s, f);
    fclose(f);
    snprintf(outp, sizeof(outp), "%s.out", in);
    snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' > '%s' 2>&1", tool, in, outp);
    st = system(cmd);
    f = fopen(outp, "r");
    n = f ? fread(report, 1, sizeof(report) - 1, f) : 0;
    report[n] = '\0';
    if (f)
        fclose(f);
    unlink(in);
    unlink(outp);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "promtool exit %d: %s", st, report);
    cr_expect_eq(n, 0, "promtool said: %s", report);
    free(s);
    tbp_metrics_dispose(&a);
    tbp_metrics_dispose(&b);
}
