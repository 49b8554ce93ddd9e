/*
 * Frame-level HTTP/2 misbehaviour against tbproxy (issue 4), driven by Debian's python3-h2.
 *
 * Each test builds a world (tests/support/world.h: a certificate, tborigin, tbproxy in quick
 * mode on a free port), runs one scenario of tests/h2/misbehave.py with /usr/bin/python3 (spawned
 * without a shell: `python3 tests/h2/misbehave.py SCENARIO PORT`, output captured in the world's
 * directory, stopped after RUN_MS) and asserts that it exited 0, i.e. that the proxy answered per
 * RFC 9113 or cut the flood (the script documents what passes for each scenario and prints one
 * JSON line with what it saw, logged here and quoted in a failure).
 *
 * After every misbehaving scenario the proxy must still be alive and serving: the script's
 * control scenario (GET /healthz over h2 with python3-h2's own client) and HTTP/1.1 GET
 * /healthz over CHECK_H1_CONNECTIONS fresh connections with the tlsclient helper (quick mode runs
 * one worker per core and the kernel spreads connections over them, so a worker stuck on the
 * misbehaving connection would show on one of them) must all get 200.
 *
 * The tests run from the repository root (tests/h2/misbehave.py is found relative to it). The
 * .fini tears the world down (and so checks the daemons' logs for sanitizer reports) and kills any
 * child left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "proc.h"
#include "tlsclient.h"
#include "world.h"

#define PYTHON "/usr/bin/python3"
#define SCRIPT "tests/h2/misbehave.py"
#define RUN_MS 20000 /* one scenario, however it goes (the script bounds itself well below) */
#define SUITE_TIMEOUT_S 90
#define CHECK_H1_CONNECTIONS 4

#define OUT_CAP 16384 /* what is kept of a scenario's output (its JSON line is far shorter) */

/* Static, so that the .fini frees what a failed assertion left behind (no leak reports). */
static struct tbt_world w;
static struct tbt_tls h1 = {.fd = -1}; /* zeroed, fd 0 would be closed */
static struct tbt_http_response h1_resp;
static char out_buf[OUT_CAP];

static void teardown(void)
{
    tbt_http_response_dispose(&h1_resp);
    tbt_tls_close(&h1);
    tbt_world_teardown(&w);
}

