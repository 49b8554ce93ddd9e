/*
 * Test support: tbproxy instances started from a configuration the test writes, beside a world
 * (world.h) that provides the directory, the certificate and the origin. The world's own proxy
 * has a fixed catch-all route; tests of per-route settings (the companion module's bind_cookies,
 * jwt, refer_token_binding, ...) and tests that need two proxies (federation: a relying party
 * and an identity provider) start these instead, as many as they need.
 *
 * Each instance writes <dir>/<name>.conf:
 *
 *     workers = 1;
 *     listen = ( { address = "127.0.0.1:<free port>";
 *                  tls = { cert = "cert.pem"; key = "key.pem"; }; } );
 *     token_binding = { enabled = true; version = "draft";
 *                       key_types = [ "p256", "rsa2048" ]; };
 *     upstreams = { app = { servers = [ "127.0.0.1:<upstream port>" ]; }; };
 *     log = { error = "-"; access = "-"; level = "info"; };
 *     admin = { listen = ""; };          (tbt_confproxy_start_admin: "127.0.0.1:<free port>")
 *     <body>
 *
 * where the upstream port is the world's origin or another one the test started (federation: an
 * identity provider's origin behind a second instance), and body holds the routes and any other
 * top-level setting (cookie_keys, limits, ...); relative file names in it (key files the test wrote
 * into w->dir) resolve against w->dir. Output, the access log included, goes to <dir>/<name>.log. A
 * proxy that exits before accepting (its free port taken meanwhile) is retried on another port, as
 * world.c does.
 *
 * Like world.h these call Criterion: an instance that cannot be started fails the test with its
 * log in the message. The processes are in proc.h's registry, so tbt_world_teardown (through
 * tbt_proc_kill_all) stops whatever is left; tbt_confproxy_stop stops one and checks its log for
 * sanitizer reports.
 */
#ifndef TBT_CONFPROXY_H
#define TBT_CONFPROXY_H

#include "proc.h"
#include "world.h"

struct tbt_confproxy {
    struct tbt_proc proc;
    int port;        /* where it listens on 127.0.0.1 */
    int admin_port;  /* its admin server on 127.0.0.1 (tbt_confproxy_start_admin), else 0 */
    char name[64];   /* the log and config base name */
    char conf[4096]; /* absolute path of its config file */
};

/* Starts an instance named name (letters, digits, '-', '_') with the given config body, in front
 * of 127.0.0.1:upstream_port (0: the world's origin). */
void tbt_confproxy_start(struct tbt_world *w, struct tbt_confproxy *p, const char *name,
                         int upstream_port, const char *body);

/* tbt_confproxy_start with the admin server on another free port, p->admin_port; started once
 * the proxy's log says the admin server runs. */
void tbt_confproxy_start_admin(struct tbt_world *w, struct tbt_confproxy *p, const char *name,
                               int upstream_port, const char *body);

/* Stops it (SIGTERM, then SIGKILL) and flags sanitizer reports in its log. Safe when never
 * started or already stopped. */
void tbt_confproxy_stop(struct tbt_confproxy *p);

/* Its whole log (the access log included), malloc'd, NUL-terminated; the caller frees it. */
char *tbt_confproxy_log(const struct tbt_confproxy *p);

#endif
