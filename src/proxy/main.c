/*
 * tbproxy: the Token Binding reverse proxy.
 *
 * main parses the command line, loads and checks the configuration, builds the TLS contexts and
 * binds every worker's sockets before anything runs (a bad config or a busy port never starts a
 * half-working proxy: message, exit 1). Then, in this order: the admin server (admin.listen: its
 * own thread, a port that may be below 1024), the pid file (--pid-file), the switch to `user`
 * (after everything that may need root: the sockets, the log files, the keys), the worker
 * threads, "READY=1" to systemd, and the wait for signals.
 *
 * The admin server (admin.h) reads the daemon through two callbacks on its own thread: /metrics
 * sums every worker's registry (metrics.h) with the process values (start time, config load
 * time, workers, reloads, draining); /status sums the workers' open connections. Both read only
 * what stays put while it runs (the worker array, the config) or atomics (reload counters, load
 * time, the draining flag); it is stopped after the workers and before they are disposed of.
 *
 * Signals follow nghttpx, except that SIGTERM is graceful because systemd and Kubernetes stop
 * services with it:
 *   SIGTERM, SIGQUIT  graceful stop: /readyz turns 503 (tbp_proxy_draining), every worker closes
 *                     its listeners and drains (worker.h: idle connections close, in-flight
 *                     requests finish, HTTP/2 gets GOAWAY); the process exits 0 once no client
 *                     connection is left, or when timeouts.shutdown runs out, cutting the rest
 *                     (the log says how many). SIGINT during it cuts at once.
 *   SIGINT            fast stop: every connection closed now, exit 0.
 *   SIGHUP            reload: the reload branch (reload()).
 *   SIGUSR1           reopen the log files (logrotate): tbp_log_reopen.
 * They are blocked in every thread (the mask is set before any thread starts, and threads
 * inherit it) and taken here with sigwaitinfo: no handler runs, so what acts on a signal is
 * ordinary code on the main thread, and workers hear of it through their mailbox, never from
 * signal context.
 *
 * systemd (Type=notify): READY=1 once the workers run, RELOADING=1 / READY=1 around a reload,
 * STOPPING=1 when a stop begins, STATUS= lines along the way; sd_notify does nothing when
 * NOTIFY_SOCKET is unset.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <systemd/sd-daemon.h>

#include "admin.h"
#include "cli.h"
#include "config.h"
#include "metrics.h"
#include "tb/tb.h"
#include "worker.h"

#define DRAIN_POLL_MS 20 /* how often a graceful stop looks whether the connections are gone */

struct daemon {
    struct tbp_config *cfg;
    struct tbp_proxy px;
    struct tbp_worker *workers;
    unsigned n_made;    /* workers initialised (disposed at exit) */
    unsigned n_started; /* threads running (stopped and joined at exit) */
    const char *pid_file;
    int pid_written;
    struct tbp_admin *admin;       /* NULL when admin.listen = "" (or before it starts) */
    struct tbp_metrics **registry; /* &workers[i].metrics, n_made entries: what /metrics sums */
    int64_t start_time;            /* Unix seconds the process started */
    int64_t config_loaded;         /* Unix seconds the config in use was loaded (atomic) */
    uint64_t reloads_ok;           /* SIGHUP reloads that took effect (atomic) */
    uint64_t reloads_failed;       /* SIGHUP reloads refused, the old config kept (atomic) */
};

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGTERM:
        return "SIGTERM";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGINT:
        return "SIGINT";
    case SIGHUP:
        return "SIGHUP";
    case SIGUSR1:
        return "SIGUSR1";
    }
    return "signal";
}

/* --- setting up ------------------------------------------------------------------------------ */

