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
 * what stays put while it runs (the worker array), atomics (reload counters, load time, the
 * draining flag), or the configuration under d->lock (a reload swaps it under the lock); it is
 * stopped after the workers and before they are disposed of.
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
 * Reload (SIGHUP): the configuration is loaded again the way the command line says (the file, or
 * quick mode's options) and checked whole before anything changes: the file itself
 * (tbp_config_load: file:line messages), the TLS contexts (certificates and keys read again:
 * gen.h), every new listener address (bound now, per worker, with SO_REUSEPORT), new log files,
 * a new admin address. Any failure leaves the running configuration in place, says why in the
 * error log and counts in tbproxy_config_reloads_total{result="failed"}. Then the new generation
 * goes to every worker (worker.h: RELOAD; they switch between two loop turns, connections made
 * before keep their configuration until they close), the log files and the admin server follow,
 * and the reload is logged as done once every worker runs it. What needs a restart: `workers`
 * (the threads are made once) and `user` (the process has switched already); the first is
 * logged and kept, the second too. Files are opened as the user the process runs as then: with
 * `user`, the new certificates, keys and logs must be readable (or writable) by that user, and a
 * new port below 1024 cannot be bound.
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
#include "gen.h"
#include "logswitch.h"
#include "metrics.h"
#include "tb/tb.h"
#include "worker.h"

#define DRAIN_POLL_MS 20   /* how often a graceful stop looks whether the connections are gone */
#define RELOAD_ACK_MS 5000 /* how long a reload waits for every worker to switch */

struct daemon {
    struct tbp_proxy px;       /* px.gen: the generation in use (px.cfg its configuration) */
    const struct tbp_cli *cli; /* what a reload loads again */
    pthread_mutex_t lock;      /* px.gen / px.cfg swapped by a reload vs. read by /status */
    struct tbp_worker *workers;
    unsigned n_workers; /* the first configuration's `workers`: a reload cannot change it */
    unsigned n_made;    /* workers initialised (disposed at exit) */
    unsigned n_started; /* threads running (stopped and joined at exit) */
    int access_spare, error_spare; /* log descriptor numbers kept by a reload (logswitch.h) */
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

/* The configuration in use (main thread: nothing swaps it under its feet). */
static const struct tbp_config *config(const struct daemon *d)
{
    return d->px.gen->cfg;
}

static int open_log(const char *path, int std_fd)
{
    if (path == NULL || path[0] == '\0')
        return -1;
    if (strcmp(path, "-") == 0)
        return std_fd;
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Probes every listener address, then makes the workers (each binds its own sockets). */
static int make_workers(struct daemon *d, char *err, size_t errlen)
{
    const struct tbp_config *cfg = config(d);
    unsigned i;

    for (i = 0; i < cfg->n_listeners; i++)
        if (tbp_listen_probe(&cfg->listeners[i].addr, err, errlen) != 0)
            return -1;
    if ((d->workers = calloc(cfg->workers, sizeof(*d->workers))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->n_workers = cfg->workers;
    for (; d->n_made < cfg->workers; d->n_made++) {
        if (tbp_worker_init(&d->workers[d->n_made], &d->px, d->px.gen, d->n_made, err, errlen) !=
            0) {
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
    p.workers = d->n_workers;
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
    st->workers = d->n_workers;
    for (i = 0; i < d->n_made; i++)
        st->connections_active += tbp_worker_connections(&d->workers[i]);
    pthread_mutex_lock(&d->lock); /* a reload may be swapping the configuration */
    if (d->px.gen->cfg->path != NULL)
        snprintf(st->config_file, sizeof(st->config_file), "%s", d->px.gen->cfg->path);
    pthread_mutex_unlock(&d->lock);
    st->config_loaded = __atomic_load_n(&d->config_loaded, __ATOMIC_RELAXED);
}

/*
 * Starts an admin server as a says (*out NULL when a is disabled). The registry the callbacks sum
 * is made on first use and kept. -1 with a message in err.
 */
static int start_admin(struct daemon *d, const struct tbp_admin_config *a, struct tbp_admin **out,
                       char *err, size_t errlen)
{
    struct tbp_admin_ops ops = {.ctx = d, .metrics = admin_metrics, .status = admin_status};
    unsigned i;

    *out = NULL;
    if (!a->enabled)
        return 0;
    if (d->registry == NULL) {
        if ((d->registry = calloc(d->n_made, sizeof(*d->registry))) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (i = 0; i < d->n_made; i++)
            d->registry[i] = &d->workers[i].metrics;
    }
    *out = tbp_admin_start((const struct sockaddr *)&a->addr.ss, a->addr.len, &ops, err, errlen);
    return *out != NULL ? 0 : -1;
}

static void log_admin(struct daemon *d)
{
    if (d->admin != NULL)
        tbp_log_error(&d->px, TBP_LOG_INFO,
                      "admin server on %s (/metrics /healthz /readyz /status)",
                      config(d)->admin.addr.text);
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

/* --- reload (SIGHUP) ---------------------------------------------------------------------- */

/* What a reload has prepared and not yet committed; undone by reload_cancel. */
struct reload {
    struct tbp_config *cfg;          /* loaded; owned by gen once gen exists */
    struct tbp_gen *gen;             /* the new generation (one reference: main's) */
    struct tbp_worker_reload **msgs; /* one per running worker */
    struct tbp_log_switch logs[2];   /* access, error */
    int logs_prepared;               /* logs[] must be committed or cancelled */
    struct tbp_admin *admin;         /* a new admin server (a new address), or NULL */
    int admin_change;                /* the admin address changes (to admin, maybe NULL) */
};

static void reload_cancel(struct daemon *d, struct reload *r)
{
    unsigned i;

    for (i = 0; r->msgs != NULL && i < d->n_started; i++)
        tbp_worker_reload_discard(r->msgs[i]);
    free(r->msgs);
    if (r->logs_prepared) {
        tbp_log_switch_cancel(&r->logs[0]);
        tbp_log_switch_cancel(&r->logs[1]);
    }
    tbp_admin_stop(r->admin);
    if (r->gen != NULL)
        tbp_gen_unref(r->gen); /* frees r->cfg too */
    else
        tbp_config_free(r->cfg);
}

/* Does the admin server have to move: enabled or not, or another address? */
static int admin_moves(const struct tbp_admin_config *a, const struct tbp_admin_config *b)
{
    return a->enabled != b->enabled || (a->enabled && !tbp_addr_equal(&a->addr, &b->addr));
}

/* Everything a reload checks and builds before it changes anything. -1 with a message in err. */
static int reload_prepare(struct daemon *d, struct reload *r, char *err, size_t errlen)
{
    const struct tbp_config *old = config(d), *cfg;
    unsigned i;
    size_t k;

    for (i = 0; i < d->n_started; i++) {
        if (tbp_worker_gen_seen(&d->workers[i]) != d->px.gen->id) {
            snprintf(err, errlen, "worker %u has not taken generation %u yet: try again", i,
                     d->px.gen->id);
            return -1;
        }
    }
    if (tbp_cli_config(d->cli, &r->cfg, err, errlen) != 0)
        return -1;
    if (tbp_gen_new(r->cfg, d->px.gen, d->px.gen->id + 1, &r->gen, err, errlen) != 0)
        return -1;
    cfg = r->cfg;
    for (k = 0; k < cfg->n_listeners; k++)
        if (tbp_config_listener_find(old, &cfg->listeners[k].addr) < 0 &&
            tbp_listen_probe(&cfg->listeners[k].addr, err, errlen) != 0)
            return -1;
    if (tbp_log_switch_prepare(&r->logs[0], &d->px.access_fd, &d->access_spare, 1, old->log.access,
                               cfg->log.access, "log.access", err, errlen) != 0)
        return -1;
    if (tbp_log_switch_prepare(&r->logs[1], &d->px.error_fd, &d->error_spare, 2, old->log.error,
                               cfg->log.error, "log.error", err, errlen) != 0) {
        tbp_log_switch_cancel(&r->logs[0]);
        return -1;
    }
    r->logs_prepared = 1;
    if ((r->admin_change = admin_moves(&old->admin, &cfg->admin)) &&
        start_admin(d, &cfg->admin, &r->admin, err, errlen) != 0)
        return -1;
    if ((r->msgs = calloc(d->n_started ? d->n_started : 1, sizeof(*r->msgs))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < d->n_started; i++)
        if (tbp_worker_reload_prepare(&d->workers[i], r->gen, old, &r->msgs[i], err, errlen) != 0)
            return -1;
    return 0;
}

/* Waits (bounded) until every worker has taken generation id. Returns how many applied it. */
static unsigned reload_wait(struct daemon *d, unsigned id)
{
    uint64_t start = tbp_clock_ms();
    unsigned i, applied = 0;

    for (i = 0; i < d->n_started; i++) {
        while (tbp_worker_gen_seen(&d->workers[i]) != id &&
               tbp_clock_ms() - start < RELOAD_ACK_MS) {
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
        }
        if (tbp_worker_gen_applied(&d->workers[i]) == id)
            applied++;
        else if (tbp_worker_gen_seen(&d->workers[i]) != id)
            tbp_log_error(&d->px, TBP_LOG_WARN,
                          "reload: worker %u has not switched to generation %u after %u ms", i, id,
                          RELOAD_ACK_MS);
    }
    return applied;
}

/* Logs what the new generation runs: its listeners and their certificates. */
static void log_generation(struct daemon *d, const struct tbp_config *old)
{
    const struct tbp_gen *g = d->px.gen;
    char info[128];
    size_t k;

    for (k = 0; k < g->cfg->n_listeners; k++)
        tbp_log_error(&d->px, TBP_LOG_INFO, "reload: listen %s%s: certificate %s",
                      g->cfg->listeners[k].addr.text,
                      tbp_config_listener_find(old, &g->cfg->listeners[k].addr) < 0 ? " (new)" : "",
                      tbp_tls_cert_info(g->tls[k], info, sizeof(info)));
    for (k = 0; k < old->n_listeners; k++)
        if (tbp_config_listener_find(g->cfg, &old->listeners[k].addr) < 0)
            tbp_log_error(&d->px, TBP_LOG_INFO, "reload: listen %s: closed",
                          old->listeners[k].addr.text);
    if (g->cfg->workers != d->n_workers)
        tbp_log_error(&d->px, TBP_LOG_WARN,
                      "reload: workers = %u needs a restart: %u workers keep running",
                      g->cfg->workers, d->n_workers);
    if ((g->cfg->user == NULL) != (old->user == NULL) ||
        (g->cfg->user != NULL && strcmp(g->cfg->user, old->user) != 0))
        tbp_log_error(&d->px, TBP_LOG_WARN, "reload: user needs a restart: it stays as it was");
}

/* Puts the prepared generation in place (cannot fail), then waits for the workers. */
static void reload_commit(struct daemon *d, struct reload *r)
{
    struct tbp_gen *old = d->px.gen;
    struct tbp_admin *old_admin = d->admin;
    unsigned i, applied;

    for (i = 0; i < d->n_started; i++) {
        if (tbp_worker_reload(&d->workers[i], r->msgs[i]) != 0) /* checked in prepare */
            tbp_worker_reload_discard(r->msgs[i]);
        r->msgs[i] = NULL;
    }
    free(r->msgs);
    pthread_mutex_lock(&d->lock);
    d->px.gen = r->gen;
    __atomic_store_n(&d->px.cfg, r->gen->cfg, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d->lock);
    __atomic_store_n(&d->config_loaded, r->gen->loaded, __ATOMIC_RELAXED);
    for (i = 0; i < 2; i++)
        if (tbp_log_switch_commit(&r->logs[i]) != 0)
            tbp_log_error(&d->px, TBP_LOG_ERROR, "reload: log.%s: cannot switch to %s: %s",
                          i == 0 ? "access" : "error", r->logs[i].path, strerror(errno));
    tbp_log_switch_cancel(&r->logs[0]);
    tbp_log_switch_cancel(&r->logs[1]);
    if (r->admin_change) {
        d->admin = r->admin; /* the callbacks only read d's stable fields and atomics */
        tbp_admin_stop(old_admin);
        log_admin(d);
    }
    log_generation(d, old->cfg);
    applied = reload_wait(d, r->gen->id);
    tbp_log_error(&d->px, TBP_LOG_INFO,
                  "SIGHUP: reload done: generation %u from %s (%u of %u "
                  "workers switched)",
                  r->gen->id, r->gen->cfg->path != NULL ? r->gen->cfg->path : "the command line",
                  applied, d->n_started);
    tbp_gen_unref(old); /* the workers hold it while their connections need it */
}

/*
 * SIGHUP: load, check and build everything first (reload_prepare); any failure keeps the running
 * configuration. systemd hears RELOADING=1, then READY=1 either way.
 */
static void reload(struct daemon *d)
{
    struct reload r = {0};
    char err[TBP_CONFIG_ERRLEN] = "";

    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading", monotonic_usec());
    tbp_log_error(&d->px, TBP_LOG_INFO, "SIGHUP: reloading %s",
                  d->cli->config != NULL ? d->cli->config : "the command line's settings");
    if (reload_prepare(d, &r, err, sizeof(err)) != 0) {
        reload_cancel(d, &r);
        __atomic_add_fetch(&d->reloads_failed, 1, __ATOMIC_RELAXED);
        tbp_log_error(&d->px, TBP_LOG_ERROR,
                      "SIGHUP: reload failed, the running configuration stays: %s",
                      err[0] ? err : "out of memory");
        sd_notifyf(0, "READY=1\nSTATUS=running generation %u; reload failed: %s", d->px.gen->id,
                   err);
        return;
    }
    reload_commit(d, &r);
    __atomic_add_fetch(&d->reloads_ok, 1, __ATOMIC_RELAXED);
    sd_notifyf(0, "READY=1\nSTATUS=running generation %u", d->px.gen->id);
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
    uint64_t start = tbp_clock_ms(), limit = config(d)->timeouts.shutdown_ms, now;
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

/* The first generation: cfg (owned from here on, freed on failure too) with its TLS contexts. */
static int first_generation(struct daemon *d, struct tbp_config *cfg, char *err, size_t errlen)
{
    if (tbp_gen_new(cfg, NULL, 1, &d->px.gen, err, errlen) != 0) {
        tbp_config_free(cfg);
        return -1;
    }
    d->px.cfg = cfg;
    d->config_loaded = d->px.gen->loaded;
    return 0;
}

/* Runs the proxy with cfg (owned: freed before it returns) until a stop signal. */
static int run(struct tbp_config *cfg, const struct tbp_cli *cli, int64_t start_time)
{
    struct daemon d = {.px = {.access_fd = -1, .error_fd = 2},
                       .cli = cli,
                       .access_spare = -1,
                       .error_spare = -1,
                       .start_time = start_time};
    char err[TBP_CONFIG_ERRLEN] = "";
    unsigned i;
    sigset_t set;
    int ret = 1, sig;

    pthread_mutex_init(&d.lock, NULL);
    /* before any thread exists: every thread inherits the mask */
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (first_generation(&d, cfg, err, sizeof(err)) != 0)
        goto Exit;
    d.px.access_fd = open_log(cfg->log.access, 1);
    d.px.error_fd = open_log(cfg->log.error, 2);
    if ((cfg->log.access[0] && d.px.access_fd == -1) || d.px.error_fd == -1) {
        snprintf(err, sizeof(err), "cannot open log file: %s", strerror(errno));
        goto Exit;
    }
    if (make_workers(&d, err, sizeof(err)) != 0)
        goto Exit;
    /* anything else that needs root (a port below 1024) comes here */
    if (start_admin(&d, &cfg->admin, &d.admin, err, sizeof(err)) != 0)
        goto Exit;
    log_admin(&d);
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
        tbp_log_error(
            &d.px, TBP_LOG_INFO, "tbproxy %s listening on %s (%u workers, Token Binding %s)",
            TBP_VERSION, cfg->listeners[i].addr.text, cfg->workers,
            cfg->tb.enabled ? tbp_tb_versions_name(cfg->listeners[i].tb_versions) : "off");
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
        tbp_worker_dispose(&d.workers[i]); /* drops the workers' generations */
    free(d.workers);
    remove_pid_file(&d);
    if (d.px.access_fd > 2)
        close(d.px.access_fd);
    if (d.px.error_fd > 2)
        close(d.px.error_fd);
    if (d.access_spare != -1)
        close(d.access_spare);
    if (d.error_spare != -1)
        close(d.error_spare);
    tbp_gen_unref(d.px.gen); /* the last reference: the configuration goes with it */
    pthread_mutex_destroy(&d.lock);
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
        /* what a reload checks: the file, then the certificates and keys */
        struct tbp_gen *g = NULL;
        ret = tbp_gen_new(cfg, NULL, 1, &g, err, sizeof(err));
        if (ret != 0) {
            fprintf(stderr, "tbproxy: %s\n", err);
            tbp_config_free(cfg);
            return 1;
        }
        printf("tbproxy: configuration %s is ok\n", cfg->path ? cfg->path : "(command line)");
        tbp_gen_unref(g);
        return 0;
    }
    return run(cfg, &cli, start_time); /* frees cfg */
}
