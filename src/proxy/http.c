/*
 * Small helpers over the shared HTTP message model (see http.h).
 */
#include "http.h"

int tbp_http_name_eq(struct tbp_str name, const char *lower)
{
    size_t i;

    for (i = 0; i < name.len; i++) {
        char c = name.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (lower[i] == '\0' || c != lower[i])
            return 0;
    }
    return lower[i] == '\0';
}

const struct tbp_header *tbp_http_find(const struct tbp_http_head *h, const char *lower)
{
    size_t i;

    for (i = 0; i < h->n_headers; i++)
        if (tbp_http_name_eq(h->headers[i].name, lower))
            return &h->headers[i];
    return NULL;
}

size_t tbp_http_count(const struct tbp_http_head *h, const char *lower)
{
    size_t i, n = 0;

    for (i = 0; i < h->n_headers; i++)
        n += tbp_http_name_eq(h->headers[i].name, lower);
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A byte that must never arrive %-encoded: unreserved (RFC 3986 2.3), or one that changes the
 * path's structure once decoded. */
static int must_not_be_encoded(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '\\';
}

int tbp_http_path_normal(const char *p, size_t n)
{
    size_t i, seg = 0; /* start of the current segment */

    if (n == 0 || p[0] != '/')
        return 1;
    for (i = 1; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t len = i - seg - 1; /* the segment between p[seg] == '/' and here */
            const char *s = p + seg + 1;
            if ((len == 0 && i < n) || (len == 1 && s[0] == '.') ||
                (len == 2 && s[0] == '.' && s[1] == '.'))
                return 0;
            seg = i;
            continue;
        }
        if (p[i] == '\\')
            return 0;
        if (p[i] == '%') {
            int hi, lo;
            if (i + 2 >= n) /* needs two more bytes */
                return 0;
            hi = hexval(p[i + 1]);
            lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0 || must_not_be_encoded(hi * 16 + lo))
                return 0;
            i += 2;
        }
    }
    return 1;
}
