/*
 * epoll event loop with a timer heap and deferred frees. See loop.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define MAX_EVENTS 128

uint64_t tbp_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int tbp_loop_init(struct tbp_loop *l)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->stop = 0;
    l->now = tbp_clock_ms();
    l->heap = NULL;
    l->n_timers = l->cap_timers = 0;
    l->deferred = NULL;
    l->posts = NULL;
    return l->epfd == -1 ? -1 : 0;
}

static void run_deferred(struct tbp_loop *l)
{
    while (l->deferred != NULL) {
        struct tbp_deferred *d = l->deferred;
        l->deferred = d->next;
        d->free_cb(d);
    }
}

void tbp_loop_dispose(struct tbp_loop *l)
{
    run_deferred(l);
    if (l->epfd != -1)
        close(l->epfd);
    l->epfd = -1;
    free(l->heap);
    l->heap = NULL;
}

void tbp_loop_stop(struct tbp_loop *l)
{
    l->stop = 1;
}

uint64_t tbp_loop_now(const struct tbp_loop *l)
{
    return l->now;
}

/* --- fds ------------------------------------------------------------------------------------ */

int tbp_io_add(struct tbp_loop *l, struct tbp_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};

    io->events = events;
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev);
}

int tbp_io_set(struct tbp_loop *l, struct tbp_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};

    if (io->events == events || io->fd == -1)
        return 0;
    io->events = events;
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void tbp_io_close(struct tbp_loop *l, struct tbp_io *io)
{
    if (io->fd == -1)
        return;
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    close(io->fd);
    io->fd = -1;
    io->events = 0;
}

/* --- timers: a binary min-heap; t->slot is its index + 1 ------------------------------------ */

static void heap_swap(struct tbp_loop *l, size_t a, size_t b)
{
    struct tbp_timer *t = l->heap[a];

    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->slot = a + 1;
    l->heap[b]->slot = b + 1;
}

static void heap_up(struct tbp_loop *l, size_t i)
{
    while (i > 0 && l->heap[(i - 1) / 2]->deadline > l->heap[i]->deadline) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct tbp_loop *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->n_timers && l->heap[c]->deadline < l->heap[m]->deadline)
            m = c;
        if (c + 1 < l->n_timers && l->heap[c + 1]->deadline < l->heap[m]->deadline)
            m = c + 1;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

void tbp_timer_cancel(struct tbp_loop *l, struct tbp_timer *t)
{
    size_t i;

    if (t->slot == 0)
        return;
    i = t->slot - 1;
    t->slot = 0;
    l->n_timers--;
    if (i == l->n_timers)
        return;
    l->heap[i] = l->heap[l->n_timers];
    l->heap[i]->slot = i + 1;
    heap_up(l, i);
    heap_down(l, l->heap[i]->slot - 1);
}

int tbp_timer_set(struct tbp_loop *l, struct tbp_timer *t, uint64_t ms)
{
    tbp_timer_cancel(l, t);
    if (l->n_timers == l->cap_timers) {
        size_t cap = l->cap_timers ? 2 * l->cap_timers : 64;
        struct tbp_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL)
            return -1;
        l->heap = h;
        l->cap_timers = cap;
    }
    t->deadline = l->now + ms;
    l->heap[l->n_timers] = t;
    t->slot = ++l->n_timers;
    heap_up(l, l->n_timers - 1);
    return 0;
}

static void fire_timers(struct tbp_loop *l)
{
    while (l->n_timers > 0 && l->heap[0]->deadline <= l->now) {
        struct tbp_timer *t = l->heap[0];
        tbp_timer_cancel(l, t);
        t->cb(t);
    }
}

void tbp_loop_post(struct tbp_loop *l, struct tbp_post *p)
{
    if (p->queued)
        return;
    p->queued = 1;
    p->next = l->posts;
    l->posts = p;
}

static void run_posts(struct tbp_loop *l)
{
    while (l->posts != NULL) {
        struct tbp_post *p = l->posts;
        l->posts = p->next;
        p->queued = 0;
        p->cb(p);
    }
}

void tbp_loop_defer(struct tbp_loop *l, struct tbp_deferred *d)
{
    d->next = l->deferred;
    l->deferred = d;
}

/* --- running -------------------------------------------------------------------------------- */

int tbp_loop_turn(struct tbp_loop *l, int max_wait_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int timeout = max_wait_ms, n, i;

    if (l->n_timers > 0) {
        uint64_t d = l->heap[0]->deadline > l->now ? l->heap[0]->deadline - l->now : 0;
        if (timeout < 0 || d < (uint64_t)timeout)
            timeout = (int)(d > 60000 ? 60000 : d);
    }
    n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);
    if (n == -1 && errno != EINTR)
        return -1;
    l->now = tbp_clock_ms();
    for (i = 0; i < n; i++) {
        struct tbp_io *io = evs[i].data.ptr;
        if (io->fd != -1)
            io->cb(io, evs[i].events);
    }
    run_posts(l);
    fire_timers(l);
    run_posts(l);
    run_deferred(l);
    return 0;
}

int tbp_loop_run(struct tbp_loop *l)
{
    while (!l->stop) {
        if (tbp_loop_turn(l, -1) != 0)
            return -1;
    }
    return 0;
}
