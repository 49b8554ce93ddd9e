/*
 * Test support: a blocking HTTP/2 client on nghttp2 over a tbt_tls connection, for driving
 * tbproxy's h2 and h2_tb_* front end.
 *
 * tbt_h2_connect() makes the TLS connection (tlsclient.h: ALPN list, EMS, version, so
 * "h2_tb_p256,h2" negotiates Token Binding and the connection's tls_unique signs the
 * Token-Binding header; opts.tb_ext offers the rfc extension and the EKM signs Sec-Token-Binding)
 * and a client session on it: the connection preface and SETTINGS are queued, not yet sent.
 * Requests are submitted with tbt_h2_submit() (extra header fields, an optional body sent as DATA
 * frames with no content-length unless the caller adds one) and nothing moves until tbt_h2_run()
 * drives the connection until the given streams are closed, the connection ends, or the time is up.
 * Several streams run concurrently on one connection.
 *
 * Per stream the client keeps the response: :status, the header fields (and trailer fields),
 * the body (up to a cap; the full length is still counted), the error code of a RST_STREAM
 * received, and the code the stream closed with. Per connection: whether GOAWAY was received,
 * its error code and last stream id, and whether the server closed the connection.
 *
 * Flow control: normally the client acknowledges DATA at once (windows of 1 MiB per stream and
 * 4 MiB for the connection). In slow-reader mode (opts.slow_read_bytes > 0) the stream window is
 * opts.window bytes, nothing is acknowledged automatically, and the client gives back at most
 * slow_read_bytes of window every slow_read_delay_ms, so the server sees a reader much slower
 * than its origin and must stop reading the origin instead of buffering.
 *
 * I/O is non-blocking under poll() while the session runs; every run has a deadline, every
 * response is bounded, so a stuck or hostile server fails a test instead of hanging it.
 * Functions return 0 (or a positive value) on success and -1 with a one-line reason in h->err;
 * none of them calls Criterion. Not thread-safe.
 */
#ifndef TBT_H2TEST_H
#define TBT_H2TEST_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "tlsclient.h"

#define TBT_H2_MAX_STREAMS 1024            /* streams one client connection may open */
#define TBT_H2_MAX_FIELDS 64               /* response header + trailer fields kept per stream */
#define TBT_H2_DEFAULT_MAX_BODY (8u << 20) /* body bytes kept per stream when opts gives 0 */
#define TBT_H2_WINDOW (1 << 20)            /* normal stream window (connection: 4x) */

struct tbt_h2_opts {
    const char *alpn;      /* ALPN offer, e.g. "h2" or "h2_tb_p256,h2"; NULL: "h2" */
    int max_version;       /* as tbt_tls_opts; 0: the library's highest */
    int no_ems;            /* 1: do not offer Extended Master Secret */
    int timeout_ms;        /* TLS connect and handshake; 0: TBT_TLS_TIMEOUT_MS */
    const char *authority; /* :authority of requests; NULL: "localhost" */
    size_t max_body;       /* response body bytes kept per stream; 0: TBT_H2_DEFAULT_MAX_BODY */
    size_t data_chunk;     /* request DATA payload per frame at most; 0: as nghttp2 allows */
    /* slow reader: > 0 turns it on */
    size_t slow_read_bytes; /* window given back per tick */
    int slow_read_delay_ms; /* between ticks; 0: 10 */
    uint32_t window;        /* SETTINGS_INITIAL_WINDOW_SIZE in slow mode; 0: 16384 */
    X509 *cert;             /* a client certificate to present when asked (borrowed), or NULL */
    EVP_PKEY *key;          /* its private key (borrowed); set together with cert */
    const struct tb_ext_params *tb_ext; /* the token_binding extension to offer (as
                                           tbt_tls_opts.tb_ext), or NULL */
};

/* A header field of a response, NUL-terminated copies. */
struct tbt_h2_field {
    char *name;
    char *value;
    int trailer; /* 1: came in the trailer section */
};

