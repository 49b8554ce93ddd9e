/*
 * Workers: one thread, one loop, one SO_REUSEPORT socket per listener, own upstream pools.
 *
 * The mailbox (worker.h): other threads set a command bit in w->cmd and ring the eventfd; the
 * worker reads the bits on its own thread (on_wake), so a stop or a drain never touches a
 * connection from another thread. A drain closes the listening sockets: each worker's own
 * SO_REUSEPORT socket, so the kernel stops handing it connections; the connections it had
 * already queued on that socket would be reset when it closes (Linux does not move them to
 * another socket), so they are accepted first and served like the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accesslog.h"
#include "tb/error.h"
#include "upstream.h"
#include "worker.h"

#define CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define IDLE_TIMEOUT_MS 60000

static int listen_socket(const struct tbp_addr *a, char *err, size_t errlen)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

    if (fd == -1)
        goto Fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1 || listen(fd, 1024) == -1)
        goto Fail;
    return fd;
Fail:
    snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
    if (fd != -1)
        close(fd);
    return -1;
}

/*
 * Is the address free? Every worker binds it with SO_REUSEPORT, which would also let a second
 * tbproxy share a port that one already serves: a probe without the option finds that out.
 */
int tbp_listen_probe(const struct tbp_addr *a, char *err, size_t errlen)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, ret = -1;

    if (fd != -1 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
        ret = 0;
    else
        snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
    if (fd != -1)
        close(fd);
    return ret;
}

/* Accepts up to 64 connections. 1 if there may be more now, 0 if the queue is empty (or
 * accept failed: tried again on the next event). */
static int accept_some(struct tbp_listen_io *li)
{
    struct sockaddr_storage peer;
    socklen_t len;
    int fd, one = 1, i;

    for (i = 0; i < 64; i++) {
        len = sizeof(peer);
        fd = accept4(li->io.fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE)
                tbp_log_error(li->w->px, TBP_LOG_ERROR, "accept: %s", strerror(errno));
            return 0; /* EAGAIN, or a transient error */
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)tbp_client_accept(li->w, fd, li->index, &peer);
    }
    return 1;
}

static void on_accept(struct tbp_io *io, uint32_t events)
{
    (void)events;
    (void)accept_some(CONTAINER(io, struct tbp_listen_io, io));
}

/* DRAIN: no new connections; every protocol finishes what it has (worker.h). */
static void drain(struct tbp_worker *w)
{
    size_t i, rounds;

    if (w->draining)
        return;
    w->draining = 1;
    for (i = 0; i < w->px->cfg->n_listeners; i++) {
        struct tbp_listen_io *li = &w->listeners[i];
        /* what the kernel queued is bounded by the backlog: a few rounds take it all */
        for (rounds = 0; li->io.fd != -1 && rounds < 64 && accept_some(li); rounds++)
            ;
        tbp_io_close(&w->loop, &li->io);
    }
    tbp_client_drain_all(w);
    __atomic_store_n(&w->drain_done, 1, __ATOMIC_RELEASE);
}

static void on_wake(struct tbp_io *io, uint32_t events)
{
    struct tbp_worker *w = CONTAINER(io, struct tbp_worker, wake);
    unsigned cmd;
    uint64_t v;

    (void)events;
    (void)!read(io->fd, &v, sizeof(v));
    cmd = __atomic_exchange_n(&w->cmd, 0u, __ATOMIC_ACQ_REL);
    if (cmd & TBP_WCMD_STOP) {
        w->closed_by_stop = w->n_clients;
        tbp_client_close_all(w);
        tbp_loop_stop(&w->loop);
        return;
    }
    if (cmd & TBP_WCMD_DRAIN)
        drain(w);
}

