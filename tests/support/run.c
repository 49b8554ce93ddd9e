/*
 * Test support: a program run to completion (see run.h for the contract).
 *
 * One loop drives the child: poll() on the write end of its stdin (while bytes are left to feed)
 * and on the read ends of its stdout and stderr, every parent end non-blocking, with the time
 * left to the run's deadline as the poll timeout. Writing to a stdin the child has closed raises
 * SIGPIPE; it is blocked in this thread for the run and a SIGPIPE the run caused is consumed
 * before the mask is restored, so the test process never sees it whatever its disposition. Once
 * both outputs are closed the child is reaped with WNOHANG in short sleeps up to the same deadline
 * (a blocking waitpid is only ever called after SIGKILL). A failure anywhere kills the child first,
 * so that every return has reaped it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "run.h"

extern char **environ;

#define READ_CHUNK 4096
#define WRITE_CHUNK 65536
#define REAP_SLEEP_MS 2

/* The state of one run while the loop drives it. */
struct child {
    pid_t pid;                 /* > 0 until reaped */
    int in_fd, out_fd, err_fd; /* parent ends; -1 once closed */
    const char *in_data;       /* what is left to feed */
    size_t in_left;
    long long deadline; /* tbt_now_ms() */
};

int tbt_run_path(const char *name, char *out, size_t cap)
{
    const char *dir = getenv("TB_BIN");
    int n;

    if (strchr(name, '/') != NULL)
        n = snprintf(out, cap, "%s", name);
    else
        n = snprintf(out, cap, "%s/%s", dir != NULL && *dir ? dir : "build/rel/bin", name);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

void tbt_run_result_dispose(struct tbt_run_result *r)
{
    free(r->out);
    free(r->err);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
    r->status = -1;
}

static void close_fd(int *fd)
{
    if (*fd != -1) {
        close(*fd);
        *fd = -1;
    }
}

/* Appends what is readable on *fd to *buf (capped); closes *fd at end of file. 0, or -1. */
static int drain(int *fd, char **buf, size_t *len)
{
    char chunk[READ_CHUNK], *p;
    ssize_t n = read(*fd, chunk, sizeof(chunk));

    if (n == -1)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0) {
        close_fd(fd);
        return 0;
    }
    if (*len + (size_t)n > TBT_RUN_MAX_OUTPUT || (p = realloc(*buf, *len + (size_t)n + 1)) == NULL)
        return -1;
    memcpy(p + *len, chunk, (size_t)n);
    *len += (size_t)n;
    p[*len] = '\0';
    *buf = p;
    return 0;
}

/* Feeds the next piece of stdin; closes it when all is written or the child closed its end. */
static void feed(struct child *c)
{
    size_t n = c->in_left < WRITE_CHUNK ? c->in_left : WRITE_CHUNK;
    ssize_t w = n > 0 ? write(c->in_fd, c->in_data, n) : 0;

    if (w == -1 && (errno == EINTR || errno == EAGAIN))
        return;
    if (w > 0) {
        c->in_data += w;
        c->in_left -= (size_t)w;
    }
    if (w == -1 || c->in_left == 0)
        close_fd(&c->in_fd); /* EPIPE: the child stopped reading, which is its business */
}

/* Reads or feeds what poll() found ready on stream i (0 stdin, 1 stdout, 2 stderr). 0, or -1. */
static int serve(struct child *c, struct tbt_run_result *r, int i)
{
    if (i == 0) {
        feed(c);
        return 0;
    }
    return i == 1 ? drain(&c->out_fd, &r->out, &r->out_len)
                  : drain(&c->err_fd, &r->err, &r->err_len);
}

/* Feeds and reads until both outputs close. 0, or -1 with r->error filled. */
static int pump(struct child *c, struct tbt_run_result *r, const char *path)
{
    struct pollfd pfd[3];
    long long left;
    int i;

    while (c->out_fd != -1 || c->err_fd != -1) {
        pfd[0] = (struct pollfd){.fd = c->in_fd, .events = POLLOUT};
        pfd[1] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
        pfd[2] = (struct pollfd){.fd = c->err_fd, .events = POLLIN};
        left = c->deadline - tbt_now_ms();
        if (left <= 0) {
            snprintf(r->error, sizeof(r->error), "%.400s: timed out", path);
            return -1;
        }
        if (poll(pfd, 3, (int)left) == -1) {
            if (errno == EINTR)
                continue;
            snprintf(r->error, sizeof(r->error), "%.400s: poll: %s", path, strerror(errno));
            return -1;
        }
        for (i = 0; i < 3; i++) {
            if (pfd[i].fd == -1 || pfd[i].revents == 0 || serve(c, r, i) == 0)
                continue;
            snprintf(r->error, sizeof(r->error), "%.400s: %s unreadable or over %d bytes", path,
                     i == 1 ? "stdout" : "stderr", TBT_RUN_MAX_OUTPUT);
            return -1;
        }
    }
    return 0;
}

/*
 * Reaps the child: at once after SIGKILL when kill_now, else waiting for it up to the deadline
 * and killing it there. Its status; -1 with r->error filled when it had to be killed here, or
 * could not be waited for.
 */
