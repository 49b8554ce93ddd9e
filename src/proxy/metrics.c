/*
 * Metrics storage, the scrape and the Prometheus text format (see metrics.h).
 *
 * Rendering is table-driven: one row per counter family (name, help, up to two label keys, each
 * with a count and a function naming label i), so the fixed label sets are written once and every
 * series of them is printed, zeros included. Label values are escaped as the 0.0.4 format asks
 * (backslash, double quote and line feed); the names in the tables need none, but pool names come
 * from the config and the version from the caller, so every value goes through the same escape.
 *
 * A family's slot count must fit TBP_M_MAX_LABELS: checked by the static assertions below, so a
 * libtb error code or an outcome added later cannot silently run past the array.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

_Static_assert(TBP_ML_TB_N <= TBP_M_MAX_LABELS, "Token Binding outcomes fit a family");
_Static_assert(TBP_CK_N <= TBP_M_MAX_LABELS, "cookie outcomes fit a family");
_Static_assert(TBP_JWT_N <= TBP_M_MAX_LABELS, "JWT outcomes fit a family");
_Static_assert(TBP_ML_PROTO_N *TBP_ML_CLASS_N <= TBP_M_MAX_LABELS, "request labels fit");
_Static_assert(TBP_ML_ALPN_N <= TBP_M_MAX_LABELS, "ALPN labels fit a family");
_Static_assert(TB_VERSION_DRAFT == 0 && TB_VERSION_RFC == 1 && TB_KP_RSA2048_PKCS1 == 0 &&
                   TB_KP_RSA2048_PSS == 1 && TB_KP_ECDSAP256 == 2,
               "the Token Binding connection labels follow libtb's enums");

/* --- label names ---------------------------------------------------------------------------- */

static const char *const alpn_names[TBP_ML_ALPN_N] = {
    "h2",  "h2_tb_p256", "h2_tb_rsa2048", "http/1.1", "http/1.1_tb_p256", "http/1.1_tb_rsa2048",
    "none"};
static const char *const hs_names[TBP_ML_HS_N] = {"full", "resumed"};
static const char *const tlsf_names[TBP_ML_TLSF_N] = {"timeout", "protocol", "no_ems", "other"};
static const char *const proto_names[TBP_ML_PROTO_N] = {"h1", "h2"};
static const char *const class_names[TBP_ML_CLASS_N] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const tb_first_names[TBP_ML_TB_ERRORS] = {"ok", "missing", "unexpected",
                                                             "multiple"};
static const char *const cache_names[TBP_ML_CACHE_N] = {"hit", "miss"};
static const char *const tbv_names[2] = {"draft", "rfc"}; /* enum tb_version */
static const char *const tbkey_names[3] = {"rsa2048_pkcs1.5", "rsa2048_pss",
                                           "ecdsap256"}; /* enum tb_key_params */

static const char *alpn_name(unsigned i)
{
    return alpn_names[i];
}

static const char *tbv_name(unsigned i)
{
    return tbv_names[i];
}

static const char *tbkey_name(unsigned i)
{
    return tbkey_names[i];
}

static const char *hs_name(unsigned i)
{
    return hs_names[i];
}

static const char *tlsf_name(unsigned i)
{
    return tlsf_names[i];
}

static const char *proto_name(unsigned i)
{
    return proto_names[i];
}

static const char *class_name(unsigned i)
{
    return class_names[i];
}

static const char *tb_name(unsigned i)
{
    if (i < TBP_ML_TB_ERRORS)
        return tb_first_names[i];
    if (i < TBP_ML_TB_UNKNOWN)
        return tb_strerror(-(int)(i - TBP_ML_TB_ERRORS + 1));
    return "unknown";
}

static const char *cache_name(unsigned i)
{
    return cache_names[i];
}

static const char *cookie_name(unsigned i)
{
    return tbp_cookie_outcome_name((enum tbp_cookie_outcome)i);
}

static const char *jwt_name(unsigned i)
{
    return tbp_jwt_outcome_name((enum tbp_jwt_outcome)i);
}

