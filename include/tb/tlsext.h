/*
 * The token_binding TLS extension (RFC 8472): its codec and the negotiation rules of both sides.
 *
 *   struct {
 *       uint8 major, minor;                                  TB_ProtocolVersion
 *       TokenBindingKeyParameters key_parameters_list<1..2^8-1>;  one byte each
 *   } TokenBindingParameters;
 *
 * The client offers its highest version and the key parameters it supports, preferred first.
 * The server answers (TLS 1.2 ServerHello) with one version, no higher than the client's, and
 * exactly one key parameters value from the client's list, or does not answer: then the
 * connection has no Token Binding. Versions: 1.0 (RFC 8471) and the IETF drafts 0.13 to 0.16,
 * whose messages are the RFC's; a client offering 0.13..0.16 is answered with its own version
 * (RFC 8472 section 4: the lower of the two), one offering a version above 1.0 with 1.0; one
 * below 0.13, or between 0.16 and 1.0 (no such version was published: the lower of the two
 * would be one the server does not speak), is not answered.
 *
 * Both sides also need Extended Master Secret and renegotiation_info (RFC 8472 section 4): that
 * is the TLS stack's part (tb_channel_ems, SSL_get_secure_renegotiation_support), not this
 * codec's. Nothing here allocates; every parser is bounded by the length it is given.
 */
#ifndef TB_TLSEXT_H
#define TB_TLSEXT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_EXT_TYPE 24             /* the token_binding extension's code point */
#define TB_EXT_MAJOR 1             /* the version this library speaks: 1.0 */
#define TB_EXT_MINOR 0
#define TB_EXT_MIN_DRAFT_MINOR 13  /* oldest accepted: 0.13 */
#define TB_EXT_MAX_DRAFT_MINOR 16  /* newest draft: 0.16 (0.17..0.255 are not answered) */
#define TB_EXT_MAX_KEY_PARAMS 255  /* key_parameters_list<1..2^8-1> */
#define TB_EXT_MAX_LEN (3 + TB_EXT_MAX_KEY_PARAMS)

struct tb_ext_params {
    uint8_t major, minor;
    size_t n;                                 /* 1..TB_EXT_MAX_KEY_PARAMS */
    uint8_t key_params[TB_EXT_MAX_KEY_PARAMS]; /* wire values (enum tb_key_params for those known:
                                                  0 rsa2048_pkcs1.5, 1 rsa2048_pss, 2 ecdsap256;
                                                  others are kept as sent) */
};

/*
 * Parses an extension body (what follows the extension's type and length) exactly: the list
 * length must match the bytes left and be at least 1. Returns 0, or TB_EPARSE.
 */
int tb_ext_parse(const uint8_t *p, size_t len, struct tb_ext_params *out);

/* Writes in into out. Returns the length (3 + in->n), or TB_EINVAL (n outside
 * 1..TB_EXT_MAX_KEY_PARAMS, or cap too small). */
int tb_ext_encode(const struct tb_ext_params *in, uint8_t *out, size_t cap);

/* 1 if major.minor is a version this library speaks (1.0, 0.13..0.16), else 0. */
int tb_ext_version_ok(uint8_t major, uint8_t minor);

/*
 * The server's answer to a client's offer: the version (see above) and the first of prefs
 * (enum tb_key_params values, server preference first, n_prefs of them) that the client
 * offered. Returns 0 with *answer filled (n = 1), or TB_EUNSUPPORTED (a version below 0.13 or
 * from 0.17 to 0.255, or no key parameters in common): do not answer, no Token Binding.
 */
int tb_ext_server_select(const struct tb_ext_params *offer, const int *prefs, size_t n_prefs,
                         struct tb_ext_params *answer);

/*
 * The client's check of the server's answer to its offer (RFC 8472 section 4): exactly one key
 * parameters value, one the client offered, and a version no higher than offered. Returns 0 when
 * Token Binding is on with answer's version and key parameters; TB_EUNSUPPORTED when the answer
 * is acceptable but names a version the client does not speak (go on without Token Binding);
 * TB_EPARSE when the handshake must be aborted (more than one value, one not offered, a higher
 * version).
 */
int tb_ext_client_check(const struct tb_ext_params *offer, const struct tb_ext_params *answer);

/*
 * The client's side over OpenSSL, for applications (tbclient, tbbench and the tests use it):
 *
 *   tb_ext_client_ctx_init(ctx);                 once per SSL_CTX, before SSL_new
 *   tb_ext_client_offer(ssl, &offer);            per connection, before the handshake
 *   ... handshake ...
 *   tb_ext_client_result(ssl, &answer);          0: Token Binding is on, with answer's version
 *                                                and key parameters; sign over tb_channel_ekm
 *
 * A connection without an offer sends no extension. The ServerHello's extension is checked as
 * it arrives (tb_ext_client_check): an answer the client must reject (two values, one not
 * offered, a higher version) aborts the handshake with an illegal_parameter alert. The context
 * should offer Extended Master Secret (OpenSSL's default) and renegotiation_info (OpenSSL
 * always sends it, as the SCSV or the extension); a connection may offer TLS 1.3, which a Token
 * Binding server answers by pinning it to TLS 1.2.
 */

/* Registers the extension on ctx. 0, or TB_ECRYPTO (already registered, or OpenSSL refused). */
int tb_ext_client_ctx_init(SSL_CTX *ctx);

/* Offers `offer` (copied; 1..TB_EXT_MAX_KEY_PARAMS values) on ssl, whose SSL_CTX went through
 * tb_ext_client_ctx_init. 0, TB_EINVAL or TB_ENOMEM. */
int tb_ext_client_offer(SSL *ssl, const struct tb_ext_params *offer);

/*
 * After the handshake: 0 with *answer (version, one key parameters value) when Token Binding was
 * negotiated; TB_EUNSUPPORTED when it was not (no answer, a version the client does not speak,
 * or no offer); TB_EPARSE when the server answered on a connection where it must not have (not
 * TLS 1.2, no Extended Master Secret, no secure renegotiation): the client must close it.
 */
int tb_ext_client_result(SSL *ssl, struct tb_ext_params *answer);

#ifdef __cplusplus
}
#endif
#endif
