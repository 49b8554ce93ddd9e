/*
 * Test support: driving a real tbproxy from a test, the small steps every integration test
 * repeated: memory that lives until the .fini, the tail of the proxy's log for a failure message,
 * stopping the proxy with its log checked, and HTTP/1.1 and HTTP/2 exchanges with a confproxy.h
 * instance, signed with a P-256 Token Binding key the test holds.
 *
 * Like world.h and confproxy.h these call Criterion: a connection or exchange that fails fails
 * the test with the proxy's log in the message. Memory handed to tbt_keep (and what tbt_fmt and
 * the connects return) is freed by tbt_keep_free, which the suite's .fini calls, so a failed
 * assertion leaks nothing:
 *
 *     static void fini(void) { tbt_keep_free(); tbt_confproxy_stop(&px); tbt_world_teardown(&w); }
 *
 * Not thread-safe: one test thread, one set of kept blocks.
 */
#ifndef TBT_DRIVE_H
#define TBT_DRIVE_H

#include <stddef.h>

#include <openssl/evp.h>

#include "confproxy.h"
#include "h2test.h"
#include "proc.h"
#include "tlsclient.h"

#define TBT_KEEP_MAX 64        /* blocks kept at once, between two tbt_keep_free */
#define TBT_DRIVE_RUN_MS 15000 /* one h2 exchange */

/* p (malloc'd, not NULL: asserted) is freed by tbt_keep_free. Returns p. */
void *tbt_keep(void *p);

/* A printf'd string, kept. */
char *tbt_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* Frees what was kept. For the .fini. */
void tbt_keep_free(void);

/* The last 4095 bytes of p's log, in a static buffer the next call overwrites ("" when it cannot
 * be read): for failure messages. */
const char *tbt_log_tail(const struct tbt_proc *p);

/* Stops p when it was started (SIGTERM, then SIGKILL) and flags sanitizer reports in its log
 * (tbt_world_check_log). Safe when never started or already stopped. */
void tbt_drive_stop(struct tbt_proc *p);

/* An HTTP/1.1 connection to px: with Token Binding ("http/1.1_tb_p256" negotiated) when key is
 * not NULL, and *hdr its Token-Binding value signed with key (kept); plain "http/1.1" and *hdr
 * NULL otherwise. */
void tbt_drive_h1_connect(const struct tbt_confproxy *px, struct tbt_tls *c, EVP_PKEY *key,
                          char **hdr);

/* GET target on c with Host host, the Token-Binding header when tb is not NULL and the lines in
 * extra (each with its CRLF; NULL: none); the response in *r (the caller disposes of it). */
void tbt_drive_h1_get(const struct tbt_confproxy *px, struct tbt_tls *c, const char *tb,
                      const char *host, const char *target, const char *extra,
                      struct tbt_http_response *r);

/* An HTTP/2 connection to px with :authority authority (NULL: h2test's default): with Token
 * Binding ("h2_tb_p256") when key is not NULL, *hdr as for tbt_drive_h1_connect. */
void tbt_drive_h2_connect(const struct tbt_confproxy *px, struct tbt_h2 *h, EVP_PKEY *key,
                          const char *authority, char **hdr);

/* GET path on h with the Token-Binding field first when tb is not NULL, then the fields in extra
 * (name, value, ..., NULL; 14 strings at most, the Token-Binding pair included); run to its end
 * within TBT_DRIVE_RUN_MS. */
struct tbt_h2_stream *tbt_drive_h2_get(const struct tbt_confproxy *px, struct tbt_h2 *h,
                                       const char *tb, const char *path, const char *const *extra);

#endif
