/*
 * The proxy's Authentication-Results header toward the origin (shared/spec/AUTH-RESULTS.md, RFC
 * 8601): what TLS and Token Binding established for one request, in one field the origin can
 * parse with libtb's tb_authres_parse (or any RFC 8601 parser), signed with the proxy's
 * authserv-id:
 *
 *   proxy.example.com; tls=permerror (no client certificate) tls.v=TLS1.2
 *     key.ciphersuite=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 key.length=128 key.strength=high;
 *     tokenbinding=pass tb.version=draft tb.key=p256 tb.referred=no
 *
 * (one line on the wire; an RFC 8471-8473 binding says tb.version=rfc and names its key the
 * RFC's way: tb.key=ecdsap256, rsa2048_pss or rsa2048_pkcs1.5). The `tls` method always (cert.*
 * properties only when the route does not say client_certificate = "off"); `tokenbinding` unless
 * the route says token_binding = "off"; `tbcookie` on routes that bind cookies (pass: every listed
 * cookie kept; fail: some dropped, their names in the comment; none: no listed cookie came);
 * `tbjwt` on routes that check a JWT (always pass when forwarded: a failed one is answered 401).
 *
 * Incoming fields that claim the proxy's authserv-id (RFC 8601 section 5) are removed by
 * forward.c, with tbp_results_is_ours.
 */
#ifndef TBP_RESULTS_H
#define TBP_RESULTS_H

#include <stddef.h>

#include "tlsinfo.h"

/* Bytes enough for any value tbp_results_value writes (certificate names are capped). */
#define TBP_RESULTS_MAX 4096

/* How a companion check came out for one request, as tbcookie / tbjwt report it. */
enum tbp_results_check {
    TBP_RES_UNSET = 0, /* the route does not have this check: the method is not written */
    TBP_RES_NONE = 1,  /* configured, nothing to check on this request */
    TBP_RES_PASS = 2,
    TBP_RES_FAIL = 3,
};

/* What one request's header says. Pointers are borrowed for the call. */
struct tbp_results_req {
    const struct tbp_tlsinfo *tls; /* the connection's facts; NULL: tls=none */
    int report_cert;               /* write cert.* (route client_certificate != "off") */
    int report_tb;                 /* write tokenbinding (route token_binding != "off") */
    int tb;                 /* Token Binding negotiated and this request's message verified */
    const char *tb_version; /* "draft" or "rfc" when tb */
    const char *tb_key;     /* key parameters' name when tb, in tb_version's terms (draft "p256",
                               "rsa2048"; rfc "ecdsap256", "rsa2048_pss", "rsa2048_pkcs1.5") */
    int tb_referred;        /* a referred binding verified too */
    enum tbp_results_check tbcookie;
    const char *tbcookie_dropped; /* fail: the dropped cookies' names ("" or NULL: none given) */
    enum tbp_results_check tbjwt;
};

/*
 * Sets rq->tb_version and rq->tb_key for a binding of `version` (enum tb_version) with key
 * parameters key_params: "draft" or "rfc", and tb_key_params_name(version, key_params) (NULL for
 * key parameters that version does not know: no tb.key then).
 */
void tbp_results_set_binding(struct tbp_results_req *rq, int version, int key_params);

/*
 * Writes the header value (NUL-terminated, no field name, no CRLF) into buf. Returns its length,
 * or a negative TB_E* code: TB_ETOOLARGE when it does not fit cap, TB_EINVAL for a bad argument
 * (a certificate string the builder refuses is left out, not an error).
 */
int tbp_results_value(const char *authserv_id, const struct tbp_results_req *rq, char *buf,
                      size_t cap);

/*
 * 1 if an incoming Authentication-Results value claims authserv_id (compared case-insensitively,
 * after any leading comment, quoted or not) or its authserv-id cannot be read at all (it cannot
 * be told apart from ours, so it goes too); 0 if it names another one.
 */
int tbp_results_is_ours(const char *value, size_t len, const char *authserv_id);

#endif
