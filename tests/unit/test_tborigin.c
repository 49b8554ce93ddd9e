/*
 * The tborigin demo origin, run as a separate process and spoken to over plain sockets.
 *
 * The binary is $TB_BIN/tborigin (make test sets TB_BIN), else build/rel/bin/tborigin. Each test
 * starts its own origin with posix_spawn (no shell) on 127.0.0.1:0 and reads the port from the
 * "tborigin listening on 127.0.0.1:PORT" line. The origin gets --exit-with-stdin and a pipe as
 * stdin whose write end only this process holds, so it dies with the test worker even if the
 * worker is killed; the suite's .fini stops and reaps it on every normal or failed end.
 *
 * The client side is deliberately small: one request (or a pipelined batch) per connection,
 * written whole, then the response read until the origin closes, then parsed and, when chunked,
 * decoded. Every socket has send and receive timeouts, every wait a deadline.
 *
 * The federation demo (tborigin/fed.c) is tested here on its own, as its proxy would reach it:
 * the requests carry made-up Sec-Provided- / Sec-Referred-Token-Binding-ID headers, the IdP key
 * is made per test in a temporary directory, and the JWTs it issues are checked independently of
 * libtb's JWT code (OpenSSL verifies the ES256 signature, jansson reads the claims). The whole
 * flow through two proxies is tests/unit/test_federation.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "proc.h"
#include "run.h"
#include "tb/base64url.h"
#include "tb/tbh.h"

extern char **environ;

#define MAX_ARGS 16
#define START_TIMEOUT_MS 10000 /* from spawn to the "listening" line */
#define EXIT_TIMEOUT_MS 5000   /* from a stop signal to the exit */
#define IO_TIMEOUT_S 30        /* each socket send / receive */
#define MAX_RESPONSE (16u * 1024 * 1024)
#define BIG_UPLOAD (1024ull * 1024 * 1024) /* 1 GiB, streamed */
#define BIG_UPLOAD_MAX_GROWTH_KB (64 * 1024)

/* The origin this test started. pid -1: none running. */
struct origin {
    pid_t pid;
    int stdin_w; /* write end of its stdin: closing it stops an --exit-with-stdin origin */
    int out_r;   /* its stdout */
    int port;
};

/* One response as received. */
struct response {
    char *raw; /* everything read, NUL-terminated */
    size_t raw_len;
    size_t head_len; /* status line and headers, through the blank line */
    int status;
    char *body; /* the body, de-chunked, NUL-terminated */
    size_t body_len;
    long elapsed_ms; /* from connect to the origin's close */
    json_t *json;    /* body parsed as JSON, or NULL */
};

static char tool[4096];
static struct origin origin = {-1, -1, -1, 0};
static struct response resp;
static char keydir[512]; /* the IdP tests' key files; "" when not made */
/* The last program run to completion here (curl; tborigin with bad arguments). */
static struct tbt_run_result ran;

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static void response_reset(void)
{
    free(resp.raw);
    free(resp.body);
    json_decref(resp.json);
    memset(&resp, 0, sizeof(resp));
}

static void close_fd(int *fd)
{
    if (*fd != -1) {
        close(*fd);
        *fd = -1;
    }
}

/* Waits up to ms for pid to exit. Returns its wait status, or -1 if it is still running. */
static int wait_exit(pid_t pid, long ms)
{
    long deadline = now_ms() + ms;
    int st;
    pid_t r;

    for (;;) {
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r == -1 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(10);
    }
}

/* Stops the origin if one runs (SIGTERM, then SIGKILL after a while) and reaps it. */
static void origin_stop(void)
{
    if (origin.pid > 0) {
        kill(origin.pid, SIGTERM);
        if (wait_exit(origin.pid, EXIT_TIMEOUT_MS) == -1) {
            kill(origin.pid, SIGKILL);
            while (waitpid(origin.pid, NULL, 0) == -1 && errno == EINTR)
                ;
        }
    }
    origin.pid = -1;
    close_fd(&origin.stdin_w);
    close_fd(&origin.out_r);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(tbt_run_path("tborigin", tool, sizeof(tool)), 0);
    cr_assert_eq(access(tool, X_OK), 0, "%s: %s (build it, or set TB_BIN to its directory)", tool,
                 strerror(errno));
}

static void teardown(void)
{
    origin_stop();
    response_reset();
    tbt_run_result_dispose(&ran);
    if (keydir[0] != '\0')
        tbt_rmdir_all(keydir);
    keydir[0] = '\0';
}

TestSuite(tborigin, .init = setup, .fini = teardown, .timeout = 120);

/*
 * Spawns tborigin with args (NULL-terminated, without argv[0]) into `origin`: stdin a pipe,
 * stdout a pipe, stderr shared with the test. Returns 0 or an errno.
 */
static int spawn_origin(const char *const *args)
{
    char *argv[MAX_ARGS + 2];
    posix_spawn_file_actions_t fa;
    int in_pipe[2], out_pipe[2], n = 0, rc;

    argv[n++] = tool;
    for (; args[n - 1] != NULL && n <= MAX_ARGS; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    if (pipe2(in_pipe, O_CLOEXEC) == -1)
        return errno;
    if (pipe2(out_pipe, O_CLOEXEC) == -1) {
        rc = errno;
        close(in_pipe[0]);
        close(in_pipe[1]);
        return rc;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    rc = posix_spawn(&origin.pid, tool, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in_pipe[0]);
    close(out_pipe[1]);
    if (rc != 0) {
        origin.pid = -1;
        close(in_pipe[1]);
        close(out_pipe[0]);
        return rc;
    }
    origin.stdin_w = in_pipe[1];
    origin.out_r = out_pipe[0];
    return 0;
}

/* Reads the origin's stdout up to the first newline (or EOF, or the deadline) into line. */
static void read_line(char *line, size_t cap)
{
    long deadline = now_ms() + START_TIMEOUT_MS;
    size_t len = 0;
    ssize_t n;

    line[0] = '\0';
    while (len + 1 < cap && strchr(line, '\n') == NULL) {
        struct pollfd pfd = {.fd = origin.out_r, .events = POLLIN};
        long left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            break;
        n = read(origin.out_r, line + len, cap - len - 1);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
    }
}

/*
 * Starts an origin on 127.0.0.1:0 with --exit-with-stdin and the extra args (NULL-terminated)
 * and waits for its "listening" line; the port lands in origin.port. Fails the test otherwise.
 */
static void origin_start(const char *const *extra)
{
    const char *args[MAX_ARGS + 1] = {"--listen", "127.0.0.1:0", "--exit-with-stdin"};
    const char *prefix = "tborigin listening on 127.0.0.1:";
    char line[256];
    int n = 3, rc, port = 0;

    for (; extra != NULL && *extra != NULL && n < MAX_ARGS; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    rc = spawn_origin(args);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", tool, strerror(rc));
    read_line(line, sizeof(line));
    if (strncmp(line, prefix, strlen(prefix)) == 0)
        port = atoi(line + strlen(prefix));
    if (port <= 0 || port > 65535 || strchr(line, '\n') == NULL)
        origin_stop();
    cr_assert(port > 0 && port <= 65535 && strchr(line, '\n') != NULL,
              "no \"%s<port>\" line from tborigin within %d ms; got [%s]", prefix, START_TIMEOUT_MS,
              line);
    origin.port = port;
}

static void origin_start_default(void)
{
    origin_start(NULL);
}

/* --- the client --------------------------------------------------------------------------- */

/* A TCP connection to the origin with send/receive timeouts. Fails the test if it cannot. */
static int connect_origin(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)origin.port)};
    struct timeval tv = {IO_TIMEOUT_S, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_neq(fd, -1, "socket: %s", strerror(errno));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        int e = errno;
        close(fd);
        cr_assert_fail("connect 127.0.0.1:%d: %s", origin.port, strerror(e));
    }
    return fd;
}