static int open_log(const char *path, int std_fd)
{
    if (path == NULL || path[0] == '\0')
        return -1;
    if (strcmp(path, "-") == 0)
        return std_fd;
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static int build_tls(struct tbp_proxy *px, char *err, size_t errlen)
{
    const struct tbp_config *cfg = px->cfg;
    size_t i, k;

    px->tls = calloc(cfg->n_listeners, sizeof(*px->tls));
    if (px->tls == NULL)
        return -1;
    for (i = 0; i < cfg->n_listeners; i++) {
        const struct tbp_tls_config *t = &cfg->listeners[i].tls;
        struct tbp_tls_settings s = {0};
        s.cert = t->cert;
        s.key = t->key;
        s.ciphers = t->ciphers;
        s.tickets = t->tickets;
        s.ticket_rotation = t->ticket_key_rotation_ms / 1000;
        s.tb_enabled = cfg->tb.enabled;
        s.n_tb_key_types = cfg->tb.n_key_types;
        s.n_tb_protocols = cfg->tb.n_protocols;
        for (k = 0; k < cfg->tb.n_protocols && k < 2; k++)
            s.tb_protocols[k] = cfg->tb.protocols[k] == TBP_PROTO_H2 ? TBP_ALPN_H2 : TBP_ALPN_H1;
        for (k = 0; k < cfg->tb.n_key_types && k < 2; k++)
            s.tb_key_types[k] = cfg->tb.key_types[k];
        px->tls[i] = tbp_tls_new(&s, err, errlen);
        if (px->tls[i] == NULL)
            return -1;
    }
    return 0;
}

/* Probes every listener address, then makes the workers (each binds its own sockets). */
static int make_workers(struct daemon *d, char *err, size_t errlen)
{
    const struct tbp_config *cfg = d->cfg;
    unsigned i;

    for (i = 0; i < cfg->n_listeners; i++)
        if (tbp_listen_probe(&cfg->listeners[i].addr, err, errlen) != 0)
            return -1;
    if ((d->workers = calloc(cfg->workers, sizeof(*d->workers))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (; d->n_made < cfg->workers; d->n_made++) {
        if (tbp_worker_init(&d->workers[d->n_made], &d->px, d->n_made, err, errlen) != 0) {
            d->n_made++; /* half made: disposed with the others */
            return -1;
        }
    }
    return 0;
}

/* --- the admin server ------------------------------------------------------------------------ */

/* /metrics (admin thread): every worker's registry and the process values. */
static int admin_metrics(void *ctx, struct tbp_buf *out)
{
    struct daemon *d = ctx;
    struct tbp_metrics_process p = {0};

    p.version = TBP_VERSION;
    p.start_time = (double)d->start_time;
    p.config_load_time = (double)__atomic_load_n(&d->config_loaded, __ATOMIC_RELAXED);
    p.workers = d->cfg->workers;
    p.reloads_ok = __atomic_load_n(&d->reloads_ok, __ATOMIC_RELAXED);
    p.reloads_failed = __atomic_load_n(&d->reloads_failed, __ATOMIC_RELAXED);
    p.draining = tbp_proxy_draining(&d->px);
    return tbp_metrics_scrape(d->registry, d->n_made, &p, out);
}

/* /status (admin thread). */
static void admin_status(void *ctx, struct tbp_admin_status *st)
{
    struct daemon *d = ctx;
    unsigned i;

    snprintf(st->version, sizeof(st->version), "%s", TBP_VERSION);
    st->start_time = d->start_time;
    st->workers = d->cfg->workers;
    for (i = 0; i < d->n_made; i++)
        st->connections_active += tbp_worker_connections(&d->workers[i]);
    if (d->cfg->path != NULL)
        snprintf(st->config_file, sizeof(st->config_file), "%s", d->cfg->path);
    st->config_loaded = __atomic_load_n(&d->config_loaded, __ATOMIC_RELAXED);
}

/* Starts the admin server on admin.listen (nothing when it is ""). -1 with a message in err. */
static int start_admin(struct daemon *d, char *err, size_t errlen)
{
    const struct tbp_admin_config *a = &d->cfg->admin;
    struct tbp_admin_ops ops = {.ctx = d, .metrics = admin_metrics, .status = admin_status};
    unsigned i;

    if (!a->enabled)
        return 0;
    if ((d->registry = calloc(d->n_made, sizeof(*d->registry))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < d->n_made; i++)
        d->registry[i] = &d->workers[i].metrics;
    d->admin =
        tbp_admin_start((const struct sockaddr *)&a->addr.ss, a->addr.len, &ops, err, errlen);
    if (d->admin == NULL)
        return -1;
    tbp_log_error(&d->px, TBP_LOG_INFO, "admin server on %s (/metrics /healthz /readyz /status)",
                  a->addr.text);
    return 0;
}

/* /readyz answers 503 from now on. */
static void admin_draining(struct daemon *d)
{
    if (d->admin != NULL)
        tbp_admin_set_draining(d->admin, 1);
}

/*
 * --pid-file: the pid and a newline, written to a temporary file beside it and renamed over it,
 * so a reader sees the old content or the whole new one, never a partial file.
 */
static int write_pid_file(const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX], line[32];
    int fd = -1, n, ret = -1;

    n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "pid file %.900s: path too long", path);
        return -1;
    }
    n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd == -1) {
        snprintf(err, errlen, "pid file %.900s: %s", tmp, strerror(errno));
        return -1; /* nothing made */
    }
    if (write(fd, line, (size_t)n) != n) {
        snprintf(err, errlen, "pid file %.900s: %s", tmp, errno ? strerror(errno) : "short write");
        goto Exit;
    }
    n = close(fd);
    fd = -1;
    if (n == -1) {
        snprintf(err, errlen, "pid file %.900s: %s", tmp, strerror(errno));
        goto Exit;
    }
    if (rename(tmp, path) == -1) {
        snprintf(err, errlen, "pid file %.900s: %s", path, strerror(errno));
        goto Exit;
    }
    ret = 0;
Exit:
    if (fd != -1)
        close(fd);
    if (ret != 0)
        (void)unlink(tmp);
    return ret;
}

