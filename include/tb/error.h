/*
 * libtb error codes.
 *
 * Every libtb function that can fail returns an int: 0 (or a positive count) on success and one
 * of the negative TB_E* codes below on failure. The names returned by tb_strerror() are stable:
 * they are the "reason" users see in logs, metrics labels and `tbtoken verify` output.
 */
#ifndef TB_ERROR_H
#define TB_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum tb_err {
    TB_OK = 0,
    TB_EBASE64 = -1,      /* header value is not valid base64url */
    TB_EPARSE = -2,       /* message structure is malformed */
    TB_ETOOLARGE = -3,    /* message over TB_MAX_MESSAGE bytes or too many bindings */
    TB_ENOPROVIDED = -4,  /* no provided binding */
    TB_EDUPLICATE = -5,   /* a binding type appears more than once */
    TB_EKEYPARAMS = -6,   /* key parameters differ from the negotiated ones */
    TB_EUNSUPPORTED = -7, /* key type, hash or curve this library does not support */
    TB_ESIGNATURE = -8,   /* a signature (or the key it is checked with) does not verify */
    TB_ENOMEM = -9,       /* allocation failed */
    TB_EINVAL = -10,      /* bad argument from the caller (buffer too small, unknown enum) */
    TB_ECRYPTO = -11,     /* an OpenSSL call failed for a reason other than bad input */
    TB_ECHANNEL = -12,    /* no channel value: TLS 1.3, or the handshake has not finished */
    /* bound tokens (cookie.h, jwt.h) */
    TB_EUNBOUND = -13,  /* the cookie or token carries no binding (no tag, no cnf.tbh) */
    TB_EMISMATCH = -14, /* bound, but not to this Token Binding ID (or altered since) */
    TB_EKEYID = -15,    /* names a key id that is not configured */
    TB_EALG = -16,      /* JWT algorithm not allowed for the key ("none", confusion, ...) */
    TB_EEXPIRED = -17,  /* JWT past its exp (plus leeway) */
    TB_ENOTYET = -18,   /* JWT before its nbf / iat (minus leeway) */
    TB_ECLAIM = -19,    /* JWT iss / aud / claim types not as required */
};

/* Stable lower-case name of an error code ("base64", "parse", ...); "unknown" for others. */
const char *tb_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
