/*
 * The process and its workers.
 *
 * struct tbp_proxy is built once by main from the configuration and is read-only while workers
 * run: the config, one TLS context per listener, the log files; only `draining` changes, once.
 * Each worker thread owns an event loop, its own SO_REUSEPORT socket per listener, its upstream
 * pools and its client connections; nothing on the request path is shared between workers.
 *
 * Other threads (main, the admin server) talk to a worker only through its mailbox: a bit set
 * in `cmd` (atomic) and a write to its eventfd `wake`; the worker acts on it on its own thread.
 * STOP closes every client connection and ends the loop (fast stop, or the end of a graceful
 * one); DRAIN starts a graceful stop: the listeners close (after accepting what the kernel had
 * already queued), each protocol finishes what is in flight and takes nothing new (conn.h,
 * `drain`), and connections close as they become idle. What other threads may read of a worker
 * is read through the accessors below (atomic loads), never its fields directly; the one
 * exception is `metrics`, which the admin thread scrapes with tbp_metrics_sum (relaxed loads and
 * the registry's own pool lock: metrics.h).
 */
#ifndef TBP_WORKER_H
#define TBP_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "metrics.h"
#include "tls.h"

struct tbp_conn;
struct tbp_pool;

struct tbp_proxy {
    const struct tbp_config *cfg;
    struct tbp_tls **tls; /* one per listener */
    int access_fd;        /* -1: no access log */
    int error_fd;
    int draining; /* 1 once a graceful stop began (SIGTERM/SIGQUIT): set by main with
                     tbp_proxy_set_draining, read anywhere (/readyz) with tbp_proxy_draining */
};

/* The mailbox commands (bits of tbp_worker.cmd). */
enum tbp_worker_cmd {
    TBP_WCMD_STOP = 1,  /* close every client connection now and end the loop */
    TBP_WCMD_DRAIN = 2, /* graceful stop: close the listeners, finish in-flight requests */
};

struct tbp_listen_io {
    struct tbp_io io;
    struct tbp_worker *w;
    size_t index; /* into cfg->listeners */
};

struct tbp_worker {
    unsigned id;
    struct tbp_proxy *px;
    struct tbp_loop loop;
    struct tbp_listen_io *listeners; /* cfg->n_listeners */
    struct tbp_pool **pools;         /* one per cfg->upstreams entry */
    struct tbp_conn *clients;        /* every open client connection */
    unsigned n_clients;      /* written by the worker with atomic stores: tbp_worker_connections */
    struct tbp_io wake;      /* eventfd: the mailbox doorbell */
    unsigned cmd;            /* pending enum tbp_worker_cmd bits (atomic; any thread sets them) */
    int draining;            /* the worker's own flag: DRAIN was handled (worker thread only) */
    int drain_done;          /* atomic: DRAIN was handled, the listeners are closed */
    unsigned closed_by_stop; /* client connections STOP closed; read after tbp_worker_join */
    int metrics_ready;       /* metrics was set up (tbp_worker_dispose disposes of it) */
    struct tbp_metrics metrics; /* written by this worker only; any thread may scrape it
                                   (metrics.h); pool i of it is cfg->upstreams[i] */
    pthread_t thread;
};

/* 0 if nothing (another tbproxy included) listens on a; -1 with a message in err. */
int tbp_listen_probe(const struct tbp_addr *a, char *err, size_t errlen);

/* Sets up w (sockets bound, pools made). -1 with a message in err. */
int tbp_worker_init(struct tbp_worker *w, struct tbp_proxy *px, unsigned id, char *err,
                    size_t errlen);
/* Runs the loop on a new thread (which inherits the caller's signal mask). */
int tbp_worker_start(struct tbp_worker *w);
/* Posts STOP: the worker closes every client connection (counting them in closed_by_stop) and
 * its loop ends; join it next. Any thread; async-signal-safe. */
void tbp_worker_stop(struct tbp_worker *w);
/* Posts DRAIN (see above); a no-op after the first. Any thread; async-signal-safe. */
void tbp_worker_drain(struct tbp_worker *w);
/* 1 once the worker handled DRAIN (its listeners are closed: it accepts nothing more). */
int tbp_worker_drain_done(const struct tbp_worker *w);
/* Client connections the worker holds now (TLS handshakes included). Any thread. */
unsigned tbp_worker_connections(const struct tbp_worker *w);
void tbp_worker_join(struct tbp_worker *w);
void tbp_worker_dispose(struct tbp_worker *w);

/* The pool serving route r in worker w. */
struct tbp_pool *tbp_worker_pool(struct tbp_worker *w, const struct tbp_upstream *up);

/* Client connections (h1.c). */
int tbp_client_accept(struct tbp_worker *w, int fd, size_t listener,
                      const struct sockaddr_storage *peer);
void tbp_client_close_all(struct tbp_worker *w);
/* DRAIN for each open connection (its protocol's drain; handshakes go on, conn.c drains them
 * once they are done). */
void tbp_client_drain_all(struct tbp_worker *w);

/* The proxy's draining flag (any thread). */
void tbp_proxy_set_draining(struct tbp_proxy *px);
int tbp_proxy_draining(const struct tbp_proxy *px);

/* Logs (log.c). level: enum tbp_log_level. Never pass tokens, cookies or keys. */
void tbp_log_error(struct tbp_proxy *px, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tbp_log_write(int fd, const char *line, size_t len);
/*
 * Reopens the access and error log files at their configured paths (logrotate, SIGUSR1): each
 * new file takes over its old descriptor number with dup2(2), so workers writing concurrently
 * never see a closed descriptor. stdout/stderr ("-") are left alone. Returns 0, or -1 when a file
 * cannot be opened (that log keeps its old file; the reason goes to the error log).
 */
int tbp_log_reopen(struct tbp_proxy *px);

#endif
