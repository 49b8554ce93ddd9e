/*
 * Test support: the world of an integration test of tbproxy.
 *
 * A world lives in a temporary directory: a self-signed P-256 certificate for CN localhost
 * (made in memory, written there as cert.pem and key.pem), the demo origin
 * `tborigin --listen 127.0.0.1:0` (its port read from its "tborigin listening on" line) and
 * `tbproxy` on a free port, either in quick mode (`--listen --upstream --cert --key
 * --tb-version`) or from a config file tbproxy.conf written there, speaking the Token Binding
 * version opts.tb_version (draft by default). Readiness is the proxy accepting TCP connections; a
 * proxy that exits before that (its free port taken meanwhile) is retried on another port.
 * With origin_down there is no origin: the upstream is a port that refuses connections.
 * The proxy's admin server is off (`--admin ""`, `admin = { listen = ""; };`) unless the test
 * asks for it (opts.admin): then it listens on another free port, w->admin_port, and readiness
 * also waits for the proxy's "admin server on" line, so a port taken meanwhile is retried too.
 *
 * Unlike proc.h and tlsclient.h, these functions call Criterion: a world that cannot be built
 * fails the test with cr_assert and the daemons' logs in the message. The caller owns the
 * struct tbt_world and keeps it where its Criterion .fini finds it (a static), so that the
 * .fini calls tbt_world_teardown() after a failed assertion too:
 *
 *     static struct tbt_world w;
 *     static void fini(void) { tbt_world_teardown(&w); }
 *     TestSuite(x, .fini = fini, .timeout = 60);
 *     Test(x, y) { tbt_world_start(&w, NULL); ... connect to w.proxy_port ... }
 *
 * The daemons inherit the test's environment (set ASAN_OPTIONS etc. with setenv before the
 * start). Their output goes to <dir>/tbproxy.log and <dir>/tborigin.log; the directory is
 * removed at teardown unless TBT_KEEP is set in the environment.
 *
 * Binaries: $TB_BIN/{tbproxy,tborigin} (make test sets TB_BIN), else build/rel/bin.
 */
#ifndef TBT_WORLD_H
#define TBT_WORLD_H

#include <stddef.h>
#include <sys/types.h>

#include "proc.h"

#define TBT_WORLD_START_TIMEOUT_MS 10000 /* origin's listen line, proxy's port */
#define TBT_WORLD_START_ATTEMPTS 3       /* proxy starts on a fresh port each */

/* How a world's proxy is set up. All zero (or a NULL pointer): quick mode, origin running. */
struct tbt_world_opts {
    int config_file;          /* 1: `tbproxy -c FILE`, 0: quick mode */
    const char *read_timeout; /* config file: upstream read_timeout ("1s"); NULL: "60s" */
    /* config file: libconfig text appended at the top level, e.g.
     * "timeouts = { idle_keepalive = \"2s\"; };" or "limits = { max_headers = 50; };"
     * (not workers, listen, token_binding, upstreams, routes or log: those are written). */
    const char *extra_config;
    int origin_down; /* 1: no origin; the upstream is a port that refuses connections */
    int admin;       /* 1: the admin server on a free port (w->admin_port); 0: none */
    /* the Token Binding version the proxy speaks, "draft", "rfc" or "both": quick mode passes
     * `--tb-version X`, the config file has token_binding.version = "X"; NULL: "draft" */
    const char *tb_version;
};

/* One test's world. Zero-initialised before the first start (a static is); reusable after
 * tbt_world_teardown. Paths are absolute. */
struct tbt_world {
    char dir[512];                       /* the temporary directory */
    char cert[600], key[600], conf[600]; /* cert.pem, key.pem, tbproxy.conf ("" if unused) */
    char bin[4096];                      /* scratch: the last path tbt_world_bin returned */
    struct tbt_proc origin, proxy;       /* origin.pid == 0 when origin_down */
    int origin_port, proxy_port;         /* the upstream port (refusing when origin_down) */
    int admin_port;                      /* the proxy's admin server; 0 when it has none */
    int closed_fd;                       /* holds the refusing port of origin_down ... */
    int closed_fd_open;                  /* ... when this is 1 */
};

/*
 * Builds the world (o NULL: quick mode with an origin): directory, certificate, origin, proxy.
 * Fails the test (cr_assert) when any part cannot be started.
 */
void tbt_world_start(struct tbt_world *w, const struct tbt_world_opts *o);

/*
 * Stops the proxy and the origin (SIGTERM, SIGKILL after 3 s), kills every other registered
 * child (tbt_proc_kill_all), checks both daemons' logs for sanitizer reports
 * (tbt_world_check_log), closes the refusing port, removes the directory and zeroes *w.
 * Safe on a world never started or already torn down. For the suite's .fini.
 */
void tbt_world_teardown(struct tbt_world *w);

/* $TB_BIN/name (else build/rel/bin/name) in w->bin; fails the test if it is not executable. */
const char *tbt_world_bin(struct tbt_world *w, const char *name);

/* The last ~2 KiB of the proxy's log, for failure messages; "(no proxy)" before the start.
 * A static buffer: valid until the next call. */
const char *tbt_world_proxy_log(const struct tbt_world *w);

/*
 * Flags a sanitizer report ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime
 * error:") in p's log with cr_expect. Criterion prints assertion messages from a .fini but does
 * not count them as failures; the marks in the output make tests/run-tests fail the run.
 */
void tbt_world_check_log(const struct tbt_proc *p);

/*
 * Runs a program to completion (a path or a name looked up in PATH; args NULL-terminated, no
 * shell) with its output in <dir>/<name>.log, name NULL: the program's base name. Waits up to
 * timeout_ms, then stops it. Returns its exit status (128 + signal when killed, -1 if it had to
 * be stopped at the timeout); *log (when log is not NULL) receives its whole output, malloc'd,
 * for the caller to free. Fails the test only when the program cannot be started.
 */
int tbt_world_run(struct tbt_world *w, const char *prog, const char *const *args, const char *name,
                  int timeout_ms, char **log);

/*
 * Waits up to timeout_ms for `needle` anywhere in p's log. Returns 0, or -1 with err filled (the
 * time ran out or p exited first; the log's tail is in the message). Calls no Criterion.
 */
int tbt_world_wait_log(struct tbt_proc *p, const char *needle, int timeout_ms, char *err,
                       size_t errlen);

/* Peak resident memory of a process (VmHWM of /proc/PID/status, KiB), or -1. */
long tbt_world_peak_rss_kib(pid_t pid);

/* SHA-256 of data as 64 lower-case hex digits and a NUL. Fails the test if OpenSSL fails. */
void tbt_world_sha256_hex(const void *data, size_t len, char out[65]);

#endif
