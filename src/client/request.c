/*
 * request (see request.h): header lists and body sources.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "request.h"

int tbc_headers_add(struct tbc_headers *hs, const char *name, size_t nlen, const char *value,
                    size_t vlen)
{
    struct tbc_header f;

    if (hs->n == TBC_MAX_FIELDS)
        return TBC_EUSAGE;
    if (hs->n == hs->cap) {
        size_t ncap = hs->cap ? 2 * hs->cap : 16;
        struct tbc_header *p = realloc(hs->h, ncap * sizeof(*p));

        if (p == NULL)
            return TBC_ENOMEM;
        hs->h = p;
        hs->cap = ncap;
    }
    f.name = strndup(name, nlen);
    f.value = strndup(value, vlen);
    if (f.name == NULL || f.value == NULL) {
        free(f.name);
        free(f.value);
        return TBC_ENOMEM;
    }
    hs->h[hs->n++] = f;
    return 0;
}

int tbc_headers_add_str(struct tbc_headers *hs, const char *name, const char *value)
{
    return tbc_headers_add(hs, name, strlen(name), value, strlen(value));
}

int tbc_headers_set(struct tbc_headers *hs, const char *name, const char *value)
{
    size_t i;
    int found = 0;

    for (i = 0; i < hs->n; i++) {
        char *v;

        if (strcasecmp(hs->h[i].name, name) != 0)
            continue;
        if ((v = strdup(value)) == NULL)
            return TBC_ENOMEM;
        free(hs->h[i].value);
        hs->h[i].value = v;
        found = 1;
    }
    return found ? 0 : tbc_headers_add_str(hs, name, value);
}

const char *tbc_headers_get(const struct tbc_headers *hs, const char *name)
{
    size_t i;

    for (i = 0; i < hs->n; i++)
        if (strcasecmp(hs->h[i].name, name) == 0)
            return hs->h[i].value;
    return NULL;
}

void tbc_headers_remove(struct tbc_headers *hs, const char *name)
{
    size_t i = 0;

    while (i < hs->n) {
        if (strcasecmp(hs->h[i].name, name) == 0) {
            free(hs->h[i].name);
            free(hs->h[i].value);
            memmove(&hs->h[i], &hs->h[i + 1], (hs->n - i - 1) * sizeof(hs->h[0]));
            hs->n--;
        } else {
            i++;
        }
    }
}

void tbc_headers_dispose(struct tbc_headers *hs)
{
    size_t i;

    for (i = 0; i < hs->n; i++) {
        free(hs->h[i].name);
        free(hs->h[i].value);
    }
    free(hs->h);
    memset(hs, 0, sizeof(*hs));
}

/* RFC 9110 tchar */
static int tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int tbc_header_valid(const char *name, size_t nlen, const char *value, size_t vlen)
{
    size_t i;

    if (nlen == 0)
        return 0;
    for (i = 0; i < nlen; i++)
        if (!tchar((unsigned char)name[i]))
            return 0;
    for (i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return 0;
    return 1;
}

/* --- bodies ---------------------------------------------------------------------------------- */

void tbc_body_mem(struct tbc_body *b, const char *mem, size_t len)
{
    memset(b, 0, sizeof(*b));
    b->kind = TBC_BODY_MEM;
    b->mem = mem;
    b->fd = -1;
    b->len = (int64_t)len;
    b->rewindable = 1;
}

int tbc_body_fd(struct tbc_body *b, int fd)
{
    struct stat st;
    off_t at;

    memset(b, 0, sizeof(*b));
    b->kind = TBC_BODY_FD;
    b->fd = fd;
    b->len = -1;
    if (fstat(fd, &st) == -1)
        return TBC_EREAD;
    if (S_ISREG(st.st_mode) && (at = lseek(fd, 0, SEEK_CUR)) != (off_t)-1) {
        b->offset = at;
        b->len = st.st_size > at ? (int64_t)(st.st_size - at) : 0;
        b->rewindable = 1;
    }
    return 0;
}

ssize_t tbc_body_read(struct tbc_body *b, void *buf, size_t cap)
{
    ssize_t r;

    if (b->kind == TBC_BODY_NONE)
        return 0;
    if (b->len >= 0 && (int64_t)b->done >= b->len)
        return 0; /* a file that grows is sent with the length announced */
    if (b->len >= 0 && (int64_t)cap > b->len - (int64_t)b->done)
        cap = (size_t)(b->len - (int64_t)b->done);
    if (b->kind == TBC_BODY_MEM) {
        memcpy(buf, b->mem + b->done, cap);
        b->done += cap;
        return (ssize_t)cap;
    }
    do
        r = read(b->fd, buf, cap);
    while (r == -1 && errno == EINTR);
    if (r == -1 || (r == 0 && b->len >= 0))
        return TBC_EREAD; /* error, or a file that shrank under us */
    b->done += (uint64_t)r;
    return r;
}

int tbc_body_rewind(struct tbc_body *b)
{
    if (b->kind == TBC_BODY_NONE || b->done == 0)
        return 0;
    if (!b->rewindable)
        return TBC_EREWIND;
    if (b->kind == TBC_BODY_FD && lseek(b->fd, b->offset, SEEK_SET) == (off_t)-1)
        return TBC_EREWIND;
    b->done = 0;
    return 0;
}
