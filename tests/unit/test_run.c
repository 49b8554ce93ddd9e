/*
 * tbt_run (tests/support/run.h): a program run to completion, checked with the shell utilities
 * every Debian system has (/bin/sh, /usr/bin/wc, ...), named by path so that TB_BIN plays no part,
 * except in the path test. Exit codes and signals, stdout and stderr kept apart, stdin fed through
 * a pipe (empty, larger than a pipe buffer, and not read at all by the child, which must cost the
 * test no SIGPIPE), the output cap, the deadline (the child killed and reaped, the call back in
 * time), a program that is not there, and JSON on stdout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "proc.h"
#include "run.h"

#define SH "/bin/sh"
#define TIMEOUT_MS 20000

static struct tbt_run_result r;

static void fini(void)
{
    tbt_run_result_dispose(&r);
}

TestSuite(run, .fini = fini, .timeout = 60);

/* Runs `sh -c script` with stdin (NULL: /dev/null) into r. */
static int sh(const char *script, const char *in, size_t in_len, int timeout_ms)
{
    const char *const args[] = {"-c", script, NULL};

    tbt_run_result_dispose(&r);
    return tbt_run(SH, args, in, in_len, timeout_ms, &r);
}

Test(run, status_and_streams)
{
    cr_assert_eq(sh("printf out; printf err >&2; exit 3", NULL, 0, TIMEOUT_MS), 3, "%s", r.error);
    cr_expect_eq(r.status, 3);
    cr_expect_str_eq(r.out, "out");
    cr_expect_eq(r.out_len, 3);
    cr_expect_str_eq(r.err, "err");
    cr_expect_eq(r.err_len, 3);
    cr_expect_str_eq(r.error, "");
    cr_expect_null(r.json, "\"out\" is no JSON");

    cr_assert_eq(sh("true", NULL, 0, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect(r.out != NULL && r.out_len == 0 && r.out[0] == '\0', "empty stdout, not NULL");
    cr_expect(r.err != NULL && r.err_len == 0, "empty stderr, not NULL");

    cr_assert_eq(sh("kill -TERM $$", NULL, 0, TIMEOUT_MS), 128 + SIGTERM, "%s", r.error);
}

Test(run, args_passed_as_given)
{
    const char *const args[] = {"-c", "printf '%s|' \"$0\" \"$@\"", "zero", "a b", "", "-x", NULL};

    cr_assert_eq(tbt_run(SH, args, NULL, 0, TIMEOUT_MS, &r), 0, "%s", r.error);
    cr_expect_str_eq(r.out, "zero|a b||-x|");
}

Test(run, stdin_dev_null_and_empty)
{
    cr_assert_eq(sh("wc -c", NULL, 0, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect_eq(atoi(r.out), 0, "/dev/null: %s", r.out);
    cr_assert_eq(sh("wc -c", "", 0, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect_eq(atoi(r.out), 0, "empty: %s", r.out);
    cr_assert_eq(sh("cat", "a\0b", 3, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect(r.out_len == 3 && memcmp(r.out, "a\0b", 3) == 0, "bytes with a NUL pass whole");
}

Test(run, stdin_larger_than_a_pipe)
{
    size_t n = 3 * 1024 * 1024 + 7;
    char *big = malloc(n);

    cr_assert_not_null(big);
    memset(big, 'x', n);
    cr_assert_eq(sh("wc -c", big, n, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect_eq(strtoull(r.out, NULL, 10), n, "wc saw %s", r.out);
    free(big);
}

Test(run, stdin_not_read)
{
    size_t n = 4 * 1024 * 1024;
    char *big = calloc(1, n);

    cr_assert_not_null(big);
    /* the child closes its stdin and exits: the writes fail with EPIPE, the test lives on */
    cr_assert_eq(sh("exec 0<&-; echo done", big, n, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect_str_eq(r.out, "done\n");
    cr_assert_eq(sh("head -c 10 >/dev/null; echo read10", big, n, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect_str_eq(r.out, "read10\n");
    free(big);
}

Test(run, output_cap)
{
    char script[128];

    snprintf(script, sizeof(script), "head -c %d /dev/zero", TBT_RUN_MAX_OUTPUT);
    cr_assert_eq(sh(script, NULL, 0, TIMEOUT_MS), 0, "exactly the cap: %s", r.error);
    cr_expect_eq(r.out_len, TBT_RUN_MAX_OUTPUT);
    snprintf(script, sizeof(script), "head -c %d /dev/zero >&2", TBT_RUN_MAX_OUTPUT + 1);
    cr_expect_eq(sh(script, NULL, 0, TIMEOUT_MS), -1, "one byte over");
    cr_expect_eq(r.status, -1);
    cr_expect_neq(strstr(r.error, "stderr"), NULL, "%s", r.error);
    /* an endless writer is stopped at the cap, long before the deadline */
    cr_expect_eq(sh("yes", NULL, 0, TIMEOUT_MS), -1);
}

Test(run, deadline)
{
    long long t0 = tbt_now_ms(), took;

    cr_expect_eq(sh("echo started; exec sleep 30", NULL, 0, 300), -1);
    took = tbt_now_ms() - t0;
    cr_expect_lt(took, 5000, "took %lld ms", took);
    cr_expect_geq(took, 300, "took %lld ms", took);
    cr_expect_neq(strstr(r.error, "timed out"), NULL, "%s", r.error);
    cr_expect_str_eq(r.out, "started\n", "what was read is kept");
    cr_expect_eq(waitpid(-1, NULL, WNOHANG), -1, "no child left to reap");

    /* outputs closed, still running: killed at the deadline too */
    t0 = tbt_now_ms();
    cr_expect_eq(sh("exec >&- 2>&-; sleep 30", NULL, 0, 300), -1);
    cr_expect_lt(tbt_now_ms() - t0, 5000);
    cr_expect_neq(strstr(r.error, "still running"), NULL, "%s", r.error);
    cr_expect_eq(waitpid(-1, NULL, WNOHANG), -1, "no child left to reap");
}

Test(run, missing_program_and_path)
{
    char path[64];

    tbt_run_result_dispose(&r);
    cr_expect_eq(tbt_run("/nonexistent/prog", NULL, NULL, 0, TIMEOUT_MS, &r), -1);
    cr_expect_neq(strstr(r.error, "/nonexistent/prog"), NULL, "%s", r.error);
    cr_expect_neq(strstr(r.error, "TB_BIN"), NULL, "%s", r.error);

    cr_assert_eq(setenv("TB_BIN", "/bin", 1), 0);
    cr_expect_eq(tbt_run_path("tbtoken", path, sizeof(path)), 0);
    cr_expect_str_eq(path, "/bin/tbtoken");
    cr_expect_eq(tbt_run_path("./x", path, sizeof(path)), 0);
    cr_expect_str_eq(path, "./x", "a name with a slash is a path");
    cr_expect_eq(tbt_run_path("tbtoken", path, 12), -1, "too long");
    tbt_run_result_dispose(&r);
    cr_expect_eq(tbt_run("true", NULL, NULL, 0, TIMEOUT_MS, &r), 0, "$TB_BIN/true: %s", r.error);
    cr_assert_eq(setenv("TB_BIN", "", 1), 0);
    cr_expect_eq(tbt_run_path("tbtoken", path, sizeof(path)), 0);
    cr_expect_str_eq(path, "build/rel/bin/tbtoken", "empty TB_BIN: the default");
}

Test(run, json_stdout)
{
    cr_assert_eq(sh("echo '{\"a\": [1, 2]}'", NULL, 0, TIMEOUT_MS), 0, "%s", r.error);
    cr_assert(json_is_object(r.json), "%s", r.out);
    cr_expect_eq(json_array_size(json_object_get(r.json, "a")), 2);
    cr_assert_eq(sh("echo '{\"a\": 1, \"a\": 2}'", NULL, 0, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect_null(r.json, "duplicate keys are rejected");
    cr_assert_eq(sh("echo '{} {}'", NULL, 0, TIMEOUT_MS), 0, "%s", r.error);
    cr_expect_null(r.json, "two values are not one");
}

Test(run, too_many_args)
{
    const char *args[TBT_RUN_MAX_ARGS + 2];
    int i;

    for (i = 0; i < TBT_RUN_MAX_ARGS + 1; i++)
        args[i] = "x";
    args[i] = NULL;
    tbt_run_result_dispose(&r);
    cr_expect_eq(tbt_run("/bin/true", args, NULL, 0, TIMEOUT_MS, &r), -1);
    args[TBT_RUN_MAX_ARGS] = NULL;
    tbt_run_result_dispose(&r);
    cr_expect_eq(tbt_run("/bin/true", args, NULL, 0, TIMEOUT_MS, &r), 0, "%s", r.error);
}