unsigned tbp_metrics_request_label(enum tbp_ml_proto p, int status)
{
    if ((unsigned)p >= TBP_ML_PROTO_N || status < 100 || status > 599)
        return TBP_M_MAX_LABELS;
    return (unsigned)p * TBP_ML_CLASS_N + (unsigned)(status / 100 - 1);
}

unsigned tbp_metrics_tb_label(const char *reason)
{
    unsigned i;

    if (reason == NULL)
        return TBP_ML_TB_UNKNOWN;
    for (i = 0; i < TBP_ML_TB_UNKNOWN; i++) {
        if (strcmp(reason, tb_name(i)) == 0)
            return i;
    }
    return TBP_ML_TB_UNKNOWN;
}

unsigned tbp_metrics_alpn_label(const char *alpn)
{
    unsigned i;

    if (alpn == NULL || alpn[0] == '\0')
        return TBP_ML_ALPN_NONE;
    for (i = 0; i < TBP_ML_ALPN_NONE; i++) {
        if (strcmp(alpn, alpn_names[i]) == 0)
            return i;
    }
    return TBP_ML_ALPN_NONE;
}

unsigned tbp_metrics_tb_conn_label(int version, int key_params)
{
    if (version < 0 || version > 1 || key_params < 0 || key_params > 2)
        return TBP_M_MAX_LABELS;
    return (unsigned)version * 3u + (unsigned)key_params;
}

/* --- families ------------------------------------------------------------------------------- */

struct family {
    const char *name, *help;
    const char *key1; /* NULL: no labels */
    unsigned n1;
    const char *(*v1)(unsigned);
    const char *key2; /* NULL: one label key; else label = i1 * n2 + i2 */
    unsigned n2;
    const char *(*v2)(unsigned);
};

static const struct family families[TBP_M_N] = {
    [TBP_M_CONN_ACCEPTED] = {"tbproxy_connections_accepted_total", "Client connections accepted.",
                             NULL, 0, NULL, NULL, 0, NULL},
    [TBP_M_CONN_ALPN] = {"tbproxy_connections_alpn_total",
                         "Client connections by the ALPN protocol their TLS handshake selected.",
                         "alpn", TBP_ML_ALPN_N, alpn_name, NULL, 0, NULL},
    [TBP_M_TLS_HANDSHAKES] = {"tbproxy_tls_handshakes_total",
                              "TLS handshakes completed, full or resumed.", "type", TBP_ML_HS_N,
                              hs_name, NULL, 0, NULL},
    [TBP_M_TLS_FAILURES] = {"tbproxy_tls_handshake_failures_total",
                            "TLS handshakes that failed, by reason.", "reason", TBP_ML_TLSF_N,
                            tlsf_name, NULL, 0, NULL},
    [TBP_M_REQUESTS] = {"tbproxy_requests_total",
                        "Requests answered, by front-end protocol and status class.", "protocol",
                        TBP_ML_PROTO_N, proto_name, "class", TBP_ML_CLASS_N, class_name},
    [TBP_M_TB] = {"tbproxy_token_binding_total",
                  "Token Binding checks of requests, by outcome (ok or the failure reason).",
                  "outcome", TBP_ML_TB_N, tb_name, NULL, 0, NULL},
    [TBP_M_KEY_CACHE] = {"tbproxy_token_binding_key_cache_total",
                         "Lookups in the Token Binding public key cache, by result.", "result",
                         TBP_ML_CACHE_N, cache_name, NULL, 0, NULL},
    [TBP_M_HEADER_CACHE_HITS] = {"tbproxy_token_binding_header_cache_hits_total",
                                 "Requests whose Token-Binding header equalled the last one "
                                 "verified on their connection (no signature check).",
                                 NULL, 0, NULL, NULL, 0, NULL},
    [TBP_M_COOKIES] = {"tbproxy_cookies_total",
                       "Bound cookies (bind_cookies) in requests, by outcome: ok and pass are "
                       "forwarded, the others dropped.",
                       "outcome", TBP_CK_N, cookie_name, NULL, 0, NULL},
    [TBP_M_COOKIES_BOUND] = {"tbproxy_cookies_bound_total",
                             "Set-Cookie values bound to the client's Token Binding ID.", NULL, 0,
                             NULL, NULL, 0, NULL},
    [TBP_M_JWT] = {"tbproxy_jwt_total",
                   "Bound JWT checks, by outcome: ok is forwarded, the others answered 401.",
                   "outcome", TBP_JWT_N, jwt_name, NULL, 0, NULL},
    [TBP_M_REFER_ADDED] = {"tbproxy_refer_token_binding_added_total",
                           "Redirects given Include-Referer-Token-Binding-ID (draft) or "
                           "Include-Referred-Token-Binding-ID (rfc).",
                           NULL, 0, NULL, NULL, 0, NULL},
    [TBP_M_BYTES_IN] = {"tbproxy_client_received_bytes_total",
                        "Bytes received from clients (TLS payload).", NULL, 0, NULL, NULL, 0, NULL},
    [TBP_M_BYTES_OUT] = {"tbproxy_client_sent_bytes_total", "Bytes sent to clients (TLS payload).",
                         NULL, 0, NULL, NULL, 0, NULL},
    [TBP_M_TB_CONNS] = {"tbproxy_token_binding_connections_total",
                        "Client connections that negotiated Token Binding, by version and key "
                        "parameters (RFC 8471 names for both versions).",
                        "version", 2, tbv_name, "key", 3, tbkey_name},
};

