/*
 * url: the https URLs tbclient fetches, and the Location references redirects resolve.
 *
 * Only `https://host[:port][/path][?query][#fragment]` is accepted. The host is a DNS name
 * (ASCII letters, digits, '-', '.', '_'; lower-cased), an IPv4 literal or an IPv6 literal in
 * brackets (no zone id); user info (`user@`) is refused, since credentials belong in headers. The
 * fragment is dropped: it never goes on the wire. A command-line URL containing spaces, controls
 * or non-ASCII bytes is refused; a Location reference gets those bytes percent-encoded, as
 * browsers do. No other normalisation: the request-target is sent as written.
 *
 * A struct tbc_url is a plain value (no pointers): copy it freely.
 */
#ifndef TBC_URL_H
#define TBC_URL_H

#include <stddef.h>
#include <stdint.h>

#define TBC_URL_MAX_HOST 253    /* characters of a DNS name (IPv6 literals are shorter) */
#define TBC_URL_MAX_TARGET 8192 /* characters of path + query */
#define TBC_URL_DEFAULT_PORT 443

struct tbc_url {
    char host[TBC_URL_MAX_HOST + 1];     /* lower case; an IPv6 literal without its brackets */
    int is_ipv6;                         /* host is an IPv6 literal: bracketed in authorities */
    int is_ip;                           /* IPv4 or IPv6 literal: no SNI, certificate IP check */
    uint16_t port;                       /* 443 when the URL gives none */
    char target[TBC_URL_MAX_TARGET + 1]; /* request-target: path and query, at least "/" */
};

/*
 * Parses an absolute URL. Returns 0 and fills *out; TBC_EUNSUPPORTED for a scheme other than
 * https, TBC_EURL for anything malformed (no scheme, bad host or port, user info, a target over
 * TBC_URL_MAX_TARGET, spaces or bytes outside printable ASCII).
 */
int tbc_url_parse(const char *s, struct tbc_url *out);

/*
 * Resolves a reference (a Location value) against base per RFC 3986 section 5: absolute
 * (`https://...`), network-path (`//host/...`), absolute-path, query-only or relative-path, with
 * dot segments removed from the merged path. Bytes a URL may not hold are percent-encoded first.
 * Returns 0, or what tbc_url_parse returns for the result (TBC_EURL for a reference over
 * TBC_URL_MAX_TARGET characters).
 */
int tbc_url_resolve(const struct tbc_url *base, const char *ref, struct tbc_url *out);

/* The Host header / :authority value: host, "[v6]" for IPv6, ":port" unless it is 443.
 * Returns the length, or TBC_EURL if cap is too small. */
int tbc_url_authority(const struct tbc_url *u, char *out, size_t cap);

/* The origin name keys are filed under: host:port, always with the port ("[::1]:8443").
 * Returns the length, or TBC_EURL if cap is too small. */
int tbc_url_origin(const struct tbc_url *u, char *out, size_t cap);

/* The URL as text, "https://" authority target. Returns the length, or TBC_EURL (cap). */
int tbc_url_format(const struct tbc_url *u, char *out, size_t cap);

/* 1 if a and b have the same host and port (the scheme is always https), else 0. */
int tbc_url_same_origin(const struct tbc_url *a, const struct tbc_url *b);

#endif
