/*
 * Bound cookies in the proxy (spec "Bound tokens", issue 6): the route's `bind_cookies` applied
 * to one request head and one response head. Pure functions over heads, a route and a keyring:
 * no connection, no I/O, no logging, so the unit tests drive them with hand-made heads.
 *
 * Request: every Cookie field (HTTP/2 sends crumbs as several fields) is walked with
 * tb_cookie_next. A listed cookie on a Token Binding connection is checked (tb_cookie_check
 * against the provided ID's tbh): valid, it is forwarded with its suffix removed, so the origin
 * never sees the tag; anything else is dropped (RFC 8471 section 7: the server MUST discard it).
 * On a connection without Token Binding a listed cookie is dropped (`unbound_cookies = drop`) or,
 * with `pass`, forwarded only when it carries no suffix. Unlisted cookies pass untouched. The
 * survivors become one "Cookie: a=1; b=2" field in place of the first Cookie field; none left,
 * no Cookie field.
 *
 * Response: on a Token Binding connection, each Set-Cookie whose name is listed gets its value
 * bound (the suffix appended after the value as sent, attributes untouched) and "; Secure" added
 * when absent. A Set-Cookie that does not parse passes untouched; so does every Set-Cookie on a
 * connection without Token Binding.
 *
 * The new values live in the arena of a struct tbp_head_edit (forward.h). Neither direction ever
 * copies a cookie value anywhere else; nothing here logs.
 */
#ifndef TBP_COOKIES_H
#define TBP_COOKIES_H

#include <stddef.h>

#include "config.h"
#include "forward.h"
#include "http.h"

/* What became of one listed cookie on a request. Counted per worker (worker.h) and per request
 * (struct tbp_cookie_tally). */
enum tbp_cookie_outcome {
    TBP_CK_OK = 0,       /* "ok": tag valid for the provided TBID, forwarded without its suffix */
    TBP_CK_PASS = 1,     /* "pass": no Token Binding, `unbound_cookies = pass`, no suffix */
    TBP_CK_UNBOUND = 2,  /* "unbound": Token Binding connection, the value carries no suffix */
    TBP_CK_MISMATCH = 3, /* "mismatch": bound to another TBID, another name, or altered */
    TBP_CK_KEYID = 4,    /* "unknown_key": names a key id the keyring does not have */
    TBP_CK_NO_TB = 5,    /* "no_tb": a connection without Token Binding (policy drop, or a bound
                            value under pass) */
    TBP_CK_ERROR = 6,    /* "error": the check could not run (no keyring, crypto failure) */
};
#define TBP_CK_N 7

/* The stable name of an outcome (above), "unknown" for others. */
const char *tbp_cookie_outcome_name(enum tbp_cookie_outcome o);

/* Bytes kept of the dropped cookies' names (struct tbp_cookie_tally), the NUL included. */
#define TBP_CK_NAMES 128

/* Per-request counts, for the access log and the worker's counters. */
struct tbp_cookie_tally {
    unsigned n[TBP_CK_N];             /* listed cookies by outcome */
    unsigned kept;                    /* OK + PASS */
    unsigned dropped;                 /* the others */
    unsigned bound;                   /* Set-Cookie values bound on the response */
    char dropped_names[TBP_CK_NAMES]; /* the dropped cookies' names, ", "-separated, cut with
                                         "..." when they do not fit (never a value): for the
                                         Authentication-Results comment */
};

/* Does route r bind cookies at all (bind_cookies set)? */
int tbp_cookies_enabled(const struct tbp_route *r);

/* Does route r bind the cookie called name (case-sensitive, as cookie names are)? */
int tbp_cookies_listed(const struct tbp_route *r, const char *name, size_t len);

/*
 * Arena bytes tbp_cookies_request needs for head h (the rebuilt Cookie value at its longest).
 */
size_t tbp_cookies_request_space(const struct tbp_http_head *h);

/*
 * The request side (see the top of this file) on edit e, a tbp_head_edit_init copy of a request
 * head with at least tbp_cookies_request_space() bytes of arena (beyond what else it holds) and
 * room for one more field. kr is the proxy's keyring (NULL: every listed cookie fails as
 * TBP_CK_ERROR on a Token Binding connection); tbh is the provided ID's tbh, NULL or "" on a
 * connection without Token Binding. Adds the outcomes to *t. Returns 0, or TBP_EBUF when the
 * arena or the field list is too small (e unchanged then is not guaranteed: drop the request).
 */
int tbp_cookies_request(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                        const char *tbh, struct tbp_head_edit *e, struct tbp_cookie_tally *t);

/*
 * Arena bytes tbp_cookies_response needs for response head h.
 */
size_t tbp_cookies_response_space(const struct tbp_http_head *h);

/*
 * The response side on edit e, a copy of a response head with at least
 * tbp_cookies_response_space() bytes of arena. tbh as for tbp_cookies_request: without it nothing
 * changes. Adds the number of values bound to t->bound. Returns 0, or TBP_EBUF (arena too small)
 * or TB_EINVAL / TB_ECRYPTO from tb_cookie_bind (no keyring, OpenSSL failure): the caller must
 * not send the response then, an unbound Set-Cookie would look bound to nobody.
 */
int tbp_cookies_response(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                         const char *tbh, struct tbp_head_edit *e, struct tbp_cookie_tally *t);

/*
 * The value of the first cookie called name in h's Cookie fields (every field, in order), as a
 * slice of the field, quotes included. Returns 1 with *value set, 0 when there is none.
 */
int tbp_cookie_find(const struct tbp_http_head *h, const char *name, struct tbp_str *value);

#endif
