/*
 * tokbind: the client's side of draft Token Binding over one TLS connection.
 *
 * Negotiation is by ALPN (spec "Negotiation (draft)"): tbc_tb_alpn() writes the offer,
 * "h2_tb_<kt>" and/or "http/1.1_tb_<kt>" before the plain ids, and tbc_tb_negotiated() reads the
 * server's choice and checks what the choice requires: TLS 1.2, Extended Master Secret and so a
 * tls_unique. The header is a TokenBindingMessage signed over that tls_unique: the provided
 * binding alone (made once per connection and reused for its requests) or the provided and a
 * referred binding (for the request after a redirect that asked for one).
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
#include "tb/tbh.h"

/* Which application protocols to offer. */
enum tbc_proto {
    TBC_PROTO_ANY = 0, /* h2 or HTTP/1.1: the server picks */
    TBC_PROTO_H1 = 1,  /* --http1.1 */
    TBC_PROTO_H2 = 2,  /* --http2: HTTP/2 only */
};

#define TBC_ALPN_MAX 128  /* bytes of an ALPN offer in wire format */
#define TBC_TB_MAX_ID 300 /* bytes of a draft TBID (RSA: 263) */
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
 * The Token-Binding header value (base64url, NUL-terminated) into out (cap >= TB_MAX_HEADER +
 * 1): a provided binding for `provided` of key_params (the type negotiated on this connection)
 * and, when referred is not NULL, a referred binding for it of referred_key_params (the type the
 * key was made for with the referring origin, which may differ), both signed over channel
 * (tls_unique). Returns the length, or TBC_EKEY (a key that does not fit its key parameters) or
 * TBC_EINTERNAL.
 */
int tbc_tb_header(int key_params, EVP_PKEY *provided, int referred_key_params, EVP_PKEY *referred,
                  const uint8_t *channel, size_t channel_len, char *out, size_t cap);

/* A key's draft TBID as base64url and its tbh, for -v. Returns 0 or TBC_EKEY. */
int tbc_tb_describe(int key_params, EVP_PKEY *key, char id_b64[TBC_TB_MAX_ID_B64],
                    char tbh[TB_TBH_LEN + 1]);

#endif