TestSuite(h2_frames, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- helpers -------------------------------------------------------------------------------- */

static void start(void)
{
    cr_assert_eq(access(PYTHON, X_OK), 0, "%s: %s (Debian's python3 with python3-h2 is needed)",
                 PYTHON, strerror(errno));
    cr_assert_eq(access(SCRIPT, R_OK), 0, "%s: %s (run the tests from the repository root)", SCRIPT,
                 strerror(errno));
    tbt_world_start(&w, NULL);
}

/* The output without its trailing newlines (in place). */
static char *chomp(char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/*
 * Runs one scenario of the script against the proxy: returns its exit status (0 pass, 1 fail,
 * -1 stopped at RUN_MS) and its output (the JSON line, or a traceback) in out_buf (*out).
 */
static int run_scenario(const char *scenario, const char **out)
{
    char port[16], name[64], *log = NULL;
    const char *args[] = {SCRIPT, scenario, port, NULL};
    int st;

    snprintf(port, sizeof(port), "%d", w.proxy_port);
    snprintf(name, sizeof(name), "misbehave-%s", scenario);
    st = tbt_world_run(&w, PYTHON, args, name, RUN_MS, &log);
    snprintf(out_buf, sizeof(out_buf), "%s", log != NULL ? log : "(no output)");
    free(log);
    *out = chomp(out_buf);
    return st;
}

/* Runs a scenario that must pass (exit 0); its JSON line goes to the test log. */
static void expect_scenario(const char *scenario)
{
    const char *out;
    int st = run_scenario(scenario, &out);

    cr_log_info("%s: exit %d: %s", scenario, st, out);
    cr_assert_eq(st, 0,
                 "scenario %s: exit %d (%s), expected 0 (proxy behaved)\n  script: %.6000s\n"
                 "  proxy alive: %d; proxy log: %s",
                 scenario, st, st == -1 ? "stopped at the time limit" : "the proxy misbehaved", out,
                 tbt_proc_alive(&w.proxy), tbt_world_proxy_log(&w));
}

/* GET /healthz over HTTP/1.1 on a fresh TLS connection: 200. */
static void expect_h1_healthz(const char *after, int i)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1"};

    cr_assert_eq(tbt_tls_connect(&h1, (uint16_t)w.proxy_port, &o), 0,
                 "after %s: HTTP/1.1 connection %d: %s; proxy log: %s", after, i, h1.err,
                 tbt_world_proxy_log(&w));
    cr_assert_eq(tbt_tls_send_str(&h1, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"), 0,
                 "after %s: HTTP/1.1 send %d: %s", after, i, h1.err);
    cr_assert_eq(tbt_tls_read_response(&h1, &h1_resp, 0, 0), 0,
                 "after %s: HTTP/1.1 response %d: %s; proxy log: %s", after, i, h1.err,
                 tbt_world_proxy_log(&w));
    cr_assert_eq(h1_resp.status, 200, "after %s: HTTP/1.1 GET /healthz answered %d: %s", after,
                 h1_resp.status, h1_resp.head);
    tbt_http_response_dispose(&h1_resp);
    tbt_tls_close(&h1);
}

/* The proxy is alive and serves h2 (the control scenario) and HTTP/1.1 clients. */
static void expect_still_serving(const char *after)
{
    const char *out;
    int st, i;

    cr_assert(tbt_proc_alive(&w.proxy), "tbproxy exited during %s (status %d); log: %s", after,
              w.proxy.status, tbt_world_proxy_log(&w));
    st = run_scenario("healthz", &out);
    cr_assert_eq(st, 0, "after %s, an h2 GET /healthz failed (exit %d): %s; proxy log: %s", after,
                 st, out, tbt_world_proxy_log(&w));
    for (i = 0; i < CHECK_H1_CONNECTIONS; i++)
        expect_h1_healthz(after, i);
    cr_assert(tbt_proc_alive(&w.proxy), "tbproxy exited after %s (status %d); log: %s", after,
              w.proxy.status, tbt_world_proxy_log(&w));
}

/* A misbehaving scenario: the proxy answers it as it must and then still serves others. */
static void misbehave(const char *scenario)
{
    long before, after;

    start();
    before = tbt_world_peak_rss_kib(w.proxy.pid);
    expect_scenario(scenario);
    after = tbt_world_peak_rss_kib(w.proxy.pid);
    cr_log_info("%s: proxy peak RSS %ld KiB before, %ld KiB after", scenario, before, after);
    expect_still_serving(scenario);
}

/* --- the control ---------------------------------------------------------------------------- */

Test(h2_frames, control_healthz)
{
    start();
    expect_scenario("healthz");
    expect_h1_healthz("nothing", 0);
}

/* --- floods and resets (CVE-2019-9511..9518 class, CVE-2023-44487) -------------------------- */

Test(h2_frames, rapid_reset)
{
    misbehave("rapid_reset");
}

Test(h2_frames, rst_flood)
{
    misbehave("rst_flood");
}

Test(h2_frames, ping_flood)
{
    misbehave("ping_flood");
}

Test(h2_frames, settings_flood)
{
    misbehave("settings_flood");
}

Test(h2_frames, settings_many_entries)
{
    misbehave("settings_many_entries");
}

/* --- malformed requests: stream error (or 400), never forwarded ------------------------------ */

Test(h2_frames, uppercase_header)
{
    misbehave("uppercase_header");
}

Test(h2_frames, transfer_encoding)
{
    misbehave("transfer_encoding");
}

Test(h2_frames, crlf_value)
{
    misbehave("crlf_value");
}

Test(h2_frames, pseudo_missing_path)
{
    misbehave("pseudo_missing_path");
}

Test(h2_frames, pseudo_unknown)
{
    misbehave("pseudo_unknown");
}

Test(h2_frames, pseudo_after_regular)
{
    misbehave("pseudo_after_regular");
}

Test(h2_frames, pseudo_duplicate_method)
{
    misbehave("pseudo_duplicate_method");
}

Test(h2_frames, authority_host)
{
    misbehave("authority_host");
}

/* --- limits --------------------------------------------------------------------------------- */

Test(h2_frames, too_many_streams)
{
    misbehave("too_many_streams");
}
