/*
 * tbtoken subcommands that live in their own files (src/tools/tbtoken/): each takes the
 * arguments after its name (argv[0] is the first of them, not the program) and returns the
 * process exit status: 0 ok, 1 an error verdict or a failure, 2 bad usage. Usage and failure
 * messages go to stderr; tokens, cookie values and keys are never written there.
 */
#ifndef TBTOKEN_CMD_H
#define TBTOKEN_CMD_H

#define TBTOKEN_EXIT_VERDICT_ERROR 1
#define TBTOKEN_EXIT_USAGE 2

/* `tbtoken cookie genkey|bind|check ...` (cookie.c) */
int tbtoken_cookie_main(int argc, char **argv);

/* `tbtoken jwt issue|verify ...` (jwt.c) */
int tbtoken_jwt_main(int argc, char **argv);

#endif
