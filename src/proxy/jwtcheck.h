/*
 * Bound JWTs in the proxy (issue 6): a route's `jwt` group applied to one request head. A request
 * passes only with a token that tb_jwt_check accepts under the route's keys, algorithms, issuer,
 * audience and leeway, AND whose cnf.tbh is the tbh of the Token Binding ID the connection proved:
 * a stolen token is worthless from another client. Otherwise the front end answers 401 with
 * "WWW-Authenticate: Bearer error=\"invalid_token\"" (tbp_forward_challenge) and a one-line body
 * naming the reason; the token itself is never logged nor echoed.
 *
 * The token comes from "Authorization: Bearer <token>" (exactly one Authorization field; the
 * scheme is case-insensitive, RFC 9110 section 11.1) or from a cookie (`from = "cookie:NAME"`:
 * its value as forwarded, i.e. after bound-cookie checks removed the cookie tag). The route's
 * `sub_header` is removed from every request of the route, valid or not, so a client can never
 * spoof it; on success it is set to the verified "sub" (when the token has one).
 *
 * Pure functions over an edited head (forward.h), the route and the provided ID's tbh.
 */
#ifndef TBP_JWTCHECK_H
#define TBP_JWTCHECK_H

#include <stdint.h>

#include "config.h"
#include "forward.h"
#include "http.h"
#include "tb/jwt.h"

/* The outcome of a route's JWT check. Counted per worker (worker.h). */
enum tbp_jwt_outcome {
    TBP_JWT_OK = 0,        /* "ok" */
    TBP_JWT_NO_TB = 1,     /* "no_tb": the connection has no Token Binding: nothing to bind to */
    TBP_JWT_MISSING = 2,   /* "missing": no token (no Authorization / not Bearer / no cookie) */
    TBP_JWT_PARSE = 3,     /* "parse": not a JWT, bad JSON, oversized, several Authorization */
    TBP_JWT_ALG = 4,       /* "alg": algorithm not allowed ("none", confusion, ...) */
    TBP_JWT_KEYID = 5,     /* "unknown_key": a kid no configured key has */
    TBP_JWT_SIGNATURE = 6, /* "signature" */
    TBP_JWT_EXPIRED = 7,   /* "expired" */
    TBP_JWT_NOTYET = 8,    /* "not_yet_valid" */
    TBP_JWT_CLAIM = 9,     /* "claim": iss, aud, sub or a claim of the wrong type */
    TBP_JWT_UNBOUND = 10,  /* "unbound": no cnf.tbh */
    TBP_JWT_MISMATCH = 11, /* "mismatch": bound to another Token Binding ID */
    TBP_JWT_ERROR = 12,    /* "error": the check could not run (memory, crypto) */
};
#define TBP_JWT_N 13

/* The stable name of an outcome (above), "unknown" for others. */
const char *tbp_jwt_outcome_name(enum tbp_jwt_outcome o);

/* The reason text of a 401 for this outcome ("bearer token expired"): static, printable. */
const char *tbp_jwt_outcome_text(enum tbp_jwt_outcome o);

/* The outcome for a tb_jwt_check error code. */
enum tbp_jwt_outcome tbp_jwt_outcome_of(int tb_err);

/*
 * The request's token for route jr, as a slice of h: from the single Authorization field
 * ("Bearer" + spaces + token, trailing spaces trimmed) or from the first cookie called jr->cookie.
 * Returns TBP_JWT_OK with *tok set, TBP_JWT_MISSING, or TBP_JWT_PARSE (several Authorization
 * fields, an empty Bearer token).
 */
enum tbp_jwt_outcome tbp_jwt_token(const struct tbp_jwt_route *jr, const struct tbp_http_head *h,
                                   struct tbp_str *tok);

/* Arena bytes tbp_jwt_request needs (the sub header's value). */
#define TBP_JWT_SPACE 256

/*
 * The route's check on edit e (a tbp_head_edit_init copy of the request, already through the
 * cookie step when the route binds cookies; TBP_JWT_SPACE bytes of arena and one free field
 * left): removes jr->sub_header, takes the token, checks it against tbh (NULL or "": the
 * connection has no Token Binding) at time `now` (seconds; 0: the clock), and on success adds
 * jr->sub_header with the verified "sub" when both are there. Returns the outcome; only
 * TBP_JWT_OK lets the request go on.
 */
enum tbp_jwt_outcome tbp_jwt_request(const struct tbp_jwt_route *jr, const char *tbh, int64_t now,
                                     struct tbp_head_edit *e);

#endif
