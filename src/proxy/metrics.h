/*
 * Metrics: per-worker counters, gauges and histograms, summed at scrape time and rendered in the
 * Prometheus text exposition format 0.0.4 (issue 7).
 *
 * Each worker owns one struct tbp_metrics and is the only thread that writes it. A write is a
 * relaxed atomic load and store (`__atomic_load_n` / `__atomic_store_n`, __ATOMIC_RELAXED): on
 * x86-64 and arm64 that is a plain load and store, no lock prefix and no shared cache line with
 * another worker, and the scraper's relaxed loads from another thread are not a data race. The
 * request path therefore takes no lock. A scrape (tbp_metrics_scrape, normally on the admin
 * thread) sums every worker's struct into a private snapshot and renders it; a value read while
 * it changes is simply the value before or after the change.
 *
 * What is counted is fixed at compile time: an enum of counter families (enum tbp_metric), each
 * with a fixed label set (the enums below, or the reason enums of cookies.h and jwtcheck.h, whose
 * names come from tbp_cookie_outcome_name / tbp_jwt_outcome_name / tb_strerror: the same stable
 * names the logs use). Every series of a fixed set is rendered even at zero. Upstream pools are
 * the one open label: each worker's pool array is sized and named at init (the pool names of the
 * config), and the scrape merges pools by name, so a reload that adds, drops or reorders pools
 * (tbp_metrics_set_pools) keeps every pool's counts. Only the pool array swap takes a mutex,
 * shared with the scrape of that worker; the request path never does.
 *
 * Histograms have fixed buckets and take values in nanoseconds (integers: no float on the request
 * path); the rendered _sum is in seconds, printed exactly from the integer sum. _count is the sum
 * of the bucket counts read in the same pass, so it always equals the +Inf bucket.
 */
#ifndef TBP_METRICS_H
#define TBP_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cookies.h"
#include "jwtcheck.h"
#include "tb/error.h"

/* --- label sets ----------------------------------------------------------------------------- */

/* The ALPN protocol a connection negotiated (label "alpn"). */
enum tbp_ml_alpn {
    TBP_ML_ALPN_H2 = 0,                /* "h2" */
    TBP_ML_ALPN_H2_TB_P256 = 1,        /* "h2_tb_p256" */
    TBP_ML_ALPN_H2_TB_RSA2048 = 2,     /* "h2_tb_rsa2048" */
    TBP_ML_ALPN_HTTP11 = 3,            /* "http/1.1" */
    TBP_ML_ALPN_HTTP11_TB_P256 = 4,    /* "http/1.1_tb_p256" */
    TBP_ML_ALPN_HTTP11_TB_RSA2048 = 5, /* "http/1.1_tb_rsa2048" */
    TBP_ML_ALPN_NONE = 6,              /* "none": no ALPN (or one not listed here) */
};
#define TBP_ML_ALPN_N 7

/* How a TLS handshake ended well (label "type"). */
enum tbp_ml_handshake {
    TBP_ML_HS_FULL = 0,    /* "full" */
    TBP_ML_HS_RESUMED = 1, /* "resumed": SSL_session_reused() */
};
#define TBP_ML_HS_N 2

/* Why a TLS handshake failed (label "reason"). */
enum tbp_ml_tls_failure {
    TBP_ML_TLSF_TIMEOUT = 0,  /* "timeout": the handshake timer fired */
    TBP_ML_TLSF_PROTOCOL = 1, /* "protocol": SSL_do_handshake failed (alert, bad record, ...) */
    TBP_ML_TLSF_NO_EMS = 2,   /* "no_ems": Token Binding negotiated without EMS / TLS 1.2 */
    TBP_ML_TLSF_OTHER = 3,    /* "other": anything else (channel value unreadable, reset) */
};
#define TBP_ML_TLSF_N 4

/* The front-end protocol of a request (label "protocol"). */
enum tbp_ml_proto {
    TBP_ML_PROTO_H1 = 0, /* "h1" */
    TBP_ML_PROTO_H2 = 1, /* "h2" */
};
#define TBP_ML_PROTO_N 2
#define TBP_ML_CLASS_N 5 /* status classes "1xx" .. "5xx" (label "class") */