static int reap(struct child *c, int kill_now, struct tbt_run_result *r, const char *path)
{
    int killed = kill_now, st = 0;
    pid_t got;

    if (killed)
        kill(c->pid, SIGKILL);
    while ((got = waitpid(c->pid, &st, killed ? 0 : WNOHANG)) != c->pid) {
        if (got == -1 && errno != EINTR) {
            snprintf(r->error, sizeof(r->error), "%.400s: waitpid: %s", path, strerror(errno));
            return -1;
        }
        if (!killed && tbt_now_ms() >= c->deadline) {
            kill(c->pid, SIGKILL);
            killed = 1;
            snprintf(r->error, sizeof(r->error), "%.400s: still running at the deadline", path);
        } else if (got == 0) {
            struct timespec ts = {0, REAP_SLEEP_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    c->pid = 0;
    if (killed)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Drives the started child to its end (pump, then reap) with SIGPIPE blocked in this thread, set
 * after the spawn so that the child inherits the test's mask; a SIGPIPE the run raised is
 * consumed before the mask is restored. Returns the child's status, or -1 with r->error filled.
 */
static int drive(struct child *c, struct tbt_run_result *r, const char *path)
{
    struct timespec zero = {0, 0};
    sigset_t pipe_set, old_mask, pending;
    int was_pending, pumped, status;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    pumped = pump(c, r, path);
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    status = reap(c, pumped != 0, r, path);
    sigpending(&pending);
    if (!was_pending && sigismember(&pending, SIGPIPE))
        sigtimedwait(&pipe_set, NULL, &zero); /* ours: a write to a stdin the child had closed */
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return status;
}

/* Starts path with args, stdin on in_r (-1: /dev/null), stdout on out_w, stderr on err_w and no
 * other descriptor. 0, or an errno value. */
static int spawn(pid_t *pid, const char *path, const char *const *args, int in_r, int out_w,
                 int err_w)
{
    const char *argv[TBT_RUN_MAX_ARGS + 2];
    posix_spawn_file_actions_t fa;
    size_t n = 0;
    int rc;

    argv[n++] = path;
    for (; args != NULL && args[n - 1] != NULL; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return rc;
    rc = in_r != -1 ? posix_spawn_file_actions_adddup2(&fa, in_r, 0)
                    : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (rc == 0)
        rc = posix_spawn(pid, path, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static int nonblocking(int fd)
{
    int fl;

    if (fd == -1)
        return 0;
    fl = fcntl(fd, F_GETFL);
    return fl != -1 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != -1 ? 0 : -1;
}

/* The pipes of a run: out and err always, in when there is stdin to feed. 0, or -1. */
static int make_pipes(int in[2], int out[2], int err[2], int with_stdin)
{
    if (pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1 ||
        (with_stdin && pipe2(in, O_CLOEXEC) == -1))
        return -1;
    if (nonblocking(in[1]) != 0 || nonblocking(out[0]) != 0 || nonblocking(err[0]) != 0)
        return -1;
    return 0;
}

/* Checks args and resolves prog into path. 0, or -1 with r->error filled. */
static int check_program(const char *prog, const char *const *args, char *path, size_t cap,
                         struct tbt_run_result *r)
{
    size_t n = 0;

    while (args != NULL && args[n] != NULL)
        n++;
    if (n > TBT_RUN_MAX_ARGS) {
        snprintf(r->error, sizeof(r->error), "%.400s: more than %d arguments", prog,
                 TBT_RUN_MAX_ARGS);
        return -1;
    }
    if (tbt_run_path(prog, path, cap) != 0) {
        snprintf(r->error, sizeof(r->error), "%.400s: path too long", prog);
        return -1;
    }
    if (access(path, X_OK) != 0) {
        snprintf(r->error, sizeof(r->error),
                 "%.400s: %s (build it, or set TB_BIN to its directory)", path, strerror(errno));
        return -1;
    }
    return 0;
}

int tbt_run(const char *prog, const char *const *args, const char *stdin_data, size_t stdin_len,
            int timeout_ms, struct tbt_run_result *r)
{
    char path[4096];
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, rc;
    struct child c = {.in_fd = -1, .out_fd = -1, .err_fd = -1};

    memset(r, 0, sizeof(*r));
    r->status = -1;
    if (check_program(prog, args, path, sizeof(path), r) != 0)
        return -1;
    r->out = calloc(1, 1);
    r->err = calloc(1, 1);
    if (r->out == NULL || r->err == NULL || make_pipes(in, out, err, stdin_data != NULL) != 0) {
        snprintf(r->error, sizeof(r->error), "%.400s: setting up the pipes: %s", path,
                 strerror(errno));
        goto Exit;
    }
    c.deadline = tbt_now_ms() + timeout_ms;
    rc = spawn(&c.pid, path, args, in[0], out[1], err[1]);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (rc != 0) {
        snprintf(r->error, sizeof(r->error), "posix_spawn %.400s: %s", path, strerror(rc));
        goto Exit;
    }
    c.in_fd = in[1];
    c.out_fd = out[0];
    c.err_fd = err[0];
    c.in_data = stdin_data;
    c.in_left = stdin_len;
    in[1] = out[0] = err[0] = -1;
    r->status = drive(&c, r, path);
Exit:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&err[0]);
    close_fd(&err[1]);
    if (r->error[0] != '\0')
        r->status = -1;
    else
        r->json = json_loadb(r->out, r->out_len, JSON_REJECT_DUPLICATES, NULL);
    return r->status;
}