static const char *const pool_counter_names[TBP_MP_N] = {"tbproxy_upstream_connects_total",
                                                         "tbproxy_upstream_reuses_total",
                                                         "tbproxy_upstream_errors_total"};
static const char *const pool_counter_help[TBP_MP_N] = {
    "Origin connections opened, by pool.",
    "Exchanges sent on an idle kept-alive origin connection, by pool.",
    "Origin exchanges that failed (answered 502 or 504), by pool."};

/* --- histogram buckets ---------------------------------------------------------------------- */

struct bound {
    uint64_t ns;
    const char *le;
};

static const struct bound verify_bounds[TBP_H_BUCKETS] = {
    {10000, "1e-05"},    {25000, "2.5e-05"}, {50000, "5e-05"},    {100000, "0.0001"},
    {250000, "0.00025"}, {500000, "0.0005"}, {1000000, "0.001"},  {2500000, "0.0025"},
    {5000000, "0.005"},  {10000000, "0.01"}, {25000000, "0.025"}, {50000000, "0.05"},
    {100000000, "0.1"}};

static const struct bound upstream_bounds[TBP_H_BUCKETS] = {
    {1000000, "0.001"},  {2500000, "0.0025"}, {5000000, "0.005"},   {10000000, "0.01"},
    {25000000, "0.025"}, {50000000, "0.05"},  {100000000, "0.1"},   {250000000, "0.25"},
    {500000000, "0.5"},  {1000000000, "1"},   {2500000000u, "2.5"}, {5000000000u, "5"},
    {10000000000u, "10"}};

struct hist_desc {
    const char *name, *help;
    const struct bound *bounds;
};

static const struct hist_desc hists[TBP_H_N] = {
    [TBP_H_TB_VERIFY] = {"tbproxy_token_binding_verify_seconds",
                         "Time to verify a Token-Binding header (decode, parse, signatures).",
                         verify_bounds},
};

/* --- the request path ----------------------------------------------------------------------- */

static void hist_add(struct tbp_mhist *h, const struct bound *b, uint64_t ns)
{
    unsigned i = 0;

    while (i < TBP_H_BUCKETS && ns > b[i].ns)
        i++;
    tbp_mctr_add(&h->bucket[i], 1);
    tbp_mctr_add(&h->sum_ns, ns);
}

void tbp_metrics_set(struct tbp_metrics *m, enum tbp_metric f, unsigned label, uint64_t v)
{
    if ((unsigned)f < TBP_M_N && label < TBP_M_MAX_LABELS)
        __atomic_store_n(&m->c[f][label], v, __ATOMIC_RELAXED);
}

