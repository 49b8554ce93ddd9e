/*
 * tokbind: the client's side of Token Binding over one TLS connection, draft or RFC.
 *
 * Draft: negotiation is by ALPN (spec "Negotiation (draft)"): tbc_tb_alpn() writes the offer,
 * "h2_tb_<kt>" and/or "http/1.1_tb_<kt>" before the plain ids, and tbc_tb_selected() reads the
 * server's choice; the choice requires TLS 1.2, Extended Master Secret and so a tls_unique, the
 * channel value the header is signed over; the header is Token-Binding.
 *
 * RFC 8471-8473: ALPN carries the plain ids only; the token_binding TLS extension (libtb's
 * tb/tlsext.h, driven by tlsconn) offers version 1.0 and the key parameters of tbc_tb_offer();
 * the channel value is the EKM (tb_channel_ekm) and the header is Sec-Token-Binding.
 *
 * Either way the header is a TokenBindingMessage: the provided binding alone (made once per
 * connection and reused for its requests) or the provided and a referred binding (for the
 * request after a redirect that asked for one).
 *
 * The header value and the IDs are public (an ID is a public key; a header only proves
 * possession over this one connection); the private keys never leave the EVP_PKEYs.
 */
#ifndef TBC_TOKBIND_H
#define TBC_TOKBIND_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tb/message.h"
#include "tb/tlsext.h"
#include "tb/tbh.h"

/* Which application protocols to offer. */
enum tbc_proto {
    TBC_PROTO_ANY = 0, /* h2 or HTTP/1.1: the server picks */
    TBC_PROTO_H1 = 1,  /* --http1.1 */
    TBC_PROTO_H2 = 2,  /* --http2: HTTP/2 only */
};

#define TBC_ALPN_MAX 128  /* bytes of an ALPN offer in wire format */
#define TBC_TB_MAX_ID 300 /* bytes of a TBID (RSA: draft 263, rfc 264) */
#define TBC_TB_MAX_ID_B64 ((TBC_TB_MAX_ID + 2) / 3 * 4 + 1) /* with the NUL */

/*
 * The ALPN offer in wire format into out: with key_params >= 0 the TB ids for that key type
 * first, then the plain ids of proto. Returns the length, or TBC_EINTERNAL (cap).
 */
int tbc_tb_alpn(enum tbc_proto proto, int key_params, unsigned char *out, size_t cap);

/*
 * What the server selected: returns 1 when alpn is a draft TB id ("h2_tb_p256", ...), with its
 * key type in *key_params and its protocol in *is_h2; 0 when it is a plain id or empty (*is_h2
 * says whether it is "h2").
 */
int tbc_tb_selected(const char *alpn, int *key_params, int *is_h2);

/*
 * The key type named on the command line (--key-type) for version: draft "p256", "rsa2048";
 * rfc the same two ("p256" is ecdsap256, "rsa2048" is rsa2048_pss) or the RFC names
 * "ecdsap256", "rsa2048_pss", "rsa2048_pkcs1.5". Returns the enum tb_key_params value, or
 * TBC_EUSAGE for a name the version does not have.
 */
int tbc_tb_key_type(enum tb_version version, const char *name);

/* The name of key_params for version as -v and messages show it ("p256", "rsa2048_pss"). */
const char *tbc_tb_key_name(enum tb_version version, int key_params);

/* The RFC 8472 offer for key_params: version 1.0, that one key parameters value. */
void tbc_tb_offer(int key_params, struct tb_ext_params *out);

/* The header field of version: "Token-Binding" (draft) or "Sec-Token-Binding" (rfc). */
const char *tbc_tb_header_name(enum tb_version version);

/*
 * The header value (base64url, NUL-terminated) of version into out (cap >= TB_MAX_HEADER + 1):
 * a provided binding for `provided` of key_params (the type negotiated on this connection) and,
 * when referred is not NULL, a referred binding for it of referred_key_params (the type the key
 * was made for with the referring origin, which may differ), both signed over channel (draft:
 * tls_unique, rfc: EKM). Returns the length, or TBC_EKEY (a key that does not fit its key
 * parameters) or TBC_EINTERNAL.
 */
int tbc_tb_header(enum tb_version version, int key_params, EVP_PKEY *provided,
                  int referred_key_params, EVP_PKEY *referred, const uint8_t *channel,
                  size_t channel_len, char *out, size_t cap);

/* A key's TBID of version as base64url and its tbh, for -v. Returns 0 or TBC_EKEY. */
int tbc_tb_describe(enum tb_version version, int key_params, EVP_PKEY *key,
                    char id_b64[TBC_TB_MAX_ID_B64], char tbh[TB_TBH_LEN + 1]);

#endif
