/*
 * The request path both front ends share (see exchange.h).
 *
 * The companion edits work on a struct tbp_head_edit: a private copy of the field list plus a
 * fixed arena sized before anything is written (the rebuilt Cookie value at its longest, the sub
 * header, the bound Set-Cookie values), so the slices handed to forward.c stay valid until the
 * head is written and the edit disposed of, within the same call. Routes without a companion
 * feature never build one.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "accesslog.h"
#include "exchange.h"
#include "forward.h"
#include "results.h"
#include "tb/error.h"
#include "tb/verify.h"
#include "worker.h"

_Static_assert(TBP_XLOG_TBH <= TB_TBH_LEN, "the logged tbh prefix is longer than a tbh");

/* Sec-Token-Binding-Context: base64url of major, minor, key parameters and the channel value,
 * and the NUL (tbp_binding_context). */
#define TB_CONTEXT_CAP (((3 + TB_MAX_CHANNEL) * 4 + 2) / 3 + 1)

/* Keeps at most cap bytes of s in dst; returns the length kept. */
static size_t keep_raw(char *dst, size_t cap, const char *s, size_t n)
{
    if (n > cap)
        n = cap;
    if (n > 0)
        memcpy(dst, s, n);
    return n;
}

/* x->req: "METHOD TARGET HTTP/x.y" escaped (combined rules) and bounded, for error messages. */
static void request_line(struct tbp_xlog *x)
{
    char *o = x->req;
    size_t cap = sizeof(x->req) - 1, n;

    n = tbp_log_escape_combined(o, cap, x->method, x->method_len);
    if (n < cap)
        o[n++] = ' ';
    n += tbp_log_escape_combined(o + n, cap - n > 200 ? 200 : cap - n, x->target, x->target_len);
    if (cap - n >= 9) {
        memcpy(o + n, " HTTP/", 6);
        o[n + 6] = (char)('0' + x->version_major % 10);
        o[n + 7] = '.';
        o[n + 8] = (char)('0' + x->version_minor % 10);
        n += 9;
    }
    o[n] = '\0';
}

void tbp_xlog_begin(struct tbp_xlog *x, struct tbp_conn *c, const struct tbp_http_head *h)
{
    const struct tbp_header *ref = tbp_http_find(h, "referer");
    const struct tbp_header *ua = tbp_http_find(h, "user-agent");

    /* everything but the raw buffers, which their lengths make valid: method .. ua are last but
     * for upstream and co (exchange.h) */
    memset(x, 0, offsetof(struct tbp_xlog, method));
    memset(&x->upstream, 0, sizeof(*x) - offsetof(struct tbp_xlog, upstream));
    x->t_start = tbp_loop_now(&c->w->loop);
    x->tb = "none";
    x->has_head = 1;
    x->version_major = (uint8_t)(h->version_major & 0xff);
    x->version_minor = (uint8_t)(h->version_minor & 0xff);
    x->method_len = (uint8_t)keep_raw(x->method, sizeof(x->method), h->method.p, h->method.len);
    x->target_len = (uint16_t)keep_raw(x->target, sizeof(x->target), h->target.p, h->target.len);
    if (ref != NULL) {
        x->has_referer = 1;
        x->referer_len =
            (uint16_t)keep_raw(x->referer, sizeof(x->referer), ref->value.p, ref->value.len);
    }
    if (ua != NULL) {
        x->has_ua = 1;
        x->ua_len = (uint16_t)keep_raw(x->ua, sizeof(x->ua), ua->value.p, ua->value.len);
    }
    request_line(x);
}

void tbp_xlog_status(struct tbp_xlog *x, struct tbp_conn *c, int status)
{
    enum tbp_ml_proto p = c->proto == &tbp_proto_h2 ? TBP_ML_PROTO_H2 : TBP_ML_PROTO_H1;

    x->status = status;
    tbp_metrics_inc(&c->w->metrics, TBP_M_REQUESTS, tbp_metrics_request_label(p, status));
}

