/*
 * tbproxy instances from a test's own configuration (see confproxy.h). The config file is written
 * again for every start attempt, each with a fresh free port; readiness is the port accepting,
 * as for the world's proxy (and, with an admin server, its line in the log: the listeners accept
 * before it starts, and a proxy whose admin port was taken exits).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "confproxy.h"
#include "drive.h"

static void write_config(struct tbt_world *w, struct tbt_confproxy *p, int upstream_port,
                         const char *body)
{
    char file[128], admin[64] = "", *text = NULL;
    int n;

    if (p->admin_port > 0)
        snprintf(admin, sizeof(admin), "127.0.0.1:%d", p->admin_port);
    n = asprintf(&text,
                 "# written by tests/support/confproxy.c\n"
                 "workers = 1;\n"
                 "listen = ( { address = \"127.0.0.1:%d\";\n"
                 "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; } );\n"
                 "token_binding = { enabled = true; version = \"draft\";\n"
                 "                  key_types = [ \"p256\", \"rsa2048\" ]; };\n"
                 "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ];\n"
                 "                      connect_timeout = \"2s\"; read_timeout = \"30s\"; }; };\n"
                 "log = { error = \"-\"; access = \"-\"; level = \"info\"; };\n"
                 "admin = { listen = \"%s\"; };\n"
                 "%s\n",
                 p->port, upstream_port > 0 ? upstream_port : w->origin_port, admin,
                 body != NULL ? body : "");
    cr_assert(n > 0 && text != NULL);
    snprintf(file, sizeof(file), "%s.conf", p->name);
    cr_assert_eq(tbt_write_file(w->dir, file, text, (size_t)n), 0);
    free(text);
    snprintf(p->conf, sizeof(p->conf), "%s/%s", w->dir, file);
}

static void start(struct tbt_world *w, struct tbt_confproxy *p, const char *name, int upstream_port,
                  const char *body, int admin)
{
    char err[TBT_PROC_ERRLEN];
    int attempt, rc = -1;

    cr_assert(w->dir[0] != '\0', "tbt_confproxy_start: start the world first");
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        const char *args[] = {"-c", p->conf, NULL};

        tbt_proc_stop(&p->proc);
        p->port = tbt_port_free();
        cr_assert_gt(p->port, 0, "no free port: %s", strerror(errno));
        p->admin_port = admin ? tbt_port_free() : 0;
        cr_assert_geq(p->admin_port, 0, "no free port: %s", strerror(errno));
        write_config(w, p, upstream_port, body);
        rc = tbt_proc_start(&p->proc, tbt_world_bin(w, "tbproxy"), args, w->dir, p->name, err,
                            sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        rc = tbt_proc_wait_port(&p->proc, (uint16_t)p->port, TBT_WORLD_START_TIMEOUT_MS, err,
                                sizeof(err));
        if (rc == 0 && admin)
            rc = tbt_world_wait_log(&p->proc, " admin server on ", TBT_WORLD_START_TIMEOUT_MS, err,
                                    sizeof(err));
        if (rc != 0 && tbt_proc_alive(&p->proc))
            break; /* running but not accepting: no point in another port */
    }
    if (rc != 0) {
        char *log = tbt_proc_log(&p->proc, 4096);
        cr_assert_fail("%s: %s\n%s", p->name, err, log != NULL ? log : "");
    }
}

void tbt_confproxy_start(struct tbt_world *w, struct tbt_confproxy *p, const char *name,
                         int upstream_port, const char *body)
{
    start(w, p, name, upstream_port, body, 0);
}

void tbt_confproxy_start_admin(struct tbt_world *w, struct tbt_confproxy *p, const char *name,
                               int upstream_port, const char *body)
{
    start(w, p, name, upstream_port, body, 1);
}

void tbt_confproxy_stop(struct tbt_confproxy *p)
{
    tbt_drive_stop(&p->proc);
}

char *tbt_confproxy_log(const struct tbt_confproxy *p)
{
    char *log = tbt_proc_log(&p->proc, 0);

    cr_assert_not_null(log);
    return log;
}
