/*
 * tbclient errors: one enum for the client library (libtbc) and the exit status each maps to.
 *
 * Every libtbc function that can fail returns an int: 0 (or a positive count) on success, one of
 * the negative TBC_E* codes below on failure. The exit statuses follow curl's (`man curl`, EXIT
 * CODES) so that scripts written for curl read tbclient the same way.
 */
#ifndef TBC_ERRORS_H
#define TBC_ERRORS_H

enum tbc_err {
    TBC_OK = 0,
    TBC_EUSAGE = -1,       /* bad command line (exit 2) */
    TBC_EUNSUPPORTED = -2, /* a scheme or feature tbclient does not have (exit 1) */
    TBC_EURL = -3,         /* malformed URL (exit 3) */
    TBC_ERESOLVE = -4,     /* the host name does not resolve (exit 6) */
    TBC_ECONNECT = -5,     /* TCP connect failed (exit 7) */
    TBC_EPROTO = -6,       /* the server's HTTP/1.1 reply does not parse (exit 8) */
    TBC_EH2 = -7,          /* HTTP/2 framing or stream error (exit 16) */
    TBC_EPARTIAL = -8,     /* the response body ended early (exit 18) */
    TBC_EHTTP = -9,        /* HTTP status >= 400 with --fail (exit 22) */
    TBC_EWRITE = -10,      /* writing the output (exit 23) */
    TBC_EREAD = -11,       /* reading a local file: the request body (exit 26) */
    TBC_ENOMEM = -12,      /* out of memory (exit 27) */
    TBC_ETIMEOUT = -13,    /* --max-time or --connect-timeout reached (exit 28) */
    TBC_ETLS = -14,        /* TLS handshake failed, or Token Binding negotiated wrongly (35) */
    TBC_EREDIRS = -15,     /* more redirects than --max-redirs (exit 47) */
    TBC_EEMPTY = -16,      /* the server closed without any response (exit 52) */
    TBC_ESEND = -17,       /* sending failed (exit 55) */
    TBC_ERECV = -18,       /* receiving failed (exit 56) */
    TBC_EKEY = -19,        /* a Token Binding key cannot be loaded, made or saved (exit 58) */
    TBC_ECERT = -20,       /* the server certificate does not verify (exit 60) */
    TBC_EREWIND = -21,     /* a redirect needs the request body again, and it cannot be reread */
    TBC_ECACERT = -22,     /* the --cacert file cannot be used (exit 77) */
    TBC_ECOOKIE = -23,     /* the cookie jar cannot be read or written (exit 26 / 23) */
    TBC_EINTERNAL = -24,   /* a library call failed unexpectedly (exit 1) */
};

/* A short English description of err ("could not resolve host", ...); "unknown error" else. */
const char *tbc_strerror(int err);

/* The curl-compatible exit status for err: 0 for TBC_OK, 1 for codes without a better one. */
int tbc_exit_code(int err);

#endif