/* Token Binding outcomes of requests (label "outcome"): the four names of binding.c, then one
 * slot per libtb error code in order (TB_EBASE64 .. TB_ECLAIM, named by tb_strerror), then
 * "unknown" for a reason none of those names. tbp_metrics_tb_label() maps a reason name. */
enum tbp_ml_tb {
    TBP_ML_TB_OK = 0,         /* "ok": the header verified (or matched the cached one) */
    TBP_ML_TB_MISSING = 1,    /* "missing": no header on a Token Binding connection */
    TBP_ML_TB_UNEXPECTED = 2, /* "unexpected": a header on a connection without Token Binding */
    TBP_ML_TB_MULTIPLE = 3,   /* "multiple": more than one header */
    TBP_ML_TB_ERRORS = 4,     /* first libtb error: slot TBP_ML_TB_ERRORS - 1 - code */
};
#define TBP_ML_TB_N_ERRORS (-TB_ECLAIM) /* libtb error codes -1 .. TB_ECLAIM */
#define TBP_ML_TB_UNKNOWN (TBP_ML_TB_ERRORS + TBP_ML_TB_N_ERRORS)
#define TBP_ML_TB_N (TBP_ML_TB_UNKNOWN + 1)

/* Key-cache lookups of the verifier (label "result"). */
enum tbp_ml_cache {
    TBP_ML_CACHE_HIT = 0,  /* "hit" */
    TBP_ML_CACHE_MISS = 1, /* "miss" */
};
#define TBP_ML_CACHE_N 2

/* --- counter families ----------------------------------------------------------------------- */

/* Counter families; the comment gives the rendered name and the label index to pass. */
enum tbp_metric {
    TBP_M_CONN_ACCEPTED = 0,     /* tbproxy_connections_accepted_total: label 0 */
    TBP_M_CONN_ALPN = 1,         /* tbproxy_connections_alpn_total{alpn}: enum tbp_ml_alpn */
    TBP_M_TLS_HANDSHAKES = 2,    /* tbproxy_tls_handshakes_total{type}: enum tbp_ml_handshake */
    TBP_M_TLS_FAILURES = 3,      /* tbproxy_tls_handshake_failures_total{reason}:
                                    enum tbp_ml_tls_failure */
    TBP_M_REQUESTS = 4,          /* tbproxy_requests_total{protocol,class}:
                                    tbp_metrics_request_label() */
    TBP_M_TB = 5,                /* tbproxy_token_binding_total{outcome}: enum tbp_ml_tb */
    TBP_M_KEY_CACHE = 6,         /* tbproxy_token_binding_key_cache_total{result}:
                                    enum tbp_ml_cache */
    TBP_M_HEADER_CACHE_HITS = 7, /* tbproxy_token_binding_header_cache_hits_total: label 0 */
    TBP_M_COOKIES = 8,           /* tbproxy_cookies_total{outcome}: enum tbp_cookie_outcome */
    TBP_M_COOKIES_BOUND = 9,     /* tbproxy_cookies_bound_total: label 0 */
    TBP_M_JWT = 10,              /* tbproxy_jwt_total{outcome}: enum tbp_jwt_outcome */
    TBP_M_REFER_ADDED = 11,      /* tbproxy_refer_token_binding_added_total: label 0 */
    TBP_M_BYTES_IN = 12,         /* tbproxy_client_received_bytes_total: label 0 */
    TBP_M_BYTES_OUT = 13,        /* tbproxy_client_sent_bytes_total: label 0 */
    TBP_M_TB_CONNS = 14,         /* tbproxy_token_binding_connections_total{version,key}:
                                    tbp_metrics_tb_conn_label() */
};
#define TBP_M_N 15
#define TBP_M_MAX_LABELS 32 /* slots per family: the largest label set fits (checked in .c) */

/* Gauges (signed, summed over workers). */
enum tbp_gauge {
    TBP_G_CONN_ACTIVE = 0, /* tbproxy_connections_active: client connections open now */
};
#define TBP_G_N 1

/* Histograms of the worker (values in nanoseconds). */
enum tbp_histogram {
    TBP_H_TB_VERIFY = 0, /* tbproxy_token_binding_verify_seconds: one tb_verify_header call;
                            buckets 10 us .. 100 ms */
};
#define TBP_H_N 1
#define TBP_H_BUCKETS 13 /* finite buckets of every histogram (+Inf is one more slot) */

