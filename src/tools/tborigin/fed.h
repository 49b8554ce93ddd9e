/*
 * tborigin's federation demo (fed.c): a toy identity provider (/idp/authorize, /idp/token) that
 * issues JWTs bound to the client's referred Token Binding ID, and the relying-party side that
 * sends the client there and back (/login, /callback). Internal to tborigin.
 */
#ifndef TBO_FED_H
#define TBO_FED_H

#include <stddef.h>

#include <microhttpd.h>

/* The command-line options of the demo; NULL when not given. */
struct tbo_fed_options {
    const char *idp_key;      /* --idp-key FILE: ES256 (P-256) private key PEM; enables /idp/ */
    const char *idp_issuer;   /* --idp-issuer URL: "iss"; default: this origin as requested */
    const char *idp_audience; /* --idp-audience AUD: "aud"; default: the redirect_uri's origin */
    const char *idp_url;      /* --idp-url URL: the IdP as the client sees it; enables /login */
    unsigned code_ttl_s;      /* --idp-code-ttl N: authorization codes live N s (default 300) */
};

/* The paths this module answers; TBO_FED_NONE for any other. */
enum tbo_fed_route {
    TBO_FED_NONE,      /* not a federation path */
    TBO_FED_AUTHORIZE, /* /idp/authorize */
    TBO_FED_TOKEN,     /* /idp/token */
    TBO_FED_LOGIN,     /* /login */
    TBO_FED_CALLBACK,  /* /callback */
};

/*
 * Checks the options and loads the IdP key (a P-256 private key, at most 64 KiB of PEM). Call
 * once before the daemon starts. Returns 0, or -1 with a one-line message in err (never key
 * material).
 */
int tbo_fed_init(const struct tbo_fed_options *o, char *err, size_t errlen);

/* Wipes the key and the outstanding codes. After the daemon stopped. */
void tbo_fed_dispose(void);

/* The route of a raw path (len bytes, no query). */
enum tbo_fed_route tbo_fed_match(const char *path, size_t len);

/*
 * Answers a request for route r (not TBO_FED_NONE) on conn: 404 when the part of the demo it
 * belongs to is not enabled. Safe from MHD's connection threads. Returns what
 * MHD_queue_response did, or MHD_NO when nothing could be queued.
 */
enum MHD_Result tbo_fed_respond(struct MHD_Connection *conn, enum tbo_fed_route r);

#endif
