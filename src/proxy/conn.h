/*
 * A client connection: TCP + TLS, the Token Binding state of the connection, buffered output,
 * and the HTTP protocol running on it (HTTP/1.1 or HTTP/2, chosen by ALPN).
 *
 * The connection owns the socket, the SSL, the read buffer and the output buffer; a protocol
 * (struct tbp_protocol) owns its own state in c->pd and is driven through a small table of
 * callbacks: input bytes, whether it wants more input now, output drained, timer, graceful stop,
 * abort. States:
 * HANDSHAKE (TLS), OPEN (the protocol runs), CLOSING (send what is queued, then linger),
 * LINGERING (all sent, close_notify and FIN too: what the client still sends is read and
 * discarded until it closes, so that the kernel does not answer unread input with a reset that
 * would destroy the response before the client read it: a 413 to an upload in progress, say),
 * CLOSED (freed after this loop turn: nothing may touch the SSL or the socket any more).
 *
 * A connection keeps the configuration it was accepted under (c->cfg) for its whole life, across
 * reloads: routes, Token Binding settings, cookie and JWT keys, timeouts, limits, upstream pools.
 *
 * Timeouts: c->timer is the handshake's, then the protocol's (header, body, idle: its `timeout`
 * callback), then the linger's (sending, then lingering: see conn.c). c->send_timer is the send timeout (timeouts.send), the same for
 * every protocol: while output is queued and the client takes none of it (its TCP window stays
 * shut: a slow-read attack), the connection is closed once timeouts.send passed without a byte
 * written. It is armed once when output becomes pending and only checked when it fires, so
 * progress costs no timer operation.
 */
#ifndef TBP_CONN_H
#define TBP_CONN_H

#include <arpa/inet.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "binding.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "loop.h"
#include "tls.h"

#define TBP_CONN_RBUF 16384 /* one SSL_read */
/* Output above the high-water mark (limits.max_buffer_bytes of the connection's configuration,
 * tbp_conn_high_water): producers pause; below the low-water mark (a quarter of it): they
 * resume. The output buffer's hard cap is the high-water mark plus TBP_CONN_OUT_SLACK, room for
 * what a producer appends past the mark before it sees it (an h2 frame, a response head). */
#define TBP_CONN_OUT_SLACK (2 * 1024 * 1024)

struct tbp_worker;
struct tbp_wgen;
struct tbp_conn;

enum tbp_conn_state {
    TBP_CONN_HANDSHAKE, /* TLS handshake in progress */
    TBP_CONN_OPEN,      /* the protocol runs */
    TBP_CONN_CLOSING,   /* sending what is queued, then linger */
    TBP_CONN_LINGERING, /* all sent and the write side shut: discarding input until EOF */
    TBP_CONN_CLOSED,    /* closed; freed after this loop turn */
};

struct tbp_protocol {
    const char *name;
    /* after the handshake: set up c->pd. -1: close. */
    int (*start)(struct tbp_conn *c);
    /* bytes from the client. Sets *consumed (may be < n: the rest is kept and offered again
     * when want_input says so). -1: stop reading (the protocol closed or is closing c). */
    int (*input)(struct tbp_conn *c, const char *p, size_t n, size_t *consumed);
    /* does the protocol take input now? */
    int (*want_input)(const struct tbp_conn *c);
    /* the output buffer went below the low-water mark (tbp_conn_low_water) */
    void (*drained)(struct tbp_conn *c);
    /* c->timer fired while OPEN */
    void (*timeout)(struct tbp_conn *c);
    /* graceful stop (worker.h, DRAIN): finish what is in flight, take no new request, and close
     * once idle (now, if it is idle already). Called once per connection, while OPEN: at the
     * drain, or right after start for a connection whose handshake ended during it. */
    void (*drain)(struct tbp_conn *c);
    /* the connection is closing: drop every upstream exchange (no callback may follow) */
    void (*abort)(struct tbp_conn *c);
    /* free c->pd (called from the deferred free) */
    void (*dispose)(struct tbp_conn *c);
};

struct tbp_conn {
    struct tbp_deferred defer;
    struct tbp_io io;
    struct tbp_worker *w;
    struct tbp_wgen *wg;          /* the configuration generation it was accepted under (worker.h):
                                     held until the connection is freed */
    const struct tbp_config *cfg; /* wg's configuration: every setting the connection and its
                                     exchanges use comes from here, never from a newer one */
    struct tbp_conn *prev, *next;
    size_t listener; /* index into cfg->listeners */
    enum tbp_conn_state state;
    SSL *ssl;
    struct tbp_tls_info tls;
    struct tbp_binding tb;
    char *rbuf; /* input the protocol has not taken yet, rbuf[roff..rlen) (heap); NULL
                   whenever roff == rlen: an idle connection holds no read buffer */
    size_t rlen, roff;
    int reading; /* inside conn_read: a nested call (from the protocol's input) returns */
    struct tbp_buf out;
    struct tbp_timer timer;
    struct tbp_timer send_timer; /* armed while output is pending: timeouts.send */
    uint64_t send_progress;      /* loop ms: output became pending, or the last bytes written */
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    int trusted;
    int ssl_want_write; /* the last SSL call asked for writability */
    uint64_t linger_end; /* loop ms: LINGERING ends here at the latest */
    int no_linger;       /* close as soon as the output is sent, without LINGERING: the peer
                            broke the protocol (an HTTP/2 GOAWAY with an error code) */
    const struct tbp_protocol *proto;
    void *pd;             /* the protocol's state */
    struct tbp_post post; /* writes what callbacks queued during a loop turn */
};

/* The output's high-water mark: limits.max_buffer_bytes of the connection's configuration. */
static inline size_t tbp_conn_high_water(const struct tbp_conn *c)
{
    return c->cfg->limits.max_buffer_bytes;
}

/* The output's low-water mark: a quarter of the high-water mark. */
static inline size_t tbp_conn_low_water(const struct tbp_conn *c)
{
    return tbp_conn_high_water(c) / 4;
}

/* Queues bytes for the client. 0, or -1 if the connection was closed (buffer cap exceeded). */
int tbp_conn_append(struct tbp_conn *c, const void *p, size_t n);
/* Writes what can be written now. 0, or -1 if the connection is closed. */
int tbp_conn_flush(struct tbp_conn *c);
/* Writes the queued output once the current batch of callbacks is done (one SSL_write for all
 * of it, no epoll change when it all goes out). */
void tbp_conn_schedule_flush(struct tbp_conn *c);
/* Re-registers the events the connection needs now. */
void tbp_conn_update(struct tbp_conn *c);
/* Does all that can be done now: handshake, write, read, write. */
void tbp_conn_drive(struct tbp_conn *c);
/* Closes now (protocol abort, socket closed, freed after the loop turn). */
void tbp_conn_close(struct tbp_conn *c);
/* Closes once the queued output is sent (at most the linger timeout), after lingering. */
void tbp_conn_linger(struct tbp_conn *c);

extern const struct tbp_protocol tbp_proto_h1;
extern const struct tbp_protocol tbp_proto_h2;

#endif
