/*
 * Test support: HTTP heads built in place (see heads.h).
 */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

#include "heads.h"

void tbt_head_add(struct tbt_head *t, const char *name, const char *value)
{
    cr_assert_lt(t->h.n_headers, TBT_HEAD_MAX);
    t->f[t->h.n_headers++] = (struct tbp_header){{name, strlen(name)}, {value, strlen(value)}};
}

/* The name, value pairs of ap, up to a NULL name. */
static void add_pairs(struct tbt_head *t, va_list ap)
{
    const char *n, *v;

    while ((n = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        tbt_head_add(t, n, v);
    }
}

void tbt_head_req(struct tbt_head *t, ...)
{
    va_list ap;

    memset(t, 0, sizeof(*t));
    t->h.is_request = 1;
    t->h.method = (struct tbp_str){"GET", 3};
    t->h.target = (struct tbp_str){"/", 1};
    t->h.version_major = t->h.version_minor = 1;
    t->h.keep_alive = 1;
    t->h.headers = t->f;
    tbt_head_add(t, "Host", "example.com");
    va_start(ap, t);
    add_pairs(t, ap);
    va_end(ap);
}

void tbt_head_resp(struct tbt_head *t, int status, ...)
{
    va_list ap;

    memset(t, 0, sizeof(*t));
    t->h.status = status;
    t->h.reason = (struct tbp_str){"X", 1};
    t->h.version_major = t->h.version_minor = 1;
    t->h.headers = t->f;
    va_start(ap, status);
    add_pairs(t, ap);
    va_end(ap);
}

const char *tbt_head_field(const struct tbp_http_head *h, const char *name)
{
    static char bufs[4][16384];
    static int k;
    size_t i, len = strlen(name);

    for (i = 0; i < h->n_headers; i++) {
        const struct tbp_header *f = &h->headers[i];
        if (f->name.len == len && strncasecmp(f->name.p, name, len) == 0) {
            char *b = bufs[k++ & 3];
            cr_assert_lt(f->value.len, sizeof(bufs[0]));
            memcpy(b, f->value.p, f->value.len);
            b[f->value.len] = '\0';
            return b;
        }
    }
    return NULL;
}

size_t tbt_head_count(const struct tbp_http_head *h, const char *name)
{
    size_t i, n = 0, len = strlen(name);

    for (i = 0; i < h->n_headers; i++)
        n += h->headers[i].name.len == len && strncasecmp(h->headers[i].name.p, name, len) == 0;
    return n;
}
