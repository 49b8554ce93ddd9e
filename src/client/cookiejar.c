/*
 * cookiejar (see cookiejar.h): RFC 6265 storage and matching, and the Netscape file format.
 *
 * The jar is a plain array: a command-line client holds a handful of cookies, so a linear scan
 * per request is the simple and sufficient choice. Parsing works on a private copy of the
 * Set-Cookie value that is cut in place at ';' and '=', so no attribute needs its own
 * allocation; a stored cookie owns four strings.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cookiejar.h"
#include "errors.h"

void tbc_jar_init(struct tbc_jar *j)
{
    memset(j, 0, sizeof(*j));
}

static void cookie_free(struct tbc_cookie *c)
{
    free(c->name);
    free(c->value);
    free(c->domain);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

void tbc_jar_dispose(struct tbc_jar *j)
{
    size_t i;

    for (i = 0; i < j->n; i++)
        cookie_free(&j->c[i]);
    free(j->c);
    memset(j, 0, sizeof(*j));
}

/* --- dates (RFC 6265 5.1.1) ------------------------------------------------------------------ */

static int is_delimiter(unsigned char c)
{
    return c == 0x09 || (c >= 0x20 && c <= 0x2f) || (c >= 0x3b && c <= 0x40) ||
           (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/* Leading digits of t[0..n): value into *v, count returned (at most max, else 0). */
static size_t digits(const char *t, size_t n, size_t max, int *v)
{
    size_t i = 0;

    *v = 0;
    while (i < n && isdigit((unsigned char)t[i]) && i <= max)
        *v = *v * 10 + (t[i++] - '0');
    return i <= max ? i : 0;
}

/* hh:mm:ss at the start of the token (1 or 2 digits each). 1 if it is one. */
static int time_token(const char *t, size_t n, int hms[3])
{
    size_t k, pos = 0, d;

    for (k = 0; k < 3; k++) {
        d = digits(t + pos, n - pos, 2, &hms[k]);
        if (d == 0)
            return 0;
        pos += d;
        if (k < 2) {
            if (pos >= n || t[pos] != ':')
                return 0;
            pos++;
        }
    }
    return pos == n || !isdigit((unsigned char)t[pos]);
}

static int month_token(const char *t, size_t n)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    int m;

    if (n < 3)
        return -1;
    for (m = 0; m < 12; m++)
        if (strncasecmp(t, names + 3 * m, 3) == 0)
            return m;
    return -1;
}

struct date_parts {
    int have_time, have_day, have_month, have_year;
    int hms[3], day, month, year;
};

static void date_token(const char *t, size_t n, struct date_parts *d)
{
    int v;
    size_t k;

    if (!d->have_time && time_token(t, n, d->hms)) {
        d->have_time = 1;
    } else if (!d->have_day && (k = digits(t, n, 2, &v)) > 0 &&
               (k == n || !isdigit((unsigned char)t[k]))) {
        d->have_day = 1;
        d->day = v;
    } else if (!d->have_month && (v = month_token(t, n)) >= 0) {
        d->have_month = 1;
        d->month = v;
    } else if (!d->have_year && (k = digits(t, n, 4, &v)) >= 2 &&
               (k == n || !isdigit((unsigned char)t[k]))) {
        d->have_year = 1;
        d->year = v;
    }
}

int tbc_cookie_date(const char *s, time_t *out)
{
    struct date_parts d;
    struct tm tm;
    size_t i = 0, n = strlen(s);

    memset(&d, 0, sizeof(d));
    while (i < n) {
        size_t start;

        while (i < n && is_delimiter((unsigned char)s[i]))
            i++;
        start = i;
        while (i < n && !is_delimiter((unsigned char)s[i]))
            i++;
        if (i > start)
            date_token(s + start, i - start, &d);
    }
    if (d.have_year && d.year >= 70 && d.year <= 99)
        d.year += 1900;
    else if (d.have_year && d.year <= 69)
        d.year += 2000;
    if (!d.have_time || !d.have_day || !d.have_month || !d.have_year || d.day < 1 || d.day > 31 ||
        d.year < 1601 || d.hms[0] > 23 || d.hms[1] > 59 || d.hms[2] > 59)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = d.year - 1900;
    tm.tm_mon = d.month;
    tm.tm_mday = d.day;
    tm.tm_hour = d.hms[0];
    tm.tm_min = d.hms[1];
    tm.tm_sec = d.hms[2];
    *out = timegm(&tm);
    return 0;
}

/* --- matching -------------------------------------------------------------------------------- */

static int is_ip_literal(const char *host)
{
    unsigned char a[16];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* RFC 6265 5.1.3: host equals domain, or ends with "." domain and is not an IP address. */
static int domain_match(const char *host, const char *domain)
{
    size_t h = strlen(host), d = strlen(domain);

    if (strcasecmp(host, domain) == 0)
        return 1;
    return h > d && host[h - d - 1] == '.' && strcasecmp(host + h - d, domain) == 0 &&
           !is_ip_literal(host);
}

/* RFC 6265 5.1.4, with the request path given as path[0..n). */
static int path_match(const char *path, size_t n, const char *cpath)
{
    size_t c = strlen(cpath);

    if (c > n || memcmp(path, cpath, c) != 0)
        return 0;
    return c == n || cpath[c - 1] == '/' || path[c] == '/';
}

static int cookie_matches(const struct tbc_cookie *c, const char *host, const char *path,
                          size_t path_len, time_t now)
{
    if (c->expires != 0 && c->expires <= now)
        return 0;
    if (c->host_only ? strcasecmp(host, c->domain) != 0 : !domain_match(host, c->domain))
        return 0;
    return path_match(path, path_len, c->path);
}

static const struct tbc_jar *sort_jar; /* qsort has no context argument */

static int by_path_then_age(const void *a, const void *b)
{
    const struct tbc_cookie *x = &sort_jar->c[*(const size_t *)a];
    const struct tbc_cookie *y = &sort_jar->c[*(const size_t *)b];
    size_t lx = strlen(x->path), ly = strlen(y->path);

    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x->created < y->created ? -1 : x->created > y->created;
}

size_t tbc_jar_header(const struct tbc_jar *j, const char *host, const char *request_target,
                      time_t now, char *out, size_t cap)
{
    size_t path_len = strcspn(request_target, "?"), n = 0, len = 0, i;
    size_t *idx = j->n > 0 ? malloc(j->n * sizeof(*idx)) : NULL;

    if (cap > 0)
        out[0] = '\0';
    if (idx == NULL || cap == 0) {
        free(idx);
        return 0;
    }
    for (i = 0; i < j->n; i++)
        if (cookie_matches(&j->c[i], host, request_target, path_len, now))
            idx[n++] = i;
    sort_jar = j;
    qsort(idx, n, sizeof(*idx), by_path_then_age);
    for (i = 0; i < n; i++) {
        const struct tbc_cookie *c = &j->c[idx[i]];
        size_t need = (len > 0 ? 2 : 0) + strlen(c->name) + 1 + strlen(c->value);

        if (len + need + 1 > cap)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", len > 0 ? "; " : "", c->name,
                                c->value);
    }
    free(idx);
    return len;
}

/* --- storing --------------------------------------------------------------------------------- */

static struct tbc_cookie *find(const struct tbc_jar *j, const char *name, const char *domain,
                               const char *path)
{
    size_t i;

    for (i = 0; i < j->n; i++)
        if (strcmp(j->c[i].name, name) == 0 && strcasecmp(j->c[i].domain, domain) == 0 &&
            strcmp(j->c[i].path, path) == 0)
            return &j->c[i];
    return NULL;
}

static void remove_at(struct tbc_jar *j, struct tbc_cookie *c)
{
    size_t i = (size_t)(c - j->c);

    cookie_free(c);
    memmove(&j->c[i], &j->c[i + 1], (j->n - i - 1) * sizeof(*c));
    j->n--;
}

/*
 * Stores *c (taking its strings; they are freed on every path): replaces the cookie with the
 * same name, domain and path (keeping its age), deletes it when c has expired. Returns 0, 1 when
 * dropped (jar full), TBC_ENOMEM.
 */
static int store(struct tbc_jar *j, struct tbc_cookie *c, time_t now)
{
    struct tbc_cookie *old = find(j, c->name, c->domain, c->path);

    if (c->expires != 0 && c->expires <= now) {
        if (old != NULL)
            remove_at(j, old);
        cookie_free(c);
        return 0;
    }
    if (old != NULL) {
        c->created = old->created;
        cookie_free(old);
        *old = *c;
        return 0;
    }
    if (j->n == TBC_JAR_MAX_COOKIES) {
        cookie_free(c);
        return 1;
    }
    if (j->n == j->cap) {
        size_t ncap = j->cap ? 2 * j->cap : 16;
        struct tbc_cookie *p = realloc(j->c, ncap * sizeof(*p));

        if (p == NULL) {
            cookie_free(c);
            return TBC_ENOMEM;
        }
        j->c = p;
        j->cap = ncap;
    }
    c->created = j->next_created++;
    j->c[j->n++] = *c;
    return 0;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* Controls (tab included: it separates the fields of a cookie file) have no place here. */
static int text_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* RFC 6265 5.1.4 default-path of a request target. */
static char *default_path(const char *target)
{
    size_t n = strcspn(target, "?");

    while (n > 0 && target[n - 1] != '/')
        n--;
    if (target[0] != '/' || n <= 1)
        return strdup("/");
    return strndup(target, n - 1);
}

/* The attributes after the name-value pair, applied to c. */
struct attrs {
    int have_max_age;
    long long max_age;
    int have_expires;
    time_t expires;
    const char *domain, *path;
};

static void parse_attr(char *av, struct attrs *a, struct tbc_cookie *c)
{
    char *eq = strchr(av, '='), *name = av, *value = (char *)"";
    char *end;

    if (eq != NULL) {
        *eq = '\0';
        value = trim(eq + 1);
    }
    name = trim(name);
    if (strcasecmp(name, "expires") == 0) {
        a->have_expires = tbc_cookie_date(value, &a->expires) == 0;
    } else if (strcasecmp(name, "max-age") == 0) {
        errno = 0;
        if ((isdigit((unsigned char)value[0]) || value[0] == '-') &&
            (a->max_age = strtoll(value, &end, 10), *end == '\0'))
            a->have_max_age = 1;
        if (errno == ERANGE)
            a->max_age = value[0] == '-' ? -1 : (long long)1 << 40;
    } else if (strcasecmp(name, "domain") == 0 && value[0] != '\0') {
        a->domain = value[0] == '.' ? value + 1 : value;
    } else if (strcasecmp(name, "path") == 0) {
        a->path = value[0] == '/' ? value : NULL;
    } else if (strcasecmp(name, "secure") == 0) {
        c->secure = 1;
    } else if (strcasecmp(name, "httponly") == 0) {
        c->http_only = 1;
    }
}

/* The expiry from Max-Age (wins) or Expires; 0 for a session cookie; 1 for "already past". */
static time_t expiry(const struct attrs *a, time_t now)
{
    const long long max = (long long)1 << 40; /* far enough: keeps time_t arithmetic sane */

    if (a->have_max_age)
        return a->max_age <= 0 ? 1 : now + (time_t)(a->max_age > max ? max : a->max_age);
    if (a->have_expires)
        return a->expires <= 0 ? 1 : a->expires;
    return 0;
}

/* Domain decision (RFC 6265 5.3 steps 5-6) into c. 0, or 1 to ignore the cookie. */
static int decide_domain(const char *host, const char *attr_domain, struct tbc_cookie *c)
{
    char *d;

    if (attr_domain == NULL || strcasecmp(attr_domain, host) == 0) {
        c->host_only = 1;
        c->domain = strdup(host);
    } else {
        if (!domain_match(host, attr_domain) || strchr(attr_domain, '.') == NULL)
            return 1;
        c->domain = strdup(attr_domain);
    }
    if (c->domain == NULL)
        return TBC_ENOMEM;
    for (d = c->domain; *d != '\0'; d++)
        *d = (char)tolower((unsigned char)*d);
    return 0;
}

int tbc_jar_set(struct tbc_jar *j, const char *host, const char *request_target,
                const char *set_cookie, time_t now)
{
    struct tbc_cookie c;
    struct attrs a;
    char *copy = strdup(set_cookie), *pair, *rest, *eq, *av;
    int rc = 1;

    memset(&c, 0, sizeof(c));
    memset(&a, 0, sizeof(a));
    if (copy == NULL)
        return TBC_ENOMEM;
    pair = copy;
    rest = strchr(copy, ';');
    if (rest != NULL)
        *rest++ = '\0';
    if ((eq = strchr(pair, '=')) == NULL)
        goto Exit;
    *eq = '\0';
    if ((c.name = strdup(trim(pair))) == NULL || (c.value = strdup(trim(eq + 1))) == NULL) {
        rc = TBC_ENOMEM;
        goto Exit;
    }
    if (c.name[0] == '\0' || strlen(c.name) + strlen(c.value) > TBC_COOKIE_MAX ||
        !text_ok(c.name) || !text_ok(c.value) || strpbrk(c.name, " \t") != NULL)
        goto Exit;
    while (rest != NULL && (av = strsep(&rest, ";")) != NULL)
        parse_attr(av, &a, &c);
    c.expires = expiry(&a, now);
    if ((rc = decide_domain(host, a.domain, &c)) != 0)
        goto Exit;
    c.path = a.path != NULL ? strdup(a.path) : default_path(request_target);
    if (c.path == NULL || !text_ok(c.path)) {
        rc = c.path == NULL ? TBC_ENOMEM : 1;
        goto Exit;
    }
    rc = store(j, &c, now); /* takes c's strings */
Exit:
    if (rc != 0)
        cookie_free(&c); /* store() took the strings on success */
    free(copy);
    return rc;
}

/* --- files ----------------------------------------------------------------------------------- */

/* One line of a cookie file (newline removed) into the jar. 1 added, 0 skipped, TBC_ENOMEM. */
static int load_line(struct tbc_jar *j, char *line, time_t now)
{
    char *f[7], *p = line;
    struct tbc_cookie c;
    int http_only = 0, k;
    long long exp;
    char *end;

    if (strncmp(p, "#HttpOnly_", 10) == 0) {
        http_only = 1;
        p += 10;
    } else if (p[0] == '#' || p[0] == '\0') {
        return 0;
    }
    for (k = 0; k < 7; k++)
        if ((f[k] = strsep(&p, "\t")) == NULL)
            return 0;
    if (p != NULL || f[0][0] == '\0' || f[2][0] != '/' || f[5][0] == '\0')
        return 0;
    errno = 0;
    exp = strtoll(f[4], &end, 10);
    if (*end != '\0' || errno != 0 || exp < 0 || (exp != 0 && exp <= now))
        return 0;
    memset(&c, 0, sizeof(c));
    c.host_only = strcasecmp(f[1], "TRUE") != 0;
    c.secure = strcasecmp(f[3], "TRUE") == 0;
    c.http_only = http_only;
    c.expires = (time_t)exp;
    c.domain = strdup(f[0][0] == '.' ? f[0] + 1 : f[0]);
    c.path = strdup(f[2]);
    c.name = strdup(f[5]);
    c.value = strdup(f[6]);
    if (c.domain == NULL || c.path == NULL || c.name == NULL || c.value == NULL) {
        cookie_free(&c);
        return TBC_ENOMEM;
    }
    if (c.domain[0] == '\0' || strlen(c.name) + strlen(c.value) > TBC_COOKIE_MAX) {
        cookie_free(&c);
        return 0;
    }
    return store(j, &c, now) == 0 ? 1 : 0;
}

int tbc_jar_load(struct tbc_jar *j, const char *path, time_t now)
{
    FILE *f = fopen(path, "re");
    char line[TBC_COOKIE_MAX_LINE];
    int added = 0, r, skipping = 0;

    if (f == NULL)
        return TBC_ECOOKIE;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(line);
        int complete = n > 0 && line[n - 1] == '\n';

        if (skipping || !complete) { /* a line too long: skip all of it */
            skipping = !complete && !feof(f);
            continue;
        }
        line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if ((r = load_line(j, line, now)) < 0) {
            fclose(f);
            return r;
        }
        added += r;
    }
    r = ferror(f);
    fclose(f);
    return r ? TBC_ECOOKIE : added;
}

int tbc_jar_save(const struct tbc_jar *j, const char *path, time_t now)
{
    char tmp[4096 + 16];
    FILE *f;
    size_t i;
    int fd, bad;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp) ||
        (fd = mkstemp(tmp)) == -1)
        return TBC_ECOOKIE;
    if ((f = fdopen(fd, "w")) == NULL) {
        close(fd);
        unlink(tmp);
        return TBC_ECOOKIE;
    }
    fputs("# Netscape HTTP Cookie File\n# Written by tbclient. Edit at your own risk.\n\n", f);
    for (i = 0; i < j->n; i++) {
        const struct tbc_cookie *c = &j->c[i];

        if (c->expires != 0 && c->expires <= now)
            continue;
        fprintf(f, "%s%s%s\t%s\t%s\t%s\t%lld\t%s\t%s\n", c->http_only ? "#HttpOnly_" : "",
                c->host_only ? "" : ".", c->domain, c->host_only ? "FALSE" : "TRUE", c->path,
                c->secure ? "TRUE" : "FALSE", (long long)c->expires, c->name, c->value);
    }
    bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return TBC_ECOOKIE;
    }
    return 0;
}
