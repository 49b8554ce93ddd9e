/*
 * Test support: child processes and loopback ports (see proc.h for the contract).
 *
 * Children are spawned with posix_spawn into a clean state: default signal dispositions and an
 * empty signal mask (the test process ignores SIGPIPE, and what is ignored survives exec), stdin
 * /dev/null, stdout and stderr on one log file, every other descriptor closed (Criterion's own
 * descriptors must not outlive the test in a daemon). Through `setpriv --pdeathsig KILL` when
 * it exists, so that a test process killed outright still takes its children with it.
 *
 * The registry is a small array of pids owned by the process that spawned them (a fork of the
 * test process inherits the array but must not kill its parent's children). A pid leaves it when
 * it is reaped, so reaping happens in one place (reap_registered) and a pid is never signalled
 * after it was reaped (it could have been reused).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

extern char **environ;

#define SETPRIV "/usr/bin/setpriv"
#define MAX_ARGS 64
#define MAX_LOG_READ (1024 * 1024)
#define POLL_MS 20

struct reg_entry {
    pid_t pid; /* 0: free slot */
};

static struct reg_entry registry[TBT_PROC_MAX];
static pid_t registry_owner;
static int atexit_installed;

long long tbt_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void at_exit(void)
{
    tbt_proc_kill_all();
}

/* The registry as seen by this process: emptied (without signalling) after a fork. */
static void registry_check_owner(void)
{
    if (registry_owner != getpid()) {
        memset(registry, 0, sizeof(registry));
        registry_owner = getpid();
    }
}

static int registry_add(pid_t pid)
{
    size_t i;

    registry_check_owner();
    if (!atexit_installed) {
        if (atexit(at_exit) != 0)
            return -1;
        atexit_installed = 1;
    }
    for (i = 0; i < TBT_PROC_MAX; i++) {
        if (registry[i].pid == 0) {
            registry[i].pid = pid;
            return 0;
        }
    }
    return -1;
}

static struct reg_entry *registry_find(pid_t pid)
{
    size_t i;

