/*
 * Workers: one thread, one loop, one SO_REUSEPORT socket per listener, own upstream pools.
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

static void on_accept(struct tbp_io *io, uint32_t events)
{
    struct tbp_listen_io *li = CONTAINER(io, struct tbp_listen_io, io);
    struct sockaddr_storage peer;
    socklen_t len;
    int fd, one = 1, i;

    (void)events;
    for (i = 0; i < 64; i++) {
        len = sizeof(peer);
        fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE)
                tbp_log_error(li->w->px, TBP_LOG_ERROR, "accept: %s", strerror(errno));
            return; /* EAGAIN, or a transient error: try again on the next event */
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)tbp_client_accept(li->w, fd, li->index, &peer);
    }
}

static void on_wake(struct tbp_io *io, uint32_t events)
{
    struct tbp_worker *w = CONTAINER(io, struct tbp_worker, wake);
    uint64_t v;

    (void)events;
    (void)!read(io->fd, &v, sizeof(v));
    tbp_loop_stop(&w->loop);
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

    if (tbp_loop_run(&w->loop) != 0)
        tbp_log_error(w->px, TBP_LOG_ERROR, "worker %u: epoll_wait: %s", w->id, strerror(errno));
    return NULL;
}

int tbp_worker_start(struct tbp_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void tbp_worker_stop(struct tbp_worker *w)
{
    uint64_t one = 1;

    if (w->wake.fd != -1)
        (void)!write(w->wake.fd, &one, sizeof(one));
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
}