static int make_pools(struct tbp_worker *w, char *err, size_t errlen)
{
    const struct tbp_config *cfg = w->px->cfg;
    size_t i, j;

    w->pools = calloc(cfg->n_upstreams, sizeof(*w->pools));
    if (w->pools == NULL)
        goto Fail;
    for (i = 0; i < cfg->n_upstreams; i++) {
        const struct tbp_upstream *u = &cfg->upstreams[i];
        struct tbp_sockaddr_set {
            struct sockaddr_storage *ss;
            socklen_t *lens;
            char **texts;
        } s = {calloc(u->n_servers, sizeof(*s.ss)), calloc(u->n_servers, sizeof(*s.lens)),
               calloc(u->n_servers, sizeof(*s.texts))};
        struct tbp_pool_conf pc = {0};
        if (s.ss == NULL || s.lens == NULL || s.texts == NULL) {
            free(s.ss);
            free(s.lens);
            free(s.texts);
            goto Fail;
        }
        for (j = 0; j < u->n_servers; j++) {
            s.ss[j] = u->servers[j].ss;
            s.lens[j] = u->servers[j].len;
            s.texts[j] = (char *)u->servers[j].text;
        }
        pc.name = u->name;
        pc.n_servers = u->n_servers;
        pc.addrs = s.ss;
        pc.addr_lens = s.lens;
        pc.addr_texts = s.texts;
        pc.connect_timeout_ms = u->connect_timeout_ms;
        pc.read_timeout_ms = u->read_timeout_ms;
        pc.fail_timeout_ms = u->fail_timeout_ms;
        pc.idle_timeout_ms = IDLE_TIMEOUT_MS;
        pc.max_idle = u->max_idle;
        pc.metrics = &w->metrics;
        pc.metrics_pool = i;
        w->pools[i] = tbp_pool_new(&w->loop, &pc);
        free(s.ss);
        free(s.lens);
        free(s.texts);
        if (w->pools[i] == NULL)
            goto Fail;
    }
    return 0;
Fail:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* The registry, with one pool per cfg->upstreams entry under the upstream's name. */
static int init_metrics(struct tbp_worker *w, char *err, size_t errlen)
{
    const struct tbp_config *cfg = w->px->cfg;
    const char **names = NULL;
    size_t i;
    int ret;

    if (cfg->n_upstreams > 0 && (names = calloc(cfg->n_upstreams, sizeof(*names))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < cfg->n_upstreams; i++)
        names[i] = cfg->upstreams[i].name;
    ret = tbp_metrics_init(&w->metrics, names, cfg->n_upstreams);
    free(names);
    if (ret != 0) {
        snprintf(err, errlen, "metrics: %s", tb_strerror(ret));
        return -1;
    }
    w->metrics_ready = 1;
    return 0;
}

struct tbp_pool *tbp_worker_pool(struct tbp_worker *w, const struct tbp_upstream *up)
{
    return w->pools[up - w->px->cfg->upstreams];
}

int tbp_worker_init(struct tbp_worker *w, struct tbp_proxy *px, unsigned id, char *err,
                    size_t errlen)
{
    const struct tbp_config *cfg = px->cfg;
    size_t i;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->px = px;
    w->wake.fd = -1;
    if (init_metrics(w, err, errlen) != 0)
        return -1;
    if (tbp_loop_init(&w->loop) != 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        return -1;
    }
    w->listeners = calloc(cfg->n_listeners, sizeof(*w->listeners));
    if (w->listeners == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < cfg->n_listeners; i++)
        w->listeners[i].io.fd = -1; /* tbp_worker_dispose after a failure closes only these */
    for (i = 0; i < cfg->n_listeners; i++) {
        struct tbp_listen_io *li = &w->listeners[i];
        li->w = w;
        li->index = i;
        li->io.cb = on_accept;
        li->io.fd = listen_socket(&cfg->listeners[i].addr, err, errlen);
        if (li->io.fd == -1)
            return -1;
        if (tbp_io_add(&w->loop, &li->io, EPOLLIN) == -1) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            return -1;
        }
    }
    w->wake.cb = on_wake;
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake.fd == -1 || tbp_io_add(&w->loop, &w->wake, EPOLLIN) == -1) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }
    return make_pools(w, err, errlen);
}

static void *worker_main(void *arg)
{
    struct tbp_worker *w = arg;

    tbp_log_thread_worker((int)w->id); /* error-log lines from this thread say [wN] */
    if (tbp_loop_run(&w->loop) != 0)
        tbp_log_error(w->px, TBP_LOG_ERROR, "worker %u: epoll_wait: %s", w->id, strerror(errno));
    return NULL;
}

int tbp_worker_start(struct tbp_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

static void post(struct tbp_worker *w, unsigned cmd)
{
    uint64_t one = 1;

    __atomic_or_fetch(&w->cmd, cmd, __ATOMIC_ACQ_REL);
    if (w->wake.fd != -1)
        (void)!write(w->wake.fd, &one, sizeof(one));
}

void tbp_worker_stop(struct tbp_worker *w)
{
    post(w, TBP_WCMD_STOP);
}

void tbp_worker_drain(struct tbp_worker *w)
{
    post(w, TBP_WCMD_DRAIN);
}

int tbp_worker_drain_done(const struct tbp_worker *w)
{
    return __atomic_load_n(&w->drain_done, __ATOMIC_ACQUIRE);
}

unsigned tbp_worker_connections(const struct tbp_worker *w)
{
    return __atomic_load_n(&w->n_clients, __ATOMIC_RELAXED);
}

void tbp_proxy_set_draining(struct tbp_proxy *px)
{
    __atomic_store_n(&px->draining, 1, __ATOMIC_RELEASE);
}

int tbp_proxy_draining(const struct tbp_proxy *px)
{
    return __atomic_load_n(&px->draining, __ATOMIC_ACQUIRE);
}

void tbp_worker_join(struct tbp_worker *w)
{
    pthread_join(w->thread, NULL);
}

void tbp_worker_dispose(struct tbp_worker *w)
{
    const struct tbp_config *cfg = w->px->cfg;
    size_t i;

    tbp_client_close_all(w);
    if (w->pools != NULL) {
        for (i = 0; i < cfg->n_upstreams; i++) {
            tbp_pool_free(w->pools[i]);
        }
    }
    if (w->listeners != NULL)
        for (i = 0; i < cfg->n_listeners; i++)
            tbp_io_close(&w->loop, &w->listeners[i].io);
    tbp_io_close(&w->loop, &w->wake);
    tbp_loop_dispose(&w->loop); /* runs the deferred frees */
    free(w->listeners);
    free(w->pools);
    if (w->metrics_ready)
        tbp_metrics_dispose(&w->metrics);
    w->metrics_ready = 0;
}