/* One stream: the request's bookkeeping and the response as received. */
struct tbt_h2_stream {
    int32_t id;
    int status; /* :status, 0 until received (an informational 1xx is not kept) */
    struct tbt_h2_field fields[TBT_H2_MAX_FIELDS];
    size_t n_fields;
    size_t fields_dropped; /* fields beyond TBT_H2_MAX_FIELDS */
    unsigned char *body;   /* the first max_body bytes, NUL-terminated; never NULL after submit */
    size_t body_len;       /* bytes kept */
    size_t body_cap;       /* bytes allocated for body (grown geometrically) */
    size_t body_total;     /* bytes received (> body_len when the cap was hit) */
    int closed;            /* the stream is closed (complete, reset, or the session ended) */
    int end_stream;        /* the response ended with END_STREAM (a complete response) */
    int rst_received;      /* the server sent RST_STREAM ... */
    uint32_t rst_error;    /* ... with this error code */
    uint32_t close_error;  /* the code nghttp2 closed the stream with (0: NO_ERROR) */
    /* the request body (borrowed from the caller until the stream closes) */
    const unsigned char *req_body;
    size_t req_len, req_off;
    size_t unconsumed; /* slow mode: DATA bytes not yet given back as window */
};

/* One client connection. Embedded; tbt_h2_connect fills it, tbt_h2_close empties it. */
struct tbt_h2 {
    struct tbt_tls tls; /* the TLS connection (its fields say what was negotiated) */
    nghttp2_session *s;
    struct tbt_h2_opts o;
    char authority[256];
    struct tbt_h2_stream *streams[TBT_H2_MAX_STREAMS];
    size_t n_streams;
    unsigned char *obuf; /* frames from nghttp2 not yet written */
    size_t olen, ooff, ocap;
    long long next_tick; /* slow mode: when window is given back next */
    int goaway;          /* GOAWAY received ... */
    uint32_t goaway_error;
    int32_t goaway_last_stream;
    int eof;         /* the server closed the connection (or it failed: see err) */
    int io_error;    /* the connection failed (reset, TLS error) rather than closed cleanly */
    int session_end; /* nghttp2 wants neither to read nor to write */
    char err[512];
};

/*
 * Connects to 127.0.0.1:port, completes the TLS handshake and sets up the client session
 * (SETTINGS queued). Fails when the server did not select h2 or an h2_tb_* id. Returns 0, or -1
 * with h->err filled (everything then released; tbt_h2_close is still safe).
 */
int tbt_h2_connect(struct tbt_h2 *h, uint16_t port, const struct tbt_h2_opts *opts);

/* Frees the session, the streams and the connection (close_notify when still healthy). Safe on
 * a zeroed or closed client. */
void tbt_h2_close(struct tbt_h2 *h);

/*
 * Submits a request: method, path, :scheme https, :authority, then `extra` header fields as
 * name, value pairs (a NULL-terminated array; names should be lower case; NULL: none). body
 * NULL: no body (END_STREAM on HEADERS); else body_len bytes as DATA (borrowed until the stream
 * closes; no content-length is added). Returns the stream id (> 0) or -1 (h->err).
 */
int32_t tbt_h2_submit(struct tbt_h2 *h, const char *method, const char *path,
                      const char *const *extra, const void *body, size_t body_len);

/*
 * Drives the connection (sends queued frames, reads, acknowledges DATA) until every stream of
 * ids[0..n) is closed, or until the session has nothing more to do, the server closed the
 * connection, or timeout_ms passed. n == 0: until all submitted streams are closed. Returns 0
 * when all those streams closed (whatever their outcome: look at the streams), else -1 with
 * h->err saying why not.
 */
int tbt_h2_run(struct tbt_h2 *h, const int32_t *ids, size_t n, int timeout_ms);

/*
 * Drives the connection until the server closes it, up to timeout_ms. Returns 1 when it closed
 * (h->eof), 0 when still open at the end of the wait, -1 on a local failure (h->err).
 */
int tbt_h2_wait_closed(struct tbt_h2 *h, int timeout_ms);

/*
 * Queues a WINDOW_UPDATE opening the receive window of stream id (0: the connection) by
 * increment bytes, sent at the next run; with slow-reader mode this opens the window at once
 * instead of a tick at a time. Returns 0 or -1 (h->err).
 */
int tbt_h2_window_update(struct tbt_h2 *h, int32_t id, int32_t increment);

/* The stream with this id, or NULL. */
struct tbt_h2_stream *tbt_h2_stream(struct tbt_h2 *h, int32_t id);

/* The value of the first response header field (not trailer) named name (case-insensitive,
 * compare with lower case), or NULL. tbt_h2_trailer: the same among the trailer fields. */
const char *tbt_h2_header(const struct tbt_h2_stream *st, const char *name);
const char *tbt_h2_trailer(const struct tbt_h2_stream *st, const char *name);

#endif
