/*
 * The access-log line (issue 7): one line per exchange, in the configured format, built by a pure
 * function from the exchange's record (struct tbp_xlog, exchange.h) and what the connection and
 * the clocks say (struct tbp_accesslog_env), so that every field and every escape is unit-tested
 * without a socket. exchange.c writes the line with one write(2).
 *
 * `combined` (the default): Apache's combined format, then the proxy's fields as key=value
 * tokens, always all of them, in this order ("-" when a field does not apply):
 *
 *   REMOTE - - [TIME] "METHOD TARGET HTTP/x.y" STATUS BYTES "REFERER" "USER-AGENT" PROTO
 *       tb=OUTCOME tbkey=KEY tbh=PREFIX up=UPSTREAM ut=SECS rt=SECS ck=KEPT/DROPPED setck=BOUND
 *       jwt=OUTCOME
 *
 *   TIME       "02/Jan/2025:03:04:05 +0000" (UTC)
 *   "..."      the request line; "-" when none was read (a request that could not be parsed)
 *   BYTES      response body bytes sent to the client
 *   PROTO      the front end: h1 or h2
 *   tb         ok, none (no Token Binding on the connection) or why the check failed (the stable
 *              names of binding.h: tb_strerror's, missing, unexpected, multiple)
 *   tbkey      the connection's Token Binding key type: p256, rsa2048, or -
 *   tbh        the first 12 characters of the provided ID's tbh (base64url SHA-256 of the TBID,
 *              spec "Bound tokens") when tb=ok, else -. Never the ID, a token or a cookie.
 *   up         the origin server (address:port) the request went to, or -
 *   ut, rt     seconds (millisecond resolution) from the request head to the origin's response
 *              head (- when none came) and to the end of the exchange
 *   ck, setck  on routes that bind cookies: request cookies kept/dropped, Set-Cookie values bound
 *   jwt        on routes that check a JWT: ok or why it failed (tbp_jwt_outcome_name)
 *
 * Quoted fields escape `"` and `\` with a backslash and every byte outside 0x20..0x7e as \xHH,
 * as Apache does: a line is printable ASCII whatever the client sent.
 *
 * `json`: one JSON object per line, always these keys in this order, null where combined says
 * "-" (or the header was absent):
 *
 *   time (RFC 3339 UTC with milliseconds, "2025-01-02T03:04:05.678Z"), remote_addr, method,
 *   target, protocol ("HTTP/1.1", "HTTP/2.0"), status, bytes, referer, user_agent, tb, tb_key,
 *   tbh_prefix, cookies_kept, cookies_dropped, cookies_bound, jwt, upstream, upstream_time,
 *   request_time (seconds, numbers)
 *
 * Strings are escaped for any byte: `"` `\` and control bytes (and DEL) as JSON escapes, valid
 * UTF-8 as is, each byte of an invalid UTF-8 sequence as U+FFFD; every line parses as JSON.
 *
 * Bounds: at most 16 bytes of the method, 512 of the target and 256 of the referer and the user
 * agent are kept, and each is cut further (never inside an escape or a UTF-8 sequence) when its
 * escaped form would pass 2x that: a line never exceeds TBP_ACCESSLOG_LINE bytes, so it is one
 * atomic write on a pipe too.
 */
#ifndef TBP_ACCESSLOG_H
#define TBP_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

struct tbp_xlog;

#define TBP_ACCESSLOG_LINE 4096 /* the longest line, newline included (PIPE_BUF on Linux) */

/* What the line says beyond the exchange's record. */
struct tbp_accesslog_env {
    const char *remote;  /* client address as text ("127.0.0.1", "::1") */
    const char *proto;   /* front end: "h1" or "h2" */
    const char *tb_key;  /* the connection's Token Binding key type in its version's terms
                            (draft "p256", rfc "ecdsap256": tb_key_params_name), NULL: none */
    struct timespec now; /* wall clock of the line (CLOCK_REALTIME) */
    uint64_t now_ms;     /* loop clock (ms, as x->t_start): the end of the exchange */
};

/*
 * Formats the access-log line of exchange x in format f into out, newline included, no NUL.
 * cap must be at least TBP_ACCESSLOG_LINE (else nothing is written). Returns the length.
 */
size_t tbp_accesslog_format(enum tbp_log_format f, const struct tbp_xlog *x,
                            const struct tbp_accesslog_env *env, char *out, size_t cap);

/*
 * The escapes of the two formats, for one field of n bytes at s: the escaped text (no quotes
 * around it) into out, at most cap bytes, stopping before the first escape or UTF-8 sequence
 * that would not fit. Return the length written. Never fail.
 */
size_t tbp_log_escape_combined(char *out, size_t cap, const void *s, size_t n);
size_t tbp_log_escape_json(char *out, size_t cap, const void *s, size_t n);

/*
 * Names the calling thread's worker in its error-log lines ("[w3]"); -1 (the default of every
 * thread): none. Call at the start of each worker thread (log.c).
 */
void tbp_log_thread_worker(int id);

#endif
