/*
 * Integration tests of the HTTP/1.1 front end around idle connections (issue 8): between two
 * requests a kept-alive connection holds no parser buffer and no access-log record (h1.c,
 * "Memory"), so every request after the first one parses from a freshly allocated buffer that
 * grows with its head. What must not change: heads of any size up to limits.max_header_bytes
 * between small ones, a head over it refused with 431, requests whose bytes arrive in many
 * writes across the point where the buffer is released, pipelined requests, chunked requests
 * with trailers, keep-alive across an idle pause.
 *
 * Every test starts its own world (tests/support/world.h: tborigin and tbproxy in quick mode)
 * and asserts on what the client received and what the origin saw (/echo answers the request's
 * method, query, headers and body length and SHA-256). The .fini closes the client and tears
 * the world down; every network operation has a timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "proc.h"
#include "tlsclient.h"
#include "world.h"

#define SUITE_TIMEOUT_S 60
#define MAX_HEAD (64 * 1024) /* limits.max_header_bytes by default */

static struct tbt_world w;
static struct tbt_tls c;
static char *big;

static void teardown(void)
{
    tbt_tls_close(&c);
    free(big);
    big = NULL;
    tbt_world_teardown(&w);
}

TestSuite(h1_idle, .fini = teardown, .timeout = SUITE_TIMEOUT_S);

/* --- helpers -------------------------------------------------------------------------------- */

static void start_and_connect(void)
{
    struct tbt_tls_opts o = {.alpn = "http/1.1"};

    tbt_world_start(&w, NULL);
    cr_assert_eq(tbt_tls_connect(&c, (uint16_t)w.proxy_port, &o), 0, "connect: %s; proxy log: %s",
                 c.err, tbt_world_proxy_log(&w));
}

static void send_all(const char *p, size_t n)
{
    cr_assert_eq(tbt_tls_send(&c, p, n), 0, "send: %s; proxy log: %s", c.err,
                 tbt_world_proxy_log(&w));
}

/* Sends p one piece of `piece` bytes per write. */
static void send_pieces(const char *p, size_t n, size_t piece)
{
    size_t off;

    for (off = 0; off < n; off += piece)
        send_all(p + off, n - off < piece ? n - off : piece);
}

/* Reads one response; the caller disposes of it. */
static void read_response(struct tbt_http_response *r, const char *what)
{
    cr_assert_eq(tbt_tls_read_response(&c, r, 0, 0), 0, "%s: %s; proxy log: %s", what, c.err,
                 tbt_world_proxy_log(&w));
}

/* The /echo document of a 200 response; the caller decrefs it. */
static json_t *echo_doc(const struct tbt_http_response *r, const char *what)
{
    json_error_t e;
    json_t *doc;

    cr_assert_eq(r->status, 200, "%s: status %d: %s; proxy log: %s", what, r->status,
                 (const char *)r->body, tbt_world_proxy_log(&w));
    doc = json_loadb((const char *)r->body, r->body_len, 0, &e);
    cr_assert(json_is_object(doc), "%s: /echo body is not JSON (%s)", what, e.text);
    return doc;
}

/* A GET /echo?<q> and its answer: the origin must have seen that query. */
static void echo_query(const char *q, const char *what)
{
    struct tbt_http_response r = {0};
    char req[256];
    json_t *doc;
    const char *got;

    snprintf(req, sizeof(req), "GET /echo?%s HTTP/1.1\r\nHost: localhost\r\n\r\n", q);
    send_all(req, strlen(req));
    read_response(&r, what);
    doc = echo_doc(&r, what);
    got = json_string_value(json_object_get(doc, "query"));
    cr_expect(got != NULL && strcmp(got, q) == 0, "%s: the origin got query %s", what,
              got ? got : "(none)");
    json_decref(doc);
    tbt_http_response_dispose(&r);
}

/* A GET /echo whose head is exactly `size` bytes: Host, then n fields X-<i> of the letter of i,
 * *vlen letters each but the last one, which has *last_len (what makes the size). In `big`
 * (freed by the .fini). */
static size_t big_request(size_t size, size_t n, size_t *vlen, size_t *last_len)
{
    size_t cap = size + 64, len, i;

    free(big);
    big = malloc(cap);
    cr_assert_not_null(big);
    len = (size_t)snprintf(big, cap, "GET /echo?q=big HTTP/1.1\r\nHost: localhost\r\n");
    *vlen = (size - len) / n - 12;
    for (i = 1; i <= n; i++) {
        size_t k = (size_t)snprintf(big + len, cap - len, "X-%zu: ", i);
        size_t v = i < n ? *vlen : size - len - k - 4;

        cr_assert_leq(len + k + v + 4, size);
        if (i == n)
            *last_len = v;
        len += k;
        memset(big + len, 'a' + (int)(i % 26), v);
        len += v;
        memcpy(big + len, "\r\n", 2);
        len += 2;
    }
    memcpy(big + len, "\r\n", 2);
    len += 2;
    cr_assert_eq(len, size);
    return len;
}

/* The origin saw X-1 .. X-n as big_request made them (the last one of last_len letters). */
static void expect_big_fields(json_t *doc, size_t n, size_t vlen, size_t last_len)
{
    json_t *h = json_object_get(doc, "headers");
    char name[16];
    size_t i, k;

    for (i = 1; i <= n; i++) {
        const char *v;
        size_t want = i < n ? vlen : last_len;

        snprintf(name, sizeof(name), "x-%zu", i);
        v = json_string_value(json_object_get(h, name));
        cr_assert_not_null(v, "the origin did not get %s", name);
        cr_assert_eq(strlen(v), want, "%s: %zu bytes, sent %zu", name, strlen(v), want);
        for (k = 0; k < want; k++)
            cr_assert_eq(v[k], 'a' + (int)(i % 26), "%s: byte %zu changed", name, k);
    }
}

