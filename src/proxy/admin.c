/*
 * The admin HTTP server (see admin.h).
 *
 * We bind the socket ourselves (clear error messages, port 0 for tests, before privileges are
 * dropped) and hand it to libmicrohttpd, which runs one internal polling thread: every request is
 * answered on that thread, so the callbacks never run two at a time. Each answer is built whole in
 * memory once the request head is in (no request here has a body worth reading; one that comes
 * anyway is not read, MHD closes that connection after the answer) and handed to MHD, which frees
 * it. The draining flag is the only state shared with other threads: an int read and
 * written with relaxed atomics.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "metrics.h"

struct tbp_admin {
    struct MHD_Daemon *d;
    struct tbp_admin_ops ops;
    uint16_t port;
    int draining;
};

/* --- answers -------------------------------------------------------------------------------- */

/* Queues body[0..len) with the given status and content type. mode: MHD_RESPMEM_PERSISTENT for
 * static text, MHD_RESPMEM_MUST_FREE for malloc'd memory (freed here if the response cannot be
 * made). allow: the Allow header, or NULL. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
                              char *body, size_t len, enum MHD_ResponseMemoryMode mode,
                              const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    enum MHD_Result ret = MHD_NO;

    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
        (allow == NULL || MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES))
        ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* A short static text answer. */
static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *s,
                            const char *allow)
{
    return answer(c, status, "text/plain; charset=utf-8", (char *)s, strlen(s),
                  MHD_RESPMEM_PERSISTENT, allow);
}

static enum MHD_Result metrics(struct tbp_admin *a, struct MHD_Connection *c)
{
    struct tbp_buf b;
    char *body;
    size_t len;

    tbp_buf_init(&b, TBP_ADMIN_METRICS_MAX);
    if (a->ops.metrics(a->ops.ctx, &b) != 0) {
        tbp_buf_dispose(&b);
        return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n", NULL);
    }
    if (b.p == NULL)
        return answer(c, MHD_HTTP_OK, TBP_METRICS_CONTENT_TYPE, (char *)"", 0,
                      MHD_RESPMEM_PERSISTENT, NULL);
    body = b.p; /* MHD takes the buffer: it was malloc'd by tbp_buf */
    len = b.len;
    return answer(c, MHD_HTTP_OK, TBP_METRICS_CONTENT_TYPE, body, len, MHD_RESPMEM_MUST_FREE, NULL);
}

/* s as a JSON string, or null when it is empty or not UTF-8. */
static json_t *string_or_null(const char *s)
{
    json_t *j = s[0] != '\0' ? json_string(s) : NULL;

    return j != NULL ? j : json_null();
}

static enum MHD_Result status(struct tbp_admin *a, struct MHD_Connection *c)
{
    struct tbp_admin_status st;
    json_t *o;
    char *body;
    int64_t now = (int64_t)time(NULL);

    memset(&st, 0, sizeof(st));
    a->ops.status(a->ops.ctx, &st);
    st.version[sizeof(st.version) - 1] = '\0';
    st.config_file[sizeof(st.config_file) - 1] = '\0';
    o = json_object();
    if (o == NULL || json_object_set_new(o, "version", string_or_null(st.version)) != 0 ||
        json_object_set_new(o, "uptime_seconds",
                            json_integer(now > st.start_time ? now - st.start_time : 0)) != 0 ||
        json_object_set_new(o, "start_time", json_integer(st.start_time)) != 0 ||
        json_object_set_new(o, "workers", json_integer(st.workers)) != 0 ||
        json_object_set_new(o, "connections_active",
                            json_integer((json_int_t)st.connections_active)) != 0 ||
        json_object_set_new(o, "config_file", string_or_null(st.config_file)) != 0 ||
        json_object_set_new(o, "config_loaded", json_integer(st.config_loaded)) != 0 ||
        json_object_set_new(o, "draining",
                            json_boolean(__atomic_load_n(&a->draining, __ATOMIC_RELAXED))) != 0 ||
        (body = json_dumps(o, JSON_COMPACT)) == NULL) {
        json_decref(o);
        return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "status unavailable\n", NULL);
    }
    json_decref(o);
    /* json_dumps uses jansson's allocator, malloc unless json_set_alloc_funcs changed it (we
     * never do): MHD frees it with free() */
    return answer(c, MHD_HTTP_OK, "application/json", body, strlen(body), MHD_RESPMEM_MUST_FREE,
                  NULL);
}

/* --- dispatch ------------------------------------------------------------------------------- */

enum route { R_NONE, R_METRICS, R_HEALTHZ, R_READYZ, R_STATUS };