/* Sends all of buf. Returns 0, or -1 (errno set) on error or timeout. */
static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    ssize_t n;

    while (len > 0) {
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until EOF into resp.raw (capped at MAX_RESPONSE). Returns 0 or -1. */
static int read_all(int fd)
{
    size_t cap = 65536;
    ssize_t n;

    if ((resp.raw = malloc(cap)) == NULL)
        return -1;
    for (;;) {
        if (resp.raw_len + 1 == cap) {
            char *p;
            if (cap >= MAX_RESPONSE || (p = realloc(resp.raw, cap * 2)) == NULL)
                return -1;
            resp.raw = p;
            cap *= 2;
        }
        n = recv(fd, resp.raw + resp.raw_len, cap - resp.raw_len - 1, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return -1;
        if (n == 0)
            break;
        resp.raw_len += (size_t)n;
    }
    resp.raw[resp.raw_len] = '\0';
    return 0;
}

/*
 * Finds header name in the head [p, end) of a message; copies its value (trimmed) into out.
 * Returns 1 if found, 0 if not.
 */
static int find_header(const char *p, const char *end, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);

    p = memchr(p, '\n', (size_t)(end - p)); /* skip the status line */
    while (p != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *v;
        size_t vlen;
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            vlen = (size_t)(eol - v);
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
                vlen--;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = eol;
    }
    return 0;
}

/* The value of a header of the current response, or NULL. Valid until the next call. */
static const char *header(const char *name)
{
    static char value[4096];

    return find_header(resp.raw, resp.raw + resp.head_len, name, value, sizeof(value)) ? value
                                                                                       : NULL;
}

/* Decodes a chunked body [p, end) into resp.body. Returns 0, or -1 if it is malformed. */
static int dechunk(const char *p, const char *end)
{
    char *out = malloc((size_t)(end - p) + 1);
    size_t len = 0;

    if (out == NULL)
        return -1;
    for (;;) {
        char *eol;
        unsigned long long size = strtoull(p, &eol, 16);
        const char *line_end = memchr(p, '\n', (size_t)(end - p));
        if (eol == p || line_end == NULL || size > (unsigned long long)(end - line_end - 1))
            goto Bad;
        p = line_end + 1;
        if (size == 0)
            break;
        memcpy(out + len, p, size);
        len += size;
        p += size;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            goto Bad;
        p += 2;
    }
    /* trailers, then the blank line ending the message */
    while (p < end && !(end - p >= 2 && p[0] == '\r' && p[1] == '\n')) {
        const char *line_end = memchr(p, '\n', (size_t)(end - p));
        if (line_end == NULL)
            goto Bad;
        p = line_end + 1;
    }
    if (end - p != 2)
        goto Bad;
    out[len] = '\0';
    resp.body = out;
    resp.body_len = len;
    return 0;
Bad:
    free(out);
    return -1;
}

/* Splits resp.raw into status, head and body (one response, read until close). */
static void parse_response(void)
{
    const char *head_end = strstr(resp.raw, "\r\n\r\n");
    const char *te, *cl;

    cr_assert(resp.raw_len > 12 && strncmp(resp.raw, "HTTP/1.1 ", 9) == 0 && head_end != NULL,
              "not an HTTP/1.1 response: [%.200s]", resp.raw);
    resp.status = atoi(resp.raw + 9);
    resp.head_len = (size_t)(head_end + 4 - resp.raw);
    te = header("Transfer-Encoding");
    if (te != NULL && strcasecmp(te, "chunked") == 0) {
        cr_assert_eq(dechunk(head_end + 4, resp.raw + resp.raw_len), 0,
                     "malformed chunked body: [%.300s]", head_end + 4);
    } else {
        resp.body_len = resp.raw_len - resp.head_len;
        resp.body = malloc(resp.body_len + 1);
        cr_assert_not_null(resp.body);
        memcpy(resp.body, head_end + 4, resp.body_len);
        resp.body[resp.body_len] = '\0';
        cl = header("Content-Length");
        if (cl != NULL)
            cr_assert_eq(strtoull(cl, NULL, 10), resp.body_len,
                         "Content-Length %s but %zu body bytes", cl, resp.body_len);
    }
    resp.json = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, NULL);
}

/* Reads what comes on fd until the origin closes into resp.raw, and closes fd. */
static void finish_raw(int fd, long started)
{
    int rc = read_all(fd);
    int e = errno;

    close(fd);
    resp.elapsed_ms = now_ms() - started;
    cr_assert_eq(rc, 0, "reading the response: %s", strerror(e));
}

/* Reads the response on fd until the origin closes, closes fd, parses it into resp. */
static void finish(int fd, long started)
{
    finish_raw(fd, started);
    parse_response();
}

/* Sends req (the last request asking for Connection: close); what comes back is in resp.raw. */
static void exchange_raw(const char *req, size_t len)
{
    long started = now_ms();
    int fd = connect_origin(), rc;

    response_reset();
    rc = send_all(fd, req, len);
    if (rc != 0) {
        int e = errno;
        close(fd);
        cr_assert_fail("sending the request: %s", strerror(e));
    }
    finish_raw(fd, started);
}

/* Sends the request bytes req (which should ask for Connection: close) and reads the response. */
static void exchange(const char *req, size_t len)
{
    exchange_raw(req, len);
    parse_response();
}

