/*
 * Bound JWTs in the proxy (see jwtcheck.h for the contract).
 *
 * All of the cryptography and every libjwt trap is libtb's (tb_jwt_check: allowlisted algorithm
 * that fits the key, never a NULL key, exp / nbf / iat, cnf.tbh compared in constant time). This
 * file only finds the token in the request, builds the policy from the route, maps the verdict to
 * an outcome, and keeps the route's sub header honest: removed from what the client sent, set
 * from the verified claims only.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "cookies.h"
#include "jwtcheck.h"
#include "tb/error.h"

static const struct {
    const char *name, *text;
} outcomes[TBP_JWT_N] = {
    [TBP_JWT_OK] = {"ok", "bearer token accepted"},
    [TBP_JWT_NO_TB] = {"no_tb", "bearer token needs token binding"},
    [TBP_JWT_MISSING] = {"missing", "bearer token missing"},
    [TBP_JWT_PARSE] = {"parse", "bearer token malformed"},
    [TBP_JWT_ALG] = {"alg", "bearer token algorithm not allowed"},
    [TBP_JWT_KEYID] = {"unknown_key", "bearer token key unknown"},
    [TBP_JWT_SIGNATURE] = {"signature", "bearer token signature invalid"},
    [TBP_JWT_EXPIRED] = {"expired", "bearer token expired"},
    [TBP_JWT_NOTYET] = {"not_yet_valid", "bearer token not yet valid"},
    [TBP_JWT_CLAIM] = {"claim", "bearer token claims not accepted"},
    [TBP_JWT_UNBOUND] = {"unbound", "bearer token not bound"},
    [TBP_JWT_MISMATCH] = {"mismatch", "bearer token bound to another key"},
    [TBP_JWT_ERROR] = {"error", "bearer token could not be checked"},
};

const char *tbp_jwt_outcome_name(enum tbp_jwt_outcome o)
{
    return (unsigned)o < TBP_JWT_N ? outcomes[o].name : "unknown";
}

const char *tbp_jwt_outcome_text(enum tbp_jwt_outcome o)
{
    return (unsigned)o < TBP_JWT_N ? outcomes[o].text : "bearer token invalid";
}

enum tbp_jwt_outcome tbp_jwt_outcome_of(int tb_err)
{
    switch (tb_err) {
    case 0:
        return TBP_JWT_OK;
    case TB_EPARSE:
    case TB_EBASE64:
    case TB_ETOOLARGE:
        return TBP_JWT_PARSE;
    case TB_EALG:
        return TBP_JWT_ALG;
    case TB_EKEYID:
        return TBP_JWT_KEYID;
    case TB_ESIGNATURE:
        return TBP_JWT_SIGNATURE;
    case TB_EEXPIRED:
        return TBP_JWT_EXPIRED;
    case TB_ENOTYET:
        return TBP_JWT_NOTYET;
    case TB_ECLAIM:
        return TBP_JWT_CLAIM;
    case TB_EUNBOUND:
        return TBP_JWT_UNBOUND;
    case TB_EMISMATCH:
        return TBP_JWT_MISMATCH;
    default:
        return TBP_JWT_ERROR;
    }
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* "Bearer" (any case), then at least one space, then the token: the token's slice, or an empty
 * one when the scheme is not Bearer. */
static enum tbp_jwt_outcome bearer(struct tbp_str v, struct tbp_str *tok)
{
    static const char scheme[] = "bearer";
    const size_t n = sizeof(scheme) - 1;
    size_t i, end;

    if (v.len < n || strncasecmp(v.p, scheme, n) != 0 || (v.len > n && !is_space(v.p[n])))
        return TBP_JWT_MISSING; /* another scheme (Basic, ...) or "Bearerx" */
    for (i = n; i < v.len && is_space(v.p[i]); i++)
        ;
    for (end = v.len; end > i && is_space(v.p[end - 1]); end--)
        ;
    if (end == i)
        return TBP_JWT_PARSE; /* "Bearer" without a token */
    *tok = (struct tbp_str){v.p + i, end - i};
    return TBP_JWT_OK;
}

enum tbp_jwt_outcome tbp_jwt_token(const struct tbp_jwt_route *jr, const struct tbp_http_head *h,
                                   struct tbp_str *tok)
{
    const struct tbp_header *f;
    struct tbp_str v;

    if (jr->from == TBP_JWT_FROM_COOKIE) {
        if (jr->cookie == NULL || !tbp_cookie_find(h, jr->cookie, &v) || v.len == 0)
            return TBP_JWT_MISSING;
        if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"') /* RFC 6265 quoted value */
            v = (struct tbp_str){v.p + 1, v.len - 2};
        if (v.len == 0)
            return TBP_JWT_MISSING;
        *tok = v;
        return TBP_JWT_OK;
    }
    switch (tbp_http_count(h, "authorization")) {
    case 0:
        return TBP_JWT_MISSING;
    case 1:
        break;
    default:
        return TBP_JWT_PARSE; /* which one would the origin read? */
    }
    f = tbp_http_find(h, "authorization");
    return bearer(f->value, tok);
}

/* Sets the sub header to the verified sub (copied into the edit's arena). */
static enum tbp_jwt_outcome set_sub(const struct tbp_jwt_route *jr, const struct tb_jwt_result *res,
                                    struct tbp_head_edit *e)
{
    size_t n = strnlen(res->sub, sizeof(res->sub));
    struct tbp_str v;
    char *p;

    if (jr->sub_header == NULL || n == 0)
        return TBP_JWT_OK;
    if ((p = tbp_head_edit_alloc(e, n)) == NULL)
        return TBP_JWT_ERROR;
    memcpy(p, res->sub, n);
    v = (struct tbp_str){p, n};
    return tbp_head_edit_set(e, jr->sub_header, &v) == 0 ? TBP_JWT_OK : TBP_JWT_ERROR;
}

enum tbp_jwt_outcome tbp_jwt_request(const struct tbp_jwt_route *jr, const char *tbh, int64_t now,
                                     struct tbp_head_edit *e)
{
    struct tb_jwt_policy p = {0};
    struct tb_jwt_result res;
    enum tbp_jwt_outcome o;
    struct tbp_str tok = {NULL, 0};

    if (jr->sub_header != NULL)
        (void)tbp_head_edit_set(e, jr->sub_header, NULL); /* removing never fails */
    if (tbh == NULL || tbh[0] == '\0')
        return TBP_JWT_NO_TB;
    if ((o = tbp_jwt_token(jr, &e->head, &tok)) != TBP_JWT_OK)
        return o;
    if (jr->keys == NULL || jr->algs == 0)
        return TBP_JWT_ERROR;
    p.algs = jr->algs;
    p.keys = jr->keys;
    p.issuer = jr->issuer;
    p.audience = jr->audience;
    p.leeway_s = jr->leeway_s;
    p.now = now;
    memset(&res, 0, sizeof(res));
    if ((o = tbp_jwt_outcome_of(tb_jwt_check(tok.p, tok.len, &p, tbh, &res))) != TBP_JWT_OK)
        return o;
    return set_sub(jr, &res, e);
}
