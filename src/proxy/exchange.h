/*
 * One request/response exchange, whatever the front-end protocol: the part HTTP/1.1 and HTTP/2
 * share. tbp_exchange_start() is the single code path for the Token Binding check, the route,
 * the upstream connection and the rewritten request head; struct tbp_xlog carries what the
 * access log says about the exchange.
 *
 * The companion module (issue 6) runs here too, once per exchange and only on routes that use it
 * (no extra work on the others): bound cookies and the JWT check edit a copy of the request head
 * (tbp_exchange_request_edit) before it is forwarded, and the response head of such a route is
 * edited by tbp_exchange_response (Set-Cookie bound, Include-Referer-Token-Binding-ID added on
 * redirects, Include-Referred-Token-Binding-ID on RFC 8471-8473 connections) before either front
 * end sends it. The front ends remember the route per exchange
 * (h1: per request, h2: per stream) for the response: it points into the connection's own
 * configuration (c->cfg), which a reload leaves in place until the connection is freed.
 */
#ifndef TBP_EXCHANGE_H
#define TBP_EXCHANGE_H

#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "cookies.h"
#include "forward.h"
#include "http.h"
#include "jwtcheck.h"
#include "upstream.h"

#define TBP_XLOG_FIELD 256  /* req: the escaped request line for error messages */
#define TBP_XLOG_METHOD 16  /* raw bytes kept for the access log (accesslog.h): method, */
#define TBP_XLOG_TARGET 512 /* target, */
#define TBP_XLOG_HEADER 256 /* referer and user agent */
#define TBP_XLOG_TBH 12     /* characters of the provided ID's tbh logged */

/* What the companion module did to one exchange: for the access log and the counters. */
struct tbp_companion {
    int cookies;                      /* the route binds cookies: ck is meaningful */
    struct tbp_cookie_tally ck;       /* request cookies by outcome, Set-Cookie values bound */
    int jwt;                          /* the route checks a JWT: jwt_outcome is meaningful */
    enum tbp_jwt_outcome jwt_outcome; /* TBP_JWT_OK or why the request got 401 */
    int refer_added; /* Include-Referer- (draft) or Include-Referred-Token-Binding-ID (rfc) added
                        to a redirect */
};

/*
 * What the access log says about one exchange (accesslog.h formats it). All zero is a valid
 * record of an exchange that never got a request line (tb must still be set: "none").
 */
struct tbp_xlog {
    uint64_t t_start;    /* loop ms: the request head */
    uint64_t t_upstream; /* loop ms: the origin's response head; 0 while none came */
    uint64_t resp_bytes; /* body bytes sent to the client */
    int status;
    int tb_failed;              /* the request failed the Token Binding check */
    const char *tb;             /* "ok", "none" or the failure reason (static strings) */
    char tbh[TBP_XLOG_TBH + 1]; /* tb "ok": the provided ID's tbh, first characters; else "" */
    char req[TBP_XLOG_FIELD];   /* request line, escaped and bounded: for error messages */
    /* raw request fields, bounded copies (not NUL-terminated), escaped when the line is written */
    uint8_t has_head, has_referer, has_ua; /* a request head was seen; those headers were sent */
    uint8_t version_major, version_minor;
    uint8_t method_len;
    uint16_t target_len, referer_len, ua_len;
    char method[TBP_XLOG_METHOD], target[TBP_XLOG_TARGET];
    char referer[TBP_XLOG_HEADER], ua[TBP_XLOG_HEADER];
    char upstream[64];       /* the origin server's address, "" when none */
    struct tbp_companion co; /* logged as ck=KEPT/DROPPED setck=BOUND and jwt=OUTCOME */
};

/* Starts the log record of a request (time, request line, referer, user agent): x is reset. */
void tbp_xlog_begin(struct tbp_xlog *x, struct tbp_conn *c, const struct tbp_http_head *h);
/* Records the status sent (and counts it). */
void tbp_xlog_status(struct tbp_xlog *x, struct tbp_conn *c, int status);
/* Writes the access-log line (format: the config's log.format; proto "h1" / "h2") with one
 * write(2), unless the access log is off. */
void tbp_xlog_write(const struct tbp_xlog *x, struct tbp_conn *c, const char *proto);

