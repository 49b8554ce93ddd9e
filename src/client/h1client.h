/*
 * h1client: one HTTP/1.1 request and its response over a tbc_tls connection.
 *
 * The request head is written from the request model (Host first, then the fields in order);
 * the body follows from its source in TBC_BODY_BLOCK pieces: with the Content-Length the caller
 * put in the fields when the length is known, else chunked (this module adds
 * Transfer-Encoding: chunked). The response is parsed by the proxy's strict HTTP/1.1 parser
 * (src/proxy/h1parse.h: llhttp in strict mode plus its checks), so tbclient reads responses
 * exactly as tbproxy reads its origins': 1xx heads are skipped, HEAD responses have no body,
 * the body is passed on as it arrives.
 *
 * A server may answer before it has read the whole body (a 413, a 400 from the proxy) and close:
 * when sending fails, the response is still read, and the exchange succeeds if one arrives.
 */
#ifndef TBC_H1CLIENT_H
#define TBC_H1CLIENT_H

#include "request.h"
#include "tlsconn.h"

/*
 * Sends rq on c and reads the response into cb (ctx passed along) until deadline (0: none).
 * Returns 0 with *reusable = 1 when the connection may carry another request (keep-alive, the
 * response read to its end), or a negative TBC_E* code: TBC_EUSAGE (a field CR/LF would break),
 * TBC_EREAD (the body source), TBC_ESEND, TBC_ERECV, TBC_ETIMEOUT, TBC_EEMPTY (closed before
 * any response byte), TBC_EPROTO (the response does not parse), TBC_EPARTIAL (closed inside the
 * body), TBC_ENOMEM, or the code a callback returned. c->err (or the callback) tells more.
 */
int tbc_h1_exchange(struct tbc_tls *c, const struct tbc_request *rq,
                    const struct tbc_response_cb *cb, void *ctx, long long deadline, int *reusable);

#endif
