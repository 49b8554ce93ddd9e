/*
 * The event loop: one per worker thread, epoll based.
 *
 * Owners embed a struct tbp_io (a file descriptor and a callback) and struct tbp_timer values in
 * their own objects; the loop never allocates for them. Timers live in a binary min-heap keyed by
 * deadline (milliseconds of CLOCK_MONOTONIC, read once per loop turn). Objects that must not be
 * freed inside their own callback are handed to tbp_loop_defer() and freed after the turn, when
 * no callback on the stack can still reach them.
 */
#ifndef TBP_LOOP_H
#define TBP_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct tbp_loop;

struct tbp_io {
    int fd;
    uint32_t events; /* EPOLLIN / EPOLLOUT currently registered */
    void (*cb)(struct tbp_io *io, uint32_t events);
};

struct tbp_timer {
    uint64_t deadline; /* ms, CLOCK_MONOTONIC */
    size_t slot;       /* index in the heap + 1; 0 when not armed */
    void (*cb)(struct tbp_timer *t);
};

/* Work to run once after this turn's I/O callbacks (and again after its timers): used to send
 * what several callbacks queued in one system call, instead of one per callback. */
struct tbp_post {
    struct tbp_post *next;
    int queued;
    void (*cb)(struct tbp_post *p);
};

struct tbp_deferred {
    struct tbp_deferred *next;
    void (*free_cb)(struct tbp_deferred *d);
};

struct tbp_loop {
    int epfd;
    int stop;
    uint64_t now;
    struct tbp_timer **heap;
    size_t n_timers, cap_timers;
    struct tbp_deferred *deferred;
    struct tbp_post *posts;
};

int tbp_loop_init(struct tbp_loop *l);
void tbp_loop_dispose(struct tbp_loop *l);
/* Runs until tbp_loop_stop(); returns 0, or -1 if epoll_wait failed. */
int tbp_loop_run(struct tbp_loop *l);
/* Runs one turn, waiting at most max_wait_ms (-1: until the next timer). */
int tbp_loop_turn(struct tbp_loop *l, int max_wait_ms);
void tbp_loop_stop(struct tbp_loop *l);
uint64_t tbp_loop_now(const struct tbp_loop *l);
uint64_t tbp_clock_ms(void);

/* Registers io->fd for `events` (0 allowed). -1 on failure (errno set). */
int tbp_io_add(struct tbp_loop *l, struct tbp_io *io, uint32_t events);
/* Changes the registered events; no syscall when unchanged. */
int tbp_io_set(struct tbp_loop *l, struct tbp_io *io, uint32_t events);
/* Unregisters and closes io->fd (sets it to -1). Safe on fd -1. */
void tbp_io_close(struct tbp_loop *l, struct tbp_io *io);

/* Arms (or re-arms) t to fire in ms milliseconds. -1 if the heap cannot grow. */
int tbp_timer_set(struct tbp_loop *l, struct tbp_timer *t, uint64_t ms);
void tbp_timer_cancel(struct tbp_loop *l, struct tbp_timer *t);

/* Runs p->cb once after the current batch of callbacks; a no-op if p is already queued. The
 * owner must keep p valid until then (deferred frees run after posts, so a closed object's post
 * still runs: the callback checks the owner's state). */
void tbp_loop_post(struct tbp_loop *l, struct tbp_post *p);

/* Frees d (d->free_cb) after the current loop turn. */
void tbp_loop_defer(struct tbp_loop *l, struct tbp_deferred *d);

#endif