/*
 * The request-target check, the Token Binding check (spec "Validation"), route, body size,
 * companion edits (bound cookies, JWT), upstream connection, rewritten request head written to
 * it. h must carry a Host header (HTTP/2: made from :authority; HTTP/1.0 may lack one when its
 * target is in absolute-form). `framing` is how the body goes to the origin. *route is set to the
 * route (NULL when none matched): keep it for tbp_exchange_response. Returns 0 with *up set (the
 * sink gets the response), or the status to answer with *why: 400 (a bad request-target, see
 * tbp_exchange_target; x->tb_failed set when it was Token Binding), 401 (the route's JWT check
 * failed: an ordinary answer, the connection stays), 403, 404, 413 (a Content-Length over the
 * route's max_body_size: nothing was forwarded), 414 (a target over limits.max_uri_bytes), 500,
 * 502. A body without Content-Length is the front end's to count against the route's
 * max_body_size as it arrives.
 */
int tbp_exchange_start(struct tbp_conn *c, const struct tbp_http_head *h, int head_request,
                       enum tbp_body_framing framing, const struct tbp_upstream_sink *sink,
                       void *ctx, struct tbp_xlog *x, struct tbp_upconn **up,
                       const struct tbp_route **route, const char **why);

/*
 * The response head to send to the client of connection c for an exchange on route (NULL: none),
 * through tbp_exchange_response_edit with the connection's tbh and Token Binding version,
 * counted and noted in x. e must be
 * zeroed; dispose of it (tbp_head_edit_dispose) once *out has been written. Returns 0 with *out
 * set, or a negative code: the response cannot be sent (close the connection / reset the
 * stream).
 */
int tbp_exchange_response(struct tbp_conn *c, const struct tbp_route *route,
                          const struct tbp_http_head *rh, struct tbp_head_edit *e,
                          const struct tbp_http_head **out, struct tbp_xlog *x);

/*
 * The request-target as the origin gets it (RFC 9112 section 3.2): origin-form ("/p?q") and
 * asterisk-form ("*") pass unchanged (*out = in, e untouched). Absolute-form, which a server
 * MUST accept (RFC 9112 section 3.2.2), "http://authority/p?q" or "https://..." (scheme in any
 * case) becomes origin-form "/p?q" ("/" + query when the path is empty) and its authority the
 * Host: *out = &e->head (e zeroed by the caller, disposed of by the caller once the head has been
 * forwarded; it points into `in`). Returns 0; 400 with *why for another scheme, authority-form or
 * any other target, userinfo or characters outside uri-host[:port] in the authority, a Host field
 * that is not the authority (compared without regard to case: one request, one host); 500 when
 * out of memory.
 */
int tbp_exchange_target(const struct tbp_http_head *in, struct tbp_head_edit *e,
                        const struct tbp_http_head **out, const char **why);

/* --- the companion edits, without a connection (unit-tested on hand-made heads) --------------- */

/* Does route r use bound cookies or a JWT check on requests? */
int tbp_exchange_companion(const struct tbp_route *r);

/*
 * The request head to forward on route r: `in` itself when r uses neither bound cookies nor a
 * JWT, or binds cookies but the request has none (nothing is done, nothing allocated), else
 * e->head (e: zeroed by the caller, disposed of by
 * the caller after forwarding) after the cookie step (tbp_cookies_request) and the JWT check
 * (tbp_jwt_request), in that order. kr: the proxy's cookie keyring; tbh: the provided ID's tbh,
 * NULL or "" without Token Binding; now: seconds for the JWT clock (0: time(NULL)). Outcomes are
 * added to *co. Returns 0 with *out set, 401 (co->jwt_outcome says why), or 500 (out of memory).
 */
int tbp_exchange_request_edit(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                              const char *tbh, int64_t now, const struct tbp_http_head *in,
                              struct tbp_head_edit *e, const struct tbp_http_head **out,
                              struct tbp_companion *co);

/*
 * The response head to send on route r (NULL: none): rh itself when nothing changes, else e->head
 * (e zeroed by the caller, disposed of after sending) with the listed Set-Cookie values bound to
 * tbh (tbp_cookies_response; without Token Binding they pass unchanged) and, on a
 * refer_token_binding route, a redirect asking for the referred binding unless the origin did
 * already (with either name): when tb_version is TB_VERSION_RFC any 3xx but 304 with
 * "Include-Referred-Token-Binding-ID: true" (RFC 8473 section 5.3), else a 301 or 302 with the
 * draft's "Include-Referer-Token-Binding-ID: true" (draft-balfanz). tb_version: the connection's (enum tb_version; a
 * connection without Token Binding passes its default, draft). Outcomes are added to *co.
 * Returns 0 with *out set, or a negative TB_E* / TBP_E* code.
 */
int tbp_exchange_response_edit(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                               const char *tbh, int tb_version, const struct tbp_http_head *rh,
                               struct tbp_head_edit *e, const struct tbp_http_head **out,
                               struct tbp_companion *co);

#endif
