/*
 * Error and access logs: whole lines written with one write(2) each, so lines from different
 * workers never interleave (O_APPEND files, pipes under PIPE_BUF). Never given tokens, cookies
 * or keys: callers pass reasons and hashes only. The access-log line itself is accesslog.c's.
 *
 * An error-log line is
 *
 *     2025-01-02T03:04:05.678Z [warn] [w1] 127.0.0.1:50312: GET / HTTP/1.1 -> 502 (...)
 *
 * time (RFC 3339 UTC, milliseconds), level, the worker when the line comes from a worker thread
 * (tbp_log_thread_worker), the message with control bytes written as \xHH so that one call is
 * always one line.
 *
 * Reopening (logrotate's SIGUSR1): the descriptors in struct tbp_proxy are read by every worker
 * without a lock, so they never change number. tbp_log_reopen opens the file at its path again
 * and puts the new file under the old number with dup3(2), which swaps the descriptor table entry
 * atomically: a write(2) racing with it goes wholly to the old file or wholly to the new one,
 * and no writer can see the number closed or reused by something else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "worker.h"

#define ERROR_LINE 2048 /* longest error-log line, newline included (< PIPE_BUF) */
#define ERROR_MSG 1024  /* longest message before escaping */

static _Thread_local int log_worker = -1;

void tbp_log_thread_worker(int id)
{
    log_worker = id < 0 ? -1 : id;
}

void tbp_log_write(int fd, const char *line, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(fd, line, len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* a log that cannot be written must not stop the proxy */
        line += n;
        len -= (size_t)n;
    }
}

/* "2025-01-02T03:04:05.678Z [level] [wN] " into line; returns its length. */
static size_t error_prefix(char *line, size_t cap, int level)
{
    const char *name = tbp_log_level_name((enum tbp_log_level)(level & 3));
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_worker >= 0)
        k = snprintf(line + n, cap - n, ".%03ldZ [%s] [w%d] ", ts.tv_nsec / 1000000, name,
                     log_worker);
    else
        k = snprintf(line + n, cap - n, ".%03ldZ [%s] ", ts.tv_nsec / 1000000, name);
    if (k > 0)
        n += (size_t)k < cap - n ? (size_t)k : cap - n - 1;
    return n;
}

/* msg into out (at most cap bytes) with control bytes and DEL as \xHH; returns the length. */
static size_t one_line(char *out, size_t cap, const char *msg, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= 0x20 && c != 0x7f) {
            if (o == cap)
                break;
            out[o++] = (char)c;
        } else {
            if (cap - o < 4)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

void tbp_log_error(struct tbp_proxy *px, int level, const char *fmt, ...)
{
    char line[ERROR_LINE], msg[ERROR_MSG];
    va_list ap;
    size_t n;
    int k, fd;

    /* any thread; a reload (main thread) may swap cfg and error_fd meanwhile: atomic reads */
    if (px == NULL || (fd = __atomic_load_n(&px->error_fd, __ATOMIC_ACQUIRE)) == -1 ||
        level < (int)__atomic_load_n(&px->cfg, __ATOMIC_ACQUIRE)->log.level)
        return;
    n = error_prefix(line, sizeof(line) - 1, level);
    va_start(ap, fmt);
    k = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    n += one_line(line + n, sizeof(line) - 1 - n, msg,
                  (size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg) - 1);
    line[n++] = '\n';
    tbp_log_write(fd, line, n);
}

/*
 * Reopens the file at path and moves it onto descriptor fd. Nothing to do for a log that is off
 * (fd -1, path "") or on a standard stream (path "-"). Returns 0, or -1 with errno set and the
 * old file still in place.
 */
static int reopen_one(int fd, const char *path)
{
    int nfd, ret, e;

    if (fd == -1 || path == NULL || path[0] == '\0' || strcmp(path, "-") == 0)
        return 0;
    nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (nfd == -1)
        return -1;
    do /* dup2/dup3 may say EBUSY while another thread is in open(2): retry */
        ret = dup3(nfd, fd, O_CLOEXEC);
    while (ret == -1 && (errno == EINTR || errno == EBUSY));
    e = errno;
    close(nfd);
    errno = e;
    return ret == -1 ? -1 : 0;
}

int tbp_log_reopen(struct tbp_proxy *px)
{
    const struct tbp_log_config *lc = &px->cfg->log;
    int ret = 0;

    /* the error log first, so that a failure of the access log is reported in the new file */
    if (reopen_one(px->error_fd, lc->error) != 0) {
        tbp_log_error(px, TBP_LOG_ERROR, "cannot reopen the %s log %s: %s (%s)", "error", lc->error,
                      strerror(errno), "still writing to the old file");
        ret = -1;
    }
    if (reopen_one(px->access_fd, lc->access) != 0) {
        tbp_log_error(px, TBP_LOG_ERROR, "cannot reopen the %s log %s: %s (%s)", "access",
                      lc->access, strerror(errno), "still writing to the old file");
        ret = -1;
    }
    if (ret == 0)
        tbp_log_error(px, TBP_LOG_INFO, "logs reopened");
    return ret;
}
