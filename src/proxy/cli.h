/*
 * tbproxy's command line: which configuration to load (a file with -c, or quick mode from four
 * options and an optional --admin) and what to do with it (run, check, help, version), plus the
 * process settings that are not configuration (--pid-file).
 */
#ifndef TBP_CLI_H
#define TBP_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

enum tbp_cli_action {
    TBP_CLI_RUN = 0,     /* start the proxy */
    TBP_CLI_CHECK = 1,   /* -t: load the configuration, report, exit 0 or 1 */
    TBP_CLI_HELP = 2,    /* -h / --help: print tbp_cli_usage to stdout, exit 0 */
    TBP_CLI_VERSION = 3, /* -v / --version: print tbp_cli_version to stdout, exit 0 */
};

/* What the command line asked for. Strings point into argv. */
struct tbp_cli {
    enum tbp_cli_action action;
    const char *config; /* -c FILE / --config FILE; NULL in quick mode */
    const char *listen; /* quick mode: listen, upstream, cert and key all set, or all NULL */
    const char *upstream;
    const char *cert;
    const char *key;
    const char *admin;       /* quick mode only: --admin ADDR ("" disables); NULL: the default */
    const char *pid_file;    /* --pid-file PATH: written once the sockets are bound; NULL: none */
    const char *client_cert; /* quick mode only: --client-cert MODE; NULL: off */
    const char *client_ca;   /* quick mode only: --client-ca FILE; NULL: none */
    const char *client_crl;  /* quick mode only: --client-crl FILE; NULL: none */
    const char *tb_version;  /* quick mode only: --tb-version draft|rfc|both; NULL: draft */
};

/*
 * Parses argv[1..argc-1]: -c/--config FILE, -t/--test, --listen A, --upstream A, --cert FILE,
 * --key FILE (quick mode: all four, exclusive with -c), --admin A (quick mode only; may be
 * empty), --client-cert MODE, --client-ca FILE, --client-crl FILE, --tb-version V (quick mode
 * only; checked by tbp_cli_config), --pid-file PATH (ignored with -t), -h/--help, -v/--version.
 * Short options may be clustered ("-tc FILE") and take their value attached or next ("-cFILE", "-c
 * FILE"); long ones "--opt VALUE" or "--opt=VALUE"; "--" ends options. -h and -v win over
 * everything else that parses. Returns 0 and fills *out, or TB_EINVAL with a one-line message in
 * err (the daemon prints it with the usage hint and exits 2). Reentrant: no getopt state.
 */
int tbp_cli_parse(int argc, char **argv, struct tbp_cli *out, char *err, size_t errlen);

/* Loads the configuration the command line names: tbp_config_load, or tbp_config_quick,
 * tbp_config_quick_admin (--admin, else the default address checked against the listener) and
 * tbp_config_quick_client_cert (when any --client-* option was given) and
 * tbp_config_quick_tb_version (--tb-version). */
int tbp_cli_config(const struct tbp_cli *cli, struct tbp_config **out, char *err, size_t errlen);

/* Writes the usage text to `f`; `prog` is argv[0] (NULL: "tbproxy"). */
void tbp_cli_usage(FILE *f, const char *prog);

/*
 * Writes what -v prints: "tbproxy VERSION" on the first line, then one line per library,
 * "  NAME VERSION" (libtb, OpenSSL, nghttp2, libmicrohttpd, libconfig, jansson, libjwt, llhttp,
 * libsystemd), run-time versions where the library reports one, else the version built against.
 */
void tbp_cli_version(FILE *f);

#endif
