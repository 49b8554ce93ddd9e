/*
 * url (see url.h): a small RFC 3986 parser for https URLs and reference resolution.
 *
 * Parsing walks the string once: scheme, authority (up to the first '/', '?' or '#'), then the
 * target up to '#'. Resolution builds the absolute form of the reference as text and parses it
 * again, so every URL tbclient uses passes the same checks. Dot-segment removal works on the
 * path only (the query is copied as is), with a stack of segment start offsets.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errors.h"
#include "url.h"

#define SCHEME "https://"
#define SCHEME_LEN 8

/* A byte a URL may hold as is: printable ASCII without space. */
static int url_byte_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

static int host_char_ok(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* Parses "1".."65535" from s[0..n). Returns the port or -1. */
static long parse_port(const char *s, size_t n)
{
    long v = 0;
    size_t i;

    if (n == 0 || n > 5)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* The host part (without port) of an authority into u. Returns 0 or TBC_EURL. */
static int parse_host(const char *h, size_t n, struct tbc_url *u)
{
    unsigned char addr[16];
    size_t i;

    if (n == 0 || n > TBC_URL_MAX_HOST)
        return TBC_EURL;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return TBC_EURL;
        memcpy(u->host, h + 1, n - 2);
        u->host[n - 2] = '\0';
        if (inet_pton(AF_INET6, u->host, addr) != 1)
            return TBC_EURL;
        u->is_ipv6 = u->is_ip = 1;
    } else {
        for (i = 0; i < n; i++) {
            if (!host_char_ok((unsigned char)h[i]))
                return TBC_EURL;
            u->host[i] = (char)tolower((unsigned char)h[i]);
        }
        u->host[n] = '\0';
        u->is_ip = inet_pton(AF_INET, u->host, addr) == 1;
    }
    for (i = 0; u->is_ipv6 && u->host[i] != '\0'; i++)
        u->host[i] = (char)tolower((unsigned char)u->host[i]);
    return 0;
}

/* host[:port] from a[0..n) into u. */
static int parse_authority(const char *a, size_t n, struct tbc_url *u)
{
    const char *colon = NULL;
    size_t i, host_len = n;
    long port = TBC_URL_DEFAULT_PORT;

    if (memchr(a, '@', n) != NULL)
        return TBC_EURL; /* user info: not supported */
    for (i = n; i > 0; i--) {
        if (a[i - 1] == ']')
            break;
        if (a[i - 1] == ':') {
            colon = a + i - 1;
            break;
        }
    }
    if (colon != NULL) {
        host_len = (size_t)(colon - a);
        if (colon + 1 < a + n && (port = parse_port(colon + 1, n - host_len - 1)) < 0)
            return TBC_EURL;
    }
    u->port = (uint16_t)port;
    return parse_host(a, host_len, u);
}

int tbc_url_parse(const char *s, struct tbc_url *out)
{
    const char *auth, *rest, *hash;
    size_t auth_len, target_len, i;
    int rc;

    memset(out, 0, sizeof(*out));
    for (i = 0; s[i] != '\0'; i++)
        if (!url_byte_ok((unsigned char)s[i]))
            return TBC_EURL;
    if (strncasecmp(s, SCHEME, SCHEME_LEN) != 0) {
        const char *sep = strstr(s, "://");

        return sep != NULL && sep > s ? TBC_EUNSUPPORTED : TBC_EURL;
    }
    auth = s + SCHEME_LEN;
    auth_len = strcspn(auth, "/?#");
    if ((rc = parse_authority(auth, auth_len, out)) != 0)
        return rc;
    rest = auth + auth_len;
    hash = strchr(rest, '#');
    target_len = hash != NULL ? (size_t)(hash - rest) : strlen(rest);
    i = target_len == 0 || rest[0] == '?'; /* a '/' goes first */
    if (i + target_len > TBC_URL_MAX_TARGET)
        return TBC_EURL;
    if (i)
        out->target[0] = '/';
    memcpy(out->target + i, rest, target_len);
    out->target[i + target_len] = '\0';
    return 0;
}

/* --- resolution ------------------------------------------------------------------------------ */

/* ref with the fragment dropped and bytes outside url_byte_ok percent-encoded; malloc'd. */
static char *encode_ref(const char *ref)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strcspn(ref, "#"), i, o = 0;
    char *out;

    if ((out = malloc(3 * n + 1)) == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)ref[i];

        if (url_byte_ok(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* Does ref start with a scheme ("alpha *(alpha / digit / + - .) :")? */
static int has_scheme(const char *ref)
{
    size_t i;

    if (!isalpha((unsigned char)ref[0]))
        return 0;
    for (i = 1; isalnum((unsigned char)ref[i]) || ref[i] == '+' || ref[i] == '-' || ref[i] == '.';
         i++)
        ;
    return ref[i] == ':';
}

/*
 * Removes "." and ".." segments from the absolute path p[0..n) (RFC 3986 5.2.4) and appends the
 * result to out (at *o, cap bytes). Returns 0 or -1 when out is full.
 */
static int remove_dots(const char *p, size_t n, char *out, size_t *o, size_t cap)
{
    size_t start = *o, stack[512], depth = 0, i = 0;

    while (i < n) {
        size_t j = i + 1, seg;

        while (j < n && p[j] != '/')
            j++;
        seg = j - i - 1; /* segment p[i+1 .. j) */
        if ((seg == 1 && p[i + 1] == '.') || (seg == 2 && p[i + 1] == '.' && p[i + 2] == '.')) {
            if (seg == 2 && depth > 0)
                *o = stack[--depth];
            if (j == n && *o + 1 < cap)
                out[(*o)++] = '/'; /* a trailing "." or ".." leaves a directory */
        } else {
            if (*o + 1 + seg >= cap || depth == sizeof(stack) / sizeof(stack[0]))
                return -1;
            stack[depth++] = *o;
            out[(*o)++] = '/';
            memcpy(out + *o, p + i + 1, seg);
            *o += seg;
        }
        i = j;
    }
    if (*o == start)
        out[(*o)++] = '/';
    out[*o] = '\0';
    return 0;
}

/* Builds "https://authority" + the merged, dot-free path + query of ref into out. */
static int merge(const struct tbc_url *base, const char *ref, char *out, size_t cap)
{
    size_t o, path_len, dir_len, rlen = strcspn(ref, "?");
    char *path;
    int n = tbc_url_format(base, out, cap), rc;

    if (n < 0)
        return TBC_EURL;
    o = (size_t)n - strlen(base->target); /* keep scheme and authority */
    if (ref[0] == '/') {
        path = strndup(ref, rlen);
    } else {
        /* relative path: base path up to its last '/' then the reference */
        dir_len = strcspn(base->target, "?");
        while (dir_len > 0 && base->target[dir_len - 1] != '/')
            dir_len--;
        if ((path = malloc(dir_len + rlen + 2)) != NULL) {
            memcpy(path, base->target, dir_len);
            memcpy(path + dir_len, ref, rlen);
            path[dir_len + rlen] = '\0';
        }
    }
    if (path == NULL)
        return TBC_ENOMEM;
    path_len = strlen(path);
    rc = remove_dots(path, path_len, out, &o, cap);
    free(path);
    if (rc != 0 || o + strlen(ref + rlen) + 1 > cap)
        return TBC_EURL;
    memcpy(out + o, ref + rlen, strlen(ref + rlen) + 1);
    return 0;
}

/* The base's path with the query q ("?..."): a query-only reference. */
static int new_query(const struct tbc_url *base, const char *q, struct tbc_url *out)
{
    size_t path_len = strcspn(base->target, "?"), qlen = strlen(q);

    if (path_len + qlen > TBC_URL_MAX_TARGET)
        return TBC_EURL;
    *out = *base;
    memcpy(out->target + path_len, q, qlen + 1);
    return 0;
}

int tbc_url_resolve(const struct tbc_url *base, const char *ref, struct tbc_url *out)
{
    size_t cap = SCHEME_LEN + TBC_URL_MAX_HOST + 16 + TBC_URL_MAX_TARGET + 1;
    char *enc = NULL, *abs = NULL;
    int rc;

    if (strlen(ref) > TBC_URL_MAX_TARGET + 512)
        return TBC_EURL;
    if ((enc = encode_ref(ref)) == NULL || (abs = malloc(cap)) == NULL) {
        rc = TBC_ENOMEM;
        goto Exit;
    }
    if (has_scheme(enc)) {
        rc = tbc_url_parse(enc, out);
    } else if (enc[0] == '/' && enc[1] == '/') {
        rc =
            (size_t)snprintf(abs, cap, "https:%s", enc) >= cap ? TBC_EURL : tbc_url_parse(abs, out);
    } else if (enc[0] == '\0') {
        *out = *base; /* the same document */
        rc = 0;
    } else if (enc[0] == '?') {
        rc = new_query(base, enc, out);
    } else {
        rc = merge(base, enc, abs, cap);
        if (rc == 0)
            rc = tbc_url_parse(abs, out);
    }
Exit:
    free(enc);
    free(abs);
    return rc;
}

/* --- formatting ------------------------------------------------------------------------------ */

static int host_text(const struct tbc_url *u, char *out, size_t cap, int with_port)
{
    int n;

    if (with_port)
        n = snprintf(out, cap, u->is_ipv6 ? "[%s]:%u" : "%s:%u", u->host, (unsigned)u->port);
    else
        n = snprintf(out, cap, u->is_ipv6 ? "[%s]" : "%s", u->host);
    return n < 0 || (size_t)n >= cap ? TBC_EURL : n;
}

int tbc_url_authority(const struct tbc_url *u, char *out, size_t cap)
{
    return host_text(u, out, cap, u->port != TBC_URL_DEFAULT_PORT);
}

int tbc_url_origin(const struct tbc_url *u, char *out, size_t cap)
{
    return host_text(u, out, cap, 1);
}

int tbc_url_format(const struct tbc_url *u, char *out, size_t cap)
{
    char auth[TBC_URL_MAX_HOST + 16];
    int n;

    if (tbc_url_authority(u, auth, sizeof(auth)) < 0)
        return TBC_EURL;
    n = snprintf(out, cap, SCHEME "%s%s", auth, u->target);
    return n < 0 || (size_t)n >= cap ? TBC_EURL : n;
}

int tbc_url_same_origin(const struct tbc_url *a, const struct tbc_url *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}