void tbp_metrics_gauge_add(struct tbp_metrics *m, enum tbp_gauge g, int64_t delta)
{
    if ((unsigned)g >= TBP_G_N)
        return;
    __atomic_store_n(&m->g[g], __atomic_load_n(&m->g[g], __ATOMIC_RELAXED) + delta,
                     __ATOMIC_RELAXED);
}

void tbp_metrics_observe(struct tbp_metrics *m, enum tbp_histogram h, uint64_t ns)
{
    if ((unsigned)h < TBP_H_N)
        hist_add(&m->h[h], hists[h].bounds, ns);
}

void tbp_metrics_pool_inc(struct tbp_metrics *m, size_t pool, enum tbp_mpool_counter what)
{
    if (pool < m->n_pools && (unsigned)what < TBP_MP_N)
        tbp_mctr_add(&m->pools[pool].c[what], 1);
}

void tbp_metrics_pool_observe(struct tbp_metrics *m, size_t pool, uint64_t ns)
{
    if (pool < m->n_pools)
        hist_add(&m->pools[pool].latency, upstream_bounds, ns);
}

/* --- set-up --------------------------------------------------------------------------------- */

/* Index of the pool called name in p[0..n) (hint: the likely index), or n. */
static size_t pool_find(const struct tbp_mpool *p, size_t n, const char *name, size_t hint)
{
    size_t i;

    if (hint < n && strcmp(p[hint].name, name) == 0)
        return hint;
    for (i = 0; i < n; i++) {
        if (strcmp(p[i].name, name) == 0)
            return i;
    }
    return n;
}

/* A pool array for names (NULL when n is 0), zeroed and named. 0, TB_EINVAL or TB_ENOMEM. */
static int pools_new(const char *const *names, size_t n, struct tbp_mpool **out)
{
    struct tbp_mpool *p;
    size_t i, len;

    *out = NULL;
    if (n == 0)
        return 0;
    if (names == NULL || n > TBP_METRICS_MAX_POOLS)
        return TB_EINVAL;
    if ((p = calloc(n, sizeof(*p))) == NULL)
        return TB_ENOMEM;
    for (i = 0; i < n; i++) {
        if (names[i] == NULL || (len = strlen(names[i])) == 0 || len >= TBP_METRICS_NAME_MAX ||
            pool_find(p, i, names[i], i) != i) {
            free(p);
            return TB_EINVAL;
        }
        memcpy(p[i].name, names[i], len + 1);
    }
    *out = p;
    return 0;
}

int tbp_metrics_init(struct tbp_metrics *m, const char *const *names, size_t n_pools)
{
    struct tbp_mpool *p;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = pools_new(names, n_pools, &p)) != 0)
        return rc;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(p);
        return TB_ENOMEM;
    }
    m->pools = p;
    m->n_pools = m->pools_cap = n_pools;
    return 0;
}

void tbp_metrics_dispose(struct tbp_metrics *m)
{
    free(m->pools);
    m->pools = NULL;
    m->n_pools = m->pools_cap = 0;
    pthread_mutex_destroy(&m->lock);
}

int tbp_metrics_set_pools(struct tbp_metrics *m, const char *const *names, size_t n_pools)
{
    struct tbp_mpool *p, *old;
    size_t i, k;
    int rc;

    if ((rc = pools_new(names, n_pools, &p)) != 0)
        return rc;
    for (i = 0; i < n_pools; i++) { /* the owner is the only writer: plain copies are exact */
        k = pool_find(m->pools, m->n_pools, p[i].name, i);
        if (k < m->n_pools) {
            memcpy(p[i].c, m->pools[k].c, sizeof(p[i].c));
            p[i].latency = m->pools[k].latency;
        }
    }
    pthread_mutex_lock(&m->lock);
    old = m->pools;
    m->pools = p;
    m->n_pools = m->pools_cap = n_pools;
    pthread_mutex_unlock(&m->lock);
    free(old);
    return 0;
}

