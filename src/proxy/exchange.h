/*
 * One request/response exchange, whatever the front-end protocol: the part HTTP/1.1 and HTTP/2
 * share. tbp_exchange_start() is the single code path for the Token Binding check, the route,
 * the upstream connection and the rewritten request head; struct tbp_xlog carries what the
 * access log says about the exchange.
 */
#ifndef TBP_EXCHANGE_H
#define TBP_EXCHANGE_H

#include <stdint.h>

#include "conn.h"
#include "http.h"
#include "upstream.h"

#define TBP_XLOG_FIELD 256

struct tbp_xlog {
    uint64_t t_start, t_upstream; /* loop ms: request head, response head from the origin */
    uint64_t resp_bytes;          /* body bytes sent to the client */
    int status;
    int tb_failed;  /* the request failed the Token Binding check */
    const char *tb; /* "ok", "none" or the failure reason */
    char req[TBP_XLOG_FIELD], referer[TBP_XLOG_FIELD], ua[TBP_XLOG_FIELD];
    char upstream[64];
};

/* Starts the log record of a request (time, request line, referer, user agent). */
void tbp_xlog_begin(struct tbp_xlog *x, struct tbp_conn *c, const struct tbp_http_head *h);
/* Records the status sent (and counts it). */
void tbp_xlog_status(struct tbp_xlog *x, struct tbp_conn *c, int status);
/* Writes the access log line. */
void tbp_xlog_write(const struct tbp_xlog *x, struct tbp_conn *c, const char *proto);

/*
 * Token Binding check (spec "Validation"), route, upstream connection, rewritten request head
 * written to it. h must carry a Host header (HTTP/2: made from :authority). `framing` is how the
 * body goes to the origin. Returns 0 with *up set (the sink gets the response), or the status
 * to answer with *why: 400 (x->tb_failed set when it was Token Binding), 403, 404, 502.
 */
int tbp_exchange_start(struct tbp_conn *c, const struct tbp_http_head *h, int head_request,
                       enum tbp_body_framing framing, const struct tbp_upstream_sink *sink,
                       void *ctx, struct tbp_xlog *x, struct tbp_upconn **up, const char **why);

#endif
