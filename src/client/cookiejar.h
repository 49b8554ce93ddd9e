/*
 * cookiejar: the cookies tbclient keeps between requests (-b to read, -c to write), after
 * RFC 6265.
 *
 * Set-Cookie is parsed as RFC 6265 section 5.2 says (name=value, then Expires, Max-Age, Domain,
 * Path, Secure, HttpOnly; others ignored; Max-Age wins over Expires) and stored as section 5.3
 * says: a cookie without Domain is host-only; a Domain must domain-match the request host and
 * hold a dot (there is no public suffix list here: "Domain=com" is refused for its missing dot,
 * "Domain=co.uk" is not); a cookie replaces the one with the same name, domain and path; an
 * expired one deletes it. The Cookie header lists the matching cookies, longer paths first, then
 * older first. Every request is https, so Secure cookies always go.
 *
 * The file format is the Netscape one curl and wget use: one cookie per line, seven fields
 * separated by tabs: domain (".example.com" when subdomains match), TRUE/FALSE for subdomains,
 * path, TRUE/FALSE for Secure, expiry (Unix seconds, 0 for a session cookie), name, value; a
 * "#HttpOnly_" prefix on the domain marks HttpOnly; other lines starting with '#' and blank lines
 * are comments. A saved jar holds session cookies too (as curl's does), with mode 0600: cookies
 * are credentials.
 *
 * Bounds: TBC_JAR_MAX_COOKIES cookies (a new one past that is dropped), TBC_COOKIE_MAX bytes of
 * name + value, TBC_COOKIE_MAX_LINE bytes per file line. Cookies bound by tbproxy
 * ("value~tb1~tag") are ordinary values here: the binding is the proxy's business.
 */
#ifndef TBC_COOKIEJAR_H
#define TBC_COOKIEJAR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TBC_JAR_MAX_COOKIES 1000
#define TBC_COOKIE_MAX 4096      /* bytes of name + value */
#define TBC_COOKIE_MAX_LINE 8192 /* bytes of a line of a cookie file */
#define TBC_COOKIE_MAX_HEADER 16384

struct tbc_cookie {
    char *name, *value; /* owned */
    char *domain;       /* owned; lower case, no leading dot */
    char *path;         /* owned; starts with '/' */
    int host_only;      /* 1: sent to exactly `domain`; 0: to its subdomains too */
    int secure, http_only;
    time_t expires;   /* 0: a session cookie */
    uint64_t created; /* insertion order, for the Cookie header's order */
};

/* Embedded: tbc_jar_init, tbc_jar_dispose. */
struct tbc_jar {
    struct tbc_cookie *c;
    size_t n, cap;
    uint64_t next_created;
};

void tbc_jar_init(struct tbc_jar *j);
/* Frees every cookie; the jar is empty (and usable) afterwards. */
void tbc_jar_dispose(struct tbc_jar *j);

/*
 * Adds the cookies of a Netscape cookie file. Lines that do not parse, and cookies expired at
 * `now`, are skipped. Returns the number added, or TBC_ECOOKIE when the file cannot be read
 * (a missing file is an error: the user named it), TBC_ENOMEM.
 */
int tbc_jar_load(struct tbc_jar *j, const char *path, time_t now);

/* Writes the jar (cookies not expired at `now`) to path, mode 0600, replacing it through a
 * temporary file. Returns 0 or TBC_ECOOKIE. */
int tbc_jar_save(const struct tbc_jar *j, const char *path, time_t now);

/*
 * Applies one Set-Cookie value received from host for a request to request_target (its path
 * and query; the query is ignored). Returns 0 when the cookie was stored or deleted, 1 when it
 * was ignored (syntax, domain, limits), TBC_ENOMEM.
 */
int tbc_jar_set(struct tbc_jar *j, const char *host, const char *request_target,
                const char *set_cookie, time_t now);

/*
 * The Cookie header value for a request to host and request_target: "n1=v1; n2=v2" into out
 * (NUL-terminated). Cookies that would not fit in cap are left out. Returns the length (0: no
 * cookie matches).
 */
size_t tbc_jar_header(const struct tbc_jar *j, const char *host, const char *request_target,
                      time_t now, char *out, size_t cap);

/*
 * RFC 6265 section 5.1.1 date parsing (what Expires holds: "Wed, 21 Oct 2026 07:28:00 GMT" and
 * the many older forms). Returns 0 and *out (Unix seconds, UTC) or -1 when it does not parse.
 */
int tbc_cookie_date(const char *s, time_t *out);

#endif