/* --- the scrape ----------------------------------------------------------------------------- */

static uint64_t ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* dst += src, reading src with relaxed loads (src is written by its owner meanwhile). */
static void hist_sum(struct tbp_mhist *dst, const struct tbp_mhist *src)
{
    unsigned i;

    for (i = 0; i <= TBP_H_BUCKETS; i++)
        dst->bucket[i] += ld(&src->bucket[i]);
    dst->sum_ns += ld(&src->sum_ns);
}

/* The snapshot slot for pool `name` (appended, zeroed, when new). NULL: out of memory / room. */
static struct tbp_mpool *snap_pool(struct tbp_metrics *dst, const char *name, size_t hint)
{
    struct tbp_mpool *p;
    size_t k = pool_find(dst->pools, dst->n_pools, name, hint), ncap;

    if (k < dst->n_pools)
        return &dst->pools[k];
    if (dst->n_pools >= TBP_METRICS_MAX_POOLS)
        return NULL;
    if (dst->n_pools >= dst->pools_cap) {
        ncap = dst->pools_cap ? dst->pools_cap * 2 : 16;
        if ((p = realloc(dst->pools, ncap * sizeof(*p))) == NULL)
            return NULL;
        dst->pools = p;
        dst->pools_cap = ncap;
    }
    p = &dst->pools[dst->n_pools++];
    memset(p, 0, sizeof(*p));
    memcpy(p->name, name, strlen(name) + 1);
    return p;
}

int tbp_metrics_sum(struct tbp_metrics *dst, struct tbp_metrics *src)
{
    struct tbp_mpool *d;
    size_t i;
    unsigned f, l;
    int rc = 0;

    for (f = 0; f < TBP_M_N; f++)
        for (l = 0; l < TBP_M_MAX_LABELS; l++)
            dst->c[f][l] += ld(&src->c[f][l]);
    for (i = 0; i < TBP_G_N; i++)
        dst->g[i] += __atomic_load_n(&src->g[i], __ATOMIC_RELAXED);
    for (i = 0; i < TBP_H_N; i++)
        hist_sum(&dst->h[i], &src->h[i]);
    pthread_mutex_lock(&src->lock);
    for (i = 0; i < src->n_pools; i++) {
        if ((d = snap_pool(dst, src->pools[i].name, i)) == NULL) {
            rc = dst->n_pools >= TBP_METRICS_MAX_POOLS ? TB_EINVAL : TB_ENOMEM;
            break;
        }
        for (l = 0; l < TBP_MP_N; l++)
            d->c[l] += ld(&src->pools[i].c[l]);
        hist_sum(&d->latency, &src->pools[i].latency);
    }
    pthread_mutex_unlock(&src->lock);
    return rc;
}

/* --- rendering ------------------------------------------------------------------------------ */

struct label {
    const char *key, *value;
};

/* Appends v escaped for a label value: \\ for backslash, \" for a double quote, \n for LF. */
static int put_escaped(struct tbp_buf *b, const char *v)
{
    size_t run = 0;
    const char *esc;
    int rc;

    for (;; v++) {
        esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (esc == NULL && *v != '\0') {
            run++;
            continue;
        }
        if ((rc = tbp_buf_append(b, v - run, run)) != 0)
            return rc;
        run = 0;
        if (*v == '\0')
            return 0;
        if ((rc = tbp_buf_append_str(b, esc)) != 0)
            return rc;
    }
}

/* "name{k="v",...} " (no braces without labels): a sample line up to its value. */
static int put_series(struct tbp_buf *b, const char *name, const char *suffix,
                      const struct label *l, size_t n)
{
    size_t i;
    int rc;

    if ((rc = tbp_buf_appendf(b, "%s%s", name, suffix)) != 0)
        return rc;
    for (i = 0; i < n; i++) {
        if ((rc = tbp_buf_appendf(b, "%s%s=\"", i == 0 ? "{" : ",", l[i].key)) != 0 ||
            (rc = put_escaped(b, l[i].value)) != 0 || (rc = tbp_buf_append(b, "\"", 1)) != 0)
            return rc;
    }
    return tbp_buf_append_str(b, n > 0 ? "} " : " ");
}