/* Per-pool counters (label "pool"). */
enum tbp_mpool_counter {
    TBP_MP_CONNECTS = 0, /* tbproxy_upstream_connects_total: new origin connections opened */
    TBP_MP_REUSES = 1,   /* tbproxy_upstream_reuses_total: exchanges on an idle kept-alive one */
    TBP_MP_ERRORS = 2,   /* tbproxy_upstream_errors_total: exchanges that ended in 502/504 */
};
#define TBP_MP_N 3
/* Per-pool histogram: tbproxy_upstream_latency_seconds{pool}, request start to the origin's
 * response head, buckets 1 ms .. 10 s. */

#define TBP_METRICS_MAX_POOLS 4096 /* pools merged in one snapshot (config allows 1024) */
#define TBP_METRICS_NAME_MAX 128   /* a pool name's bytes, NUL included */

/* --- storage -------------------------------------------------------------------------------- */

struct tbp_mhist {
    uint64_t bucket[TBP_H_BUCKETS + 1]; /* non-cumulative counts; [TBP_H_BUCKETS]: above all */
    uint64_t sum_ns;
};

struct tbp_mpool {
    char name[TBP_METRICS_NAME_MAX];
    uint64_t c[TBP_MP_N];
    struct tbp_mhist latency;
};

/* One worker's metrics (or a snapshot). Embedded by its owner: tbp_metrics_init / _dispose. */
struct tbp_metrics {
    uint64_t c[TBP_M_N][TBP_M_MAX_LABELS]; /* counters: [family][label] */
    int64_t g[TBP_G_N];                    /* gauges */
    struct tbp_mhist h[TBP_H_N];
    size_t n_pools;
    size_t pools_cap;        /* entries allocated (a snapshot grows its array) */
    struct tbp_mpool *pools; /* n_pools; replaced only under lock by the owner */
    pthread_mutex_t lock;    /* pools swap (owner) vs. scrape (reader) only */
    char pad[64];            /* keeps the next worker's hot counters off our last line */
};

/* Process-wide values the daemon supplies at scrape time. */
struct tbp_metrics_process {
    const char *version;     /* tbproxy_build_info{version} 1; NULL: TBP_VERSION */
    double start_time;       /* tbproxy_start_time_seconds: Unix time the process started */
    double config_load_time; /* tbproxy_config_load_time_seconds: Unix time of the config in use */
    unsigned workers;        /* tbproxy_workers */
    uint64_t reloads_ok;     /* tbproxy_config_reloads_total{result="ok"} */
    uint64_t reloads_failed; /* tbproxy_config_reloads_total{result="failed"} (old one kept) */
    int draining;            /* tbproxy_draining: 1 after a graceful stop began */
};

/* --- the request path (owner thread only) --------------------------------------------------- */

