/*
 * Workers: one thread, one loop, one SO_REUSEPORT socket per listener, own upstream pools.
 *
 * The mailbox (worker.h): other threads set a command bit in w->cmd and ring the eventfd; the
 * worker reads the bits on its own thread (on_wake), so a stop, a drain or a reload never
 * touches a connection from another thread. A drain closes the listening sockets: each worker's
 * own SO_REUSEPORT socket, so the kernel stops handing it connections; the connections it had
 * already queued on that socket would be reset when it closes (Linux does not move them to
 * another socket), so they are accepted first and served like the others. A reload that drops a
 * listener closes its socket the same way.
 *
 * Generations (worker.h): w->cur is the struct tbp_wgen new connections get; when a reload
 * replaces it, it goes on the retired list with its pools told to keep no idle connection, and
 * it is freed by the release of the last connection that used it (tbp_wgen_release, called from
 * the connection's deferred free, after its protocol state and its exchanges are gone). Listening
 * sockets are allocated one by one, so that one kept across a reload keeps its address, which is
 * what epoll holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
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
#define NO_METRICS_POOL SIZE_MAX /* tbp_metrics_pool_inc ignores it */

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

/* A listening socket fd (bound, listening) as listener `index` of w, watched. NULL on failure
 * (fd closed). */
static struct tbp_listen_io *listen_io_new(struct tbp_worker *w, int fd, size_t index)
{
    struct tbp_listen_io *li = calloc(1, sizeof(*li));

    if (li == NULL) {
        close(fd);
        return NULL;
    }
    li->w = w;
    li->index = index;
    li->io.cb = on_accept;
    li->io.fd = fd;
    if (tbp_io_add(&w->loop, &li->io, EPOLLIN) == -1) {
        close(fd);
        free(li);
        return NULL;
    }
    return li;
}

/* Accepts what the kernel queued on li (a few rounds take a whole backlog), then closes it. */
static void listen_io_close(struct tbp_worker *w, struct tbp_listen_io *li)
{
    size_t rounds;

    for (rounds = 0; li->io.fd != -1 && rounds < 64 && accept_some(li); rounds++)
        ;
    tbp_io_close(&w->loop, &li->io);
}

/* DRAIN: no new connections; every protocol finishes what it has (worker.h). */
static void drain(struct tbp_worker *w)
{
    size_t i;

    if (w->draining)
        return;
    w->draining = 1;
    for (i = 0; i < w->n_listeners; i++)
        listen_io_close(w, w->listeners[i]);
    tbp_client_drain_all(w);
    __atomic_store_n(&w->drain_done, 1, __ATOMIC_RELEASE);
}

/* --- generations ----------------------------------------------------------------------------- */

static void wgen_free(struct tbp_wgen *wg)
{
    size_t i;

    if (wg == NULL)
        return;
    for (i = 0; wg->pools != NULL && i < wg->gen->cfg->n_upstreams; i++)
        tbp_pool_free(wg->pools[i]);
    free(wg->pools);
    tbp_gen_unref(wg->gen);
    free(wg);
}

/* Generation gen for w: its pools, counted as pools 0.. of w's registry. Takes over the
 * reference to gen (dropped here on failure too). NULL when out of memory. */
static struct tbp_wgen *wgen_new(struct tbp_worker *w, struct tbp_gen *gen)
{
    const struct tbp_config *cfg = gen->cfg;
    struct tbp_wgen *wg = calloc(1, sizeof(*wg));
    size_t i, j;