void tbp_xlog_write(const struct tbp_xlog *x, struct tbp_conn *c, const char *proto)
{
    struct tbp_proxy *px = c->w->px;
    struct tbp_accesslog_env env;
    char line[TBP_ACCESSLOG_LINE];
    int fd = __atomic_load_n(&px->access_fd, __ATOMIC_ACQUIRE); /* a reload may change it */
    size_t n;

    if (fd == -1)
        return;
    env.remote = c->ip;
    env.proto = proto;
    env.tb_key = c->tb.key_params >= 0 ? tb_key_params_name(c->tb.version, c->tb.key_params) : NULL;
    clock_gettime(CLOCK_REALTIME, &env.now);
    env.now_ms = tbp_loop_now(&c->w->loop);
    n = tbp_accesslog_format(__atomic_load_n(&px->cfg, __ATOMIC_ACQUIRE)->log.format, x, &env, line,
                             sizeof(line));
    tbp_log_write(fd, line, n);
}

/* The request's host (without the port) and path (without the query), for routing. */
static void route_keys(const struct tbp_http_head *h, struct tbp_str *host, struct tbp_str *path)
{
    const struct tbp_header *hh = tbp_http_find(h, "host");
    size_t i;

    *host = hh ? hh->value : (struct tbp_str){"", 0};
    for (i = 0; i < host->len && host->p[i] != ':'; i++)
        ;
    if (host->len > 0 && host->p[0] != '[')
        host->len = i;
    *path = h->target;
    for (i = 0; i < path->len && path->p[i] != '?'; i++)
        ;
    path->len = i;
}

/* After a Token Binding check: the header cache hit, or the verify's time and this thread's
 * key-cache totals (the verifier is the worker thread's own, so they are this worker's). */
static void count_verify(struct tbp_conn *c, uint64_t verifies, uint64_t cache_hits)
{
    struct tbp_metrics *m = &c->w->metrics;
    struct tb_verifier_stats vs;
    struct tb_verifier *v;

    if (c->tb.cache_hits != cache_hits)
        tbp_metrics_inc(m, TBP_M_HEADER_CACHE_HITS, 0);
    if (c->tb.verifies == verifies)
        return;
    tbp_metrics_observe(m, TBP_H_TB_VERIFY, c->tb.verify_ns);
    if ((v = tb_verifier_thread()) != NULL) {
        tb_verifier_get_stats(v, &vs);
        tbp_metrics_set(m, TBP_M_KEY_CACHE, TBP_ML_CACHE_HIT, vs.hits);
        tbp_metrics_set(m, TBP_M_KEY_CACHE, TBP_ML_CACHE_MISS, vs.misses);
    }
}

/*
 * spec "Validation" on this request; counts and logs the outcome (requests on a connection
 * without Token Binding are counted only when they fail: a header they should not carry). 0, or
 * -1 with x->tb set.
 */
static int check_binding(struct tbp_conn *c, const struct tbp_http_head *h, struct tbp_xlog *x)
{
    uint64_t verifies = c->tb.verifies, cache_hits = c->tb.cache_hits;
    struct tbp_metrics *m = &c->w->metrics;
    const char *reason = NULL;
    int ret = tbp_binding_check(&c->tb, h, &reason);

    count_verify(c, verifies, cache_hits);
    if (ret != 0) {
        x->tb = reason;
        x->tb_failed = 1;
        tbp_metrics_inc(m, TBP_M_TB, tbp_metrics_tb_label(reason));
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: token binding rejected: %s", c->ip, c->port,
                      reason);
        return -1;
    }
    if (c->tb.key_params >= 0) {
        x->tb = "ok";
        size_t k = strnlen(c->tb.tbh, TBP_XLOG_TBH);
        memcpy(x->tbh, c->tb.tbh, k);
        x->tbh[k] = '\0';
        tbp_metrics_inc(m, TBP_M_TB, TBP_ML_TB_OK);
    }
    return 0;
}

/* --- the companion edits ---------------------------------------------------------------------- */

int tbp_exchange_companion(const struct tbp_route *r)
{
    return r != NULL && (tbp_cookies_enabled(r) || r->jwt != NULL);
}

int tbp_exchange_request_edit(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                              const char *tbh, int64_t now, const struct tbp_http_head *in,
                              struct tbp_head_edit *e, const struct tbp_http_head **out,
                              struct tbp_companion *co)
{
    size_t space = 0;