/* GET path with Connection: close. */
static void get(const char *path)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);

    cr_assert(n > 0 && (size_t)n < sizeof(req));
    exchange(req, (size_t)n);
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned i;

    cr_assert_eq(EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL), 1);
    for (i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static const char *json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Expects the /echo JSON to say method, body length and body SHA-256 (hex). */
static void expect_echo(const char *method, unsigned long long len, const char *sha)
{
    json_t *headers;

    cr_assert_eq(resp.status, 200, "status %d: %s", resp.status, resp.raw);
    cr_assert(json_is_object(resp.json), "not JSON: %s", resp.body);
    headers = json_object_get(resp.json, "headers");
    cr_assert(json_is_object(headers), "no headers object: %s", resp.body);
    cr_expect_str_eq(json_str(resp.json, "method"), method);
    cr_expect_str_eq(json_str(resp.json, "path"), "/echo");
    cr_expect(json_is_integer(json_object_get(resp.json, "body_length")) &&
                  (unsigned long long)json_integer_value(
                      json_object_get(resp.json, "body_length")) == len,
              "body_length should be %llu: %s", len, resp.body);
    cr_expect_str_eq(json_str(resp.json, "body_sha256"), sha, "body_sha256: %s", resp.body);
}

/* A deterministic test body. Caller frees. */
static unsigned char *make_body(size_t len)
{
    unsigned char *b = malloc(len ? len : 1);
    uint32_t x = 0x12345678;
    size_t i;

    cr_assert_not_null(b);
    for (i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (unsigned char)(x >> 24);
    }
    return b;
}

/* --- tests -------------------------------------------------------------------------------- */

Test(tborigin, echo_get, .description = "/echo GET: method, raw path and query, headers")
{
    static const char req[] = "GET /echo?x=1&y=%2F+z HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "X-Mixed-Case: Some Value\r\n"
                              "X-Dup: a\r\n"
                              "X-Dup: b\r\n"
                              "X-Latin: caf\xe9\r\n"
                              "Connection: close\r\n\r\n";
    char empty_sha[65];
    json_t *headers, *dup;

    origin_start_default();
    exchange(req, sizeof(req) - 1);
    sha256_hex("", 0, empty_sha);
    expect_echo("GET", 0, empty_sha);
    cr_expect_str_eq(json_str(resp.json, "version"), "HTTP/1.1");
    cr_expect_str_eq(json_str(resp.json, "query"), "x=1&y=%2F+z");
    headers = json_object_get(resp.json, "headers");
    cr_expect_str_eq(json_str(headers, "x-mixed-case"), "Some Value", "%s", resp.body);
    cr_expect_str_eq(json_str(headers, "host"), "127.0.0.1");
    cr_expect_str_eq(json_str(headers, "x-latin"), "caf\xc3\xa9", "Latin-1 read as such");
    cr_expect_null(json_object_get(headers, "X-Mixed-Case"), "names are lower-cased");
    dup = json_object_get(headers, "x-dup");
    cr_expect(json_is_array(dup) && json_array_size(dup) == 2 &&
                  strcmp(json_string_value(json_array_get(dup, 0)), "a") == 0 &&
                  strcmp(json_string_value(json_array_get(dup, 1)), "b") == 0,
              "a repeated header is an array of its values in order: %s", resp.body);
    cr_expect_str_eq(header("Content-Type"), "application/json");

    get("/echo");
    cr_expect(json_is_null(json_object_get(resp.json, "query")), "no '?': query null: %s",
              resp.body);
}

Test(tborigin, echo_post, .description = "/echo POST with Content-Length: length and SHA-256")
{
    const size_t len = 300000;
    unsigned char *body = make_body(len);
    char head[256], sha[65];
    long started = now_ms();
    int n, fd, rc;

    origin_start_default();
    sha256_hex(body, len, sha);
    n = snprintf(head, sizeof(head),
                 "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-"
                 "urlencoded\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 len);
    fd = connect_origin();
    rc = send_all(fd, head, (size_t)n) == 0 && send_all(fd, body, len) == 0 ? 0 : errno;
    free(body);
    if (rc != 0)
        close(fd);
    cr_assert_eq(rc, 0, "send: %s", strerror(rc));
    finish(fd, started);
    expect_echo("POST", len, sha);
    cr_expect_str_eq(json_str(json_object_get(resp.json, "headers"), "content-length"), "300000");
}

Test(tborigin, echo_chunked, .description = "/echo with a chunked body of uneven chunks")
{
    static const size_t sizes[] = {1, 2, 15, 16, 17, 1000, 4096, 65536, 100000, 3};
    size_t total = 0, off = 0, i;
    unsigned char *body;
    char line[64], sha[65];
    long started = now_ms();
    int fd, n, ok = 1;
    static const char head[] = "PUT /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

    origin_start_default();
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        total += sizes[i];
    body = make_body(total);
    sha256_hex(body, total, sha);
    fd = connect_origin();
    ok = send_all(fd, head, sizeof(head) - 1) == 0;
    for (i = 0; ok && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* one chunk size with an extension, to be ignored */
        n = snprintf(line, sizeof(line), i == 3 ? "%zx;ext=1\r\n" : "%zX\r\n", sizes[i]);
        ok = send_all(fd, line, (size_t)n) == 0 && send_all(fd, body + off, sizes[i]) == 0 &&
             send_all(fd, "\r\n", 2) == 0;
        off += sizes[i];
    }
    ok = ok && send_all(fd, "0\r\nX-Trailer: t\r\n\r\n", 19) == 0;
    free(body);
    if (!ok)
        close(fd);
    cr_assert(ok, "send: %s", strerror(errno));
    finish(fd, started);
    expect_echo("PUT", total, sha);
}

Test(tborigin, upload_1gib, .description = "a 1 GiB chunked upload, hashed in bounded memory")
{
    static unsigned char block[256 * 1024];
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    unsigned char md[32];
    char line[32], sha[65], path[64], *st = NULL;
    unsigned long long sent = 0;
    long hwm_before = -1, hwm_after = -1, started = now_ms();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    FILE *f;
    size_t i, cap = 0;
    int fd, n, ok;

    origin_start_default();
    for (i = 0; i < sizeof(block); i++)
        block[i] = (unsigned char)(i * 7 + i / 251);
    /* the peak resident size of the origin, before and after */
    snprintf(path, sizeof(path), "/proc/%d/status", (int)origin.pid);
    if ((f = fopen(path, "r")) != NULL) {
        while (getline(&st, &cap, f) != -1)
            sscanf(st, "VmHWM: %ld", &hwm_before);
        fclose(f);
    }
    cr_assert(ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
    fd = connect_origin();
    ok = send_all(fd, head, sizeof(head) - 1) == 0;
    n = snprintf(line, sizeof(line), "%zx\r\n", sizeof(block));
    while (ok && sent < BIG_UPLOAD) {
        ok = send_all(fd, line, (size_t)n) == 0 && send_all(fd, block, sizeof(block)) == 0 &&
             send_all(fd, "\r\n", 2) == 0 && EVP_DigestUpdate(ctx, block, sizeof(block)) == 1;
        sent += sizeof(block);
    }
    ok = ok && send_all(fd, "0\r\n\r\n", 5) == 0;
    EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    for (i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    if (!ok)
        close(fd);
    cr_assert(ok, "send: %s", strerror(errno));
    finish(fd, started);
    expect_echo("POST", BIG_UPLOAD, sha);
    if ((f = fopen(path, "r")) != NULL) {
        while (getline(&st, &cap, f) != -1)
            sscanf(st, "VmHWM: %ld", &hwm_after);
        fclose(f);
    }
    free(st);
    cr_expect(hwm_before > 0 && hwm_after > 0, "no VmHWM in %s", path);
    cr_expect(hwm_after - hwm_before < BIG_UPLOAD_MAX_GROWTH_KB,
              "peak RSS grew from %ld to %ld KiB during a 1 GiB upload", hwm_before, hwm_after);
}

Test(tborigin, bytes, .description = "/bytes/N streams N bytes, chunked, 'a' + i % 26")
{
    size_t i;
    int bad = -1;

    origin_start_default();
    get("/bytes/1000000");
    cr_assert_eq(resp.status, 200);
    cr_expect_str_eq(header("Transfer-Encoding"), "chunked");
    cr_assert_eq(resp.body_len, 1000000);
    for (i = 0; i < resp.body_len && bad < 0; i++)
        if (resp.body[i] != (char)('a' + i % 26))
            bad = (int)i;
    cr_expect_eq(bad, -1, "pattern differs at byte %d", bad);

    get("/bytes/0");
    cr_expect_eq(resp.status, 200);
    cr_expect_eq(resp.body_len, 0);
    get("/bytes/12x");
    cr_expect_eq(resp.status, 404);
}

Test(tborigin, status, .description = "/status/N answers N")
{
    origin_start_default();
    get("/status/503");
    cr_expect_eq(resp.status, 503);
    cr_expect_str_eq(resp.body, "status 503\n");
    get("/status/204");
    cr_expect_eq(resp.status, 204);
    cr_expect_eq(resp.body_len, 0);
    get("/status/404");
    cr_expect_eq(resp.status, 404);
    get("/status/99");
    cr_expect_eq(resp.status, 404, "out of range: no such path");
}

Test(tborigin, slow, .description = "/slow?ms=300 answers after at least 300 ms")
{
    origin_start_default();
    get("/slow?ms=300");
    cr_expect_eq(resp.status, 200);
    cr_expect_geq(resp.elapsed_ms, 300, "answered after %ld ms", resp.elapsed_ms);
    get("/slow");
    cr_expect_eq(resp.status, 400);
    get("/slow?ms=-1");
    cr_expect_eq(resp.status, 400);
}

Test(tborigin, slow_does_not_block_others, .description = "a slow request holds only itself")
{
    static const char req[] = "GET /slow?ms=2000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd;

    origin_start_default();
    fd = connect_origin();
    cr_assert_eq(send_all(fd, req, sizeof(req) - 1), 0);
    get("/healthz");
    close(fd);
    cr_expect_eq(resp.status, 200);
    cr_expect_lt(resp.elapsed_ms, 1500, "/healthz took %ld ms next to a slow request",
                 resp.elapsed_ms);
}

Test(tborigin, delay_ms, .description = "--delay-ms holds every response")
{
    const char *const extra[] = {"--delay-ms", "200", NULL};

    origin_start(extra);
    get("/healthz");
    cr_expect_eq(resp.status, 200);
    cr_expect_geq(resp.elapsed_ms, 200, "answered after %ld ms", resp.elapsed_ms);
}

Test(tborigin, healthz)
{
    origin_start_default();
    get("/healthz");
    cr_expect_eq(resp.status, 200);
    cr_expect_str_eq(resp.body, "ok\n");
    get("/no/such/path");
    cr_expect_eq(resp.status, 404);
}

Test(tborigin, index_page, .description = "/ shows the forwarded IDs and their tbh")
{
    static const uint8_t id[] = {0x02, 0x00, 0x41, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55};
    char id64[64], tbh[TB_TBH_LEN + 1], req[512];
    int n;

    origin_start_default();
    get("/");
    cr_assert_eq(resp.status, 200);
    cr_expect_str_eq(header("Content-Type"), "text/html; charset=utf-8");
    cr_expect(strstr(resp.body, "Sec-Provided-Token-Binding-ID</th><td><code>none<") != NULL, "%s",
              resp.body);
    cr_expect(strstr(resp.body, "Sec-Referred-Token-Binding-ID</th><td><code>none<") != NULL);

    cr_assert_gt(tb_base64url_encode(id, sizeof(id), id64, sizeof(id64)), 0);
    cr_assert_eq(tb_tbh(id, sizeof(id), tbh, sizeof(tbh)), TB_TBH_LEN);
    n = snprintf(req, sizeof(req),
                 "GET / HTTP/1.1\r\nHost: x\r\nSec-Provided-Token-Binding-ID: %s\r\n"
                 "Sec-Referred-Token-Binding-ID: <b>&\r\nConnection: close\r\n\r\n",
                 id64);
    exchange(req, (size_t)n);
    cr_assert_eq(resp.status, 200);
    cr_expect(strstr(resp.body, id64) != NULL, "provided ID not shown: %s", resp.body);
    cr_expect(strstr(resp.body, tbh) != NULL, "its tbh %s not shown: %s", tbh, resp.body);
    cr_expect(strstr(resp.body, "&lt;b&gt;&amp;") != NULL, "values are HTML-escaped: %s",
              resp.body);
    cr_expect(strstr(resp.body, "(not base64url)") != NULL, "%s", resp.body);
    cr_expect(strstr(resp.body, "<b>") == NULL);
}

Test(tborigin, redirect,
     .description = "/redirect?to=URL[&status=N]: a redirect asking for the referred ID")
{
    static const char *const ok[] = {"301", "302", "303", "307", "308"};
    static const char *const bad[] = {"300", "304", "305", "306", "200", "3020", "", "x", "-302",
                                      "302%20", "18446744073709551918"};
    char path[128];
    size_t i;

    origin_start_default();
    get("/redirect?to=https%3A%2F%2Fidp.example%2Flogin%3Fa%3Db");
    cr_expect_eq(resp.status, 302);
    cr_expect_str_eq(header("Location"), "https://idp.example/login?a=b");
    cr_expect_str_eq(header("Include-Referer-Token-Binding-ID"), "true");
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(path, sizeof(path), "/redirect?to=%%2Fecho&status=%s", ok[i]);
        get(path);
        cr_expect_eq(resp.status, atoi(ok[i]), "%s", path);
        cr_expect_str_eq(header("Location"), "/echo", "%s", path);
        cr_expect_str_eq(header("Include-Referer-Token-Binding-ID"), "true", "%s", path);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "/redirect?to=%%2Fecho&status=%s", bad[i]);
        get(path);
        cr_expect_eq(resp.status, 400, "%s", path);
        cr_expect_null(header("Location"), "%s", path);
    }
    get("/redirect");
    cr_expect_eq(resp.status, 400);
    get("/redirect?status=302");
    cr_expect_eq(resp.status, 400);
}

/* The index-th (from 0) Set-Cookie value of the current response, or NULL. */
static const char *set_cookie(int index)
{
    static char value[4096];
    const char *p = resp.raw, *end = resp.raw + resp.head_len, *eol;
    int seen = 0;

    /* find_header() skips its first line, so start it at the line before each Set-Cookie */
    while ((eol = memchr(p, '\n', (size_t)(end - p))) != NULL && eol + 1 < end) {
        if (end - (eol + 1) > 11 && strncasecmp(eol + 1, "Set-Cookie:", 11) == 0 &&
            seen++ == index)
            return find_header(p, end, "Set-Cookie", value, sizeof(value)) ? value : NULL;
        p = eol + 1;
    }
    return NULL;
}

Test(tborigin, cookies_set, .description = "/cookies/set?N=V sets each cookie, refuses bad ones")
{
    static const char *const bad[] = {
        "/cookies/set",                 /* nothing to set */
        "/cookies/set?a",               /* no '=' */
        "/cookies/set?=v",              /* empty name */
        "/cookies/set?a%20b=v",         /* space in the name */
        "/cookies/set?a(b=v",           /* separator in the name */
        "/cookies/set?a=b%20c",         /* space in the value */
        "/cookies/set?a=b+c",           /* '+' is a space in a query */
        "/cookies/set?a=b%3Bc",         /* ';' */
        "/cookies/set?a=b%2Cc",         /* ',' */
        "/cookies/set?a=%22b%22",       /* '"' */
        "/cookies/set?a=b%5Cc",         /* '\' */
        "/cookies/set?a=b%0Dc",         /* CR */
        "/cookies/set?a=b%7Fc",         /* DEL */
        "/cookies/set?a=b%C3%A9",       /* non-ASCII */
        "/cookies/set?ok=1&a=b%09c",    /* one good, one with a tab */
    };
    size_t i;

    origin_start_default();
    get("/cookies/set?session=abc123&theme=dark-mode_2&empty=");
    cr_assert_eq(resp.status, 200, "%s", resp.raw);
    cr_expect_str_eq(resp.body, "ok\n");
    cr_expect_str_eq(set_cookie(0), "session=abc123; Path=/; HttpOnly", "%s", resp.raw);
    cr_expect_str_eq(set_cookie(1), "theme=dark-mode_2; Path=/; HttpOnly", "%s", resp.raw);
    cr_expect_str_eq(set_cookie(2), "empty=; Path=/; HttpOnly", "%s", resp.raw);
    cr_expect_null(set_cookie(3), "%s", resp.raw);

    get("/cookies/set?tag=a%2Fb%3Dc!%23%24");
    cr_assert_eq(resp.status, 200, "%s", resp.raw);
    cr_expect_str_eq(set_cookie(0), "tag=a/b=c!#$; Path=/; HttpOnly", "%s", resp.raw);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        get(bad[i]);
        cr_expect_eq(resp.status, 400, "%s: %s", bad[i], resp.raw);
        cr_expect_null(set_cookie(0), "%s: no cookie on a refusal: %s", bad[i], resp.raw);
    }
}

Test(tborigin, keep_alive, .description = "pipelined requests on one connection, in order")
{
    static const char req[] = "GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
                              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                              "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const char *first, *second, *third;

    origin_start_default();
    exchange_raw(req, sizeof(req) - 1);
    first = strstr(resp.raw, "HTTP/1.1 201");
    second = first ? strstr(first + 1, "HTTP/1.1 200") : NULL;
    third = second ? strstr(second + 1, "HTTP/1.1 200") : NULL;
    cr_expect(first == resp.raw && second != NULL && third != NULL,
              "three responses in order on one connection: %s", resp.raw);
    cr_expect(strstr(resp.raw, "\"body_length\":3") != NULL, "%s", resp.raw);
}

Test(tborigin, curl, .description = "curl posts a chunked body and reads the echo")
{
    char url[64], sha[65];
    const char *const args[] = {
        "-sS",           "--max-time", "20", "-H", "Transfer-Encoding: chunked",
        "--data-binary", "hello",      url,  NULL};
    json_t *doc;

    if (access("/usr/bin/curl", X_OK) != 0)
        cr_skip_test("no /usr/bin/curl");
    origin_start_default();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", origin.port);
    cr_assert_eq(tbt_run("/usr/bin/curl", args, NULL, 0, 25000, &ran), 0, "curl: %d %s%s%s",
                 ran.status, ran.error, ran.out != NULL ? ran.out : "",
                 ran.err != NULL ? ran.err : "");
    doc = ran.json;
    sha256_hex("hello", 5, sha);
    cr_expect(doc != NULL && json_integer_value(json_object_get(doc, "body_length")) == 5 &&
                  json_str(doc, "body_sha256") != NULL &&
                  strcmp(json_str(doc, "body_sha256"), sha) == 0,
              "curl got: %s", ran.out);
}

/* Sends sig to the origin and expects it to exit 0 within EXIT_TIMEOUT_MS. */
static void expect_clean_exit(int sig)
{
    long started = now_ms();
    int st;

    if (sig != 0)
        cr_assert_eq(kill(origin.pid, sig), 0);
    else
        close_fd(&origin.stdin_w);
    st = wait_exit(origin.pid, EXIT_TIMEOUT_MS);
    cr_assert_neq(st, -1, "still running %d ms after signal %d", EXIT_TIMEOUT_MS, sig);
    origin.pid = -1; /* reaped */
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d, signal %d",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_expect_lt(now_ms() - started, 3000, "took %ld ms to stop", now_ms() - started);
}

Test(tborigin, sigterm, .description = "SIGTERM stops it with exit 0")
{
    origin_start_default();
    get("/healthz");
    expect_clean_exit(SIGTERM);
}

Test(tborigin, sigint, .description = "SIGINT stops it with exit 0")
{
    origin_start_default();
    expect_clean_exit(SIGINT);
}

Test(tborigin, sigterm_during_slow, .description = "SIGTERM with a slow request in flight")
{
    static const char req[] = "GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd;

    origin_start_default();
    fd = connect_origin();
    cr_assert_eq(send_all(fd, req, sizeof(req) - 1), 0);
    sleep_ms(100);
    expect_clean_exit(SIGTERM);
    close(fd);
}

Test(tborigin, stdin_eof, .description = "--exit-with-stdin: end of stdin stops it")
{
    origin_start_default();
    expect_clean_exit(0);
}

/* Runs tborigin with args (NULL-terminated, two at least) and expects it to exit with want. */
static void expect_exit(const char *const *args, int want)
{
    tbt_run_result_dispose(&ran);
    cr_assert_geq(tbt_run("tborigin", args, NULL, 0, EXIT_TIMEOUT_MS, &ran), 0, "%s", ran.error);
    cr_expect_eq(ran.status, want, "%s %s: exit %d, expected %d; stderr: %s", args[0],
                 args[1] != NULL ? args[1] : "", ran.status, want, ran.err);
}

Test(tborigin, bad_usage, .description = "bad arguments exit 2, an unusable address 1")
{
    const char *const bad_arg[] = {"--bogus", NULL};
    const char *const bad_delay[] = {"--delay-ms", "soon", NULL};
    const char *const bad_listen[] = {"--listen", "nowhere", NULL};
    const char *const *cases[] = {bad_arg, bad_delay, bad_listen};
    const int want[] = {2, 2, 1};
    int i;

    for (i = 0; i < 3; i++)
        expect_exit(cases[i], want[i]);
}

/* --- the federation demo: identity provider and relying party ---------------------------- */

/* Made-up Token Binding IDs (tborigin only hashes them): the client's IdP and RP keys, another. */
static const uint8_t id_idp[] = {0x02, 0x00, 0x41, 0x04, 0x11, 0x22, 0x33, 0x44};
static const uint8_t id_rp[] = {0x02, 0x00, 0x41, 0x04, 0x55, 0x66, 0x77, 0x88};
static const uint8_t id_other[] = {0x02, 0x00, 0x41, 0x04, 0x99, 0xaa, 0xbb, 0xcc};

#define B64(id, out) cr_assert_gt(tb_base64url_encode(id, sizeof(id), out, sizeof(out)), 0)

/* GET path with extra header lines (each ending in \r\n, or "") and Connection: close. */
static void get_h(const char *path, const char *extra)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n", path,
                     extra);

    cr_assert(n > 0 && (size_t)n < sizeof(req));
    exchange(req, (size_t)n);
}