static enum route route_of(const struct tbp_admin *a, const char *url)
{
    if (strcmp(url, "/metrics") == 0)
        return a->ops.metrics != NULL ? R_METRICS : R_NONE;
    if (strcmp(url, "/healthz") == 0)
        return R_HEALTHZ;
    if (strcmp(url, "/readyz") == 0)
        return R_READYZ;
    if (strcmp(url, "/status") == 0)
        return a->ops.status != NULL ? R_STATUS : R_NONE;
    return R_NONE;
}

/* Does the request announce a body? (Content-Length other than "0", or any Transfer-Encoding.) */
static int has_body(struct MHD_Connection *c)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return (cl != NULL && strcmp(cl, "0") != 0) ||
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
               NULL;
}

/* MHD calls the handler first when the head has arrived, then with body bytes if any, then once
 * more with none; a response can be queued on the first call or the last. Requests without a
 * body are answered on the last call (answering on the first would make MHD close a kept-alive
 * connection). A request with a body is answered on the first call, without reading the body
 * (MHD closes that connection after the answer): 404 / 405 as for any request, 413 for a GET or
 * HEAD with a body. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **req_cls)
{
    static int seen;
    struct tbp_admin *a = cls;
    enum route r = route_of(a, url);
    int body = 0;

    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        if (!(body = has_body(c))) {
            *req_cls = &seen;
            return MHD_YES;
        }
    } else if (*upload_size != 0) {
        return MHD_NO; /* body bytes no header announced: cannot happen, close */
    }
    if (r == R_NONE)
        return text(c, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    if (body)
        return text(c, MHD_HTTP_CONTENT_TOO_LARGE, "no request body expected\n", NULL);
    switch (r) {
    case R_METRICS:
        return metrics(a, c);
    case R_HEALTHZ:
        return text(c, MHD_HTTP_OK, "ok\n", NULL);
    case R_READYZ:
        return __atomic_load_n(&a->draining, __ATOMIC_RELAXED)
                   ? text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "draining\n", NULL)
                   : text(c, MHD_HTTP_OK, "ready\n", NULL);
    case R_STATUS:
        return status(a, c);
    case R_NONE:
        break;
    }
    return MHD_NO;
}

/* --- start / stop --------------------------------------------------------------------------- */

/* "127.0.0.1:9901" / "[::1]:9901" for messages. */
static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", host, port);
    } else {
        const struct sockaddr_in *s4 = (const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%u", host, port);
    }
}

/* A listening socket on addr; sets *port to the port bound. -1 with err filled. */
static int listen_on(const struct sockaddr *addr, socklen_t len, uint16_t *port, char *err,
                     size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char shown[INET6_ADDRSTRLEN + 16];
    int fd, one = 1;

    addr_text(addr, shown, sizeof(shown));
    fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
        bind(fd, addr, len) == -1 || listen(fd, 64) == -1 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
        snprintf(err, errlen, "admin %s: %s", shown, strerror(errno));
        if (fd != -1)
            close(fd);
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

struct tbp_admin *tbp_admin_start(const struct sockaddr *addr, socklen_t len,
                                  const struct tbp_admin_ops *ops, char *err, size_t errlen)
{
    struct tbp_admin *a = NULL;
    unsigned flags;
    int fd = -1;

    if (addr == NULL || ops == NULL ||
        (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
        len < (addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6))) {
        snprintf(err, errlen, "admin: bad listen address");
        goto Exit;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        snprintf(err, errlen, "admin: out of memory");
        goto Exit;
    }
    a->ops = *ops;
    if ((fd = listen_on(addr, len, &a->port, err, errlen)) == -1)
        goto Exit;
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
            (addr->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* clang-format off */
    a->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, a,
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)TBP_ADMIN_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)TBP_ADMIN_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TBP_ADMIN_CONN_MEMORY,
                            MHD_OPTION_END);
    /* clang-format on */
    if (a->d == NULL) {
        snprintf(err, errlen, "admin: the HTTP server did not start");
        /* whether MHD closed the socket it was given on this path varies across versions */
        if (fcntl(fd, F_GETFD) != -1)
            close(fd);
        goto Exit;
    }
    return a;
Exit:
    free(a);
    return NULL;
}

uint16_t tbp_admin_port(const struct tbp_admin *a)
{
    return a->port;
}

void tbp_admin_set_draining(struct tbp_admin *a, int draining)
{
    __atomic_store_n(&a->draining, draining ? 1 : 0, __ATOMIC_RELAXED);
}

void tbp_admin_stop(struct tbp_admin *a)
{
    if (a == NULL)
        return;
    MHD_stop_daemon(a->d); /* joins the thread, closes every connection and the listen socket */
    free(a);
}