    registry_check_owner();
    for (i = 0; pid > 0 && i < TBT_PROC_MAX; i++)
        if (registry[i].pid == pid)
            return &registry[i];
    return NULL;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/*
 * Reaps a registered pid: waits for it when block, else only checks. Returns 1 and the status
 * when it was reaped (or is no longer ours: status -1), 0 when it still runs.
 */
static int reap_registered(pid_t pid, int block, int *status)
{
    struct reg_entry *e = registry_find(pid);
    pid_t r;
    int st = 0;

    *status = -1;
    if (e == NULL)
        return 1; /* reaped earlier (by tbt_proc_kill_all) or never ours */
    while ((r = waitpid(pid, &st, block ? 0 : WNOHANG)) == -1 && errno == EINTR)
        ;
    if (r == 0)
        return 0;
    e->pid = 0;
    if (r == pid)
        *status = decode_status(st);
    return 1;
}

void tbt_proc_kill_all(void)
{
    size_t i;
    int st;

    registry_check_owner();
    for (i = 0; i < TBT_PROC_MAX; i++) {
        pid_t pid = registry[i].pid;

        if (pid > 0) {
            kill(pid, SIGKILL);
            reap_registered(pid, 1, &st);
        }
    }
}

/* --- starting --------------------------------------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

static int spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, const char *log)
{
    static const int defaults[] = {SIGPIPE, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD, SIGALRM};
    sigset_t none, def;
    size_t i;

    sigemptyset(&none);
    sigemptyset(&def);
    for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        sigaddset(&def, defaults[i]);
    if (posix_spawn_file_actions_init(fa) != 0)
        return -1;
    if (posix_spawnattr_init(at) != 0) {
        posix_spawn_file_actions_destroy(fa);
        return -1;
    }
    if (posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawn_file_actions_addopen(fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
                                         0600) != 0 ||
        posix_spawn_file_actions_adddup2(fa, 1, 2) != 0 ||
        posix_spawn_file_actions_addclosefrom_np(fa, 3) != 0 ||
        posix_spawnattr_setsigmask(at, &none) != 0 ||
        posix_spawnattr_setsigdefault(at, &def) != 0 ||
        posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) != 0) {
        posix_spawnattr_destroy(at);
        posix_spawn_file_actions_destroy(fa);
        return -1;
    }
    return 0;
}

int tbt_proc_start(struct tbt_proc *p, const char *path, const char *const *args,
                   const char *log_dir, const char *name, char *err, size_t errlen)
{
    char *argv[MAX_ARGS + 8];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int use_setpriv = access(SETPRIV, X_OK) == 0, n = 0, rc;
    size_t i;
    pid_t pid;

    memset(p, 0, sizeof(*p));
    p->status = -1;
    snprintf(p->name, sizeof(p->name), "%s", name != NULL ? name : base_name(path));
    if ((size_t)snprintf(p->log, sizeof(p->log), "%s/%s.log", log_dir, p->name) >= sizeof(p->log)) {
        snprintf(err, errlen, "%s: log path too long", p->name);
        return -1;
    }
    if (use_setpriv) {
        argv[n++] = (char *)SETPRIV;
        argv[n++] = (char *)"--pdeathsig";
        argv[n++] = (char *)"KILL";
        argv[n++] = (char *)"--";
    }
    argv[n++] = (char *)path;
    for (i = 0; args != NULL && args[i] != NULL; i++) {
        if (i >= MAX_ARGS) {
            snprintf(err, errlen, "%s: more than %d arguments", p->name, MAX_ARGS);
            return -1;
        }
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    if (spawn_setup(&fa, &at, p->log) != 0) {
        snprintf(err, errlen, "%s: posix_spawn setup failed", p->name);
        return -1;
    }
    rc = use_setpriv ? posix_spawn(&pid, SETPRIV, &fa, &at, argv, environ)
                     : posix_spawnp(&pid, path, &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(err, errlen, "posix_spawn %s: %s", path, strerror(rc));
        return -1;
    }
    if (registry_add(pid) != 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
            ;
        snprintf(err, errlen, "%s: more than %d children running", p->name, TBT_PROC_MAX);
        return -1;
    }
    p->pid = pid;
    return 0;
}

/* --- watching --------------------------------------------------------------------------------- */

int tbt_proc_alive(struct tbt_proc *p)
{
    int st;

    if (p->pid <= 0)
        return 0;
    if (!reap_registered(p->pid, 0, &st))
        return 1;
    p->pid = 0;
    p->status = st;
    return 0;
}

int tbt_proc_wait_exit(struct tbt_proc *p, int timeout_ms)
{
    long long deadline = tbt_now_ms() + timeout_ms;

    while (tbt_proc_alive(p)) {
        if (tbt_now_ms() >= deadline)
            return -1;
        sleep_ms(10);
    }
    return p->status;
}

int tbt_proc_stop(struct tbt_proc *p)
{
    int st;

    if (!tbt_proc_alive(p))
        return p->status;
    kill(p->pid, SIGTERM);
    if (tbt_proc_wait_exit(p, TBT_PROC_STOP_MS) != -1 || p->pid == 0)
        return p->status;
    kill(p->pid, SIGKILL);
    reap_registered(p->pid, 1, &st);
    p->pid = 0;
    p->status = st;
    return st;
}

/* Reads up to MAX_LOG_READ bytes of the file into a malloc'd NUL-terminated string. */
static char *read_file(const char *path, size_t *len_out)
{
    char *buf = malloc(MAX_LOG_READ + 1);
    size_t len = 0;
    ssize_t n;
    int fd;

    *len_out = 0;
    if (buf == NULL)
        return NULL;
    buf[0] = '\0';
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
        return buf;
    while (len < MAX_LOG_READ &&
           ((n = read(fd, buf + len, MAX_LOG_READ - len)) > 0 || (n == -1 && errno == EINTR)))
        len += n > 0 ? (size_t)n : 0;
    close(fd);
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

char *tbt_proc_log(const struct tbt_proc *p, size_t tail)
{
    size_t len;
    char *buf = read_file(p->log, &len);

    if (buf != NULL && tail > 0 && len > tail)
        memmove(buf, buf + len - tail, tail + 1);
    return buf;
}

/* The first complete line of text starting with prefix, copied into line. 1 if found. */
static int find_line(const char *text, const char *prefix, char *line, size_t cap)
{
    size_t plen = strlen(prefix);
    const char *p = text, *nl;

    for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        if ((size_t)(nl - p) >= plen && memcmp(p, prefix, plen) == 0) {
            size_t n = (size_t)(nl - p);

            if (n > 0 && p[n - 1] == '\r')
                n--;
            if (n >= cap)
                n = cap - 1;
            memcpy(line, p, n);
            line[n] = '\0';
            return 1;
        }
    }
    return 0;
}

static void describe_exit(const struct tbt_proc *p, const char *waiting, char *err, size_t errlen)
{
    char *log = tbt_proc_log(p, 1500);

    snprintf(err, errlen, "%s exited (status %d) while waiting for %s; its log ends: %s", p->name,
             p->status, waiting, log != NULL ? log : "");
    free(log);
}

int tbt_proc_wait_line(struct tbt_proc *p, const char *prefix, int timeout_ms, char *line,
                       size_t cap, char *err, size_t errlen)
{
    long long deadline = tbt_now_ms() + timeout_ms;

    for (;;) {
        size_t len;
        char *text = read_file(p->log, &len);
        int found = text != NULL && find_line(text, prefix, line, cap);

        free(text);
        if (found)
            return 0;
        if (!tbt_proc_alive(p)) {
            describe_exit(p, prefix, err, errlen);
            return -1;
        }
        if (tbt_now_ms() >= deadline) {
            char *log = tbt_proc_log(p, 1500);

            snprintf(err, errlen, "%s: no line \"%s\" after %d ms; its log: %s", p->name, prefix,
                     timeout_ms, log != NULL ? log : "");
            free(log);
            return -1;
        }
        sleep_ms(POLL_MS);
    }
}

int tbt_proc_wait_listen_line(struct tbt_proc *p, const char *prefix, int timeout_ms, char *err,
                              size_t errlen)
{
    char line[512], *colon, *end;
    long port;

    if (tbt_proc_wait_line(p, prefix, timeout_ms, line, sizeof(line), err, errlen) != 0)
        return -1;
    colon = strrchr(line, ':');
    if (colon == NULL) {
        snprintf(err, errlen, "%s: no port in \"%s\"", p->name, line);
        return -1;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
        snprintf(err, errlen, "%s: no port in \"%s\"", p->name, line);
        return -1;
    }
    return (int)port;
}

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

int tbt_proc_wait_port(struct tbt_proc *p, uint16_t port, int timeout_ms, char *err, size_t errlen)
{
    long long deadline = tbt_now_ms() + timeout_ms;
    struct sockaddr_in sin = loopback(port);
    char what[64];

    snprintf(what, sizeof(what), "127.0.0.1:%u to accept", (unsigned)port);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

        if (fd == -1) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return -1;
        }
        rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
        close(fd);
        if (rc == 0)
            return 0;
        if (!tbt_proc_alive(p)) {
            describe_exit(p, what, err, errlen);
            return -1;
        }
        if (tbt_now_ms() >= deadline) {
            char *log = tbt_proc_log(p, 1500);

            snprintf(err, errlen, "%s: 127.0.0.1:%u does not accept after %d ms; its log: %s",
                     p->name, (unsigned)port, timeout_ms, log != NULL ? log : "");
            free(log);
            return -1;
        }
        sleep_ms(POLL_MS);
    }
}

/* --- ports ------------------------------------------------------------------------------------ */

/* A TCP socket bound to 127.0.0.1:0, never listening, in *fd_out; its port, or -1. */
static int bind_any(int *fd_out)
{
    struct sockaddr_in sin = loopback(0);
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    *fd_out = -1;
    if (fd == -1)
        return -1;
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) == -1) {
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return ntohs(sin.sin_port);
}

int tbt_port_free(void)
{
    int fd, port = bind_any(&fd);

    if (fd != -1)
        close(fd);
    return port;
}

int tbt_port_closed(int *fd)
{
    return bind_any(fd);
}

/* --- files ------------------------------------------------------------------------------------ */

int tbt_tempdir(const char *prefix, char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(out, cap, "%s/%s.XXXXXX", tmp, prefix) >= cap)
        return -1;
    return mkdtemp(out) != NULL ? 0 : -1;
}

void tbt_rmdir_all(const char *dir)
{
    DIR *d;
    struct dirent *e;
    char path[4096];

    if (dir == NULL || *dir == '\0' || (d = opendir(dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < sizeof(path))
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int tbt_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    const char *p = data;
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return -1;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) == 0 ? 0 : -1;
}
