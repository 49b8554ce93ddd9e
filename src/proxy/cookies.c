/*
 * Bound cookies in the proxy (see cookies.h for the contract).
 *
 * Both directions write into the fixed arena of a struct tbp_head_edit, sized beforehand by a
 * pass over the same fields (tbp_cookies_*_space), so every write below is bounded by that size
 * and checked against it anyway. The request side rebuilds one Cookie value from the pairs that
 * survive; the response side replaces the value of each listed Set-Cookie field in place. The
 * cookie parsers are libtb's (tb_cookie_next, tb_set_cookie_parse): they return slices and never
 * read past the field.
 */
#include <string.h>

#include "cookies.h"
#include "tb/cookie.h"
#include "tb/error.h"

#define SECURE_ATTR "; Secure"

const char *tbp_cookie_outcome_name(enum tbp_cookie_outcome o)
{
    switch (o) {
    case TBP_CK_OK:
        return "ok";
    case TBP_CK_PASS:
        return "pass";
    case TBP_CK_UNBOUND:
        return "unbound";
    case TBP_CK_MISMATCH:
        return "mismatch";
    case TBP_CK_KEYID:
        return "unknown_key";
    case TBP_CK_NO_TB:
        return "no_tb";
    case TBP_CK_ERROR:
        return "error";
    }
    return "unknown";
}

int tbp_cookies_enabled(const struct tbp_route *r)
{
    return r != NULL && (r->bind_all_cookies || r->n_bind_cookies > 0);
}

int tbp_cookies_listed(const struct tbp_route *r, const char *name, size_t len)
{
    size_t i;

    if (r == NULL)
        return 0;
    if (r->bind_all_cookies)
        return 1;
    for (i = 0; i < r->n_bind_cookies; i++)
        if (strlen(r->bind_cookies[i]) == len && memcmp(r->bind_cookies[i], name, len) == 0)
            return 1;
    return 0;
}

/* --- request ---------------------------------------------------------------------------------- */

size_t tbp_cookies_request_space(const struct tbp_http_head *h)
{
    struct tb_cookie_pair pair;
    size_t i, pos, need = 0;

    for (i = 0; i < h->n_headers; i++) {
        const struct tbp_header *f = &h->headers[i];
        if (!tbp_http_name_eq(f->name, "cookie"))
            continue;
        for (pos = 0; tb_cookie_next(f->value.p, f->value.len, &pos, &pair) == 1;)
            need += pair.name_len + pair.value_len + 3; /* "; " + name + "=" + value */
    }
    return need;
}

/* A bounded writer into a slice of the arena. */
struct out {
    char *p;
    size_t len, cap;
};

static int put(struct out *o, const char *p, size_t n)
{
    if (n > o->cap - o->len)
        return TBP_EBUF;
    if (n > 0)
        memcpy(o->p + o->len, p, n);
    o->len += n;
    return 0;
}

/* Appends "name=value" (or "value" for a cookie without a name), "; " before all but the first. */
static int put_pair(struct out *o, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    if ((o->len > 0 && put(o, "; ", 2) != 0) || put(o, name, name_len) != 0 ||
        (name_len > 0 && put(o, "=", 1) != 0))
        return TBP_EBUF;
    return put(o, value, value_len);
}

/* What to do with one listed cookie: its outcome, and *keep_len (the bytes of value to forward)
 * when it is kept. */
static enum tbp_cookie_outcome judge(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                                     const char *tbh, const struct tb_cookie_pair *c,
                                     size_t *keep_len)
{
    size_t orig = c->value_len;
    int ret;

    if (tbh == NULL || tbh[0] == '\0') {
        if (r->unbound_cookies != TBP_UNBOUND_PASS ||
            tb_cookie_split(c->value, c->value_len, &orig))
            return TBP_CK_NO_TB;
        *keep_len = c->value_len;
        return TBP_CK_PASS;
    }
    if (kr == NULL)
        return TBP_CK_ERROR;
    ret = tb_cookie_check(kr, c->name, c->name_len, c->value, c->value_len, tbh, &orig);
    switch (ret) {
    case 0:
        *keep_len = orig;
        return TBP_CK_OK;
    case TB_EUNBOUND:
        return TBP_CK_UNBOUND;
    case TB_EMISMATCH:
        return TBP_CK_MISMATCH;
    case TB_EKEYID:
        return TBP_CK_KEYID;
    default:
        return TBP_CK_ERROR;
    }
}

/* Adds a dropped cookie's name to t->dropped_names (a nameless one as "="). A name goes in only
 * if ", ..." still fits after it, so the list can always be ended with that mark when the next
 * name does not fit. */
static void note_dropped(struct tbp_cookie_tally *t, const char *name, size_t len)
{
    static const char cut[] = ", ...";
    char *d = t->dropped_names;
    size_t have = strnlen(d, sizeof(t->dropped_names)), sep = have > 0 ? 2 : 0;

    if (len == 0) {
        name = "=";
        len = 1;
    }
    if (have >= 3 && memcmp(d + have - 3, "...", 3) == 0)
        return; /* already cut */
    if (have + sep + len + sizeof(cut) > sizeof(t->dropped_names)) {
        memcpy(d + have, have > 0 ? cut : cut + 2, have > 0 ? sizeof(cut) : sizeof(cut) - 2);
        return;
    }
    memcpy(d + have, ", ", sep);
    memcpy(d + have + sep, name, len);
    d[have + sep + len] = '\0';
}

