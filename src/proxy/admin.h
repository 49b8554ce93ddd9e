/*
 * The admin HTTP server (issue 7): /metrics, /healthz, /readyz and /status on its own listen
 * address (`admin.listen`, default TBP_DEF_ADMIN_LISTEN of config.h: 127.0.0.1:9901), served by
 * libmicrohttpd on its own thread, apart from the workers, so a scrape never waits behind client
 * traffic and a busy proxy still answers it.
 *
 * admin.c knows nothing of workers or configs: what it serves comes through a table of callbacks
 * given at start (struct tbp_admin_ops), called on the admin thread. The daemon sets one flag,
 * draining, when a graceful stop begins (/readyz answers 503 from then on, so a load balancer
 * stops sending before the listeners close).
 *
 *   GET /metrics  200, "text/plain; version=0.0.4; charset=utf-8": ops->metrics
 *   GET /healthz  200 "ok": the process is alive (the admin thread answers)
 *   GET /readyz   200 "ready", or 503 "draining" once tbp_admin_set_draining(a, 1)
 *   GET /status   200, application/json: {"version", "uptime_seconds", "start_time",
 *                 "workers", "connections_active", "config_file" (null in quick mode),
 *                 "config_loaded" (Unix seconds), "draining"}
 *
 * HEAD works on each (no body). Other methods get 405 with "Allow: GET, HEAD", other paths 404.
 * Bounded: at most TBP_ADMIN_MAX_CONNECTIONS connections, TBP_ADMIN_CONN_MEMORY bytes of
 * request head each (a longer one gets MHD's 431/414), an idle connection closed after
 * TBP_ADMIN_TIMEOUT_S, /metrics capped at TBP_ADMIN_METRICS_MAX bytes (500 past that).
 */
#ifndef TBP_ADMIN_H
#define TBP_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"

#define TBP_ADMIN_MAX_CONNECTIONS 32
#define TBP_ADMIN_CONN_MEMORY (32 * 1024)
#define TBP_ADMIN_TIMEOUT_S 10
#define TBP_ADMIN_METRICS_MAX (16u * 1024 * 1024)
#define TBP_ADMIN_PATH_MAX 4096

/* What /status shows; filled by ops->status into a zeroed struct (copies: nothing here may point
 * into memory a reload can free). */
struct tbp_admin_status {
    char version[32];                     /* "0.1.0" */
    int64_t start_time;                   /* Unix seconds the process started */
    unsigned workers;                     /* worker threads running */
    uint64_t connections_active;          /* client connections open now */
    char config_file[TBP_ADMIN_PATH_MAX]; /* absolute path; "" in quick mode (JSON null) */
    int64_t config_loaded;                /* Unix seconds the config in use was loaded */
};

/* The daemon's side. Callbacks run on the admin thread, one at a time (so they may share state
 * with each other without a lock), concurrently with the workers and the main thread. */
struct tbp_admin_ops {
    void *ctx; /* passed to every callback */
    /* Appends the Prometheus text to out (capped at TBP_ADMIN_METRICS_MAX; normally
     * tbp_metrics_scrape). 0, or a negative code: 500. NULL: /metrics answers 404. */
    int (*metrics)(void *ctx, struct tbp_buf *out);
    /* Fills *st (zeroed before the call). NULL: /status answers 404. */
    void (*status)(void *ctx, struct tbp_admin_status *st);
};

struct tbp_admin;

/*
 * Binds addr (AF_INET or AF_INET6, port 0: any free port, see tbp_admin_port) with SO_REUSEADDR
 * and starts serving on a new thread. ops is copied. Call it before dropping privileges (a port
 * below 1024) and with the signals the main thread handles blocked (the thread inherits the
 * mask). Returns the server, or NULL with a one-line reason in err ("admin 127.0.0.1:9901:
 * Address already in use").
 */
struct tbp_admin *tbp_admin_start(const struct sockaddr *addr, socklen_t len,
                                  const struct tbp_admin_ops *ops, char *err, size_t errlen);

/* The port the server listens on (the one chosen when addr said 0). */
uint16_t tbp_admin_port(const struct tbp_admin *a);

/* Sets or clears draining (any thread, async-signal-safe: one atomic store). */
void tbp_admin_set_draining(struct tbp_admin *a, int draining);

/* Stops serving (closes the socket and every admin connection, joins the thread) and frees a.
 * No callback runs after it returns. NULL is a no-op. */
void tbp_admin_stop(struct tbp_admin *a);

#endif