    if (wg == NULL) {
        tbp_gen_unref(gen);
        return NULL;
    }
    wg->gen = gen;
    if ((wg->pools = calloc(cfg->n_upstreams, sizeof(*wg->pools))) == NULL)
        goto Fail;
    for (i = 0; i < cfg->n_upstreams; i++) {
        const struct tbp_upstream *u = &cfg->upstreams[i];
        struct tbp_pool_conf pc = {0};
        struct sockaddr_storage *ss = calloc(u->n_servers, sizeof(*ss));
        socklen_t *lens = calloc(u->n_servers, sizeof(*lens));
        char **texts = calloc(u->n_servers, sizeof(*texts));
        if (ss != NULL && lens != NULL && texts != NULL) {
            for (j = 0; j < u->n_servers; j++) {
                ss[j] = u->servers[j].ss;
                lens[j] = u->servers[j].len;
                texts[j] = (char *)u->servers[j].text; /* the config outlives the pool */
            }
            pc.name = u->name;
            pc.n_servers = u->n_servers;
            pc.addrs = ss;
            pc.addr_lens = lens;
            pc.addr_texts = texts;
            pc.connect_timeout_ms = u->connect_timeout_ms;
            pc.read_timeout_ms = u->read_timeout_ms;
            pc.fail_timeout_ms = u->fail_timeout_ms;
            pc.idle_timeout_ms = IDLE_TIMEOUT_MS;
            pc.max_idle = u->max_idle;
            pc.high_water = cfg->limits.max_buffer_bytes;
            pc.metrics = &w->metrics;
            pc.metrics_pool = i;
            wg->pools[i] = tbp_pool_new(&w->loop, &pc);
        }
        free(ss);
        free(lens);
        free(texts);
        if (wg->pools[i] == NULL)
            goto Fail;
    }
    return wg;
Fail:
    wgen_free(wg);
    return NULL;
}

/* The upstream names of cfg (for the registry's pools), or NULL when out of memory. */
static const char **pool_names(const struct tbp_config *cfg)
{
    const char **names = calloc(cfg->n_upstreams ? cfg->n_upstreams : 1, sizeof(*names));
    size_t i;

    for (i = 0; names != NULL && i < cfg->n_upstreams; i++)
        names[i] = cfg->upstreams[i].name;
    return names;
}

/* The index of the upstream named `name` in cfg, or NO_METRICS_POOL. */
static size_t upstream_index(const struct tbp_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->n_upstreams; i++)
        if (strcmp(cfg->upstreams[i].name, name) == 0)
            return i;
    return NO_METRICS_POOL;
}

/* wg is no longer the current generation: its pools keep no idle connection and count under
 * the pool of the same name in `now` (when there is one); freed now if no connection uses it. */
static void wgen_retire(struct tbp_worker *w, struct tbp_wgen *wg, const struct tbp_config *now)
{
    const struct tbp_config *cfg = wg->gen->cfg;
    size_t i;

    for (i = 0; i < cfg->n_upstreams; i++)
        tbp_pool_retire(wg->pools[i], upstream_index(now, cfg->upstreams[i].name));
    if (wg->users == 0) {
        wgen_free(wg);
        return;
    }
    wg->next = w->retired;
    w->retired = wg;
}

void tbp_wgen_release(struct tbp_worker *w, struct tbp_wgen *wg)
{
    struct tbp_wgen **pp;

    if (wg == NULL || --wg->users > 0 || wg == w->cur)
        return;
    for (pp = &w->retired; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == wg) {
            *pp = wg->next;
            wgen_free(wg);
            return;
        }
    }
}

struct tbp_pool *tbp_wgen_pool(const struct tbp_wgen *wg, const struct tbp_upstream *up)
{
    return wg->pools[up - wg->gen->cfg->upstreams];
}

/* --- reload ---------------------------------------------------------------------------------- */

/* The listener w has (for its current generation) bound to a, or NULL. */
static struct tbp_listen_io *listener_for(struct tbp_worker *w, const struct tbp_addr *a)
{
    const struct tbp_config *cfg = w->cur->gen->cfg;
    size_t i;

    for (i = 0; i < w->n_listeners; i++)
        if (w->listeners[i] != NULL &&
            tbp_addr_equal(&cfg->listeners[w->listeners[i]->index].addr, a))
            return w->listeners[i];
    return NULL;
}

/*
 * The listeners for generation r->gen, into next (r->n_fds entries): the ones w has for an
 * address the generation keeps (re-indexed), new ones from r->fds; the others accept what is
 * queued (under the old generation, still current) and close. A socket epoll refuses is logged
 * and left out: the other workers still serve that address.
 */
static void switch_listeners(struct tbp_worker *w, struct tbp_worker_reload *r,
                             struct tbp_listen_io **next)
{
    const struct tbp_config *cfg = r->gen->cfg;
    size_t i, n = 0;