/* Removes the pid file if it still names this process (a successor may have replaced it). */
static void remove_pid_file(struct daemon *d)
{
    char buf[32];
    ssize_t n;
    int fd;

    if (!d->pid_written)
        return;
    d->pid_written = 0;
    if ((fd = open(d->pid_file, O_RDONLY | O_CLOEXEC)) == -1)
        return;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    if (strtol(buf, NULL, 10) != (long)getpid())
        return;
    if (unlink(d->pid_file) == -1) /* e.g. its directory is not writable by `user` */
        tbp_log_error(&d->px, TBP_LOG_WARN, "pid file %s: cannot remove: %s", d->pid_file,
                      strerror(errno));
}

/*
 * `user`: supplementary groups, group, then user, for every thread (glibc applies set*id to the
 * whole process). Refuses unless root: a process that cannot switch must not run as the wrong
 * user believing it did. Checks afterwards that root cannot be regained.
 */
static int drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd pw, *found = NULL;
    char buf[16384];
    int e;

    if (geteuid() != 0) {
        snprintf(err, errlen,
                 "user \"%s\": switching to it needs root, and tbproxy runs as uid %ld (start "
                 "it as root, or leave `user` out)",
                 user, (long)geteuid());
        return -1;
    }
    e = getpwnam_r(user, &pw, buf, sizeof(buf), &found);
    if (found == NULL) {
        snprintf(err, errlen, "user \"%s\": %s", user,
                 e != 0 && e != ENOENT && e != ESRCH ? strerror(e) : "no such user");
        return -1;
    }
    if (initgroups(user, pw.pw_gid) == -1 || setgid(pw.pw_gid) == -1 || setuid(pw.pw_uid) == -1) {
        snprintf(err, errlen, "user \"%s\": %s", user, strerror(errno));
        return -1;
    }
    if (pw.pw_uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
        snprintf(err, errlen, "user \"%s\": root privileges could be regained", user);
        return -1;
    }
    return 0;
}

/* --- running --------------------------------------------------------------------------------- */

static unsigned connections(const struct daemon *d)
{
    unsigned i, n = 0;

    for (i = 0; i < d->n_started; i++)
        n += tbp_worker_connections(&d->workers[i]);
    return n;
}

static int all_drained(const struct daemon *d)
{
    unsigned i;

    for (i = 0; i < d->n_started; i++)
        if (!tbp_worker_drain_done(&d->workers[i]) || tbp_worker_connections(&d->workers[i]) > 0)
            return 0;
    return 1;
}

/* STOP to every running worker, joined. Returns the client connections they closed. */
static unsigned stop_workers(struct daemon *d)
{
    unsigned i, closed = 0;

    for (i = 0; i < d->n_started; i++)
        tbp_worker_stop(&d->workers[i]);
    for (i = 0; i < d->n_started; i++) {
        tbp_worker_join(&d->workers[i]);
        closed += d->workers[i].closed_by_stop;
    }
    d->n_started = 0;
    return closed;
}

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

