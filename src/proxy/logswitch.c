/*
 * Log files across a reload (see logswitch.h). Runs on the main thread only; the descriptor
 * numbers it publishes are read by every thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "logswitch.h"

static int path_off(const char *p)
{
    return p == NULL || p[0] == '\0';
}

static int path_std(const char *p)
{
    return p != NULL && strcmp(p, "-") == 0;
}

static int same_path(const char *a, const char *b)
{
    return (path_off(a) && path_off(b)) || (!path_off(a) && !path_off(b) && strcmp(a, b) == 0);
}

int tbp_log_switch_prepare(struct tbp_log_switch *s, int *fd, int *spare, int std_fd,
                           const char *old_path, const char *new_path, const char *what, char *err,
                           size_t errlen)
{
    *s = (struct tbp_log_switch){.fd = fd, .spare = spare, .std_fd = std_fd, .nfd = -1};
    s->path = new_path != NULL ? new_path : "";
    s->change = !same_path(old_path, new_path);
    if (!s->change || path_off(s->path) || path_std(s->path))
        return 0;
    s->nfd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (s->nfd == -1) {
        snprintf(err, errlen, "%s: %s: %s", what, s->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Puts what src refers to under number dst (dup3 retried on EINTR / EBUSY, see log.c). */
static int move_onto(int src, int dst)
{
    int ret;

    do
        ret = dup3(src, dst, O_CLOEXEC);
    while (ret == -1 && (errno == EINTR || errno == EBUSY));
    return ret == -1 ? -1 : 0;
}

/* Is n a number this module may overwrite: a file log's own descriptor (not off, not std)? */
static int own_number(const struct tbp_log_switch *s, int n)
{
    return n != -1 && n != s->std_fd;
}

static int turn_off(struct tbp_log_switch *s, int cur)
{
    int null, ret;

    __atomic_store_n(s->fd, -1, __ATOMIC_RELEASE);
    if (!own_number(s, cur))
        return 0;
    /* a writer that loaded cur before the store writes into /dev/null */
    if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
        return -1;
    ret = move_onto(null, cur);
    close(null);
    if (*s->spare == -1)
        *s->spare = cur;
    return ret;
}

static int to_file(struct tbp_log_switch *s, int cur)
{
    int ret = 0;

    if (own_number(s, cur)) {
        ret = move_onto(s->nfd, cur);
    } else if (*s->spare != -1) {
        ret = move_onto(s->nfd, *s->spare);
        if (ret == 0) {
            __atomic_store_n(s->fd, *s->spare, __ATOMIC_RELEASE);
            *s->spare = -1;
        }
    } else {
        __atomic_store_n(s->fd, s->nfd, __ATOMIC_RELEASE);
        s->nfd = -1; /* now the live descriptor */
        return 0;
    }
    close(s->nfd);
    s->nfd = -1;
    return ret;
}

int tbp_log_switch_commit(struct tbp_log_switch *s)
{
    int cur = __atomic_load_n(s->fd, __ATOMIC_ACQUIRE);

    if (!s->change)
        return 0;
    if (path_off(s->path))
        return turn_off(s, cur);
    if (path_std(s->path)) {
        if (own_number(s, cur))
            return move_onto(s->std_fd, cur); /* the number now writes to stdout / stderr */
        __atomic_store_n(s->fd, s->std_fd, __ATOMIC_RELEASE);
        return 0;
    }
    return to_file(s, cur);
}

void tbp_log_switch_cancel(struct tbp_log_switch *s)
{
    if (s->nfd != -1)
        close(s->nfd);
    s->nfd = -1;
}
