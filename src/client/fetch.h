/*
 * fetch: one tbclient transfer, redirects included: connections, Token Binding, cookies.
 *
 * For each request of the chain: a connection to the URL's origin (the previous one when it is
 * the same origin and still usable), TLS with the offer of tokbind.h (draft: TB ALPN ids; rfc:
 * plain ALPN ids and the token_binding extension); when the server agreed, the origin's key
 * (from the key store, or --key) and a header signed over this connection's channel value
 * (draft: Token-Binding over tls_unique; rfc: Sec-Token-Binding over the EKM), made once per
 * connection and sent with each of its requests. The request fields are the defaults (User-Agent,
 * Accept), the user's (-H, which replace defaults of the same name; a removal list drops defaults),
 * the body's Content-Type and Content-Length, the matching cookies of the jar, and the Token
 * Binding header (unless the user gave one of that name: then theirs goes, for testing servers).
 * Every Set-Cookie of every response goes into the jar.
 *
 * Redirects (follow): 301, 302, 303, 307 and 308 with a Location, at most max_redirs. 303 turns
 * every method but HEAD into GET without body, 301 and 302 turn POST into GET without body (what
 * browsers and curl do), 307 and 308 keep method and body (the body source is rewound). A
 * redirect carrying "Include-Referer-Token-Binding-ID: true" (draft-balfanz federation; rfc:
 * "Include-Referred-Token-Binding-ID: true", RFC 8473 section 5.3) makes the next request carry
 * a referred binding for the redirecting origin's key beside the provided one, when the next
 * connection negotiates Token Binding. Authorization, Cookie and Host fields given
 * with -H are not sent to another origin than the first.
 *
 * Verbose output (the verbose stream) follows curl's -v: "* " notes, "> " request and "< "
 * response heads. It shows the TLS version, cipher, ALPN, EMS, tls_unique, the Token Binding
 * version and key parameters (rfc), the key file and the Token Binding IDs sent (of the
 * version's TBID format) with their tbh; the header value itself is shown only as its length
 * (it is a proof for the connection, and the IDs say what it holds). No private key and no EKM
 * is ever printed.
 */
#ifndef TBC_FETCH_H
#define TBC_FETCH_H

#include <stdio.h>

#include "cookiejar.h"
#include "request.h"
#include "tlsconn.h"
#include "tokbind.h"

#define TBC_DEFAULT_MAX_REDIRS 10
#define TBC_USER_AGENT "tbclient/0.1.0"

/* What the caller gets: every response head (final == 0 for one that is followed), then the
 * final response's body. Return 0, or a negative TBC_E* code to stop the transfer with it. */
struct tbc_fetch_cb {
    int (*on_head)(void *ctx, const struct tbc_response *r, int final);
    int (*on_body)(void *ctx, const char *p, size_t n);
};

struct tbc_fetch_opts {
    const char *url;
    const char *method;                /* NULL: GET, or POST when there is a body */
    const struct tbc_headers *headers; /* -H fields, in order */
    const struct tbc_headers *removed; /* -H "Name:": defaults not to send (names only) */
    struct tbc_body *body;             /* NULL: no body */
    const char *content_type;          /* with a body, unless -H gives one; NULL: none */
    enum tbc_proto proto;
    int tb;                     /* offer Token Binding */
    enum tb_version tb_version; /* draft: TB ALPN ids; rfc: the token_binding extension */
    int key_params;       /* draft: TB_KP_ECDSAP256 or TB_KP_RSA2048_PKCS1; rfc: any enum value */
    const char *key_file; /* --key: this key for every origin; NULL: key store */
    struct tbc_tls_ctx_opts tls;
    int follow, max_redirs;
    struct tbc_jar *jar;          /* NULL: no cookie engine */
    long long connect_timeout_ms; /* TCP + TLS handshake; 0: none */
    long long max_time_ms;        /* the whole transfer; 0: none */
    const char *user_agent;       /* NULL: TBC_USER_AGENT; "" : none */
    FILE *verbose;                /* -v output; NULL: none */
    FILE *msg;                    /* warnings (key file modes); NULL: none */
    struct tbc_fetch_cb cb;
    void *ctx;
};

struct tbc_fetch_result {
    int status;     /* of the last response, 0 if none */
    int redirects;  /* followed */
    char err[1024]; /* the reason, when tbc_fetch failed */
};

/* Runs the transfer. Returns 0 (whatever the HTTP status) or a negative TBC_E* code with the
 * reason in res->err. */
int tbc_fetch(const struct tbc_fetch_opts *o, struct tbc_fetch_result *res);

#endif