/* The two forwarded-ID header lines for provided and referred (either may be NULL). */
static const char *binding_headers(const uint8_t *p, size_t plen, const uint8_t *r, size_t rlen)
{
    static char out[1024];
    char a[128] = "", b[128] = "";
    int n = 0;

    if (p != NULL)
        cr_assert_gt(tb_base64url_encode(p, plen, a, sizeof(a)), 0);
    if (r != NULL)
        cr_assert_gt(tb_base64url_encode(r, rlen, b, sizeof(b)), 0);
    if (p != NULL)
        n = snprintf(out, sizeof(out), "Sec-Provided-Token-Binding-ID: %s\r\n", a);
    else
        out[0] = '\0';
    if (r != NULL)
        snprintf(out + n, sizeof(out) - (size_t)n, "Sec-Referred-Token-Binding-ID: %s\r\n", b);
    return out;
}

#define IDS(p, r) binding_headers(p, sizeof(p), r, sizeof(r))

/* Writes a new key pair into keydir: idp.pem (P-256 private), rsa.pem (RSA-2048 private). */
static EVP_PKEY *make_idp_keys(void)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *keys[2] = {ec, rsa};
    const char *names[2] = {"idp.pem", "rsa.pem"};
    int i;

    cr_assert(ec != NULL && rsa != NULL);
    cr_assert_eq(tbt_tempdir("tborigin-idp", keydir, sizeof(keydir)), 0);
    for (i = 0; i < 2; i++) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long len;

        cr_assert_not_null(b);
        cr_assert_eq(PEM_write_bio_PrivateKey(b, keys[i], NULL, NULL, 0, NULL, NULL), 1);
        len = BIO_get_mem_data(b, &data);
        cr_assert_eq(tbt_write_file(keydir, names[i], data, (size_t)len), 0);
        BIO_free(b);
    }
    EVP_PKEY_free(rsa);
    return ec;
}

