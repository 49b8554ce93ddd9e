/*
 * tbproxy: the Token Binding reverse proxy.
 *
 * main parses the command line, loads and checks the configuration, builds the TLS contexts and
 * binds every worker's sockets before anything runs (a bad config or a busy port never starts a
 * half-working proxy: message, exit 1), then runs the workers and waits for a signal. SIGTERM,
 * SIGQUIT and SIGINT stop it: the workers' loops end and every connection is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "cli.h"
#include "config.h"
#include "tb/tb.h"
#include "worker.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int open_log(const char *path, int std_fd)
{
    if (path == NULL || path[0] == '\0')
        return -1;
    if (strcmp(path, "-") == 0)
        return std_fd;
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static int build_tls(struct tbp_proxy *px, char *err, size_t errlen)
{
    const struct tbp_config *cfg = px->cfg;
    size_t i, k;

    px->tls = calloc(cfg->n_listeners, sizeof(*px->tls));
    if (px->tls == NULL)
        return -1;
    for (i = 0; i < cfg->n_listeners; i++) {
        const struct tbp_tls_config *t = &cfg->listeners[i].tls;
        struct tbp_tls_settings s = {0};
        s.cert = t->cert;
        s.key = t->key;
        s.ciphers = t->ciphers;
        s.tickets = t->tickets;
        s.ticket_rotation = t->ticket_key_rotation_ms / 1000;
        s.tb_enabled = cfg->tb.enabled;
        s.n_tb_key_types = cfg->tb.n_key_types;
        s.n_tb_protocols = cfg->tb.n_protocols;
        for (k = 0; k < cfg->tb.n_protocols && k < 2; k++)
            s.tb_protocols[k] = cfg->tb.protocols[k] == TBP_PROTO_H2 ? TBP_ALPN_H2 : TBP_ALPN_H1;
        for (k = 0; k < cfg->tb.n_key_types && k < 2; k++)
            s.tb_key_types[k] = cfg->tb.key_types[k];
        px->tls[i] = tbp_tls_new(&s, err, errlen);
        if (px->tls[i] == NULL)
            return -1;
    }
    return 0;
}

static int run(struct tbp_config *cfg)
{
    struct tbp_proxy px = {.cfg = cfg, .access_fd = -1, .error_fd = 2};
    struct tbp_worker *workers = NULL;
    char err[TBP_CONFIG_ERRLEN];
    unsigned i, started = 0;
    struct sigaction sa;
    int ret = 1;

    px.access_fd = open_log(cfg->log.access, 1);
    px.error_fd = open_log(cfg->log.error, 2);
    if ((cfg->log.access[0] && px.access_fd == -1) || px.error_fd == -1) {
        fprintf(stderr, "tbproxy: cannot open log file: %s\n", strerror(errno));
        goto Exit;
    }
    if (build_tls(&px, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbproxy: %s\n", err);
        goto Exit;
    }
    for (i = 0; i < cfg->n_listeners; i++) {
        if (tbp_listen_probe(&cfg->listeners[i].addr, err, sizeof(err)) != 0) {
            fprintf(stderr, "tbproxy: %s\n", err);
            goto Exit;
        }
    }
    workers = calloc(cfg->workers, sizeof(*workers));
    if (workers == NULL)
        goto Exit;
    for (i = 0; i < cfg->workers; i++) {
        if (tbp_worker_init(&workers[i], &px, i, err, sizeof(err)) != 0) {
            fprintf(stderr, "tbproxy: %s\n", err);
            tbp_worker_dispose(&workers[i]);
            cfg->workers = i; /* dispose only the ones made */
            goto Exit;
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < cfg->workers; i++) {
        if (tbp_worker_start(&workers[i]) != 0)
            break;
        started++;
    }
    if (started == cfg->workers) {
        for (i = 0; i < cfg->n_listeners; i++)
            tbp_log_error(&px, TBP_LOG_INFO, "tbproxy %s listening on %s (%u workers)", TBP_VERSION,
                          cfg->listeners[i].addr.text, cfg->workers);
        while (!stop_signal)
            pause();
        tbp_log_error(&px, TBP_LOG_INFO, "signal %d: stopping", (int)stop_signal);
        ret = 0;
    }
    px.stopping = 1;
    for (i = 0; i < started; i++)
        tbp_worker_stop(&workers[i]);
    for (i = 0; i < started; i++)
        tbp_worker_join(&workers[i]);
Exit:
    for (i = 0; workers != NULL && i < cfg->workers; i++)
        tbp_worker_dispose(&workers[i]);
    free(workers);
    for (i = 0; px.tls != NULL && i < cfg->n_listeners; i++)
        tbp_tls_free(px.tls[i]);
    free(px.tls);
    if (px.access_fd > 2)
        close(px.access_fd);
    if (px.error_fd > 2)
        close(px.error_fd);
    tb_verifier_thread_release();
    return ret;
}

int main(int argc, char **argv)
{
    struct tbp_config *cfg = NULL;
    char err[TBP_CONFIG_ERRLEN];
    struct tbp_cli cli;
    int ret;

    if (tbp_cli_parse(argc, argv, &cli, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbproxy: %s\n", err);
        tbp_cli_usage(stderr, argv[0]);
        return 2;
    }
    if (cli.action == TBP_CLI_HELP) {
        tbp_cli_usage(stdout, argv[0]);
        return 0;
    }
    if (cli.action == TBP_CLI_VERSION) {
        printf("tbproxy %s (libtb %s, %s)\n", TBP_VERSION, TB_VERSION_STRING,
               OpenSSL_version(OPENSSL_VERSION));
        return 0;
    }
    if (tbp_cli_config(&cli, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbproxy: %s\n", err);
        return 1;
    }
    if (cli.action == TBP_CLI_CHECK) {
        printf("tbproxy: configuration %s is ok\n", cfg->path ? cfg->path : "(command line)");
        tbp_config_free(cfg);
        return 0;
    }
    ret = run(cfg);
    tbp_config_free(cfg);
    return ret;
}