/* Relaxed single-writer add: the scraper may read *p at any time. */
static inline void tbp_mctr_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Adds n to family f's series `label` (0 for families without labels). A family or label out of
 * range is ignored (a label past the family's set lands in a slot never rendered). */
static inline void tbp_metrics_add(struct tbp_metrics *m, enum tbp_metric f, unsigned label,
                                   uint64_t n)
{
    if ((unsigned)f < TBP_M_N && label < TBP_M_MAX_LABELS)
        tbp_mctr_add(&m->c[f][label], n);
}

/* tbp_metrics_add(m, f, label, 1). */
static inline void tbp_metrics_inc(struct tbp_metrics *m, enum tbp_metric f, unsigned label)
{
    tbp_metrics_add(m, f, label, 1);
}

/* Sets family f's series `label` to v: for counters kept elsewhere as running totals of this
 * thread (the verifier's key-cache hits and misses). v must never go down. */
void tbp_metrics_set(struct tbp_metrics *m, enum tbp_metric f, unsigned label, uint64_t v);

/* Adds delta to gauge g (ignored when g is out of range). */
void tbp_metrics_gauge_add(struct tbp_metrics *m, enum tbp_gauge g, int64_t delta);

/* Records one value of histogram h in nanoseconds (ignored when h is out of range). */
void tbp_metrics_observe(struct tbp_metrics *m, enum tbp_histogram h, uint64_t ns);

/* Adds 1 to counter `what` of pool number `pool` (the index in the names given at init or
 * tbp_metrics_set_pools); ignored when either is out of range. */
void tbp_metrics_pool_inc(struct tbp_metrics *m, size_t pool, enum tbp_mpool_counter what);

/* Records one upstream latency of pool number `pool` in nanoseconds (ignored out of range). */
void tbp_metrics_pool_observe(struct tbp_metrics *m, size_t pool, uint64_t ns);

/* The label of TBP_M_REQUESTS for a request of protocol p answered with `status` (100..599);
 * TBP_M_MAX_LABELS (ignored by tbp_metrics_add) for a status outside that range. */
unsigned tbp_metrics_request_label(enum tbp_ml_proto p, int status);

/* The TBP_M_TB label for a Token Binding reason name ("ok", "missing", "unexpected", "multiple"
 * or a tb_strerror name); TBP_ML_TB_UNKNOWN for any other (and NULL). */
unsigned tbp_metrics_tb_label(const char *reason);

/* The TBP_M_CONN_ALPN label for the ALPN id a connection selected ("" or NULL: none). */
unsigned tbp_metrics_alpn_label(const char *alpn);

/* The TBP_M_TB_CONNS label of a connection that negotiated Token Binding: version (enum
 * tb_version) and key parameters (enum tb_key_params: the key label is RFC 8471's name for both
 * versions, so draft p256 counts as ecdsap256 and draft rsa2048 as rsa2048_pkcs1.5);
 * TBP_M_MAX_LABELS (ignored) for values outside those enums. */
unsigned tbp_metrics_tb_conn_label(int version, int key_params);

/* --- set-up --------------------------------------------------------------------------------- */

/*
 * Sets up m with every value at zero and one pool per name (n_pools may be 0, names NULL then).
 * Names are copied. Returns 0, TB_EINVAL (a NULL or empty name, a name of TBP_METRICS_NAME_MAX
 * bytes or more, two equal names, more than TBP_METRICS_MAX_POOLS) or TB_ENOMEM; m needs no
 * dispose after a failure.
 */
int tbp_metrics_init(struct tbp_metrics *m, const char *const *names, size_t n_pools);

/* Frees the pool array and the lock. */
void tbp_metrics_dispose(struct tbp_metrics *m);

/*
 * The owner's reload: replaces the pool array with one for `names` (same rules as init); a pool
 * whose name was already there keeps its counts, the others start at zero, pools no longer named
 * are dropped (their counts leave the scrape: Prometheus sees the series end). Takes the lock
 * against a concurrent scrape. Returns 0, or TB_EINVAL / TB_ENOMEM with m unchanged.
 */
int tbp_metrics_set_pools(struct tbp_metrics *m, const char *const *names, size_t n_pools);

/* --- the scrape (any thread) ---------------------------------------------------------------- */

/*
 * Adds src's values into dst (a snapshot from tbp_metrics_init(dst, NULL, 0), private to the
 * caller). src's pools are merged into dst's by name, appended when new. Takes src's lock.
 * Returns 0, or TB_ENOMEM / TB_EINVAL (more than TBP_METRICS_MAX_POOLS names): dst then holds a
 * partial sum.
 */
int tbp_metrics_sum(struct tbp_metrics *dst, struct tbp_metrics *src);

/*
 * Appends the exposition text of snapshot s (and of p, which may be NULL: no process metrics) to
 * out. Returns 0, or TBP_EBUF / TBP_ENOMEM from out (out may then hold part of the text: reset it).
 */
int tbp_metrics_render(const struct tbp_metrics *s, const struct tbp_metrics_process *p,
                       struct tbp_buf *out);

/*
 * The whole scrape: sums ms[0..n) (entries may be NULL: skipped) into a snapshot and renders it
 * with p into out. Returns 0 or a negative code of tbp_metrics_sum / tbp_metrics_render.
 */
int tbp_metrics_scrape(struct tbp_metrics *const *ms, size_t n, const struct tbp_metrics_process *p,
                       struct tbp_buf *out);

/* The content type of the rendered text, for the HTTP response. */
#define TBP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