static const char *key_path(const char *name)
{
    static char buf[2][600];
    static int next;
    char *b = buf[next++ % 2];

    snprintf(b, sizeof(buf[0]), "%s/%s", keydir, name);
    return b;
}

/* The value of query parameter name in url (up to '&' or the end) into out, or "" if absent. */
static void query_param(const char *url, const char *name, char *out, size_t cap)
{
    const char *q = strchr(url, '?'), *p;
    size_t nlen = strlen(name), vlen;

    out[0] = '\0';
    for (p = q; p != NULL; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, name, nlen) == 0 && p[1 + nlen] == '=') {
            p += nlen + 2;
            vlen = strcspn(p, "&");
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, p, vlen);
            out[vlen] = '\0';
            return;
        }
    }
}

/* /idp/authorize for the given binding headers; expects a 302 and returns the code. */
static const char *authorize_code(const char *ids, const char *query)
{
    static char code[128];
    char path[1024];
    const char *loc;

    snprintf(path, sizeof(path), "/idp/authorize?redirect_uri=https%%3A%%2F%%2Frp.test%%2Fcb%s",
             query);
    get_h(path, ids);
    cr_assert_eq(resp.status, 302, "%s", resp.raw);
    loc = header("Location");
    cr_assert_not_null(loc, "%s", resp.raw);
    cr_assert_eq(strncmp(loc, "https://rp.test/cb?code=", 24), 0, "Location: %s", loc);
    query_param(loc, "code", code, sizeof(code));
    cr_assert_eq(strlen(code), 43, "a 32-byte base64url code: %s", loc);
    return code;
}