/*
 * SIGHUP: the reload branch. This is where a new configuration (and certificates) will be
 * loaded, validated, and swapped in without dropping connections; until that exists the
 * running configuration stays and the log says so. systemd hears RELOADING=1 then READY=1 as
 * it will then.
 */
static void reload(struct daemon *d)
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading", monotonic_usec());
    tbp_log_error(&d->px, TBP_LOG_WARN, "SIGHUP: reload: not yet supported, restart to apply");
    sd_notify(0, "READY=1\nSTATUS=running; reload not yet supported, restart to apply");
}

/* SIGUSR1 (logrotate renamed the files): tbp_log_reopen logs what it did. */
static void reopen_logs(struct daemon *d)
{
    (void)tbp_log_reopen(&d->px);
}

/* Waits for a signal that stops the proxy, handling the others. Returns that signal. */
static int wait_for_stop(struct daemon *d, const sigset_t *set)
{
    int sig;

    for (;;) {
        if ((sig = sigwaitinfo(set, NULL)) == -1)
            continue; /* EINTR: a signal outside the set */
        if (sig == SIGHUP)
            reload(d);
        else if (sig == SIGUSR1)
            reopen_logs(d);
        else
            return sig;
    }
}

/*
 * Graceful stop (SIGTERM, SIGQUIT): DRAIN every worker, then wait until no client connection is
 * left, timeouts.shutdown passes, or SIGINT asks for the fast way; then STOP cuts what is left.
 */
static void graceful_stop(struct daemon *d, const sigset_t *set, int sig)
{
    uint64_t start = tbp_clock_ms(), limit = d->cfg->timeouts.shutdown_ms, now;
    const char *why = "timeouts.shutdown ran out";
    unsigned i, cut;

    tbp_proxy_set_draining(&d->px);
    admin_draining(d);
    sd_notifyf(0, "STOPPING=1\nSTATUS=graceful stop: connections open: %u", connections(d));
    tbp_log_error(&d->px, TBP_LOG_INFO,
                  "%s: graceful stop: connections open: %u, waiting up to %u ms for them",
                  sig_name(sig), connections(d), (unsigned)limit);
    for (i = 0; i < d->n_started; i++)
        tbp_worker_drain(&d->workers[i]);
    while (!all_drained(d) && (now = tbp_clock_ms()) - start < limit) {
        uint64_t wait =
            limit - (now - start) < DRAIN_POLL_MS ? limit - (now - start) : DRAIN_POLL_MS;
        struct timespec ts = {0, (long)wait * 1000000L};
        int s = sigtimedwait(set, NULL, &ts);
        if (s == SIGINT) {
            why = "SIGINT";
            break;
        }
        if (s == SIGUSR1)
            reopen_logs(d);
        else if (s == SIGHUP)
            tbp_log_error(&d->px, TBP_LOG_WARN, "SIGHUP: reload ignored: stopping");
    }
    cut = stop_workers(d);
    if (cut == 0)
        tbp_log_error(&d->px, TBP_LOG_INFO, "graceful stop: every connection done in %llu ms",
                      (unsigned long long)(tbp_clock_ms() - start));
    else
        tbp_log_error(&d->px, TBP_LOG_WARN, "graceful stop: %s after %llu ms: connections cut: %u",
                      why, (unsigned long long)(tbp_clock_ms() - start), cut);
}

