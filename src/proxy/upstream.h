/*
 * Origin pools and the HTTP/1.1 client that talks to them.
 *
 * A pool belongs to one worker (no locks): its servers, a round-robin cursor, per-server
 * "failed until" times, and a list of idle keep-alive connections (at most max_idle). An
 * exchange borrows a connection with tbp_upstream_start(), writes the request bytes into it,
 * and receives the response through a sink. When the response ends and the request was sent
 * completely, the connection goes back to the idle list by itself.
 *
 * Errors before any response byte reach the sink as on_error(502) (refused, reset) or
 * on_error(504) (connect or read timeout). A request without a body that fails on a reused idle
 * connection before any response byte (the origin closed it meanwhile) is replayed once on a
 * new connection, as nginx does for idempotent requests.
 *
 * Each pool counts into its worker's metrics registry (tbp_pool_conf.metrics, metrics.h): new
 * connections, exchanges on a reused idle one, exchanges that failed (on_error), and the latency
 * from tbp_upstream_start to the response head (a replay's included).
 */
#ifndef TBP_UPSTREAM_H
#define TBP_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http.h"
#include "loop.h"

#define TBP_UPSTREAM_HIGH_WATER (256 * 1024) /* the default high_water */

/* Copied by tbp_pool_new (the address texts are borrowed: they must outlive the pool). */
struct tbp_pool_conf {
    const char *name;
    size_t n_servers;
    struct sockaddr_storage *addrs; /* n_servers entries */
    socklen_t *addr_lens;
    char **addr_texts; /* "127.0.0.1:8080", for logs */
    unsigned connect_timeout_ms;
    unsigned read_timeout_ms;
    unsigned fail_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned max_idle;
    size_t high_water; /* request bytes queued per connection before the writer is told to wait
                          (limits.max_buffer_bytes); 0: TBP_UPSTREAM_HIGH_WATER */
    struct tbp_metrics *metrics; /* the worker's registry (NULL: not counted); borrowed */
    size_t metrics_pool;         /* this pool's index in it: connects, reuses, errors, latency */
};

struct tbp_upstream_sink {
    /* the response head (1xx heads are not delivered); h valid during the call */
    void (*on_head)(void *ctx, const struct tbp_http_head *h);
    /* response body bytes; return 1 to pause reading (then call tbp_upstream_resume) */
    int (*on_body)(void *ctx, const char *p, size_t n);
    /* the response is complete, with its trailer fields (chunked responses; valid during the
     * call); the exchange is over and the connection is no longer yours */
    void (*on_end)(void *ctx, const struct tbp_header *trailers, size_t n_trailers);
    /* the exchange failed (status 502 or 504 for the client); the connection is gone */
    void (*on_error)(void *ctx, int status, const char *why);
    /* the request bytes queued with tbp_upstream_write went below the low-water mark */
    void (*on_drain)(void *ctx);
};

struct tbp_metrics;
struct tbp_pool;
struct tbp_upconn;

struct tbp_pool_stats {
    uint64_t connects, reuses, errors, replays,
        retries; /* retries: connects moved to another server */
    unsigned idle;
};

struct tbp_pool *tbp_pool_new(struct tbp_loop *l, const struct tbp_pool_conf *c);
/* Frees p and closes its idle connections. Exchanges still running on p's connections must be
 * gone (aborted or over): they point to p. NULL is a no-op. */
void tbp_pool_free(struct tbp_pool *p);
/*
 * A reload replaced p's configuration: its idle connections close now, and connections that
 * finish an exchange close instead of waiting for another (p serves the exchanges it has and no
 * new ones). From now on p counts as pool `metrics_pool` of its registry (SIZE_MAX: not at all),
 * the pool of the same name in the new configuration. May be called again (a later reload).
 */
void tbp_pool_retire(struct tbp_pool *p, size_t metrics_pool);
void tbp_pool_get_stats(const struct tbp_pool *p, struct tbp_pool_stats *out);

/*
 * Starts an exchange on an idle connection or a new one. `head_request`: the response has no
 * body whatever it says. `replayable`: the request has no body, so it may be sent again on a
 * new connection if a reused one turns out dead. NULL if no connection can be had (the sink
 * is not called then): answer 502.
 */
struct tbp_upconn *tbp_upstream_start(struct tbp_pool *p, const struct tbp_upstream_sink *sink,
                                      void *ctx, int head_request, int replayable);
/* Queues request bytes. 1 when the queue is above the high-water mark (the pool's high_water:
 * stop reading the client until on_drain, which comes below a quarter of it), 0 otherwise, -1 if
 * the connection cannot take them (on_error follows). */
int tbp_upstream_write(struct tbp_upconn *u, const void *p, size_t n);
/* The request has been written completely (the connection may be reused after the response). */
void tbp_upstream_request_done(struct tbp_upconn *u);
/* Resumes reading the response after on_body returned 1. */
void tbp_upstream_resume(struct tbp_upconn *u);
/* Ends the exchange early (the client went away): the connection is closed, no callback. */
void tbp_upstream_abort(struct tbp_upconn *u);
/* The server address text of the connection, for logs. */
const char *tbp_upstream_addr(const struct tbp_upconn *u);

#endif
