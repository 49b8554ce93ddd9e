/*
 * Channel values over an OpenSSL SSL: tls_unique (draft), EKM (rfc), EMS.
 *
 * tls_unique is the first Finished message of the latest handshake (RFC 5929 section 3.1): in a
 * full handshake the client sends Finished first, in an abbreviated (resumed) one the server
 * does. Each side knows its own Finished (SSL_get_finished) and the peer's
 * (SSL_get_peer_finished); which is "first" follows from the side and from session reuse.
 */
#include "tb/channel.h"
#include "tb/error.h"

int tb_channel_tls_unique(SSL *ssl, uint8_t *out, size_t cap)
{
    int server_first, mine;
    size_t n;

    if (cap < TB_TLS_UNIQUE_LEN)
        return TB_EINVAL;
    if (!SSL_is_init_finished(ssl) || SSL_version(ssl) != TLS1_2_VERSION)
        return TB_ECHANNEL;
    server_first = SSL_session_reused(ssl);
    mine = SSL_is_server(ssl) ? server_first : !server_first;
    n = mine ? SSL_get_finished(ssl, out, cap) : SSL_get_peer_finished(ssl, out, cap);
    return n == TB_TLS_UNIQUE_LEN ? (int)n : TB_ECHANNEL;
}

int tb_channel_ekm(SSL *ssl, uint8_t *out, size_t cap)
{
    if (cap < TB_EKM_LEN)
        return TB_EINVAL;
    if (!SSL_is_init_finished(ssl))
        return TB_ECHANNEL;
    if (SSL_export_keying_material(ssl, out, TB_EKM_LEN, TB_EKM_LABEL, sizeof(TB_EKM_LABEL) - 1,
                                   NULL, 0, 0) != 1)
        return TB_ECHANNEL;
    return TB_EKM_LEN;
}

int tb_channel_ems(SSL *ssl)
{
    return SSL_get_extms_support(ssl) == 1 ? 1 : 0;
}
