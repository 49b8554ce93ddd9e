/*
 * Error and access logs: whole lines written with one write(2) each, so lines from different
 * workers never interleave (O_APPEND files, pipes under PIPE_BUF). Never given tokens, cookies
 * or keys: callers pass reasons and hashes only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

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

void tbp_log_error(struct tbp_proxy *px, int level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    time_t now = time(NULL);
    struct tm tm;
    va_list ap;
    size_t n;
    int k;

    if (px == NULL || px->error_fd == -1 || level < (int)px->cfg->log.level)
        return;
    gmtime_r(&now, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
    k = snprintf(line + n, sizeof(line) - n, "[%s] ", names[level & 3]);
    n += k > 0 ? (size_t)k : 0;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    n += (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    line[n++] = '\n';
    tbp_log_write(px->error_fd, line, n);
}
