/*
 * h2client: HTTP/2 requests over a tbc_tls connection, on nghttp2's client session.
 *
 * One request at a time (tbclient follows a redirect chain, it does not multiplex): the session
 * lives as long as the connection, so a redirect to the same origin reuses both. The request's
 * field names are lower-cased and connection-specific fields (Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade, Host, TE other than "trailers") are left out, as
 * RFC 9113 section 8.2.2 requires; the body goes out as DATA frames read from its source when
 * the flow-control window allows, so an upload of any size runs in bounded memory. The response
 * arrives through the callbacks of request.h; its trailers are ignored.
 *
 * Windows: 1 MiB per stream and 16 MiB for the connection, acknowledged as data arrives. The
 * event loop is non-blocking I/O under poll() until the stream closes or the deadline passes.
 *
 */
#ifndef TBC_H2CLIENT_H
#define TBC_H2CLIENT_H

#include "request.h"
#include "tlsconn.h"

struct tbc_h2;

/*
 * A client session on c (which must stay open and in place until tbc_h2_free). The preface and
 * SETTINGS go out with the first request. Returns 0 and *out, or TBC_ENOMEM / TBC_EH2.
 */
int tbc_h2_new(struct tbc_h2 **out, struct tbc_tls *c);

/*
 * Sends rq on a new stream and delivers the response to cb, until the stream closes or deadline
 * (0: none). Returns 0 when a complete response arrived, else TBC_EH2 (stream reset, GOAWAY,
 * protocol error), TBC_ERECV / TBC_ESEND / TBC_EEMPTY (the connection failed or closed),
 * TBC_ETIMEOUT, TBC_EREAD (the body source), TBC_ENOMEM, or what a callback returned (the
 * stream is then cancelled). The reason is in the connection's err.
 */
int tbc_h2_exchange(struct tbc_h2 *h, const struct tbc_request *rq,
                    const struct tbc_response_cb *cb, void *ctx, long long deadline);

/* 1 if the connection may carry another request (no GOAWAY, not closed, no error), else 0. */
int tbc_h2_reusable(const struct tbc_h2 *h);

/* Sends GOAWAY if it can without waiting, frees the session. tbc_h2_free(NULL) is a no-op. The
 * TLS connection is the caller's to close. */
void tbc_h2_free(struct tbc_h2 *h);

#endif
