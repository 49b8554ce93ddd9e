/*
 * Test support: run a program to completion and keep what it printed.
 *
 * For the command line tools under test (tbtoken; tborigin's usage errors) and command line
 * clients (curl): tbt_run() starts the program with posix_spawn, no shell, stdin either /dev/null
 * or a pipe fed with the caller's bytes, stdout and stderr each on a pipe of their own, read with
 * poll() into separate heap buffers (at most TBT_RUN_MAX_OUTPUT each) until both close, then
 * reaps the child and parses stdout as JSON when it is JSON. The whole run (feeding, reading,
 * exiting) has one deadline; a child still running at the deadline, or printing more than the
 * cap, is killed and reaped, and the run fails. The child inherits the test's environment,
 * signal mask and dispositions and no descriptor but 0, 1 and 2. The caller's SIGPIPE disposition
 * is left alone: a child that stops reading its stdin early costs the test no signal.
 *
 * Programs run to completion here leave no log file and need no registry: each run ends inside the
 * call. Daemons, and clients whose output a test keeps in a log beside the daemons' (TBT_KEEP),
 * go through proc.h, or world.h's tbt_world_run.
 *
 * None of these functions calls Criterion: a run that fails says why in the result and the test
 * decides how to report. Not thread-safe (one test thread runs one program at a time).
 */
#ifndef TBT_RUN_H
#define TBT_RUN_H

#include <stddef.h>

#include <jansson.h>

#define TBT_RUN_MAX_ARGS 64              /* arguments after argv[0] */
#define TBT_RUN_MAX_OUTPUT (1024 * 1024) /* bytes of stdout, and of stderr, kept at most */

/* What one run gave. Embedded in the caller's memory; tbt_run fills it without freeing what it
 * held (dispose a used one first), tbt_run_result_dispose frees it. */
struct tbt_run_result {
    int status;      /* exit code, or 128 + signal number; -1 when the run failed */
    char *out, *err; /* stdout and stderr, NUL-terminated (binary data may hold NULs) */
    size_t out_len, err_len;
    json_t *json;    /* stdout parsed as one JSON value (duplicate keys rejected), or NULL */
    char error[512]; /* why the run failed ("" when it did not); names the program */
};

/*
 * The path of a program into out: a name with a '/' as it is; any other name as
 * $TB_BIN/name (make test sets TB_BIN), else build/rel/bin/name (relative to the repository root
 * the tests run from). Returns 0, or -1 when it does not fit in cap.
 */
int tbt_run_path(const char *name, char *out, size_t cap);

/*
 * Runs prog (resolved with tbt_run_path) with argv[1..] = args (NULL-terminated, at most
 * TBT_RUN_MAX_ARGS; NULL for none) and the test's environment; argv[0] is the resolved path.
 * stdin_data NULL: stdin is /dev/null; else a pipe that carries the stdin_len bytes at stdin_data,
 * then end of file (stdin_len 0: end of file at once; the program may stop reading early). Waits
 * up to timeout_ms for the program to exit and both its outputs to close.
 *
 * Returns the program's status (>= 0, as in r->status), with r->out and r->err never NULL and
 * r->json set when stdout is one JSON value. Returns -1 with r->error filled when the program is
 * not executable, cannot be started, prints more than TBT_RUN_MAX_OUTPUT on either stream, or
 * runs past the deadline (then it is killed); r->out and r->err then hold what was read (either
 * may be NULL). In every case the child has been reaped and r must be disposed.
 */
int tbt_run(const char *prog, const char *const *args, const char *stdin_data, size_t stdin_len,
            int timeout_ms, struct tbt_run_result *r);

/* Frees r's buffers and JSON and zeroes it (status -1). Safe on a zeroed or already disposed
 * result. */
void tbt_run_result_dispose(struct tbt_run_result *r);

#endif
