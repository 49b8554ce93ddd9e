/*
 * Test support: child processes (the daemons under test) and loopback ports.
 *
 * A test starts a binary with tbt_proc_start(): posix_spawn, no shell, stdin from /dev/null,
 * stdout and stderr appended to one log file `<dir>/<name>.log` (a file never fills up and
 * blocks the child the way an undrained pipe does, and it is still there to show when a test
 * fails). tbt_proc_wait_line() waits for a line starting with a prefix in that log ("tborigin
 * listening on "), tbt_proc_wait_port() for a TCP port to accept connections (tbproxy's
 * readiness), tbt_proc_stop() sends SIGTERM, then SIGKILL after TBT_PROC_STOP_MS, and reaps.
 *
 * No test may leave a process behind, however it ends:
 * - every running child is in a registry; tbt_proc_kill_all() (call it from a Criterion .fini,
 *   which runs after a failed assertion too) and an atexit handler kill and reap what is left;
 * - when /usr/bin/setpriv exists, the child is started through `setpriv --pdeathsig KILL`, so
 *   the kernel kills it if the test process dies without running either (a Criterion timeout
 *   kills the test worker with SIGKILL, a crash).
 *
 * Functions that can fail return 0 (or a positive value) on success and -1 on failure with a
 * one-line reason in the caller's err buffer; none of them calls Criterion, so the test decides
 * how to report. Not thread-safe: one test thread drives its children.
 */
#ifndef TBT_PROC_H
#define TBT_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TBT_PROC_STOP_MS 3000 /* SIGTERM, then this long before SIGKILL */
#define TBT_PROC_MAX 32       /* children running at once, per test process */
#define TBT_PROC_ERRLEN 512   /* an err buffer this size holds any message */

/* One child. Embedded in the caller's memory; tbt_proc_start fills it, tbt_proc_stop reaps it.
 * The registry holds the pid, not this struct, so the struct may live on a stack a failed
 * assertion unwinds. */
struct tbt_proc {
    pid_t pid;      /* > 0 while running (not yet reaped), else 0 */
    int status;     /* after it was reaped: exit code, or 128 + signal number; else -1 */
    char name[64];  /* for messages: the program's base name, or as given */
    char log[4096]; /* path of the log file (stdout + stderr) */
};

/*
 * Starts `path` (a path, or a name looked up in PATH) with argv[1..] = args (NULL-terminated)
 * and the environment of the test. Output goes to <log_dir>/<name>.log (truncated first); name
 * NULL: the base name of path. Returns 0, or -1 with err filled.
 */
int tbt_proc_start(struct tbt_proc *p, const char *path, const char *const *args,
                   const char *log_dir, const char *name, char *err, size_t errlen);

/*
 * Waits up to timeout_ms for a complete line of the log that starts with prefix and copies it
 * (without the newline, truncated to cap) into line. Returns 0; -1 with err filled when the
 * time runs out or the child exits first (err then says how it exited).
 */
int tbt_proc_wait_line(struct tbt_proc *p, const char *prefix, int timeout_ms, char *line,
                       size_t cap, char *err, size_t errlen);

/*
 * tbt_proc_wait_line, then the port at the end of the line ("... 127.0.0.1:PORT"). Returns the
 * port (1..65535) or -1 with err filled.
 */
int tbt_proc_wait_listen_line(struct tbt_proc *p, const char *prefix, int timeout_ms, char *err,
                              size_t errlen);

/*
 * Connects to 127.0.0.1:port every 20 ms until a connection is accepted (then closes it) or
 * timeout_ms pass. Fails early when the child exits. Returns 0, or -1 with err filled.
 */
int tbt_proc_wait_port(struct tbt_proc *p, uint16_t port, int timeout_ms, char *err, size_t errlen);

/* 1 if the child is still running (reaps it and records its status if it is not), else 0. */
int tbt_proc_alive(struct tbt_proc *p);

/*
 * Waits up to timeout_ms for the child to exit on its own and reaps it. Returns its status
 * (exit code, or 128 + signal), or -1 if it is still running when the time is up.
 */
int tbt_proc_wait_exit(struct tbt_proc *p, int timeout_ms);

/*
 * Stops the child: SIGTERM, then SIGKILL if it has not exited after TBT_PROC_STOP_MS, and reaps
 * it. Returns its status as tbt_proc_wait_exit does; a no-op returning p->status when it is not
 * running (never started, or already reaped).
 */
int tbt_proc_stop(struct tbt_proc *p);

/* SIGKILLs and reaps every registered child still running. For .fini and atexit. */
void tbt_proc_kill_all(void);

/*
 * The log of p, NUL-terminated, at most its last `tail` bytes (0: all, capped at 1 MiB), in a
 * malloc'd string the caller frees; "" (still malloc'd) if it cannot be read. Never NULL unless
 * out of memory.
 */
char *tbt_proc_log(const struct tbt_proc *p, size_t tail);

/*
 * A TCP port on 127.0.0.1 that nothing listens on: bind 127.0.0.1:0, read the port, close.
 * Another process may take it before the caller uses it (rare: retry the start when the daemon
 * reports the address in use). Returns the port or -1.
 */
int tbt_port_free(void);

/*
 * A port where connections are refused for as long as *fd stays open: bound on 127.0.0.1
 * without SO_REUSEPORT, never listening. Returns the port or -1.
 */
int tbt_port_closed(int *fd);

/*
 * A temporary directory (mkdtemp under $TMPDIR or /tmp, name starting with `prefix`) into out.
 * Returns 0 or -1. tbt_rmdir_all removes a directory and the plain files in it (not recursive).
 */
int tbt_tempdir(const char *prefix, char *out, size_t cap);
void tbt_rmdir_all(const char *dir);

/* Writes len bytes to dir/name (created or truncated, mode 0600). Returns 0 or -1. */
int tbt_write_file(const char *dir, const char *name, const void *data, size_t len);

/* Milliseconds from a monotonic clock. */
long long tbt_now_ms(void);

#endif