    *out = in;
    if (!tbp_exchange_companion(r))
        return 0;
    co->cookies = tbp_cookies_enabled(r);
    co->jwt = r->jwt != NULL;
    if (!co->jwt && tbp_http_find(in, "cookie") == NULL)
        return 0; /* nothing to check, nothing to change */
    if (co->cookies)
        space += tbp_cookies_request_space(in);
    if (co->jwt)
        space += TBP_JWT_SPACE;
    if (tbp_head_edit_init(e, in, 2, space) != 0)
        return 500;
    if (co->cookies && tbp_cookies_request(r, kr, tbh, e, &co->ck) != 0)
        return 500;
    if (co->jwt) {
        co->jwt_outcome = tbp_jwt_request(r->jwt, tbh, now, e);
        if (co->jwt_outcome != TBP_JWT_OK)
            return 401;
    }
    *out = &e->head;
    return 0;
}

/*
 * A redirect of a refer_token_binding route that does not ask for the referred binding yet:
 * draft-balfanz names 301 and 302 only, RFC 8473 section 5.3 any redirect (3xx but 304).
 */
static int wants_refer(const struct tbp_route *r, int tb_version, const struct tbp_http_head *rh)
{
    int redirect = tb_version == TB_VERSION_RFC ? rh->status / 100 == 3 && rh->status != 304
                                                : rh->status == 301 || rh->status == 302;

    return r->refer_token_binding && redirect &&
           tbp_http_find(rh, "include-referer-token-binding-id") == NULL &&
           tbp_http_find(rh, "include-referred-token-binding-id") == NULL;
}

int tbp_exchange_response_edit(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                               const char *tbh, int tb_version, const struct tbp_http_head *rh,
                               struct tbp_head_edit *e, const struct tbp_http_head **out,
                               struct tbp_companion *co)
{
    int bind = tbp_cookies_enabled(r) && tbh != NULL && tbh[0] != '\0' &&
               tbp_http_find(rh, "set-cookie") != NULL;
    int refer = r != NULL && wants_refer(r, tb_version, rh), ret;

    *out = rh;
    if (!bind && !refer)
        return 0;
    if ((ret = tbp_head_edit_init(e, rh, 1, bind ? tbp_cookies_response_space(rh) : 0)) != 0)
        return ret;
    if (bind && (ret = tbp_cookies_response(r, kr, tbh, e, &co->ck)) != 0)
        return ret;
    if (refer) {
        /* the client understands its own version's name only (the draft's spelling, "Referer",
         * became "Referred" in RFC 8473) */
        struct tbp_str name = tb_version == TB_VERSION_RFC
                                  ? (struct tbp_str){"Include-Referred-Token-Binding-ID", 33}
                                  : (struct tbp_str){"Include-Referer-Token-Binding-ID", 32};
        if ((ret = tbp_head_edit_add(e, name, (struct tbp_str){"true", 4})) != 0)
            return ret;
        co->refer_added = 1;
    }
    *out = &e->head;
    return 0;
}

/* The connection's provided tbh, or NULL without Token Binding. */
static const char *conn_tbh(const struct tbp_conn *c)
{
    return c->tb.key_params >= 0 && c->tb.tbh[0] != '\0' ? c->tb.tbh : NULL;
}

/* Adds one request's companion outcomes to the worker's counters. */
static void count_request(struct tbp_metrics *m, const struct tbp_companion *co)
{
    unsigned i;

    for (i = 0; co->cookies && i < TBP_CK_N; i++)
        if (co->ck.n[i] > 0)
            tbp_metrics_add(m, TBP_M_COOKIES, i, co->ck.n[i]);
    if (co->jwt)
        tbp_metrics_inc(m, TBP_M_JWT,
                        co->jwt_outcome < TBP_JWT_N ? (unsigned)co->jwt_outcome : TBP_JWT_ERROR);
}