    for (i = 0; i < w->n_listeners; i++) {
        struct tbp_listen_io *li = w->listeners[i];
        if (tbp_config_listener_find(cfg, &w->cur->gen->cfg->listeners[li->index].addr) < 0) {
            listen_io_close(w, li);
            free(li);
            w->listeners[i] = NULL;
        }
    }
    for (i = 0; i < r->n_fds; i++) {
        struct tbp_listen_io *li = listener_for(w, &cfg->listeners[i].addr);
        if (li != NULL) {
            if (r->fds[i] != -1)
                close(r->fds[i]); /* made for an address this worker serves already */
            li->index = i;
        } else if (r->fds[i] != -1 && w->draining) {
            close(r->fds[i]); /* a graceful stop began: no new listener */
        } else if (r->fds[i] != -1 && (li = listen_io_new(w, r->fds[i], i)) == NULL) {
            tbp_log_error(w->px, TBP_LOG_ERROR, "listen %s: cannot watch the new socket: %s",
                          cfg->listeners[i].addr.text, strerror(errno));
        } else if (r->fds[i] == -1) {
            tbp_log_error(w->px, TBP_LOG_WARN, "listen %s: this worker has no socket for it",
                          cfg->listeners[i].addr.text);
        }
        r->fds[i] = -1;
        if (li != NULL && li->io.fd != -1) {
            next[n++] = li;
        } else if (li != NULL) {
            tbp_io_close(&w->loop, &li->io); /* closed by a drain: not carried over */
            free(li);
        }
    }
    free(w->listeners);
    w->listeners = next;
    w->n_listeners = n;
}

/* The retired generations' pools count under the pools of the same name in cfg, if any. */
static void remap_retired(struct tbp_worker *w, const struct tbp_config *cfg)
{
    struct tbp_wgen *wg;
    size_t i;

    for (wg = w->retired; wg != NULL; wg = wg->next)
        for (i = 0; i < wg->gen->cfg->n_upstreams; i++)
            tbp_pool_retire(wg->pools[i], upstream_index(cfg, wg->gen->cfg->upstreams[i].name));
}

/* RELOAD: new connections get r->gen from this turn on (see worker.h). Frees r. */
static void apply_reload(struct tbp_worker *w, struct tbp_worker_reload *r)
{
    const struct tbp_config *cfg = r->gen->cfg;
    const char **names = pool_names(cfg);
    struct tbp_listen_io **next = calloc(r->n_fds ? r->n_fds : 1, sizeof(*next));
    struct tbp_wgen *wg, *old = w->cur;
    unsigned id = r->gen->id;
    int ret;

    tbp_gen_ref(r->gen); /* the new wgen's own; r's goes with r */
    wg = wgen_new(w, r->gen);
    /* everything that can fail comes first: until set_pools succeeds nothing has changed */
    ret = names == NULL || next == NULL || wg == NULL
              ? TB_ENOMEM
              : tbp_metrics_set_pools(&w->metrics, names, cfg->n_upstreams);
    free(names);
    if (ret != 0) {
        free(next);
        wgen_free(wg);
        tbp_log_error(w->px, TBP_LOG_ERROR,
                      "reload: generation %u not applied (%s): the previous one stays", id,
                      tb_strerror(ret));
        tbp_worker_reload_discard(r);
        __atomic_store_n(&w->gen_seen, id, __ATOMIC_RELEASE);
        return;
    }
    switch_listeners(w, r, next);
    remap_retired(w, cfg);
    w->cur = wg;
    wgen_retire(w, old, cfg);
    tbp_worker_reload_discard(r);
    __atomic_store_n(&w->gen_applied, id, __ATOMIC_RELEASE);
    __atomic_store_n(&w->gen_seen, id, __ATOMIC_RELEASE);
}

static void on_wake(struct tbp_io *io, uint32_t events)
{
    struct tbp_worker *w = CONTAINER(io, struct tbp_worker, wake);
    struct tbp_worker_reload *r;
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
    if ((cmd & TBP_WCMD_RELOAD) &&
        (r = __atomic_exchange_n(&w->reload, NULL, __ATOMIC_ACQ_REL)) != NULL)
        apply_reload(w, r);
    if (cmd & TBP_WCMD_DRAIN)
        drain(w);
}

