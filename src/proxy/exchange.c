/*
 * The request path both front ends share (see exchange.h).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "exchange.h"
#include "forward.h"
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
                 "%s - - [%s] \"%s\" %d %llu \"%s\" \"%s\" %s tb=%s up=%s ut=%.3f rt=%.3f\n", c->ip,
                 date, x->req[0] ? x->req : "-", x->status, (unsigned long long)x->resp_bytes,
                 x->referer[0] ? x->referer : "-", x->ua[0] ? x->ua : "-", proto, x->tb,
                 x->upstream[0] ? x->upstream : "-", (double)(x->t_upstream - x->t_start) / 1000.0,
                 (double)(tbp_loop_now(&c->w->loop) - x->t_start) / 1000.0);
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

int tbp_exchange_start(struct tbp_conn *c, const struct tbp_http_head *h, int head_request,
                       enum tbp_body_framing framing, const struct tbp_upstream_sink *sink,
                       void *ctx, struct tbp_xlog *x, struct tbp_upconn **up, const char **why)
{
    const struct tbp_config *cfg = c->w->px->cfg;
    const struct tbp_header *host = tbp_http_find(h, "host");
    const char *other = c->tb.other;
    struct tbp_fwd_info fi = {0};
    const struct tbp_route *route;
    struct tbp_str rhost, path;
    struct tbp_buf head;
    int ret, tb = c->tb.key_params >= 0;

    *up = NULL;
    if (check_binding(c, h, x) != 0) {
        *why = x->tb;
        return 400;
    }
    if (!tb && cfg->tb.require) {
        *why = "token binding required";
        return 403;
    }
    route_keys(h, &rhost, &path);
    route = tbp_config_route(cfg, rhost.p, rhost.len, path.p, path.len);
    if (route == NULL) {
        *why = "no route";
        return 404;
    }
    *up = tbp_upstream_start(tbp_worker_pool(c->w, route->upstream), sink, ctx, head_request,
                             framing == TBP_BODY_NONE);
    if (*up == NULL) {
        *why = "origin unavailable";
        return 502;
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
    ret = tbp_forward_request_head(h, &fi, &head);
    if (ret == 0)
        ret = tbp_upstream_write(*up, head.p, head.len) < 0 ? -1 : 0;
    tbp_buf_dispose(&head);
    if (ret != 0) {
        if (*up != NULL)
            tbp_upstream_abort(*up);
        *up = NULL;
        *why = "request cannot be forwarded";
        return 400;
    }
    return 0;
}