static void fast_stop(struct daemon *d, int sig)
{
    unsigned closed;

    tbp_proxy_set_draining(&d->px);
    admin_draining(d);
    sd_notify(0, "STOPPING=1\nSTATUS=fast stop");
    closed = stop_workers(d);
    tbp_log_error(&d->px, TBP_LOG_INFO, "%s: fast stop: connections closed: %u", sig_name(sig),
                  closed);
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

static int run(struct tbp_config *cfg, const struct tbp_cli *cli, int64_t start_time)
{
    struct daemon d = {.cfg = cfg,
                       .px = {.cfg = cfg, .access_fd = -1, .error_fd = 2},
                       .start_time = start_time,
                       .config_loaded = (int64_t)time(NULL)};
    char err[TBP_CONFIG_ERRLEN] = "";
    unsigned i;
    sigset_t set;
    int ret = 1, sig;

    /* before any thread exists: every thread inherits the mask */
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    d.px.access_fd = open_log(cfg->log.access, 1);
    d.px.error_fd = open_log(cfg->log.error, 2);
    if ((cfg->log.access[0] && d.px.access_fd == -1) || d.px.error_fd == -1) {
        snprintf(err, sizeof(err), "cannot open log file: %s", strerror(errno));
        goto Exit;
    }
    if (build_tls(&d.px, err, sizeof(err)) != 0 || make_workers(&d, err, sizeof(err)) != 0)
        goto Exit;
    /* anything else that needs root (a port below 1024) comes here */
    if (start_admin(&d, err, sizeof(err)) != 0)
        goto Exit;
    if (cli->pid_file != NULL) {
        d.pid_file = cli->pid_file;
        if (write_pid_file(d.pid_file, err, sizeof(err)) != 0)
            goto Exit;
        d.pid_written = 1;
    }
    if (cfg->user != NULL) {
        if (drop_privileges(cfg->user, err, sizeof(err)) != 0)
            goto Exit;
        tbp_log_error(&d.px, TBP_LOG_INFO, "running as user %s (uid %ld, gid %ld)", cfg->user,
                      (long)getuid(), (long)getgid());
    }
    for (; d.n_started < d.n_made; d.n_started++) {
        if (tbp_worker_start(&d.workers[d.n_started]) != 0) {
            snprintf(err, sizeof(err), "cannot start worker %u", d.n_started);
            goto Exit;
        }
    }
    for (i = 0; i < cfg->n_listeners; i++)
        tbp_log_error(&d.px, TBP_LOG_INFO, "tbproxy %s listening on %s (%u workers)", TBP_VERSION,
                      cfg->listeners[i].addr.text, cfg->workers);
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s (%u workers)", cfg->listeners[0].addr.text,
               cfg->workers);

    sig = wait_for_stop(&d, &set);
    if (sig == SIGINT)
        fast_stop(&d, sig);
    else
        graceful_stop(&d, &set, sig);
    tbp_log_error(&d.px, TBP_LOG_INFO, "tbproxy stopped");
    ret = 0;
Exit:
    if (ret != 0)
        fprintf(stderr, "tbproxy: %s\n", err[0] ? err : "out of memory");
    (void)stop_workers(&d);
    tbp_admin_stop(d.admin); /* no callback reads a worker after this */
    free(d.registry);
    for (i = 0; i < d.n_made; i++)
        tbp_worker_dispose(&d.workers[i]);
    free(d.workers);
    for (i = 0; d.px.tls != NULL && i < cfg->n_listeners; i++)
        tbp_tls_free(d.px.tls[i]);
    free(d.px.tls);
    remove_pid_file(&d);
    if (d.px.access_fd > 2)
        close(d.px.access_fd);
    if (d.px.error_fd > 2)
        close(d.px.error_fd);
    tb_verifier_thread_release();
    return ret;
}

int main(int argc, char **argv)
{
    struct tbp_config *cfg = NULL;
    char err[TBP_CONFIG_ERRLEN];
    int64_t start_time = (int64_t)time(NULL);
    struct tbp_cli cli;
    int ret;

    if (tbp_cli_parse(argc, argv, &cli, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbproxy: %s\n", err);
        tbp_cli_usage(stderr, argv[0]);
        return 2;
    }
    if (cli.action == TBP_CLI_HELP) {
        tbp_cli_usage(stdout, argv[0]);
        return 0;
    }
    if (cli.action == TBP_CLI_VERSION) {
        tbp_cli_version(stdout);
        return 0;
    }
    if (tbp_cli_config(&cli, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbproxy: %s\n", err);
        return 1;
    }
    if (cli.action == TBP_CLI_CHECK) {
        printf("tbproxy: configuration %s is ok\n", cfg->path ? cfg->path : "(command line)");
        tbp_config_free(cfg);
        return 0;
    }
    ret = run(cfg, &cli, start_time);
    tbp_config_free(cfg);
    return ret;
}