/* --- tests ---------------------------------------------------------------------------------- */

Test(h1_idle, large_heads_between_small_ones,
     .description = "heads up to max_header_bytes between small requests; one byte more: 431")
{
    struct tbt_http_response r = {0};
    size_t n = 95, len, i, vlen, last;
    json_t *doc;

    start_and_connect();
    echo_query("q=1", "first small request");
    for (i = 0; i < 2; i++) {
        /* the limit counts the whole head: request line to the empty line */
        len = big_request(MAX_HEAD, n, &vlen, &last);
        send_all(big, len);
        read_response(&r, "a head of max_header_bytes");
        doc = echo_doc(&r, "a head of max_header_bytes");
        expect_big_fields(doc, n, vlen, last);
        json_decref(doc);
        tbt_http_response_dispose(&r);
        echo_query("q=2", "a small request after the large one");
    }
    len = big_request(MAX_HEAD + 1, n, &vlen, &last);
    send_all(big, len);
    read_response(&r, "a head over max_header_bytes");
    cr_expect_eq(r.status, 431, "status %d for a head of max_header_bytes + 1", r.status);
    tbt_http_response_dispose(&r);
    cr_expect_eq(tbt_tls_peer_closed(&c, 5000), 1, "the connection stays open after the 431");
}

Test(h1_idle, requests_split_around_the_release,
     .description = "a request whose first bytes came with the previous one, the rest byte by byte")
{
    static const char one[] = "GET /echo?q=one HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static const char two[] = "GET /echo?q=two HTTP/1.1\r\nHost: localhost\r\nX-Two: 2\r\n\r\n";
    static const char body[] = "hello, chunked world";
    static const char chunked[] = "POST /echo?q=post HTTP/1.1\r\nHost: localhost\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "7\r\nhello, \r\n"
                                  "d\r\nchunked world\r\n"
                                  "0\r\nX-Trailer-A: a\r\nX-Trailer-B: b\r\n\r\n";
    struct tbt_http_response r = {0};
    char first[sizeof(one) - 1 + 8], sha[65];
    json_t *doc;
    const char *q;

    start_and_connect();
    /* request one and the first 8 bytes of request two in one write */
    memcpy(first, one, sizeof(one) - 1);
    memcpy(first + sizeof(one) - 1, two, 8);
    send_all(first, sizeof(one) - 1 + 8);
    read_response(&r, "request one");
    doc = echo_doc(&r, "request one");
    q = json_string_value(json_object_get(doc, "query"));
    cr_expect(q != NULL && strcmp(q, "q=one") == 0, "request one reached the origin as %s", q);
    json_decref(doc);
    tbt_http_response_dispose(&r);
    usleep(100 * 1000); /* the connection goes idle with part of request two read */
    send_pieces(two + 8, sizeof(two) - 1 - 8, 1);
    read_response(&r, "request two");
    doc = echo_doc(&r, "request two");
    q = json_string_value(json_object_get(doc, "query"));
    cr_expect(q != NULL && strcmp(q, "q=two") == 0, "request two reached the origin as %s", q);
    q = json_string_value(json_object_get(json_object_get(doc, "headers"), "x-two"));
    cr_expect(q != NULL && strcmp(q, "2") == 0, "request two's X-Two: %s", q);
    json_decref(doc);
    tbt_http_response_dispose(&r);

    /* a chunked request with trailers, three bytes per write */
    send_pieces(chunked, sizeof(chunked) - 1, 3);
    read_response(&r, "chunked request");
    doc = echo_doc(&r, "chunked request");
    tbt_world_sha256_hex(body, sizeof(body) - 1, sha);
    cr_expect_eq(json_integer_value(json_object_get(doc, "body_length")), sizeof(body) - 1);
    q = json_string_value(json_object_get(doc, "body_sha256"));
    cr_expect(q != NULL && strcmp(q, sha) == 0, "body SHA-256 %s, sent %s", q, sha);
    json_decref(doc);
    tbt_http_response_dispose(&r);
    echo_query("q=last", "a request after the chunked one");
}

Test(h1_idle, pipelined_heads_of_every_size,
     .description = "small, large and small requests in one write, answered in order")
{
    static const char *const queries[] = {"q=a", "q=big", "q=c"};
    static const char a[] = "GET /echo?q=a HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static const char d[] = "GET /echo?q=c HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct tbt_http_response r = {0};
    size_t vlen, last, len = big_request(30000, 40, &vlen, &last);
    size_t all = sizeof(a) - 1 + len + sizeof(d) - 1;
    char *buf = malloc(all);
    json_t *doc;
    int i;

    cr_assert_not_null(buf);
    memcpy(buf, a, sizeof(a) - 1);
    memcpy(buf + sizeof(a) - 1, big, len);
    memcpy(buf + sizeof(a) - 1 + len, d, sizeof(d) - 1);
    start_and_connect();
    send_all(buf, all);
    free(buf);
    for (i = 0; i < 3; i++) {
        const char *q;

        read_response(&r, queries[i]);
        doc = echo_doc(&r, queries[i]);
        if (i == 1)
            expect_big_fields(doc, 40, vlen, last);
        q = json_string_value(json_object_get(doc, "query"));
        cr_expect(q != NULL && strcmp(q, queries[i]) == 0, "response %d answers %s, not %s", i + 1,
                  q ? q : "(none)", queries[i]);
        json_decref(doc);
        tbt_http_response_dispose(&r);
    }
    /* and the connection is kept alive after an idle pause */
    usleep(200 * 1000);
    echo_query("q=after", "after the pipeline and a pause");
}