int tbp_exchange_response(struct tbp_conn *c, const struct tbp_route *route,
                          const struct tbp_http_head *rh, struct tbp_head_edit *e,
                          const struct tbp_http_head **out, struct tbp_xlog *x)
{
    unsigned bound = x->co.ck.bound;
    int ret;

    ret = tbp_exchange_response_edit(route, c->cfg->cookie_keys, conn_tbh(c), c->tb.version, rh, e,
                                     out, &x->co);
    if (x->co.ck.bound != bound)
        tbp_metrics_add(&c->w->metrics, TBP_M_COOKIES_BOUND, 0, x->co.ck.bound - bound);
    if (x->co.refer_added)
        tbp_metrics_inc(&c->w->metrics, TBP_M_REFER_ADDED, 0);
    if (ret != 0)
        tbp_log_error(c->w->px, TBP_LOG_ERROR, "%s:%u: %s: response cannot be edited (%s)", c->ip,
                      c->port, x->req, ret == TBP_EBUF ? "too large" : tb_strerror(ret));
    return ret;
}

/* --- the request-target ------------------------------------------------------------------ */

/* uri-host [ ":" port ] characters (RFC 3986): unreserved, pct-encoded, sub-delims, ':', '[', ']'
 * (the same set h1parse.c accepts in Host). */
static int authority_char_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("-._~%!$&'()*+,;=:[]", c) != NULL;
}

/* The length of "http://" or "https://" (any case) at the start of t, or 0. */
static size_t scheme_len(struct tbp_str t)
{
    if (t.len >= 7 && strncasecmp(t.p, "http://", 7) == 0)
        return 7;
    if (t.len >= 8 && strncasecmp(t.p, "https://", 8) == 0)
        return 8;
    return 0;
}

int tbp_exchange_target(const struct tbp_http_head *in, struct tbp_head_edit *e,
                        const struct tbp_http_head **out, const char **why)
{
    const struct tbp_header *host = tbp_http_find(in, "host");
    struct tbp_str t = in->target, auth, rest;
    size_t i, skip;
    char *p;

    *out = in;
    if (t.len > 0 && (t.p[0] == '/' || (t.len == 1 && t.p[0] == '*')))
        return 0; /* origin-form, asterisk-form */
    *why = "bad request-target";
    if ((skip = scheme_len(t)) == 0)
        return 400; /* another scheme, authority-form, a relative reference */
    auth = (struct tbp_str){t.p + skip, 0};
    while (skip + auth.len < t.len && t.p[skip + auth.len] != '/' && t.p[skip + auth.len] != '?')
        auth.len++;
    rest = (struct tbp_str){auth.p + auth.len, t.len - skip - auth.len};
    if (auth.len == 0)
        return 400;
    for (i = 0; i < auth.len; i++)
        if (!authority_char_ok((unsigned char)auth.p[i]))
            return 400; /* userinfo ('@') included: RFC 9110 section 4.2.4 */
    for (i = 0; i < rest.len; i++)
        if (rest.p[i] == '#' || (unsigned char)rest.p[i] <= ' ' || (unsigned char)rest.p[i] >= 0x7f)
            return 400;
    if (host != NULL &&
        (host->value.len != auth.len || strncasecmp(host->value.p, auth.p, auth.len) != 0)) {
        *why = "Host does not match the request-target";
        return 400;
    }
    if (tbp_head_edit_init(e, in, 1, rest.len + 1) != 0) {
        *why = "out of memory";
        return 500;
    }
    if (rest.len == 0 || rest.p[0] == '?') { /* an empty path is "/" (RFC 9112 section 3.2.2) */
        if ((p = tbp_head_edit_alloc(e, rest.len + 1)) == NULL)
            return 500;
        p[0] = '/';
        if (rest.len > 0)
            memcpy(p + 1, rest.p, rest.len);
        rest = (struct tbp_str){p, rest.len + 1};
    }
    e->head.target = rest;
    if (host == NULL && tbp_head_edit_add(e, (struct tbp_str){"Host", 4}, auth) != 0)
        return 500; /* HTTP/1.0 without Host: the authority becomes it */
    *out = &e->head;
    return 0;
}

/* --- Authentication-Results, route policy ---------------------------------------------------- */

/* The route's tbcookie / tbjwt outcome of this request. */
static enum tbp_results_check cookie_check(const struct tbp_companion *co)
{
    if (!co->cookies)
        return TBP_RES_UNSET;
    return co->ck.dropped > 0 ? TBP_RES_FAIL : co->ck.kept > 0 ? TBP_RES_PASS : TBP_RES_NONE;
}

