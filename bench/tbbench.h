/*
 * tbbench: internal interface between the command line and report (tbbench.c), the worker
 * threads and their connections (tbbench_conn.c) and the HTTP/1.1 and HTTP/2 exchanges
 * (tbbench_proto.c). Internal to bench/: nothing here is a library API.
 *
 * Threads share only what is read-only during the run (struct tbb_opts, the SSL_CTX, the start
 * time) and the interrupt flag; each worker owns its loop, connections, key and statistics, and
 * the main thread merges the statistics after joining the workers.
 */
#ifndef TBB_TBBENCH_H
#define TBB_TBBENCH_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "h1parse.h"
#include "loop.h"
#include "tb/tb.h"
#include "tbbench_hist.h"
#include "tokbind.h"

#define TBB_VERSION "0.1.0"
#define TBB_MAX_HEADERS 16         /* -H options */
#define TBB_MAX_CONNS 100000       /* -c */
#define TBB_MAX_STREAMS 1000       /* -m */
#define TBB_TB_HEADER_MAX 2048     /* an RSA-2048 binding is ~720 characters (draft or rfc) */
#define TBB_READ_CHUNK (64 * 1024) /* one SSL_read / recv */
#define TBB_WBUF_MAX (1024 * 1024) /* hard cap on a connection's pending output */
#define TBB_FIRST_ERR 200          /* characters kept of the first error of each kind */
#define TBB_RETRY_MS 10            /* wait before reconnecting after a failed connection */
#define TBB_ALPN_NAMES 8           /* distinct ALPN results counted */

/* The HTTP version wanted on the command line. */
enum tbb_proto {
    TBB_PROTO_AUTO = 0, /* ALPN decides (h2 preferred when the server has it) */
    TBB_PROTO_H1 = 1,   /* --http1.1 */
    TBB_PROTO_H2 = 2,   /* --http2 */
};

/* Kinds of errors, as reported (tbb_err_kind_to_str gives the report/JSON names). */
enum tbb_err_kind {
    TBB_ERR_CONNECT = 0,    /* TCP connect failed (refused, unreachable, no ports) */
    TBB_ERR_TLS = 1,        /* TLS handshake failed */
    TBB_ERR_TB = 2,         /* Token Binding not negotiated (no TB ALPN id or no token_binding
                               answer, no EMS) or not signed */
    TBB_ERR_STATUS_4XX = 3, /* a response with status 400..499 */
    TBB_ERR_STATUS_5XX = 4, /* a response with status 500..599 */
    TBB_ERR_PROTOCOL = 5,   /* bad HTTP/1.1 response, HTTP/2 error, stream reset, ALPN mismatch */
    TBB_ERR_IO = 6,         /* read/write failure or the server closed with requests in flight */
    TBB_ERR_TIMEOUT = 7,    /* connect + handshake, or a response, took longer than --timeout */
    TBB_ERR_COUNT = 8
};

const char *tbb_err_kind_to_str(enum tbb_err_kind k);

struct tbb_header {
    char *name;  /* as given (HTTP/1.1) */
    char *lower; /* lower-cased (HTTP/2) */
    char *value;
};

