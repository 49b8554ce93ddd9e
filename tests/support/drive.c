/*
 * The steps integration tests repeat when they drive a real tbproxy (see drive.h). Kept blocks
 * are a fixed table, so keeping never allocates and a full table is a failed assertion, not a
 * leak.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "drive.h"
#include "tb/tb.h"
#include "world.h"

#define HDR_CAP (TB_MAX_HEADER + 1)
#define ALPN_H1_TB "http/1.1_tb_p256,http/1.1"
#define ALPN_H2_TB "h2_tb_p256,h2"

static void *blocks[TBT_KEEP_MAX];
static size_t n_blocks;

void *tbt_keep(void *p)
{
    cr_assert_not_null(p);
    cr_assert_lt(n_blocks, sizeof(blocks) / sizeof(blocks[0]));
    blocks[n_blocks++] = p;
    return p;
}

char *tbt_fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, f);
    n = vasprintf(&s, f, ap);
    va_end(ap);
    cr_assert_gt(n, -1);
    return tbt_keep(s);
}

void tbt_keep_free(void)
{
    size_t i;

    for (i = 0; i < n_blocks; i++)
        free(blocks[i]);
    n_blocks = 0;
}

const char *tbt_log_tail(const struct tbt_proc *p)
{
    static char buf[4096];
    char *log = tbt_proc_log(p, sizeof(buf) - 1);

    snprintf(buf, sizeof(buf), "%s", log != NULL ? log : "");
    free(log);
    return buf;
}

void tbt_drive_stop(struct tbt_proc *p)
{
    if (p->pid > 0 || p->log[0] != '\0') {
        tbt_proc_stop(p);
        tbt_world_check_log(p);
    }
}

void tbt_drive_h1_connect(const struct tbt_confproxy *px, struct tbt_tls *c, EVP_PKEY *key,
                          char **hdr)
{
    struct tbt_tls_opts o = {.alpn = key != NULL ? ALPN_H1_TB : "http/1.1"};

    cr_assert_eq(tbt_tls_connect(c, (uint16_t)px->port, &o), 0, "connect: %s; %s", c->err,
                 tbt_log_tail(&px->proc));
    *hdr = NULL;
    if (key == NULL) {
        cr_assert_str_eq(c->alpn, "http/1.1");
        return;
    }
    cr_assert_str_eq(c->alpn, "http/1.1_tb_p256");
    *hdr = tbt_keep(malloc(HDR_CAP));
    cr_assert_gt(tbt_tls_tb_header(c, TB_KP_ECDSAP256, key, -1, NULL, *hdr, HDR_CAP), 0, "%s",
                 c->err);
}

void tbt_drive_h1_get(const struct tbt_confproxy *px, struct tbt_tls *c, const char *tb,
                      const char *host, const char *target, const char *extra,
                      struct tbt_http_response *r)
{
    char *req =
        tbt_fmt("GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%s%s\r\n", target, host,
                tb ? "Token-Binding: " : "", tb ? tb : "", tb ? "\r\n" : "", extra ? extra : "");

    cr_assert_eq(tbt_tls_send_str(c, req), 0, "send: %s", c->err);
    cr_assert_eq(tbt_tls_read_response(c, r, 0, 0), 0, "%s %s: %s; %s", host, target, c->err,
                 tbt_log_tail(&px->proc));
}

void tbt_drive_h2_connect(const struct tbt_confproxy *px, struct tbt_h2 *h, EVP_PKEY *key,
                          const char *authority, char **hdr)
{
    struct tbt_h2_opts o = {.alpn = key != NULL ? ALPN_H2_TB : "h2", .authority = authority};

    cr_assert_eq(tbt_h2_connect(h, (uint16_t)px->port, &o), 0, "h2 connect: %s; %s", h->err,
                 tbt_log_tail(&px->proc));
    *hdr = NULL;
    if (key == NULL)
        return;
    cr_assert_str_eq(h->tls.alpn, "h2_tb_p256");
    *hdr = tbt_keep(malloc(HDR_CAP));
    cr_assert_gt(tbt_tls_tb_header(&h->tls, TB_KP_ECDSAP256, key, -1, NULL, *hdr, HDR_CAP), 0, "%s",
                 h->tls.err);
}

struct tbt_h2_stream *tbt_drive_h2_get(const struct tbt_confproxy *px, struct tbt_h2 *h,
                                       const char *tb, const char *path, const char *const *extra)
{
    const char *fields[16];
    size_t n = 0;
    int32_t id;

    if (tb != NULL) {
        fields[n++] = "token-binding";
        fields[n++] = tb;
    }
    while (extra != NULL && *extra != NULL && n < 14)
        fields[n++] = *extra++;
    fields[n] = NULL;
    id = tbt_h2_submit(h, "GET", path, fields, NULL, 0);
    cr_assert_gt(id, 0, "submit: %s", h->err);
    cr_assert_eq(tbt_h2_run(h, &id, 1, TBT_DRIVE_RUN_MS), 0, "%s: %s; %s", path, h->err,
                 tbt_log_tail(&px->proc));
    return tbt_h2_stream(h, id);
}
