/*
 * Test support: a recording origin, to assert on exactly what tbproxy sent upstream.
 *
 * tbt_recorigin_start() listens on a free 127.0.0.1 port and serves it from a thread of the test
 * process: every accepted connection's bytes are kept whole (up to TBT_REC_MAX_BYTES each), and
 * each time those bytes hold one more complete request, as tbt_rec_parse() reads them, the
 * origin answers the fixed response TBT_REC_RESPONSE (200, keep-alive, body TBT_REC_BODY). Bytes
 * that cannot be read as a request make it close that connection (tbproxy then answers 502),
 * so an origin that does not understand what it was sent never hangs a test.
 *
 * tbt_rec_parse() is deliberately stricter than any real origin, and independent of the proxy's
 * parser (no llhttp): it accepts only what a correct tbproxy writes, i.e. "METHOD SP target SP
 * HTTP/1.1", field lines "name: value" with token names and no CTLs, CRLF everywhere, exactly one
 * Host, at most one of Content-Length (digits) and Transfer-Encoding (exactly "chunked"), chunk
 * sizes in bare hex without extensions or whitespace, trailers as field lines. Whatever it
 * accepts, every reasonable origin reads the same way: one request, this long.
 *
 * A test marks the recorder (tbt_recorigin_mark) before it sends something to the proxy, waits
 * for the proxy's answer, lets the origin settle (tbt_recorigin_settle: no byte, accept or close
 * for a while) and takes a view (tbt_recorigin_view): how many connections got bytes since the
 * mark, how many complete requests those bytes hold, how many end inside an unfinished request
 * (and whether such a connection is still open), and the first request's head and body length.
 * A connection kept alive by the proxy's pool carries on across marks: its view starts at the
 * byte where it stood at the mark.
 *
 * Functions that can fail return 0 and -1 with a reason in the caller's buffer; none calls
 * Criterion. One test thread drives a recorder; the recorder's own thread only serves sockets.
 */
#ifndef TBT_RECORIGIN_H
#define TBT_RECORIGIN_H

#include <pthread.h>
#include <stddef.h>

#define TBT_REC_MAX_CONNS 64          /* connections kept between two marks */
#define TBT_REC_MAX_BYTES (1u << 20)  /* bytes kept per connection; more closes it as bad */
#define TBT_REC_HEAD_COPY 8192        /* bytes of the first request's head kept in a view */
#define TBT_REC_BODY "recorded: ok\n" /* the body of every answer */
#define TBT_REC_RESPONSE                                                                           \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" TBT_REC_BODY

/* One request as tbt_rec_parse read it. */
struct tbt_rec_request {
    char method[32];   /* truncated if longer (it never is from tbproxy) */
    char target[256];  /* truncated if longer */
    size_t head_len;   /* request line + fields + the empty line */
    size_t body_len;   /* de-chunked payload bytes */
    int chunked;       /* framed by Transfer-Encoding: chunked (else Content-Length or none) */
    int has_length;    /* framed by Content-Length */
    size_t n_fields;   /* header fields */
    size_t n_trailers; /* trailer fields (chunked only) */
    size_t trailers_off, trailers_len; /* the trailer section within the parsed bytes */
};

/*
 * Reads one request from the start of data[0..len) by the rules above. Returns the number of
 * bytes it spans (> 0) and fills *rq; 0 when the bytes are a correct but unfinished beginning;
 * -1 when they are not a request by these rules (why says where, if why is not NULL).
 */
long tbt_rec_parse(const unsigned char *data, size_t len, struct tbt_rec_request *rq, char *why,
                   size_t whylen);

/* 1 if the field section text[0..len) (lines "name: value\r\n") has a field whose name equals
 * name, ignoring case, else 0. Used on a view's head and trailers. */
int tbt_rec_has_field(const char *text, size_t len, const char *name);

/* One origin connection (the recorder's thread owns it; read it through a view). */
struct tbt_rec_conn {
    int fd;             /* -1 once closed */
    unsigned char *buf; /* every byte received */
    size_t len, cap;
    size_t answered; /* bytes of complete requests answered so far */
    size_t mark;     /* where the current view starts */
    int bad;         /* closed by us: not a request, or over TBT_REC_MAX_BYTES */
    char why[160];   /* why it was bad */
};

struct tbt_recorigin {
    int port; /* where it listens on 127.0.0.1; 0 before start */
    int lfd;
    int wake[2]; /* the test thread writes a byte here to stop the thread */
    int running;
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below */
    struct tbt_rec_conn conns[TBT_REC_MAX_CONNS];
    size_t n_conns;
    long long last_activity_ms; /* last accept, read, answer or close (tbt_now_ms) */
    size_t refused;             /* connections closed at accept: the table was full */
};

/* What the origin got since the last mark. */
struct tbt_rec_view {
    size_t n_conns;         /* connections that received bytes */
    size_t n_requests;      /* complete requests in those bytes, all connections together */
    size_t n_incomplete;    /* connections whose bytes end inside an unfinished request */
    size_t incomplete_open; /* ... of which still open (the proxy did not give up on them) */
    size_t n_bad;           /* connections whose bytes are not requests by tbt_rec_parse */
    size_t refused;         /* connections refused since the mark (table full) */
    size_t total_bytes;
    int has_first;                      /* the first complete request below is filled */
    struct tbt_rec_request first;       /* the first complete request (on the first connection) */
    char first_head[TBT_REC_HEAD_COPY]; /* its head, NUL-terminated (truncated if longer) */
    char first_trailers[1024];          /* its trailer section, NUL-terminated */
    char why[256];                      /* the first problem found (bad bytes), else "" */
    char unfinished[256]; /* the start of the first unfinished request, NUL-terminated, with
                             CR, LF and other bytes outside 0x20..0x7e as "\\xHH" */
};

/* Starts listening and the serving thread. r must be zeroed (or stopped) first. */
int tbt_recorigin_start(struct tbt_recorigin *r, char *err, size_t errlen);

/* Stops the thread and closes every socket; frees the buffers. Safe on a zeroed or stopped
 * recorder; leaves it zeroed. */
void tbt_recorigin_stop(struct tbt_recorigin *r);

/* The next view starts here: closed connections are forgotten, open ones start at their current
 * length. */
void tbt_recorigin_mark(struct tbt_recorigin *r);

/* Waits until the thread has taken everything the kernel holds for it (bytes, closes, new
 * connections) and nothing happened for quiet_ms (at most max_ms in all). Returns 0, or -1 if it
 * was still busy at max_ms. */
int tbt_recorigin_settle(struct tbt_recorigin *r, int quiet_ms, int max_ms);

/* Fills *v with what arrived since the mark. */
void tbt_recorigin_view(struct tbt_recorigin *r, struct tbt_rec_view *v);

#endif
