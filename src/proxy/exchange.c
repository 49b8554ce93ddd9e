/*
 * The request path both front ends share (see exchange.h).
 *
 * The companion edits work on a struct tbp_head_edit: a private copy of the field list plus a
 * fixed arena sized before anything is written (the rebuilt Cookie value at its longest, the sub
 * header, the bound Set-Cookie values), so the slices handed to forward.c stay valid until the
 * head is written and the edit disposed of, within the same call. Routes without a companion
 * feature never build one.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "exchange.h"
#include "forward.h"
#include "tb/error.h"
#include "worker.h"

/* Copies s into a log field: printable ASCII only, quotes and backslashes escaped, bounded. */
static void log_field(char *dst, const char *s, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 5 < TBP_XLOG_FIELD; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20 || ch > 0x7e) {
            o += (size_t)snprintf(dst + o, TBP_XLOG_FIELD - o, "\\x%02x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    dst[o] = '\0';
}

void tbp_xlog_begin(struct tbp_xlog *x, struct tbp_conn *c, const struct tbp_http_head *h)
{
    const struct tbp_header *ref = tbp_http_find(h, "referer");
    const struct tbp_header *ua = tbp_http_find(h, "user-agent");
    char line[TBP_XLOG_FIELD];
    int n;

    memset(x, 0, sizeof(*x));
    x->t_start = x->t_upstream = tbp_loop_now(&c->w->loop);
    x->tb = "none";
    n = snprintf(line, sizeof(line), "%.*s %.*s HTTP/%d.%d", (int)h->method.len, h->method.p,
                 (int)(h->target.len > 200 ? 200 : h->target.len), h->target.p, h->version_major,
                 h->version_minor);
    log_field(x->req, line, n > 0 ? (size_t)n : 0);
    log_field(x->referer, ref ? ref->value.p : "", ref ? ref->value.len : 0);
    log_field(x->ua, ua ? ua->value.p : "", ua ? ua->value.len : 0);
    c->w->stats.requests++;
}

void tbp_xlog_status(struct tbp_xlog *x, struct tbp_conn *c, int status)
{
    x->status = status;
    if (status >= 100 && status < 600)
        c->w->stats.responses[status / 100]++;
}

/* The companion outcomes of an exchange for the access log (counts and reason names only, never
 * a value): " ck=KEPT/DROPPED", " setck=BOUND" and " jwt=OUTCOME" when they apply. Returns the
 * length written (0 if it does not fit). */
static int companion_log(const struct tbp_companion *co, char *out, size_t cap)
{
    int n = 0, k;

    if (co->cookies) {
        k = co->ck.bound > 0 ? snprintf(out, cap, " ck=%u/%u setck=%u", co->ck.kept, co->ck.dropped,
                                        co->ck.bound)
                             : snprintf(out, cap, " ck=%u/%u", co->ck.kept, co->ck.dropped);
        if (k < 0 || (size_t)k >= cap)
            return 0;
        n = k;
    }
    if (co->jwt) {
        k = snprintf(out + n, cap - (size_t)n, " jwt=%s", tbp_jwt_outcome_name(co->jwt_outcome));
        if (k < 0 || (size_t)k >= cap - (size_t)n)
            return n;
        n += k;
    }
    return n;
}

void tbp_xlog_write(const struct tbp_xlog *x, struct tbp_conn *c, const char *proto)
{
    char line[2048], date[64];
    time_t now = time(NULL);
    struct tm tm;
    int n;

    if (c->w->px->access_fd == -1)
        return;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    n = snprintf(line, sizeof(line),
                 "%s - - [%s] \"%s\" %d %llu \"%s\" \"%s\" %s tb=%s up=%s ut=%.3f rt=%.3f", c->ip,
                 date, x->req[0] ? x->req : "-", x->status, (unsigned long long)x->resp_bytes,
                 x->referer[0] ? x->referer : "-", x->ua[0] ? x->ua : "-", proto, x->tb,
                 x->upstream[0] ? x->upstream : "-", (double)(x->t_upstream - x->t_start) / 1000.0,
                 (double)(tbp_loop_now(&c->w->loop) - x->t_start) / 1000.0);
    if (n > 0 && (size_t)n < sizeof(line))
        n += companion_log(&x->co, line + n, sizeof(line) - (size_t)n);
    if (n > 0 && (size_t)n < sizeof(line) - 1)
        line[n++] = '\n';
    if (n > 0)
        tbp_log_write(c->w->px->access_fd, line,
                      (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
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

/* spec "Validation" on this request; counts and logs the outcome. 0, or -1 with x->tb set. */
static int check_binding(struct tbp_conn *c, const struct tbp_http_head *h, struct tbp_xlog *x)
{
    const char *reason = NULL;

    if (tbp_binding_check(&c->tb, h, &reason) != 0) {
        x->tb = reason;
        x->tb_failed = 1;
        c->w->stats.tb_failed++;
        tbp_log_error(c->w->px, TBP_LOG_INFO, "%s:%u: token binding rejected: %s", c->ip, c->port,
                      reason);
        return -1;
    }
    if (c->tb.key_params >= 0) {
        x->tb = "ok";
        c->w->stats.tb_ok++;
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

/* A redirect of a refer_token_binding route that does not ask for the referred binding yet. */
static int wants_refer(const struct tbp_route *r, const struct tbp_http_head *rh)
{
    return r->refer_token_binding && rh->status / 100 == 3 && rh->status != 304 &&
           tbp_http_find(rh, "include-referer-token-binding-id") == NULL &&
           tbp_http_find(rh, "include-referred-token-binding-id") == NULL;
}

int tbp_exchange_response_edit(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                               const char *tbh, const struct tbp_http_head *rh,
                               struct tbp_head_edit *e, const struct tbp_http_head **out,
                               struct tbp_companion *co)
{
    int bind = tbp_cookies_enabled(r) && tbh != NULL && tbh[0] != '\0' &&
               tbp_http_find(rh, "set-cookie") != NULL;
    int refer = r != NULL && wants_refer(r, rh), ret;

    *out = rh;
    if (!bind && !refer)
        return 0;
    if ((ret = tbp_head_edit_init(e, rh, 1, bind ? tbp_cookies_response_space(rh) : 0)) != 0)
        return ret;
    if (bind && (ret = tbp_cookies_response(r, kr, tbh, e, &co->ck)) != 0)
        return ret;
    if (refer) {
        if ((ret = tbp_head_edit_add(e, (struct tbp_str){"Include-Referer-Token-Binding-ID", 32},
                                     (struct tbp_str){"true", 4})) != 0)
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
static void count_request(struct tbp_worker_stats *st, const struct tbp_companion *co)
{
    size_t i;

    for (i = 0; co->cookies && i < TBP_CK_N; i++)
        st->cookies[i] += co->ck.n[i];
    if (co->jwt)
        st->jwt[co->jwt_outcome < TBP_JWT_N ? co->jwt_outcome : TBP_JWT_ERROR]++;
}

int tbp_exchange_response(struct tbp_conn *c, const struct tbp_route *route,
                          const struct tbp_http_head *rh, struct tbp_head_edit *e,
                          const struct tbp_http_head **out, struct tbp_xlog *x)
{
    unsigned bound = x->co.ck.bound;
    int ret;

    ret = tbp_exchange_response_edit(route, c->w->px->cfg->cookie_keys, conn_tbh(c), rh, e, out,
                                     &x->co);
    c->w->stats.cookies_bound += x->co.ck.bound - bound;
    c->w->stats.refer_added += x->co.refer_added ? 1 : 0;
    if (ret != 0)
        tbp_log_error(c->w->px, TBP_LOG_ERROR, "%s:%u: %s: response cannot be edited (%s)", c->ip,
                      c->port, x->req, ret == TBP_EBUF ? "too large" : tb_strerror(ret));
    return ret;
}

/* --- the exchange ----------------------------------------------------------------------------- */

int tbp_exchange_start(struct tbp_conn *c, const struct tbp_http_head *h, int head_request,
                       enum tbp_body_framing framing, const struct tbp_upstream_sink *sink,
                       void *ctx, struct tbp_xlog *x, struct tbp_upconn **up,
                       const struct tbp_route **route, const char **why)
{
    const struct tbp_config *cfg = c->w->px->cfg;
    const struct tbp_header *host = tbp_http_find(h, "host");
    const struct tbp_http_head *fh = h;
    const char *other = c->tb.other;
    struct tbp_head_edit edit = {0};
    struct tbp_fwd_info fi = {0};
    const struct tbp_route *r;
    struct tbp_str rhost, path;
    struct tbp_buf head;
    int ret, status = 0, tb = c->tb.key_params >= 0;

    *up = NULL;
    *route = NULL;
    if (check_binding(c, h, x) != 0) {
        *why = x->tb;
        return 400;
    }
    if (!tb && cfg->tb.require) {
        *why = "token binding required";
        return 403;
    }
    route_keys(h, &rhost, &path);
    r = *route = tbp_config_route(cfg, rhost.p, rhost.len, path.p, path.len);
    if (r == NULL) {
        *why = "no route";
        return 404;
    }
    if (tbp_exchange_companion(r)) {
        status =
            tbp_exchange_request_edit(r, cfg->cookie_keys, conn_tbh(c), 0, h, &edit, &fh, &x->co);
        count_request(&c->w->stats, &x->co);
        if (status != 0) {
            *why = status == 401 ? tbp_jwt_outcome_text(x->co.jwt_outcome)
                                 : "request cannot be edited";
            goto Exit;
        }
    }
    *up = tbp_upstream_start(tbp_worker_pool(c->w, r->upstream), sink, ctx, head_request,
                             framing == TBP_BODY_NONE);
    if (*up == NULL) {
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
    tbp_head_edit_dispose(&edit);
    return status;
}
