/*
 * The process and its workers.
 *
 * struct tbp_proxy is built once by main from the configuration and is read-only while workers
 * run: the config, one TLS context per listener, the log files. Each worker thread owns an event
 * loop, its own SO_REUSEPORT socket per listener, its upstream pools and its client
 * connections; nothing on the request path is shared between workers.
 */
#ifndef TBP_WORKER_H
#define TBP_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "cookies.h"
#include "jwtcheck.h"
#include "loop.h"
#include "tls.h"

struct tbp_conn;
struct tbp_pool;

struct tbp_proxy {
    const struct tbp_config *cfg;
    struct tbp_tls **tls; /* one per listener */
    int access_fd;        /* -1: no access log */
    int error_fd;
    volatile int stopping;
};

struct tbp_listen_io {
    struct tbp_io io;
    struct tbp_worker *w;
    size_t index; /* into cfg->listeners */
};

struct tbp_worker_stats {
    uint64_t accepted, handshakes, handshake_failures, requests, tb_ok, tb_failed, tb_cache_hits;
    uint64_t responses[6]; /* by status class: [1] 1xx .. [5] 5xx */
    /* companion module (issue 6) */
    uint64_t cookies[TBP_CK_N]; /* listed request cookies by enum tbp_cookie_outcome (cookies.h):
                                   [TBP_CK_OK] + [TBP_CK_PASS] forwarded, the others dropped */
    uint64_t cookies_bound;     /* Set-Cookie values bound on responses */
    uint64_t jwt[TBP_JWT_N];    /* JWT checks by enum tbp_jwt_outcome (jwtcheck.h): [TBP_JWT_OK]
                                   forwarded, the others answered 401 */
    uint64_t refer_added;       /* Include-Referer-Token-Binding-ID added to redirects */
};

struct tbp_worker {
    unsigned id;
    struct tbp_proxy *px;
    struct tbp_loop loop;
    struct tbp_listen_io *listeners; /* cfg->n_listeners */
    struct tbp_pool **pools;         /* one per cfg->upstreams entry */
    struct tbp_conn *clients;        /* every open client connection */
    unsigned n_clients;
    struct tbp_io wake; /* eventfd: stop requests from other threads */
    struct tbp_worker_stats stats;
    pthread_t thread;
};

/* 0 if nothing (another tbproxy included) listens on a; -1 with a message in err. */
int tbp_listen_probe(const struct tbp_addr *a, char *err, size_t errlen);

/* Sets up w (sockets bound, pools made). -1 with a message in err. */
int tbp_worker_init(struct tbp_worker *w, struct tbp_proxy *px, unsigned id, char *err,
                    size_t errlen);
/* Runs the loop on a new thread. */
int tbp_worker_start(struct tbp_worker *w);
/* Asks the worker to stop (any thread, async-signal-safe). */
void tbp_worker_stop(struct tbp_worker *w);
void tbp_worker_join(struct tbp_worker *w);
void tbp_worker_dispose(struct tbp_worker *w);

/* The pool serving route r in worker w. */
struct tbp_pool *tbp_worker_pool(struct tbp_worker *w, const struct tbp_upstream *up);

/* Client connections (h1.c). */
int tbp_client_accept(struct tbp_worker *w, int fd, size_t listener,
                      const struct sockaddr_storage *peer);
void tbp_client_close_all(struct tbp_worker *w);

/* Logs (log.c). level: enum tbp_log_level. Never pass tokens, cookies or keys. */
void tbp_log_error(struct tbp_proxy *px, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tbp_log_write(int fd, const char *line, size_t len);

#endif