/* base64url-decodes s[0..n) into a new NUL-terminated buffer (*len bytes). */
static uint8_t *b64_decode(const char *s, size_t n, size_t *len)
{
    uint8_t *out = malloc(tb_base64url_decoded_max(n) + 1);
    int k;

    cr_assert_not_null(out);
    k = tb_base64url_decode(s, n, out, tb_base64url_decoded_max(n));
    cr_assert_geq(k, 0, "not base64url: %.*s", (int)n, s);
    out[k] = '\0';
    *len = (size_t)k;
    return out;
}

/*
 * Verifies a compact JWS independently of libtb's JWT code: header alg ES256, the R||S signature
 * over "header.payload" with key. Returns the claims (caller decrefs).
 */
static json_t *verify_es256(const char *jwt, EVP_PKEY *key)
{
    const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    uint8_t *hdr, *payload, *sig, *der = NULL;
    size_t hlen, plen, slen;
    ECDSA_SIG *es = ECDSA_SIG_new();
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    json_t *h, *claims;
    int derlen;

    cr_assert(dot1 != NULL && dot2 != NULL && strchr(dot2 + 1, '.') == NULL, "not a JWS: %s",
              jwt);
    hdr = b64_decode(jwt, (size_t)(dot1 - jwt), &hlen);
    payload = b64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &plen);
    sig = b64_decode(dot2 + 1, strlen(dot2 + 1), &slen);
    h = json_loads((char *)hdr, 0, NULL);
    cr_assert_str_eq(json_str(h, "alg"), "ES256", "header: %s", hdr);
    cr_assert_eq(slen, 64, "an ES256 signature is R||S, 64 bytes");
    cr_assert(es != NULL && md != NULL);
    cr_assert_eq(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
    derlen = i2d_ECDSA_SIG(es, &der);
    cr_assert_gt(derlen, 0);
    cr_assert_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    cr_expect_eq(EVP_DigestVerify(md, der, (size_t)derlen, (const unsigned char *)jwt,
                                  (size_t)(dot2 - jwt)),
                 1, "the ES256 signature does not verify with the IdP key");
    claims = json_loads((char *)payload, 0, NULL);
    cr_assert(json_is_object(claims), "claims: %s", payload);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    json_decref(h);
    free(hdr);
    free(payload);
    free(sig);
    return claims;
}

