/*
 * The process and its workers.
 *
 * struct tbp_proxy is what every thread shares: the configuration in use, the log files and the
 * draining flag. Each worker thread owns an event loop, its own SO_REUSEPORT socket per listener,
 * its upstream pools and its client connections; nothing on the request path is shared between
 * workers.
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
 *
 * RELOAD (SIGHUP) hands a worker a new configuration generation (gen.h) with the listening
 * sockets it needs (struct tbp_worker_reload, prepared on the main thread so that a port that
 * cannot be bound fails the reload before anything changes). The worker switches between two
 * loop turns: listeners whose address is gone accept what the kernel queued and close, the
 * others stay open (no connection is refused), new ones start accepting; the new generation's
 * upstream pools take over and new connections get the new configuration (routes, Token Binding,
 * cookie and JWT keys, timeouts, TLS context). A worker keeps one struct tbp_wgen per generation
 * still in use: each client connection holds its own (conn.h: c->wg, c->cfg) until it is freed,
 * so the routes its exchanges point to and the pools their origin connections belong to stay
 * valid; a retired generation's pools keep no idle connection, and the whole tbp_wgen (and its
 * reference to the generation) goes with the last connection that used it.
 */
#ifndef TBP_WORKER_H
#define TBP_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "gen.h"
#include "loop.h"
#include "metrics.h"
#include "tls.h"

struct tbp_conn;
struct tbp_pool;

struct tbp_proxy {
    const struct tbp_config *cfg; /* the configuration in use: the current generation's. main
                                     swaps it on a reload (atomic store); any thread may read it
                                     (log level and format): a worker holds a reference to every
                                     generation it may have read it from (gen.h) */
    struct tbp_gen *gen;          /* the current generation (main thread only; one reference) */
    int access_fd;                /* -1: no access log. Numbers change only by atomic stores */
    int error_fd;                 /* on a reload (logswitch.h), files by dup3 onto them */
    int draining; /* 1 once a graceful stop began (SIGTERM/SIGQUIT): set by main with
                     tbp_proxy_set_draining, read anywhere (/readyz) with tbp_proxy_draining */
};

/* The mailbox commands (bits of tbp_worker.cmd). */
enum tbp_worker_cmd {
    TBP_WCMD_STOP = 1,   /* close every client connection now and end the loop */
    TBP_WCMD_DRAIN = 2,  /* graceful stop: close the listeners, finish in-flight requests */
    TBP_WCMD_RELOAD = 4, /* take tbp_worker.reload: a new configuration generation */
};

struct tbp_listen_io {
    struct tbp_io io;
    struct tbp_worker *w;
    size_t index; /* into the current generation's cfg->listeners */
};

/* One configuration generation as one worker uses it (worker thread only). */
struct tbp_wgen {
    struct tbp_gen *gen;     /* one reference, dropped when this is freed */
    struct tbp_pool **pools; /* one per gen->cfg->upstreams entry */
    unsigned users;          /* client connections accepted under it and not yet freed */
    struct tbp_wgen *next;   /* the worker's retired list */
};

/* A reload for one worker: made by tbp_worker_reload_prepare, taken by the worker. */
struct tbp_worker_reload {
    struct tbp_gen *gen; /* one reference, the worker's from now on */
    size_t n_fds;        /* gen->cfg->n_listeners */
    int fds[];           /* per listener: a new listening socket, or -1 for the one the worker
                            already has for that address */
};

struct tbp_worker {
    unsigned id;
    struct tbp_proxy *px;
    struct tbp_loop loop;
    struct tbp_listen_io **listeners; /* n_listeners: the current generation's listeners */
    size_t n_listeners;
    struct tbp_wgen *cur;     /* the generation new connections get */
    struct tbp_wgen *retired; /* older ones still used by open connections */
    struct tbp_conn *clients; /* every open client connection */
    unsigned n_clients;       /* written by the worker with atomic stores: tbp_worker_connections */
    struct tbp_io wake;       /* eventfd: the mailbox doorbell */
    unsigned cmd;             /* pending enum tbp_worker_cmd bits (atomic; any thread sets them) */
    struct tbp_worker_reload *reload; /* RELOAD's payload (atomic pointer; main sets it when it
                                         is NULL, the worker takes it) */
    unsigned gen_seen;                /* atomic: the id of the last generation RELOAD brought ... */
    unsigned gen_applied;             /* atomic: ... and of the one new connections get */
    int draining;               /* the worker's own flag: DRAIN was handled (worker thread only) */
    int drain_done;             /* atomic: DRAIN was handled, the listeners are closed */
    unsigned closed_by_stop;    /* client connections STOP closed; read after tbp_worker_join */
    int metrics_ready;          /* metrics was set up (tbp_worker_dispose disposes of it) */
    struct tbp_metrics metrics; /* written by this worker only; any thread may scrape it
                                   (metrics.h); pool i of it is cur's cfg->upstreams[i] */
    pthread_t thread;
};

/* 0 if nothing (another tbproxy included) listens on a; -1 with a message in err. */
int tbp_listen_probe(const struct tbp_addr *a, char *err, size_t errlen);

/*
 * Sets up w for generation gen (sockets bound, pools made; w takes a reference of its own).
 * -1 with a message in err; tbp_worker_dispose is still needed then.
 */
int tbp_worker_init(struct tbp_worker *w, struct tbp_proxy *px, struct tbp_gen *gen, unsigned id,
                    char *err, size_t errlen);
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

/*
 * Main thread, for a reload to gen while `running` is the configuration the worker has: binds
 * w's own socket (SO_REUSEPORT) for every listener of gen whose address `running` does not have,
 * and takes a reference to gen for the worker. Returns 0 with *out set (post it with
 * tbp_worker_reload, or tbp_worker_reload_discard it), or -1 with "listen ADDR: reason" in err
 * and nothing to undo.
 */
int tbp_worker_reload_prepare(struct tbp_worker *w, struct tbp_gen *gen,
                              const struct tbp_config *running, struct tbp_worker_reload **out,
                              char *err, size_t errlen);
/* Closes the sockets of r, drops its reference and frees it (r not posted). NULL: no-op. */
void tbp_worker_reload_discard(struct tbp_worker_reload *r);
/*
 * Posts RELOAD with r (the worker owns r from then on). Returns 0, or -1 when the worker has not
 * taken the previous one yet (r is still the caller's). Any thread.
 */
int tbp_worker_reload(struct tbp_worker *w, struct tbp_worker_reload *r);
/* The id of the last generation a RELOAD brought the worker, whether applied or not (then the
 * reason is in the error log), and of the one it applies to new connections. Any thread. */
unsigned tbp_worker_gen_seen(const struct tbp_worker *w);
unsigned tbp_worker_gen_applied(const struct tbp_worker *w);

/* The pool of generation wg serving upstream up (a pointer into wg->gen->cfg->upstreams). */
struct tbp_pool *tbp_wgen_pool(const struct tbp_wgen *wg, const struct tbp_upstream *up);
/* A client connection that used wg is freed: wg goes too when it is retired and was the last
 * one's (conn.c). */
void tbp_wgen_release(struct tbp_worker *w, struct tbp_wgen *wg);

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