int tbp_worker_reload_prepare(struct tbp_worker *w, struct tbp_gen *gen,
                              const struct tbp_config *running, struct tbp_worker_reload **out,
                              char *err, size_t errlen)
{
    const struct tbp_config *cfg = gen->cfg;
    struct tbp_worker_reload *r;
    size_t i;

    (void)w;
    *out = NULL;
    r = calloc(1, sizeof(*r) + cfg->n_listeners * sizeof(r->fds[0]));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->n_fds = cfg->n_listeners;
    for (i = 0; i < r->n_fds; i++)
        r->fds[i] = -1;
    for (i = 0; i < r->n_fds; i++) {
        if (tbp_config_listener_find(running, &cfg->listeners[i].addr) >= 0)
            continue;
        if ((r->fds[i] = listen_socket(&cfg->listeners[i].addr, err, errlen)) == -1) {
            tbp_worker_reload_discard(r); /* no reference taken yet */
            return -1;
        }
    }
    tbp_gen_ref(gen);
    r->gen = gen;
    *out = r;
    return 0;
}

void tbp_worker_reload_discard(struct tbp_worker_reload *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n_fds; i++)
        if (r->fds[i] != -1)
            close(r->fds[i]);
    tbp_gen_unref(r->gen);
    free(r);
}

/* --- the worker ------------------------------------------------------------------------------ */

/* The registry, with one pool per upstream of cfg under the upstream's name. */
static int init_metrics(struct tbp_worker *w, const struct tbp_config *cfg, char *err,
                        size_t errlen)
{
    const char **names = pool_names(cfg);
    int ret;

    if (names == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ret = tbp_metrics_init(&w->metrics, names, cfg->n_upstreams);
    free(names);
    if (ret != 0) {
        snprintf(err, errlen, "metrics: %s", tb_strerror(ret));
        return -1;
    }
    w->metrics_ready = 1;
    return 0;
}

int tbp_worker_init(struct tbp_worker *w, struct tbp_proxy *px, struct tbp_gen *gen, unsigned id,
                    char *err, size_t errlen)
{
    const struct tbp_config *cfg = gen->cfg;
    size_t i;
    int fd;

    memset(w, 0, sizeof(*w));
    w->id = id;
    w->px = px;
    w->wake.fd = -1;
    w->loop.epfd = -1; /* a failure before tbp_loop_init: tbp_worker_dispose closes nothing */
    if (init_metrics(w, cfg, err, errlen) != 0)
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
    for (i = 0; i < cfg->n_listeners; i++) {
        if ((fd = listen_socket(&cfg->listeners[i].addr, err, errlen)) == -1)
            return -1;
        if ((w->listeners[i] = listen_io_new(w, fd, i)) == NULL) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            return -1;
        }
        w->n_listeners++;
    }
    w->wake.cb = on_wake;
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake.fd == -1 || tbp_io_add(&w->loop, &w->wake, EPOLLIN) == -1) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }
    tbp_gen_ref(gen);
    if ((w->cur = wgen_new(w, gen)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->gen_seen = w->gen_applied = gen->id;
    return 0;
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

int tbp_worker_reload(struct tbp_worker *w, struct tbp_worker_reload *r)
{
    struct tbp_worker_reload *none = NULL;

    if (!__atomic_compare_exchange_n(&w->reload, &none, r, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return -1;
    post(w, TBP_WCMD_RELOAD);
    return 0;
}

unsigned tbp_worker_gen_seen(const struct tbp_worker *w)
{
    return __atomic_load_n(&w->gen_seen, __ATOMIC_ACQUIRE);
}

unsigned tbp_worker_gen_applied(const struct tbp_worker *w)
{
    return __atomic_load_n(&w->gen_applied, __ATOMIC_ACQUIRE);
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
    struct tbp_wgen *cur = w->cur;
    size_t i;

    tbp_client_close_all(w); /* freed with the loop below: each releases its generation */
    tbp_worker_reload_discard(__atomic_exchange_n(&w->reload, NULL, __ATOMIC_ACQ_REL));
    for (i = 0; w->listeners != NULL && i < w->n_listeners; i++) {
        tbp_io_close(&w->loop, &w->listeners[i]->io);
        free(w->listeners[i]);
    }
    free(w->listeners);
    w->listeners = NULL;
    w->n_listeners = 0;
    w->cur = NULL; /* from here on, the last connection of each generation frees it */
    if (cur != NULL && cur->users == 0) {
        wgen_free(cur);
    } else if (cur != NULL) {
        cur->next = w->retired;
        w->retired = cur;
    }
    tbp_io_close(&w->loop, &w->wake);
    tbp_loop_dispose(&w->loop); /* runs the deferred frees */
    if (w->metrics_ready)
        tbp_metrics_dispose(&w->metrics);
    w->metrics_ready = 0;
}