/* The run as the command line described it. Read-only once the workers start. */
struct tbb_opts {
    unsigned conns;        /* -c: connections (with --new-conn: connections at once) */
    unsigned streams;      /* -m: requests in flight per HTTP/2 connection */
    unsigned threads;      /* -t: worker threads */
    double duration;       /* -d: seconds */
    int duration_set;      /* -d was given */
    double rate;           /* --rate: total requests per second, 0: as fast as answers come */
    unsigned timeout_ms;   /* --timeout */
    enum tbb_proto proto;  /* --http1.1 / --http2 / ALPN */
    int new_conn;          /* --new-conn */
    int idle;              /* --idle: one request per connection, then held open, idle */
    double ramp;           /* --ramp: seconds over which the connections are first opened */
    uint64_t max_requests; /* -n: end the run after this many responses (0: -d only) */
    int hold;              /* --hold: after -n, hold the connections open until a signal or -d */
    int tb;                /* Token Binding on (not --no-tb, and https) */
    enum tb_version tb_version;    /* --tb-version: draft (TB ALPN ids) or rfc (the extension) */
    int key_params;                /* --key-type: an enum tb_key_params value of tb_version */
    const char *key_name;          /* its name: "p256", "rsa2048", "ecdsap256", "rsa2048_pss", .. */
    const char *key_type;          /* --key-type as given (NULL: p256), resolved after parsing */
    struct tb_ext_params tb_offer; /* rfc: the token_binding extension offered per connection */
    const char *tb_field;          /* "Token-Binding" / "Sec-Token-Binding" (HTTP/1.1) */
    const char *tb_field_lower;    /* "token-binding" / "sec-token-binding" (HTTP/2) */
    int json;                      /* --json */
    int tls_max;                   /* --tls-max: 0 (OpenSSL's), TLS1_2_VERSION or TLS1_3_VERSION */
    const char *ciphers;           /* --ciphers: TLS 1.2 cipher list, NULL: OpenSSL's */
    size_t n_headers;
    struct tbb_header headers[TBB_MAX_HEADERS];
    /* the URL */
    const char *url;
    int use_tls;         /* https */
    char host[256];      /* without brackets */
    char authority[300]; /* host[:port] as given (Host / :authority) */
    char path[4096];     /* request-target, "/" when the URL has none */
    char port[8];
    int sni; /* host is a name, not an address literal */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* One worker's figures; the main thread adds them up (tbb_stats_merge). */
struct tbb_stats {
    uint64_t responses;  /* complete responses, any status */
    uint64_t status[6];  /* by class: [1] 1xx .. [5] 5xx, [0] other */
    uint64_t handshakes; /* connections established (TCP + TLS) */
    uint64_t tb_signed;  /* Token-Binding headers signed (one per TB connection) */
    uint64_t bytes_in;   /* application bytes received (after TLS) */
    uint64_t bytes_out;  /* application bytes sent */
    uint64_t errors[TBB_ERR_COUNT];
    uint64_t abandoned;      /* requests in flight when the run ended (neither done nor failed) */
    uint64_t unsent;         /* --rate: requests due but not sent when the run ended */
    uint64_t open_at_end;    /* connections established (TLS done) when the run ended */
    uint64_t stop_ns;        /* when the worker stopped measuring */
    struct tbb_hist latency; /* ns, request sent (or due, with --rate) to response complete */
    struct tbb_hist connect; /* ns, connect() to TLS done and Token-Binding signed */
    char first_err[TBB_ERR_COUNT][TBB_FIRST_ERR]; /* first error of each kind, for the report */
    size_t n_alpn;
    char alpn_name[TBB_ALPN_NAMES][32]; /* "h2_tb_p256", "http/1.1", "(none)" */
    uint64_t alpn_count[TBB_ALPN_NAMES];
};

void tbb_stats_init(struct tbb_stats *s);
void tbb_stats_merge(struct tbb_stats *dst, const struct tbb_stats *src);

/* --- connections (tbbench_conn.c) ----------------------------------------------------------- */

/* Where a connection slot is. One slot per -c connection, reused for every connection it makes.
 */
enum tbb_slot_state {
    TBB_SLOT_IDLE = 0,       /* no connection: waiting for its timer (retry, next connection) or,
                                with --rate --new-conn, for a request to fall due */
    TBB_SLOT_CONNECTING = 1, /* TCP connect in progress */
    TBB_SLOT_HANDSHAKE = 2,  /* TLS handshake in progress */
    TBB_SLOT_READY = 3,      /* established: requests may be sent */
    TBB_SLOT_DRAINING = 4,   /* no new requests (GOAWAY, Connection: close, --new-conn done);
                                closed once nothing is in flight */
};

const char *tbb_slot_state_to_str(enum tbb_slot_state s);

/* One request in flight. */
struct tbb_req {
    uint64_t start_ns; /* latency origin: when sent, or when due (--rate) */
    uint64_t sent_ns;  /* when sent: the timeout runs from here */
    int status;        /* response status, 0 until the head arrives */
    int in_use;
    struct tbb_req *next_free;
};

struct tbb_worker;

struct tbb_slot {
    struct tbp_io io; /* first: the loop hands back &io */
    struct tbp_timer timer;
    struct tbb_worker *w;
    enum tbb_slot_state state;
    SSL *ssl;               /* NULL for http:// */
    int h2;                 /* this connection speaks HTTP/2 */
    int tb_on;              /* this connection carries a Token-Binding header */
    uint64_t conn_start_ns; /* connect() */
    uint64_t carry_ns;      /* --new-conn: start_ns of the request this connection is for */
    unsigned in_flight;     /* requests sent, not answered */
    unsigned conn_reqs;     /* requests sent on this connection (--idle, --hold stop at 1) */
    unsigned want_out : 1;  /* an SSL call needs the socket writable */
    int fail_kind;          /* set in a protocol callback: fail the connection after it returns */
    char fail_msg[TBB_FIRST_ERR];
    struct tbb_req *reqs; /* -m entries (1 for HTTP/1.1) */
    struct tbb_req *free_reqs;
    /* output not yet written */
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    /* Token-Binding header value of this connection ("" when none) */
    char tb_header[TBB_TB_HEADER_MAX];
    int tb_kp; /* rfc: the key parameters the server chose (the one offered) */
    /* HTTP/1.1 */
    struct tbp_h1_parser h1;
    struct tbb_req *h1_cur; /* the request in flight */
    char *h1_req;           /* the request, built once per connection */
    size_t h1_req_len, h1_req_cap;
    int h1_close; /* the last response said Connection: close */
    /* HTTP/2 */
    nghttp2_session *ng;
    nghttp2_nv nv[8 + TBB_MAX_HEADERS];
    size_t n_nv;
};

/* A worker thread: one event loop, its share of the connections and of the request rate. */
struct tbb_worker {
    unsigned id;
    const struct tbb_opts *o;
    SSL_CTX *ctx;
    EVP_PKEY *key; /* Token Binding key, generated before the run */
    struct tbp_loop loop;
    struct tbb_slot *slots;
    unsigned n_slots;
    unsigned rr; /* round-robin cursor of the dispatcher */
    int running;
    uint64_t t0_ns;         /* start of the run */
    uint64_t end_ns;        /* end of the run: t0 + -d */
    double period_ns;       /* --rate: ns between two requests of this worker */
    uint64_t next_k;        /* --rate: requests of this worker sent so far (the next one's index) */
    uint64_t max_responses; /* -n: this worker's share (0: no limit) */
    int holding;            /* --hold: the share is in; no more requests, connections kept */
    struct tbb_run *run;
    struct tbp_timer end_timer, sweep_timer, pace_timer;
    nghttp2_session_callbacks *ng_cbs;
    struct tbb_stats stats;
    struct tb_builder builder; /* scratch for signing */
    uint8_t rbuf[TBB_READ_CHUNK];
    pthread_t thread;
};

/* Shared by all workers. */
struct tbb_run {
    const struct tbb_opts *o;
    SSL_CTX *ctx;
    pthread_barrier_t start;
    uint64_t t0_ns;
    unsigned holding; /* --hold: workers holding (atomic); the last one says so on stderr */
};

/* Set by SIGINT / SIGTERM: workers end the run at their next sweep. */
extern volatile sig_atomic_t tbb_interrupted;

uint64_t tbb_now_ns(void);

/*
 * Prepares worker w (zeroed by the caller): its key (not timed), slots, loop and timers, with
 * n_slots connections and `rate` requests/s (0: closed loop). Returns 0, or -1 with a message in
 * err. tbb_worker_dispose frees what init made (also after a failed init).
 */
int tbb_worker_init(struct tbb_worker *w, const struct tbb_opts *o, SSL_CTX *ctx, unsigned id,
                    unsigned n_slots, double rate, char *err, size_t errlen);
void tbb_worker_dispose(struct tbb_worker *w);

/* Thread body: waits on run->start, runs until the end of the run, closes its connections. */
void *tbb_worker_main(void *run_and_worker);

struct tbb_thread_arg {
    struct tbb_run *run;
    struct tbb_worker *w;
};

/* Records n errors of kind k (msg: a one-line description kept for the first of each kind). */
void tbb_error(struct tbb_worker *w, enum tbb_err_kind k, uint64_t n, const char *msg);

/* Slot services used by the protocol code. */
/* A response completed on s (r: its request). Records the latency and status, frees r. */
void tbb_req_done(struct tbb_slot *s, struct tbb_req *r);
/* A request of s failed without closing the connection (HTTP/2 stream reset). Frees r. */
void tbb_req_fail(struct tbb_slot *s, struct tbb_req *r, enum tbb_err_kind k, const char *msg);
/* Takes a free request of s, counted in flight, sent now, latency from start_ns (NULL if all
 * are in use). */
struct tbb_req *tbb_req_get(struct tbb_slot *s, uint64_t start_ns);
/* Gives back a request taken by tbb_req_get that was never sent. */
void tbb_req_put(struct tbb_slot *s, struct tbb_req *r);
/* Appends bytes to s's output. Returns 0, or -1 when the output cap would be exceeded. */
int tbb_out_append(struct tbb_slot *s, const void *p, size_t n);
/* Asks for the connection to be failed (kind, msg) once the current protocol call returns. */
void tbb_slot_fail_later(struct tbb_slot *s, enum tbb_err_kind k, const char *msg);

/* --- HTTP (tbbench_proto.c) ----------------------------------------------------------------- */

/* Per-worker HTTP/2 callbacks. Returns 0 or -1. */
int tbb_h2_callbacks_new(nghttp2_session_callbacks **out);

/* Per slot, once: the HTTP/1.1 response parser and request buffer. 0 or -1 (out of memory). */
int tbb_proto_slot_init(struct tbb_slot *s);
/* After the handshake: sets up the connection's HTTP/1.1 request or HTTP/2 session. 0 or -1
 * (with a message in msg). */
int tbb_proto_start(struct tbb_slot *s, char *msg, size_t cap);
/* Frees the connection's HTTP state (the HTTP/2 session); the HTTP/1.1 parser is kept for the
 * slot's next connection and freed by tbb_proto_slot_dispose. */
void tbb_proto_stop(struct tbb_slot *s);
void tbb_proto_slot_dispose(struct tbb_slot *s);
/* How many more requests s can take now. */
unsigned tbb_proto_capacity(struct tbb_slot *s);
/* Sends one request whose latency starts at start_ns. 0, or -1 (the connection must be failed:
 * s->fail_kind is set). */
int tbb_proto_send(struct tbb_slot *s, uint64_t start_ns);
/* Bytes received. 0, or -1 with s->fail_kind set. */
int tbb_proto_input(struct tbb_slot *s, const uint8_t *p, size_t n);
/* The peer closed the connection (EOF). 0 when that ends a response cleanly, else -1. */
int tbb_proto_eof(struct tbb_slot *s);
/* Moves what the protocol wants to send (HTTP/2 frames) into s's output. 0, or -1 with
 * s->fail_kind set. */
int tbb_proto_pull(struct tbb_slot *s);

#endif
