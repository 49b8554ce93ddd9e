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