/*
 * The proxy's Authentication-Results value for this request into buf (results.h); tb says
 * whether a binding is reported (negotiated, verified, and the route does not say "off").
 * Returns 0, or -1 when it could not be made (logged; the request is refused then rather
 * than forwarded with less than the origin was promised).
 */
static int authres_value(struct tbp_conn *c, const struct tbp_route *r,
                         const struct tbp_tlsinfo *ti, int tb, const struct tbp_xlog *x, char *buf,
                         size_t cap)
{
    struct tbp_results_req rq = {0};
    int n;

    rq.tls = ti;
    rq.report_cert = r->client_certificate != TBP_POLICY_OFF;
    rq.report_tb = r->token_binding != TBP_POLICY_OFF;
    rq.tb = tb;
    if (tb)
        tbp_results_set_binding(&rq, c->tb.version, c->tb.key_params);
    rq.tb_referred = tb && c->tb.referred != NULL;
    rq.tbcookie = cookie_check(&x->co);
    rq.tbcookie_dropped = x->co.ck.dropped_names;
    rq.tbjwt = x->co.jwt ? TBP_RES_PASS : TBP_RES_UNSET;
    if ((n = tbp_results_value(c->cfg->authserv_id, &rq, buf, cap)) < 0) {
        tbp_log_error(c->w->px, TBP_LOG_ERROR, "%s:%u: %s: Authentication-Results not made (%s)",
                      c->ip, c->port, x->req, tb_strerror(n));
        return -1;
    }
    return 0;
}

/* --- the exchange ----------------------------------------------------------------------------- */

/*
 * Sec-Token-Binding-Context for route r into buf: only on routes with token_binding_context, for
 * an rfc binding that verified on this request (tb). A draft binding has none (no extension
 * version, no EKM). *out is NULL when none is sent. Returns 0, or -1 when it could not be made
 * (logged; the request is refused rather than forwarded without what the route promises).
 */
static int tb_context(struct tbp_conn *c, const struct tbp_route *r, int tb,
                      const struct tbp_xlog *x, char *buf, size_t cap, const char **out)
{
    *out = NULL;
    if (!tb || !r->token_binding_context || c->tb.version != TB_VERSION_RFC)
        return 0;
    if (tbp_binding_context(&c->tb, buf, cap) < 0) {
        tbp_log_error(c->w->px, TBP_LOG_ERROR, "%s:%u: %s: Sec-Token-Binding-Context not made",
                      c->ip, c->port, x->req);
        return -1;
    }
    *out = buf;
    return 0;
}