static int put_u64(struct tbp_buf *b, const char *name, const struct label *l, size_t n, uint64_t v)
{
    int rc = put_series(b, name, "", l, n);

    return rc != 0 ? rc : tbp_buf_appendf(b, "%" PRIu64 "\n", v);
}

static int put_header(struct tbp_buf *b, const char *name, const char *help, const char *type)
{
    return tbp_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_family(struct tbp_buf *b, const struct family *f, const uint64_t *c)
{
    struct label l[2];
    unsigned i, k, n1 = f->key1 ? f->n1 : 1, n2 = f->key2 ? f->n2 : 1;
    int rc;

    if ((rc = put_header(b, f->name, f->help, "counter")) != 0)
        return rc;
    for (i = 0; i < n1; i++) {
        for (k = 0; k < n2; k++) {
            l[0] = (struct label){f->key1, f->key1 ? f->v1(i) : NULL};
            l[1] = (struct label){f->key2, f->key2 ? f->v2(k) : NULL};
            if ((rc = put_u64(b, f->name, l, f->key2 ? 2 : f->key1 ? 1 : 0, c[i * n2 + k])) != 0)
                return rc;
        }
    }
    return 0;
}

/* One histogram series: cumulative buckets with labels l[0..n) + le, then _sum and _count. */
static int render_hist(struct tbp_buf *b, const char *name, const struct label *l, size_t n,
                       const struct tbp_mhist *h, const struct bound *bd)
{
    struct label ll[3];
    uint64_t cum = 0;
    unsigned i;
    int rc;

    if (n > 0)
        memcpy(ll, l, n * sizeof(*l));
    for (i = 0; i <= TBP_H_BUCKETS; i++) {
        cum += h->bucket[i];
        ll[n] = (struct label){"le", i < TBP_H_BUCKETS ? bd[i].le : "+Inf"};
        if ((rc = put_series(b, name, "_bucket", ll, n + 1)) != 0 ||
            (rc = tbp_buf_appendf(b, "%" PRIu64 "\n", cum)) != 0)
            return rc;
    }
    if ((rc = put_series(b, name, "_sum", l, n)) != 0 ||
        (rc = tbp_buf_appendf(b, "%" PRIu64 ".%09" PRIu64 "\n", h->sum_ns / 1000000000u,
                              h->sum_ns % 1000000000u)) != 0)
        return rc;
    if ((rc = put_series(b, name, "_count", l, n)) != 0)
        return rc;
    return tbp_buf_appendf(b, "%" PRIu64 "\n", cum);
}

static int render_process(struct tbp_buf *b, const struct tbp_metrics_process *p)
{
    struct label l;
    int rc;

    l = (struct label){"version", p->version ? p->version : TBP_VERSION};
    if ((rc = put_header(b, "tbproxy_build_info", "The version of tbproxy (always 1).", "gauge")) !=
            0 ||
        (rc = put_u64(b, "tbproxy_build_info", &l, 1, 1)) != 0)
        return rc;
    if ((rc = put_header(b, "tbproxy_start_time_seconds",
                         "Unix time the process started, in seconds.", "gauge")) != 0 ||
        (rc = tbp_buf_appendf(b, "tbproxy_start_time_seconds %.3f\n", p->start_time)) != 0)
        return rc;
    if ((rc = put_header(b, "tbproxy_config_load_time_seconds",
                         "Unix time the configuration in use was loaded, in seconds.", "gauge")) !=
            0 ||
        (rc = tbp_buf_appendf(b, "tbproxy_config_load_time_seconds %.3f\n", p->config_load_time)) !=
            0)
        return rc;
    if ((rc = put_header(b, "tbproxy_config_reloads_total",
                         "Configuration reloads (SIGHUP), by result; a failed one keeps the old.",
                         "counter")) != 0)
        return rc;
    l = (struct label){"result", "ok"};
    if ((rc = put_u64(b, "tbproxy_config_reloads_total", &l, 1, p->reloads_ok)) != 0)
        return rc;
    l = (struct label){"result", "failed"};
    if ((rc = put_u64(b, "tbproxy_config_reloads_total", &l, 1, p->reloads_failed)) != 0)
        return rc;
    if ((rc = put_header(b, "tbproxy_workers", "Worker threads running.", "gauge")) != 0 ||
        (rc = put_u64(b, "tbproxy_workers", NULL, 0, p->workers)) != 0)
        return rc;
    if ((rc = put_header(b, "tbproxy_draining",
                         "1 while a graceful stop finishes in-flight requests, else 0.",
                         "gauge")) != 0 ||
        (rc = put_u64(b, "tbproxy_draining", NULL, 0, p->draining ? 1 : 0)) != 0)
        return rc;
    return 0;
}

static int render_pools(struct tbp_buf *b, const struct tbp_metrics *s)
{
    struct label l;
    size_t i;
    unsigned k;
    int rc;

    if (s->n_pools == 0)
        return 0;
    for (k = 0; k < TBP_MP_N; k++) {
        if ((rc = put_header(b, pool_counter_names[k], pool_counter_help[k], "counter")) != 0)
            return rc;
        for (i = 0; i < s->n_pools; i++) {
            l = (struct label){"pool", s->pools[i].name};
            if ((rc = put_u64(b, pool_counter_names[k], &l, 1, s->pools[i].c[k])) != 0)
                return rc;
        }
    }
    if ((rc = put_header(b, "tbproxy_upstream_latency_seconds",
                         "Time from sending a request to an origin to its response head, by "
                         "pool.",
                         "histogram")) != 0)
        return rc;
    for (i = 0; i < s->n_pools; i++) {
        l = (struct label){"pool", s->pools[i].name};
        if ((rc = render_hist(b, "tbproxy_upstream_latency_seconds", &l, 1, &s->pools[i].latency,
                              upstream_bounds)) != 0)
            return rc;
    }
    return 0;
}

int tbp_metrics_render(const struct tbp_metrics *s, const struct tbp_metrics_process *p,
                       struct tbp_buf *out)
{
    unsigned f;
    int rc;

    if (p != NULL && (rc = render_process(out, p)) != 0)
        return rc;
    for (f = 0; f < TBP_M_N; f++) {
        if ((rc = render_family(out, &families[f], s->c[f])) != 0)
            return rc;
        if (f == TBP_M_CONN_ACCEPTED &&
            ((rc = put_header(out, "tbproxy_connections_active", "Client connections open now.",
                              "gauge")) != 0 ||
             (rc = tbp_buf_appendf(out, "tbproxy_connections_active %" PRId64 "\n",
                                   s->g[TBP_G_CONN_ACTIVE])) != 0))
            return rc;
    }
    for (f = 0; f < TBP_H_N; f++) {
        if ((rc = put_header(out, hists[f].name, hists[f].help, "histogram")) != 0 ||
            (rc = render_hist(out, hists[f].name, NULL, 0, &s->h[f], hists[f].bounds)) != 0)
            return rc;
    }
    return render_pools(out, s);
}

int tbp_metrics_scrape(struct tbp_metrics *const *ms, size_t n, const struct tbp_metrics_process *p,
                       struct tbp_buf *out)
{
    struct tbp_metrics *snap;
    size_t i;
    int rc;

    /* a snapshot is ~4 KiB plus its pools: on the heap, the admin thread's stack may be small */
    if ((snap = malloc(sizeof(*snap))) == NULL)
        return TB_ENOMEM;
    if ((rc = tbp_metrics_init(snap, NULL, 0)) != 0) {
        free(snap);
        return rc;
    }
    for (i = 0; i < n && rc == 0; i++) {
        if (ms[i] != NULL)
            rc = tbp_metrics_sum(snap, ms[i]);
    }
    if (rc == 0)
        rc = tbp_metrics_render(snap, p, out);
    tbp_metrics_dispose(snap);
    free(snap);
    return rc;
}