int tbp_cookies_request(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                        const char *tbh, struct tbp_head_edit *e, struct tbp_cookie_tally *t)
{
    const struct tbp_http_head *h = &e->head;
    size_t space = tbp_cookies_request_space(h), i, pos, keep;
    struct tb_cookie_pair c;
    struct tbp_str value;
    struct out o = {NULL, 0, space};
    int any = 0;

    if (space > 0 && (o.p = tbp_head_edit_alloc(e, space)) == NULL)
        return TBP_EBUF;
    for (i = 0; i < h->n_headers; i++) {
        const struct tbp_header *f = &h->headers[i];
        if (!tbp_http_name_eq(f->name, "cookie"))
            continue;
        any = 1;
        for (pos = 0; tb_cookie_next(f->value.p, f->value.len, &pos, &c) == 1;) {
            enum tbp_cookie_outcome oc;
            keep = c.value_len;
            if (c.name_len == 0 && (memchr(c.value, '=', c.value_len) != NULL ||
                                    tbp_cookies_listed(r, c.value, c.value_len))) {
                /* "=session=stolen": no name, so not a listed one, but written back as its bare
                 * value many origins would read it as "session=stolen", unchecked (likewise a
                 * bare listed name). Dropped, as a cookie that is not what it claims to be; a
                 * plain bare value ("novalue") stays. */
                t->n[tbh != NULL && tbh[0] != '\0' ? TBP_CK_MISMATCH : TBP_CK_NO_TB]++;
                t->dropped++;
                note_dropped(t, c.name, 0);
                continue;
            }
            if (tbp_cookies_listed(r, c.name, c.name_len)) {
                oc = judge(r, kr, tbh, &c, &keep);
                t->n[oc]++;
                if (oc != TBP_CK_OK && oc != TBP_CK_PASS) {
                    t->dropped++;
                    note_dropped(t, c.name, c.name_len);
                    continue;
                }
                t->kept++;
            }
            if (put_pair(&o, c.name, c.name_len, c.value, keep) != 0)
                return TBP_EBUF;
        }
    }
    if (!any)
        return 0;
    value = (struct tbp_str){o.p, o.len};
    return tbp_head_edit_set(e, "cookie", o.len > 0 ? &value : NULL);
}

int tbp_cookie_find(const struct tbp_http_head *h, const char *name, struct tbp_str *value)
{
    size_t i, pos, len = strlen(name);
    struct tb_cookie_pair c;

    for (i = 0; i < h->n_headers; i++) {
        const struct tbp_header *f = &h->headers[i];
        if (!tbp_http_name_eq(f->name, "cookie"))
            continue;
        for (pos = 0; tb_cookie_next(f->value.p, f->value.len, &pos, &c) == 1;) {
            if (c.name_len == len && memcmp(c.name, name, len) == 0) {
                *value = (struct tbp_str){c.value, c.value_len};
                return 1;
            }
        }
    }
    return 0;
}

/* --- response --------------------------------------------------------------------------------- */

size_t tbp_cookies_response_space(const struct tbp_http_head *h)
{
    size_t i, need = 0;

    for (i = 0; i < h->n_headers; i++)
        if (tbp_http_name_eq(h->headers[i].name, "set-cookie"))
            need += h->headers[i].value.len + TB_COOKIE_SUFFIX_MAX + sizeof(SECURE_ATTR);
    return need;
}

/* Binds one Set-Cookie value in place when its cookie is listed. 1 bound, 0 left alone, < 0 on
 * failure. */
static int bind_one(const struct tbp_route *r, const struct tb_cookie_keyring *kr, const char *tbh,
                    struct tbp_head_edit *e, struct tbp_header *f)
{
    char suffix[TB_COOKIE_SUFFIX_MAX + 1];
    struct tb_set_cookie sc;
    struct out o = {NULL, 0, 0};
    size_t head;
    int n;

    if (tb_set_cookie_parse(f->value.p, f->value.len, &sc) != 0 ||
        !tbp_cookies_listed(r, sc.name, sc.name_len))
        return 0; /* not a cookie we bind, or not one a client would take: untouched */
    if (kr == NULL)
        return TB_EINVAL;
    n = tb_cookie_bind(kr, sc.name, sc.name_len, sc.value, sc.value_len, tbh, suffix,
                       sizeof(suffix));
    if (n < 0)
        return n;
    head = (size_t)(sc.value + sc.value_len - f->value.p); /* up to the end of the value */
    o.cap = f->value.len + (size_t)n + (sc.secure ? 0 : sizeof(SECURE_ATTR) - 1);
    if ((o.p = tbp_head_edit_alloc(e, o.cap)) == NULL)
        return TBP_EBUF;
    if (put(&o, f->value.p, head) != 0 || put(&o, suffix, (size_t)n) != 0 ||
        put(&o, f->value.p + head, f->value.len - head) != 0 ||
        (!sc.secure && put(&o, SECURE_ATTR, sizeof(SECURE_ATTR) - 1) != 0))
        return TBP_EBUF;
    f->value = (struct tbp_str){o.p, o.len};
    return 1;
}

int tbp_cookies_response(const struct tbp_route *r, const struct tb_cookie_keyring *kr,
                         const char *tbh, struct tbp_head_edit *e, struct tbp_cookie_tally *t)
{
    size_t i;
    int ret;

    if (tbh == NULL || tbh[0] == '\0' || !tbp_cookies_enabled(r))
        return 0;
    for (i = 0; i < e->head.n_headers; i++) {
        struct tbp_header *f = &e->head.headers[i];
        if (!tbp_http_name_eq(f->name, "set-cookie"))
            continue;
        if ((ret = bind_one(r, kr, tbh, e, f)) < 0)
            return ret;
        t->bound += (unsigned)ret;
    }
    return 0;
}