int tbp_exchange_start(struct tbp_conn *c, const struct tbp_http_head *h, int head_request,
                       enum tbp_body_framing framing, const struct tbp_upstream_sink *sink,
                       void *ctx, struct tbp_xlog *x, struct tbp_upconn **up,
                       const struct tbp_route **route, const char **why)
{
    const struct tbp_config *cfg = c->cfg;
    const struct tbp_header *host;
    const struct tbp_http_head *fh;
    const char *other = c->tb.other, *context = NULL;
    struct tbp_head_edit edit = {0}, target = {0};
    struct tbp_fwd_info fi = {0};
    struct tbp_tlsinfo ti;
    char authres[TBP_RESULTS_MAX], tbctx[TB_CONTEXT_CAP];
    const struct tbp_route *r;
    struct tbp_str rhost, path;
    struct tbp_buf head;
    int ret, status = 0, tb = c->tb.key_params >= 0;

    *up = NULL;
    *route = NULL;
    if (h->target.len > cfg->limits.max_uri_bytes) {
        *why = "request-target too long";
        return 414;
    }
    if ((status = tbp_exchange_target(h, &target, &h, why)) != 0)
        goto Exit;
    fh = h;
    host = tbp_http_find(h, "host");
    if (check_binding(c, h, x) != 0) {
        *why = x->tb;
        status = 400;
        goto Exit;
    }
    route_keys(h, &rhost, &path);
    if (!tbp_http_path_normal(path.p, path.len)) {
        /* "/./api", "//api", "/%61pi" would miss the "/api/" route (and its JWT check) here yet
         * reach /api at an origin that normalises: refused rather than guessed */
        *why = "path not in normal form";
        status = 400;
        goto Exit;
    }
    r = *route = tbp_config_route(cfg, rhost.p, rhost.len, path.p, path.len);
    if (r == NULL) {
        *why = "no route";
        status = 404;
        goto Exit;
    }
    if (!tb && r->token_binding == TBP_POLICY_REQUIRED) {
        *why = "token binding required";
        status = 403;
        goto Exit;
    }
    if ((r->authentication_results || r->client_certificate == TBP_POLICY_REQUIRED) &&
        tbp_tlsinfo_get(c->ssl, &ti) != 0) {
        *why = "TLS facts unavailable";
        status = 500;
        goto Exit;
    }
    if (r->client_certificate == TBP_POLICY_REQUIRED && ti.result != TBP_TLSR_PASS) {
        *why = ti.cert == NULL ? "client certificate required" : "client certificate not valid";
        status = 403;
        goto Exit;
    }
    if (r->max_body_size != 0 && framing == TBP_BODY_LENGTH &&
        h->content_length > r->max_body_size) {
        *why = "request body too large";
        status = 413;
        goto Exit;
    }
    if (tbp_exchange_companion(r)) {
        status =
            tbp_exchange_request_edit(r, cfg->cookie_keys, conn_tbh(c), 0, h, &edit, &fh, &x->co);
        count_request(&c->w->metrics, &x->co);
        if (status != 0) {
            *why = status == 401 ? tbp_jwt_outcome_text(x->co.jwt_outcome)
                                 : "request cannot be edited";
            goto Exit;
        }
    }
    if (r->token_binding == TBP_POLICY_OFF)
        tb = 0; /* the route never hears of bindings */
    if (r->authentication_results &&
        authres_value(c, r, &ti, tb, x, authres, sizeof(authres)) != 0) {
        *why = "Authentication-Results cannot be made";
        status = 500;
        goto Exit;
    }
    if (tb_context(c, r, tb, x, tbctx, sizeof(tbctx), &context) != 0) {
        *why = "Sec-Token-Binding-Context cannot be made";
        status = 500;
        goto Exit;
    }
    *up = tbp_upstream_start(tbp_wgen_pool(c->wg, r->upstream), sink, ctx, head_request,
                             framing == TBP_BODY_NONE);
    if (*up == NULL) {
        tbp_metrics_pool_inc(&c->w->metrics, (size_t)(r->upstream - cfg->upstreams), TBP_MP_ERRORS);
        *why = "origin unavailable";
        status = 502;
        goto Exit;
    }
    snprintf(x->upstream, sizeof(x->upstream), "%s", tbp_upstream_addr(*up));
    fi.client_ip = c->ip;
    fi.client_port = c->port;
    fi.peer_trusted = c->trusted;
    fi.scheme = "https";
    fi.host = host ? host->value : (struct tbp_str){"", 0};
    fi.provided_id = tb ? c->tb.provided : NULL;
    fi.referred_id = tb ? c->tb.referred : NULL;
    fi.other_ids = &other;
    fi.n_other_ids = tb && other != NULL ? 1 : 0;
    fi.tb_context = context;
    fi.authres = r->authentication_results ? authres : NULL;
    fi.authserv_id = cfg->authserv_id;
    fi.framing = framing;
    fi.content_length = h->content_length;
    fi.keep_alive = 1;
    tbp_buf_init(&head, (size_t)cfg->limits.max_header_bytes + 16384);
    ret = tbp_forward_request_head(fh, &fi, &head);
    if (ret == 0)
        ret = tbp_upstream_write(*up, head.p, head.len) < 0 ? -1 : 0;
    tbp_buf_dispose(&head);
    if (ret != 0) {
        if (*up != NULL)
            tbp_upstream_abort(*up);
        *up = NULL;
        *why = "request cannot be forwarded";
        status = 400;
    }
Exit:
    if (context != NULL)
        OPENSSL_cleanse(tbctx, sizeof(tbctx)); /* the EKM, encoded */
    tbp_head_edit_dispose(&edit);
    tbp_head_edit_dispose(&target);
    return status;
}