/* Starts an IdP origin with the test keys and the extra args (NULL-terminated). */
static EVP_PKEY *idp_start(const char *const *extra)
{
    const char *args[MAX_ARGS + 1] = {"--idp-key", NULL};
    EVP_PKEY *key = make_idp_keys();
    int n = 2;

    args[1] = key_path("idp.pem");
    for (; extra != NULL && *extra != NULL && n < MAX_ARGS - 4; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    origin_start(args);
    return key;
}

Test(tborigin, fed_disabled, .description = "without --idp-key / --idp-url those paths are 404")
{
    static const char *const paths[] = {"/idp/authorize?redirect_uri=https%3A%2F%2Fa%2F",
                                        "/idp/token?code=x", "/login", "/callback?code=x"};
    size_t i;

    origin_start_default();
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        get_h(paths[i], IDS(id_idp, id_rp));
        cr_expect_eq(resp.status, 404, "%s: %s", paths[i], resp.raw);
    }
}

Test(tborigin, idp_authorize_needs_bindings, .description = "/idp/authorize: both IDs, sane args")
{
    const char *ok = "/idp/authorize?redirect_uri=https%3A%2F%2Frp.test%2Fcb";
    char path[1024];

    EVP_PKEY_free(idp_start(NULL));
    get_h(ok, "");
    cr_expect_eq(resp.status, 400);
    cr_expect(strstr(resp.body, "no token binding") != NULL, "%s", resp.body);
    get_h(ok, binding_headers(id_idp, sizeof(id_idp), NULL, 0));
    cr_expect_eq(resp.status, 400);
    cr_expect_str_eq(resp.body, "no referred token binding: the relying party must send "
                                "Include-Referer-Token-Binding-ID\n");
    get_h(ok, "Sec-Provided-Token-Binding-ID: not*base64\r\n"
              "Sec-Referred-Token-Binding-ID: AgBBBA\r\n");
    cr_expect_eq(resp.status, 400, "a malformed ID: %s", resp.raw);
    get_h("/idp/authorize", IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "no redirect_uri: %s", resp.raw);
    get_h("/idp/authorize?redirect_uri=%2Fcb", IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "a relative redirect_uri: %s", resp.raw);
    get_h("/idp/authorize?redirect_uri=https%3A%2F%2Frp.test%2Fcb%0D%0AX%3A1", IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "CR LF in redirect_uri: %s", resp.raw);
    get_h("/idp/authorize?redirect_uri=https%3A%2F%2Frp.test%2Fcb%23frag", IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "a fragment: %s", resp.raw);
    snprintf(path, sizeof(path), "%s&user=a%%20b", ok);
    get_h(path, IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "user with a space: %s", resp.raw);
    get_h(ok, IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 302, "%s", resp.raw);
    cr_expect_str_eq(header("Cache-Control"), "no-store");
    cr_expect_null(header("Include-Referer-Token-Binding-ID"),
                   "the IdP's redirect back does not ask for a referral");
}

