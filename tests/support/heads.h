/*
 * Test support: HTTP heads (struct tbp_http_head, src/proxy/http.h) built in place for unit tests
 * of the proxy's request and response code, without a parser. The fields point at the strings
 * given, which must outlive the head. Assertions are Criterion's (a head that overflows fails the
 * test).
 *
 *     struct tbt_head t;
 *     tbt_head_req(&t, "Cookie", "a=1", "Accept", "* / *", NULL);
 *     ... code under test reads &t.h ...
 */
#ifndef TBT_HEADS_H
#define TBT_HEADS_H

#include "http.h"

#define TBT_HEAD_MAX 600 /* fields of one head */

struct tbt_head {
    struct tbp_http_head h;
    struct tbp_header f[TBT_HEAD_MAX];
};

/* Appends one field. */
void tbt_head_add(struct tbt_head *t, const char *name, const char *value);

/* "GET / HTTP/1.1" (keep-alive), "Host: example.com", then the name, value pairs given
 * (NULL-terminated). */
void tbt_head_req(struct tbt_head *t, ...);

/* An HTTP/1.1 response head of `status` (reason "X") with the name, value pairs given
 * (NULL-terminated). */
void tbt_head_resp(struct tbt_head *t, int status, ...);

/* The value of the first field called name (any case), NUL-terminated in one of four rotating
 * static buffers (16 KiB each), or NULL when there is none. */
const char *tbt_head_field(const struct tbp_http_head *h, const char *name);

/* How many fields are called name (any case). */
size_t tbt_head_count(const struct tbp_http_head *h, const char *name);

#endif
