/*
 * The token_binding extension on an OpenSSL client connection (see tb/tlsext.h).
 *
 * State per SSL (ex_data, freed with the SSL): the offer, and the server's answer once the
 * ServerHello's extension was parsed and checked. The callbacks are OpenSSL's custom extension
 * ones, registered for the ClientHello and the TLS 1.2 ServerHello (in TLS 1.3 the extension
 * would come in EncryptedExtensions: not registered, so a TLS 1.3 server answering would be a
 * protocol error, which is right: Token Binding needs TLS 1.2 here).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tb/error.h"
#include "tb/tlsext.h"

struct client_state {
    struct tb_ext_params offer, answer;
    int answered;
    uint8_t wire[TB_EXT_MAX_LEN]; /* the ClientHello extension body */
    size_t wire_len;
};

static int state_index = -1;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void state_index_init(void)
{
    state_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, state_free);
}

static struct client_state *state_of(SSL *ssl)
{
    return state_index < 0 ? NULL : SSL_get_ex_data(ssl, state_index);
}

static int add_cb(SSL *ssl, unsigned int type, unsigned int context, const unsigned char **out,
                  size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    struct client_state *st = state_of(ssl);

    (void)type, (void)x, (void)chainidx, (void)al, (void)arg;
    if (!(context & SSL_EXT_CLIENT_HELLO) || st == NULL)
        return 0; /* no offer on this connection: no extension */
    *out = st->wire;
    *outlen = st->wire_len;
    return 1;
}

static int parse_cb(SSL *ssl, unsigned int type, unsigned int context, const unsigned char *in,
                    size_t inlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    struct client_state *st = state_of(ssl);
    struct tb_ext_params answer;
    int rc;

    (void)type, (void)context, (void)x, (void)chainidx, (void)arg;
    if (st == NULL || tb_ext_parse(in, inlen, &answer) != 0) {
        *al = st == NULL ? SSL_AD_UNSUPPORTED_EXTENSION : SSL_AD_DECODE_ERROR;
        return 0; /* OpenSSL only passes what we offered; but never accept garbage */
    }
    rc = tb_ext_client_check(&st->offer, &answer);
    if (rc == TB_EPARSE) {
        *al = SSL_AD_ILLEGAL_PARAMETER;
        return 0;
    }
    st->answered = rc == 0;
    st->answer = answer;
    return 1;
}

int tb_ext_client_ctx_init(SSL_CTX *ctx)
{
    if (pthread_once(&state_once, state_index_init) != 0 || state_index < 0)
        return TB_ECRYPTO;
    if (SSL_CTX_add_custom_ext(ctx, TB_EXT_TYPE,
                               SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO, add_cb, NULL,
                               NULL, parse_cb, NULL) != 1)
        return TB_ECRYPTO;
    return 0;
}

int tb_ext_client_offer(SSL *ssl, const struct tb_ext_params *offer)
{
    struct client_state *st;
    int n;

    if (pthread_once(&state_once, state_index_init) != 0 || state_index < 0)
        return TB_ENOMEM;
    if (offer == NULL || offer->n == 0 || offer->n > TB_EXT_MAX_KEY_PARAMS)
        return TB_EINVAL;
    if ((st = state_of(ssl)) == NULL) {
        if ((st = calloc(1, sizeof(*st))) == NULL)
            return TB_ENOMEM;
        if (SSL_set_ex_data(ssl, state_index, st) != 1) {
            free(st);
            return TB_ENOMEM;
        }
    }
    memset(st, 0, sizeof(*st));
    st->offer = *offer;
    n = tb_ext_encode(offer, st->wire, sizeof(st->wire));
    if (n < 0)
        return n;
    st->wire_len = (size_t)n;
    return 0;
}

int tb_ext_client_result(SSL *ssl, struct tb_ext_params *answer)
{
    struct client_state *st = state_of(ssl);

    if (st == NULL || !st->answered || !SSL_is_init_finished(ssl))
        return TB_EUNSUPPORTED;
    if (SSL_version(ssl) != TLS1_2_VERSION || SSL_get_extms_support(ssl) != 1 ||
        SSL_get_secure_renegotiation_support(ssl) != 1)
        return TB_EPARSE;
    if (answer != NULL)
        *answer = st->answer;
    return 0;
}