Test(tborigin, idp_token_flow, .description = "code -> ES256 JWT bound to the referred ID, once")
{
    const char *const extra[] = {"--idp-issuer", "https://idp.test", "--idp-audience", "rp-demo",
                                 NULL};
    char code[64], path[256], tbh_rp[TB_TBH_LEN + 1];
    EVP_PKEY *key = idp_start(extra);
    json_t *claims, *cnf;
    const char *loc;
    json_int_t iat, exp;

    snprintf(code, sizeof(code), "%s",
             authorize_code(IDS(id_idp, id_rp), "&state=x%20y%26z&user=alice"));
    loc = header("Location");
    cr_expect(strstr(loc, "&state=x%20y%26z") != NULL, "state re-encoded: %s", loc);
    snprintf(path, sizeof(path), "/idp/token?code=%s", code);
    get_h(path, IDS(id_idp, id_rp));
    cr_assert_eq(resp.status, 200, "%s", resp.raw);
    cr_expect_str_eq(header("Content-Type"), "application/json");
    cr_expect_str_eq(header("Cache-Control"), "no-store");
    cr_assert(json_is_object(resp.json), "%s", resp.body);
    cr_expect_str_eq(json_str(resp.json, "token_type"), "Bearer");
    cr_expect_eq(json_integer_value(json_object_get(resp.json, "expires_in")), 300);
    cr_assert_not_null(json_str(resp.json, "access_token"), "%s", resp.body);
    claims = verify_es256(json_str(resp.json, "access_token"), key);
    cr_expect_str_eq(json_str(claims, "iss"), "https://idp.test");
    cr_expect_str_eq(json_str(claims, "aud"), "rp-demo");
    cr_expect_str_eq(json_str(claims, "sub"), "alice");
    iat = json_integer_value(json_object_get(claims, "iat"));
    exp = json_integer_value(json_object_get(claims, "exp"));
    cr_expect(iat > 0 && iat <= (json_int_t)time(NULL) + 1 && exp == iat + 300, "iat %lld exp %lld",
              (long long)iat, (long long)exp);
    cnf = json_object_get(claims, "cnf");
    cr_assert_eq(tb_tbh(id_rp, sizeof(id_rp), tbh_rp, sizeof(tbh_rp)), TB_TBH_LEN);
    cr_expect_str_eq(json_str(cnf, "tbh"), tbh_rp, "cnf.tbh is the tbh of the REFERRED ID");
    json_decref(claims);

    get_h(path, IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "a code is single-use: %s", resp.raw);
    cr_expect_str_eq(json_str(resp.json, "error"), "invalid_grant", "%s", resp.body);
    get_h("/idp/token?code=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "an unknown code: %s", resp.raw);
    get_h("/idp/token", IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "no code: %s", resp.raw);
    cr_expect_str_eq(json_str(resp.json, "error"), "invalid_grant", "%s", resp.body);
    EVP_PKEY_free(key);
}

Test(tborigin, idp_token_same_bindings, .description = "/idp/token wants the IDs /authorize saw")
{
    char code[64], path[256];
    json_t *claims;
    EVP_PKEY *key = idp_start(NULL);

    snprintf(code, sizeof(code), "%s", authorize_code(IDS(id_idp, id_rp), ""));
    snprintf(path, sizeof(path), "/idp/token?code=%s", code);
    get_h(path, binding_headers(id_idp, sizeof(id_idp), NULL, 0));
    cr_expect_eq(resp.status, 400, "no referred ID: %s", resp.raw);
    cr_expect(strstr(resp.body, "no referred token binding") != NULL, "%s", resp.body);
    get_h(path, "");
    cr_expect_eq(resp.status, 400, "no IDs: %s", resp.raw);
    get_h(path, IDS(id_other, id_rp));
    cr_expect_eq(resp.status, 400, "another provided ID: %s", resp.raw);
    get_h(path, IDS(id_idp, id_other));
    cr_expect_eq(resp.status, 400, "another referred ID: %s", resp.raw);
    get_h(path, IDS(id_rp, id_idp));
    cr_expect_eq(resp.status, 400, "swapped: %s", resp.raw);
    cr_expect_str_eq(json_str(resp.json, "error"), "invalid_grant", "%s", resp.body);
    /* none of that consumed the code: its client still gets the token */
    get_h(path, IDS(id_idp, id_rp));
    cr_assert_eq(resp.status, 200, "%s", resp.raw);
    claims = verify_es256(json_str(resp.json, "access_token"), key);
    cr_expect_str_eq(json_str(claims, "sub"), "demo-user");
    cr_expect_str_eq(json_str(claims, "aud"), "https://rp.test", "default aud: redirect origin");
    cr_expect_str_eq(json_str(claims, "iss"), "http://127.0.0.1", "default iss: this origin");
    json_decref(claims);
    EVP_PKEY_free(key);
}

Test(tborigin, idp_code_expires, .description = "--idp-code-ttl 1: a code is dead after 1 s")
{
    const char *const extra[] = {"--idp-code-ttl", "1", NULL};
    char path[256];

    EVP_PKEY_free(idp_start(extra));
    snprintf(path, sizeof(path), "/idp/token?code=%s", authorize_code(IDS(id_idp, id_rp), ""));
    sleep_ms(2100);
    get_h(path, IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "%s", resp.raw);
    cr_expect(strstr(resp.body, "expired") != NULL, "%s", resp.body);
}

Test(tborigin, idp_code_table_bounded, .description = "1100 codes: the oldest are evicted")
{
    enum { TOTAL = 1100, BATCH = 100 };
    char first[64], last[64], path[256], req[BATCH * 400], *p;
    int b, i, n;

    EVP_PKEY_free(idp_start(NULL));
    snprintf(first, sizeof(first), "%s", authorize_code(IDS(id_idp, id_rp), ""));
    for (b = 0; b < TOTAL / BATCH; b++) { /* pipelined, BATCH per connection */
        for (i = 0, n = 0; i < BATCH; i++)
            n += snprintf(req + n, sizeof(req) - (size_t)n,
                          "GET /idp/authorize?redirect_uri=https%%3A%%2F%%2Frp.test%%2F "
                          "HTTP/1.1\r\nHost: x\r\n%s%s\r\n",
                          IDS(id_idp, id_rp), i == BATCH - 1 ? "Connection: close\r\n" : "");
        cr_assert_lt((size_t)n, sizeof(req));
        exchange_raw(req, (size_t)n);
        for (i = 0, p = resp.raw; (p = strstr(p, "HTTP/1.1 302")) != NULL; p++)
            i++;
        cr_assert_eq(i, BATCH, "%d redirects in batch %d", i, b);
    }
    snprintf(last, sizeof(last), "%s", authorize_code(IDS(id_idp, id_rp), ""));
    snprintf(path, sizeof(path), "/idp/token?code=%s", first);
    get_h(path, IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 400, "the first code was evicted: %s", resp.raw);
    snprintf(path, sizeof(path), "/idp/token?code=%s", last);
    get_h(path, IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 200, "the last code works: %s", resp.raw);
}

Test(tborigin, idp_bad_key, .description = "--idp-key must be a P-256 private key; bad URLs exit 1")
{
    const char *const missing[] = {"--idp-key", "/nonexistent/idp.pem", NULL};
    const char *rsa[] = {"--idp-key", NULL, NULL};
    const char *const bad_url[] = {"--idp-url", "idp.test", NULL};
    const char *const bad_ttl[] = {"--idp-code-ttl", "0", NULL};
    const char *const *cases[] = {missing, rsa, bad_url, bad_ttl};
    const int want[] = {1, 1, 1, 2};
    int i;

    EVP_PKEY_free(make_idp_keys());
    rsa[1] = key_path("rsa.pem");
    for (i = 0; i < 4; i++)
        expect_exit(cases[i], want[i]);
}

Test(tborigin, rp_login_callback, .description = "/login and /callback send the client to the IdP")
{
    const char *const extra[] = {"--idp-url", "https://idp.test:9443/", NULL};

    origin_start(extra);
    get_h("/login", "X-Forwarded-Proto: https\r\n");
    cr_assert_eq(resp.status, 302, "%s", resp.raw);
    cr_expect_str_eq(header("Location"), "https://idp.test:9443/idp/authorize?redirect_uri="
                                         "https%3A%2F%2F127.0.0.1%2Fcallback");
    cr_expect_null(header("Include-Referer-Token-Binding-ID"),
                   "tborigin leaves the referral to the proxy route");
    get_h("/login?user=bob", "");
    cr_expect_str_eq(header("Location"), "https://idp.test:9443/idp/authorize?redirect_uri="
                                         "http%3A%2F%2F127.0.0.1%2Fcallback&user=bob");
    exchange("GET /login HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
             sizeof("GET /login HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n") - 1);
    cr_expect_eq(resp.status, 400, "an odd Host: %s", resp.raw);
    get_h("/callback?code=abc-_DEF&state=s", "");
    cr_assert_eq(resp.status, 302, "%s", resp.raw);
    cr_expect_str_eq(header("Location"), "https://idp.test:9443/idp/token?code=abc-_DEF");
    cr_expect_null(header("Include-Referer-Token-Binding-ID"));
    get_h("/callback?code=a%26b", "");
    cr_expect_str_eq(header("Location"), "https://idp.test:9443/idp/token?code=a%26b");
    get_h("/callback", "");
    cr_expect_eq(resp.status, 400, "%s", resp.raw);
    get_h("/idp/authorize?redirect_uri=https%3A%2F%2Fa%2F", IDS(id_idp, id_rp));
    cr_expect_eq(resp.status, 404, "an RP only is no IdP: %s", resp.raw);
}

Test(tborigin, api_echoes, .description = "/api/... answers like /echo")
{
    origin_start_default();
    get_h("/api/me?x=1", "X-Auth-Sub: alice\r\n");
    cr_assert_eq(resp.status, 200, "%s", resp.raw);
    cr_expect_str_eq(json_str(resp.json, "path"), "/api/me");
    cr_expect_str_eq(json_str(json_object_get(resp.json, "headers"), "x-auth-sub"), "alice");
    get("/apix");
    cr_expect_eq(resp.status, 404);
}
