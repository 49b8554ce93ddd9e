/*
 * Test support: a misbehaving HTTP/1.1 origin, for testing how tbproxy survives origin faults.
 *
 * tbt_badorigin_start() listens on a free loopback port and serves every connection in a thread
 * of its own, inside the test process (no child to reap, nothing to kill by name). Each request
 * head is read whole (at most TBT_BAD_MAX_HEAD bytes) with its body (Content-Length, or chunked
 * without trailers), recorded (method, target, connection number), and then answered, or not,
 * as its path says: the last segment of the path chooses the behaviour, so "/bad/silent?n=3"
 * and "/patient/silent" both mean "silent", and a test can run different faults at once on the
 * same origin, each request tagged with a query of its own so that its records can be counted.
 *
 *   ok          200, body "ok\n", Connection: close, then close
 *   ka          200, body "ka\n", kept alive: the next request on the connection is read
 *   ka-close    as ka, but the origin closes (FIN) right after the response
 *   ka-drop     as ka; the next request on the connection is read, then the connection is
 *               closed (FIN) without a byte of answer: a kept-alive connection that died just
 *               as the proxy reused it
 *   ka-drop-rst as ka-drop, with a reset (SO_LINGER 0) instead of the FIN
 *   silent      never answers; keeps reading until the peer closes (recorded: see closed_by_peer)
 *   close       closes (FIN) without answering
 *   reset       resets (SO_LINGER 0) without answering
 *   bad-status  "HTTP/1.1 2x0 OK" as the status line
 *   bad-proto   "HTTQ/1.1 200 OK" as the status line
 *   bad-header  a header line without a colon
 *   space-colon a header line with a space before its colon ("Content-Length : 3")
 *   nul-header  a NUL byte in a header value
 *   huge-header one header field of 128 KiB (the proxy's response-head cap is 64 KiB)
 *   many-headers 1000 header fields
 *   dup-cl      two different Content-Length fields
 *   cl-te       Content-Length and Transfer-Encoding: chunked together
 *   neg-cl      Content-Length: -1
 *   switch      101 Switching Protocols
 *   head-silent half a status line and header, then silence
 *   head-close  half a status line and header, then close
 *   rst-mid     head with Content-Length 100000 and 1000 body bytes, then a reset
 *   short-body  head with Content-Length 100000 and 1000 body bytes, then close (FIN)
 *   chunk-cut   chunked head, a chunk of 1000 announced and 10 bytes sent, then close
 *   eof-rst     a head with no length (body until close), 1000 bytes, then a reset
 *   eof-ok      the same ended by a close (FIN): a complete response
 *   stall       head with Content-Length 100000 and 1000 body bytes, then silence
 *   long-body   Content-Length: 5, "hello", then a whole second response in the same write
 *               ("HTTP/1.1 200 OK ... smuggled"), then close
 *   204-body    the same bytes after a 204 (which has no body whatever its Content-Length says)
 *   bad-chunk   a chunked body whose second chunk size is "zz"
 *   huge-chunk  a chunked body whose second chunk size overflows 64 bits
 *   early-413   413 and Connection: close as soon as the request head is read, without
 *               reading the body, then close (the kernel resets: unread bytes)
 *   early-close as early-413 without the 413
 *   anything else: 404, Connection: close
 *
 * Writes that must reach the proxy before a reset or close are followed by a short pause
 * (TBT_BAD_PAUSE_MS), so the fault lands mid-response rather than before the head.
 *
 * Threads: the test thread calls these functions; the origin's own threads only touch the
 * shared record under its mutex. tbt_badorigin_stop() closes every connection and joins every
 * thread. Functions that can fail return 0 (or a count) and -1 with a reason in err; none calls
 * Criterion.
 */
#ifndef TBT_BADORIGIN_H
#define TBT_BADORIGIN_H

#include <stddef.h>

#define TBT_BAD_MAX_CONNS 256        /* connections served over the origin's life */
#define TBT_BAD_MAX_RECORDS 4096     /* requests recorded (later ones are served, not recorded) */
#define TBT_BAD_MAX_HEAD (64 * 1024) /* a request head larger than this closes the connection */
#define TBT_BAD_PAUSE_MS 100         /* between the bytes of a cut response and the cut */

struct tbt_badorigin;

/* One recorded request. */
struct tbt_bad_record {
    char method[16];
    char target[256]; /* truncated to fit */
    unsigned conn;    /* connection number, from 1 in accept order */
    unsigned nth;     /* the request's position on its connection, from 1 */
};

/* What the origin does with a connection it accepts. */
enum tbt_bad_accept {
    TBT_BAD_SERVE,        /* read requests and act on their paths (above) */
    TBT_BAD_ACCEPT_CLOSE, /* close (FIN) at once, before reading anything */
    TBT_BAD_ACCEPT_RESET  /* reset (SO_LINGER 0) at once */
};

/*
 * Starts an origin on 127.0.0.1:<free port> (*port) that treats the connections it accepts as
 * `mode` says. Returns the origin in *out and 0, or -1 with err filled.
 */
int tbt_badorigin_start(struct tbt_badorigin **out, enum tbt_bad_accept mode, int *port, char *err,
                        size_t errlen);

/* Closes every connection and the listener, joins every thread, frees o. NULL is a no-op. */
void tbt_badorigin_stop(struct tbt_badorigin *o);

/* Closes (FIN) every connection open now: kept-alive and silent ones. The listener stays. */
void tbt_badorigin_close_all(struct tbt_badorigin *o);

/* Requests recorded whose target is exactly `target`. */
size_t tbt_badorigin_count(struct tbt_badorigin *o, const char *target);

/* Distinct connections that carried requests whose target is exactly `target`. */
size_t tbt_badorigin_count_conns(struct tbt_badorigin *o, const char *target);

/* Copies the i-th record into *r. Returns 0, or -1 when there is no such record. */
int tbt_badorigin_record(struct tbt_badorigin *o, size_t i, struct tbt_bad_record *r);

/* Connections accepted so far, and how many of them are open now. */
size_t tbt_badorigin_accepted(struct tbt_badorigin *o);
size_t tbt_badorigin_open(struct tbt_badorigin *o);

/*
 * Waits up to timeout_ms for the connection that carried the request `target` to be closed by
 * its peer (the proxy): end of file or a reset while the origin was still reading. Returns 1
 * when it was, 0 when the time ran out (or no request had that target).
 */
int tbt_badorigin_wait_peer_closed(struct tbt_badorigin *o, const char *target, int timeout_ms);

#endif
