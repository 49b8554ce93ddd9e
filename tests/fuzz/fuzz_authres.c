/*
 * libFuzzer target: Authentication-Results (tb/authres.h).
 *
 * The input, a fresh heap copy of exactly its size (so ASan catches any read past it), is read
 * two ways:
 *  - as a header value: tb_authres_parse, tb_authres_authserv_id and the lookups; a value that
 *    parses is built again (tb_authres_build) and the output parsed once more;
 *  - as a script for the builder: each step takes an operation byte and a string from the
 *    input (add_method, add_reason, add_prop, add_comment, with names, versions and values taken
 *    from it, and a buffer size too), then tb_authres_end; the output is parsed.
 *
 * Oracles (abort on violation):
 *  - parse returns 0, TB_EPARSE or TB_ETOOLARGE, and *out is NULL on failure; a result is
 *    within every limit, its names are Keywords, its strings hold no control byte, versions are
 *    in range and every list lies inside the result's own storage;
 *  - tb_authres_authserv_id agrees with the parse on every value that parses;
 *  - find_method / find_prop find each method and property at its first case-insensitive match,
 *    and iterate over all of them;
 *  - build of a parsed value succeeds (or is TB_ETOOLARGE when quoting made it longer than
 *    TB_AUTHRES_MAX_LEN), writes one line without a control byte, and parses back to the same
 *    fields; building that again gives the same bytes;
 *  - the builder script: every call returns 0 or the documented error, a failed call leaves
 *    the value in the buffer as it was, nothing is written past the buffer, and it parses back to
 * exactly the calls that succeeded (names, versions, results, reasons, comments, property values
 *    byte for byte).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tb/tb.h"

static int ieq(const char *a, const char *b)
{
    for (;; a++, b++) {
        char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char cb = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;

        if (ca != cb)
            return 0;
        if (ca == '\0')
            return 1;
    }
}

static void check_keyword(const char *s)
{
    size_t n;

    CHECK(s != NULL);
    n = strlen(s);
    CHECK(n > 0 && s[n - 1] != '-');
    for (size_t i = 0; i < n; i++)
        CHECK((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-');
}

static void check_text(const char *s)
{
    CHECK(s != NULL);
    for (; *s != '\0'; s++)
        CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static int same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static int same_list(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static int same(const struct tb_authres *a, const struct tb_authres *b)
{
    if (strcmp(a->authserv_id, b->authserv_id) != 0 || a->version != b->version ||
        !same_list(a->comments, a->n_comments, b->comments, b->n_comments) ||
        a->n_methods != b->n_methods)
        return 0;
    for (size_t i = 0; i < a->n_methods; i++) {
        const struct tb_authres_method *x = &a->methods[i], *y = &b->methods[i];

        if (strcmp(x->name, y->name) != 0 || x->version != y->version ||
            strcmp(x->result, y->result) != 0 || !same_str(x->reason, y->reason) ||
            !same_list(x->comments, x->n_comments, y->comments, y->n_comments) ||
            x->n_props != y->n_props)
            return 0;
        for (size_t j = 0; j < x->n_props; j++)
            if (strcmp(x->props[j].ptype, y->props[j].ptype) != 0 ||
                strcmp(x->props[j].property, y->props[j].property) != 0 ||
                strcmp(x->props[j].value, y->props[j].value) != 0)
                return 0;
    }
    return 1;
}

/* Limits, Keywords, clean strings, lists inside the result's storage. */
static void check_result(const struct tb_authres *ar)
{
    size_t comments = ar->n_comments, props = 0;

    check_text(ar->authserv_id);
    CHECK(ar->version >= 0 && ar->version <= TB_AUTHRES_MAX_VERSION);
    CHECK(ar->n_methods <= TB_AUTHRES_MAX_METHODS);
    CHECK(ar->n_comments == 0 || ar->comments == ar->comment_store);
    for (size_t i = 0; i < ar->n_comments; i++)
        check_text(ar->comments[i]);
    for (size_t i = 0; i < ar->n_methods; i++) {
        const struct tb_authres_method *m = &ar->methods[i];

        check_keyword(m->name);
        check_keyword(m->result);
        CHECK(m->version >= 0 && m->version <= TB_AUTHRES_MAX_VERSION);
        if (m->reason != NULL)
            check_text(m->reason);
        CHECK(m->comments >= ar->comment_store &&
              m->comments + m->n_comments <= ar->comment_store + TB_AUTHRES_MAX_COMMENTS);
        CHECK(m->comments == ar->comment_store + comments); /* in order, after the id's */
        comments += m->n_comments;
        for (size_t j = 0; j < m->n_comments; j++)
            check_text(m->comments[j]);
        CHECK(m->props == ar->prop_store + props);
        props += m->n_props;
        CHECK(props <= TB_AUTHRES_MAX_PROPS);
        for (size_t j = 0; j < m->n_props; j++) {
            check_keyword(m->props[j].ptype);
            check_keyword(m->props[j].property);
            check_text(m->props[j].value);
        }
    }
    CHECK(comments <= TB_AUTHRES_MAX_COMMENTS);
}

static void check_lookups(const struct tb_authres *ar)
{
    for (size_t i = 0; i < ar->n_methods; i++) {
        const struct tb_authres_method *m = &ar->methods[i], *f;
        size_t first = 0, count = 0;

        while (!ieq(ar->methods[first].name, m->name))
            first++;
        CHECK(tb_authres_find_method(ar, m->name, NULL) == &ar->methods[first]);
        for (f = NULL; (f = tb_authres_find_method(ar, m->name, f)) != NULL; count++)
            CHECK(ieq(f->name, m->name));
        for (size_t k = 0; k < ar->n_methods; k++)
            count -= ieq(ar->methods[k].name, m->name);
        CHECK(count == 0);
        for (size_t j = 0; j < m->n_props; j++) {
            const struct tb_authres_prop *p = &m->props[j];
            const struct tb_authres_prop *q = tb_authres_find_prop(m, p->ptype, p->property, NULL);

            CHECK(q != NULL && q <= p && ieq(q->ptype, p->ptype) && ieq(q->property, p->property));
            while (q != p && q != NULL)
                q = tb_authres_find_prop(m, p->ptype, p->property, q);
            CHECK(q == p);
        }
    }
}

static void fuzz_parse(const char *v, size_t len)
{
    static char buf[TB_AUTHRES_MAX_LEN + 1], buf2[TB_AUTHRES_MAX_LEN + 1];
    char id[TB_AUTHRES_MAX_LEN + 1];
    struct tb_authres *ar = (void *)&ar, *again = (void *)&again;
    int rc = tb_authres_parse(v, len, &ar), idn, n;

    CHECK(rc == 0 || rc == TB_EPARSE || rc == TB_ETOOLARGE);
    idn = tb_authres_authserv_id(v, len, id, sizeof(id));
    CHECK(idn >= 0 || idn == TB_EPARSE || idn == TB_ETOOLARGE);
    if (rc != 0) {
        CHECK(ar == NULL);
        return;
    }
    check_result(ar);
    CHECK(idn >= 0 && (size_t)idn == strlen(ar->authserv_id) && strcmp(id, ar->authserv_id) == 0);
    check_lookups(ar);

    n = tb_authres_build(ar, buf, sizeof(buf));
    if (n == TB_ETOOLARGE) { /* quoting and escaping made it longer than a value may be */
        CHECK(buf[0] == '\0');
        tb_authres_free(ar);
        return;
    }
    CHECK(n > 0 && (size_t)n == strlen(buf) && n <= TB_AUTHRES_MAX_LEN);
    check_text(buf);
    rc = tb_authres_parse(buf, (size_t)n, &again);
    CHECK(rc == 0);
    CHECK(same(ar, again));
    CHECK(tb_authres_build(again, buf2, sizeof(buf2)) == n && memcmp(buf, buf2, (size_t)n) == 0);
    tb_authres_free(again);
    tb_authres_free(ar);
}

/* --- the builder script ------------------------------------------------------------------ */

struct script {
    const uint8_t *p;
    size_t left;
};

static uint8_t byte(struct script *s)
{
    if (s->left == 0)
        return 0;
    s->left--;
    return *s->p++;
}

/* A string of up to 63 bytes from the input (may hold any byte, NUL too). */
static size_t chunk(struct script *s, char *out)
{
    size_t n = byte(s) % 64;

    if (n > s->left)
        n = s->left;
    memcpy(out, s->p, n);
    out[n] = '\0';
    s->p += n;
    s->left -= n;
    return n;
}

/* What the calls that succeeded wrote. */
struct model {
    char id[64];
    int version;
    size_t n_methods;
    struct {
        char name[64], result[64], reason[64];
        int version, has_reason;
        size_t n_props, n_comments;
    } m[TB_AUTHRES_MAX_METHODS];
    size_t n_comments, n_props;
    struct {
        char text[64];
        size_t len, method; /* method + 1, 0: the id */
    } c[TB_AUTHRES_MAX_COMMENTS];
    struct {
        char ptype[64], property[64], value[64];
        size_t len;
    } p[TB_AUTHRES_MAX_PROPS];
};

static int clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static void check_against(const struct model *md, const char *out, size_t n)
{
    struct tb_authres *ar = NULL;
    size_t k = 0, ci = 0, pi = 0;

    CHECK(tb_authres_parse(out, n, &ar) == 0);
    check_result(ar);
    CHECK(strcmp(ar->authserv_id, md->id) == 0 && ar->version == md->version);
    CHECK(ar->n_methods == md->n_methods);
    for (size_t i = 0; i < ar->n_comments; i++, ci++)
        CHECK(md->c[ci].method == 0 && strcmp(ar->comments[i], md->c[ci].text) == 0);
    for (size_t i = 0; i < ar->n_methods; i++) {
        const struct tb_authres_method *m = &ar->methods[i];

        CHECK(strcmp(m->name, md->m[i].name) == 0 && strcmp(m->result, md->m[i].result) == 0);
        CHECK(m->version == md->m[i].version);
        CHECK(md->m[i].has_reason ? m->reason != NULL && strcmp(m->reason, md->m[i].reason) == 0
                                  : m->reason == NULL);
        CHECK(m->n_comments == md->m[i].n_comments && m->n_props == md->m[i].n_props);
        for (k = 0; k < m->n_comments; k++, ci++)
            CHECK(md->c[ci].method == i + 1 && strcmp(m->comments[k], md->c[ci].text) == 0);
        for (k = 0; k < m->n_props; k++, pi++) {
            CHECK(strcmp(m->props[k].ptype, md->p[pi].ptype) == 0);
            CHECK(strcmp(m->props[k].property, md->p[pi].property) == 0);
            CHECK(strlen(m->props[k].value) == md->p[pi].len);
            CHECK(memcmp(m->props[k].value, md->p[pi].value, md->p[pi].len) == 0);
        }
    }
    CHECK(ci == md->n_comments && pi == md->n_props);
    tb_authres_free(ar);
}

static void fuzz_builder(const uint8_t *data, size_t size)
{
    static struct model md;
    static char out[TB_AUTHRES_MAX_LEN + 64], before[TB_AUTHRES_MAX_LEN + 64];
    struct script s = {data, size};
    struct tb_authres_builder b;
    size_t cap = 1 + (size_t)byte(&s) * 33, len;
    char a[64], c2[64], v[64];
    int rc, n;

    memset(&md, 0, sizeof(md));
    memset(out, '#', sizeof(out));
    if (cap > sizeof(out) - 16)
        cap = sizeof(out) - 16;
    md.version = byte(&s) % 4 == 0 ? byte(&s) : 0;
    chunk(&s, md.id);
    rc = tb_authres_begin(&b, out, cap, md.id, md.version);
    CHECK(rc == 0 || rc == TB_EINVAL || rc == TB_ETOOLARGE);
    if (rc < 0) {
        CHECK(out[0] == '\0' && tb_authres_end(&b) == TB_EINVAL);
        return;
    }
    while (s.left > 0) {
        uint8_t op = byte(&s);
        size_t cur = md.n_methods;

        strcpy(before, out);
        len = chunk(&s, a);
        switch (op % 4) {
        case 0: { /* add_method(a, version, c2) */
            int ver = op & 0x10 ? byte(&s) : 0;

            chunk(&s, c2);
            rc = tb_authres_add_method(&b, a, ver, c2);
            CHECK(rc == 0 || rc == TB_EINVAL || rc == TB_ETOOLARGE);
            if (rc == 0) {
                CHECK(cur < TB_AUTHRES_MAX_METHODS);
                strcpy(md.m[cur].name, a);
                strcpy(md.m[cur].result, c2);
                md.m[cur].version = ver;
                md.n_methods++;
            }
            break;
        }
        case 1: /* add_reason(a) */
            rc = tb_authres_add_reason(&b, a, len);
            CHECK(rc == 0 || rc == TB_EINVAL || rc == TB_ETOOLARGE);
            if (rc == 0) {
                CHECK(cur > 0 && !md.m[cur - 1].has_reason && md.m[cur - 1].n_props == 0);
                CHECK(clean(a, len));
                memcpy(md.m[cur - 1].reason, a, len + 1);
                md.m[cur - 1].has_reason = 1;
            }
            break;
        case 2: /* add_prop(ptype a, property c2, value v): the names are cut at a NUL */
            chunk(&s, c2);
            len = chunk(&s, v);
            rc = tb_authres_add_prop(&b, a, c2, v, len);
            CHECK(rc == 0 || rc == TB_EINVAL || rc == TB_ETOOLARGE);
            if (rc == 0) {
                CHECK(cur > 0 && md.n_props < TB_AUTHRES_MAX_PROPS && clean(v, len));
                strcpy(md.p[md.n_props].ptype, a);
                strcpy(md.p[md.n_props].property, c2);
                memcpy(md.p[md.n_props].value, v, len);
                md.p[md.n_props].len = len;
                md.n_props++;
                md.m[cur - 1].n_props++;
            }
            break;
        default: /* add_comment(a) */
            rc = tb_authres_add_comment(&b, a, len);
            CHECK(rc == 0 || rc == TB_EINVAL || rc == TB_ETOOLARGE);
            if (rc == 0) {
                CHECK(md.n_comments < TB_AUTHRES_MAX_COMMENTS && clean(a, len));
                memcpy(md.c[md.n_comments].text, a, len + 1);
                md.c[md.n_comments].len = len;
                md.c[md.n_comments].method = cur;
                md.n_comments++;
                if (cur > 0)
                    md.m[cur - 1].n_comments++;
            }
            break;
        }
        if (rc != 0)
            CHECK(strcmp(before, out) == 0); /* the value as it was */
        CHECK(strlen(out) < cap);
    }
    n = tb_authres_end(&b);
    CHECK(n > 0 || n == TB_ETOOLARGE);
    for (size_t i = cap; i < sizeof(out); i++)
        CHECK(out[i] == '#');
    if (n < 0)
        return;
    CHECK((size_t)n == strlen(out) && (size_t)n < cap && n <= TB_AUTHRES_MAX_LEN);
    check_text(out);
    check_against(&md, out, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);

    CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    fuzz_parse(copy, size);
    fuzz_builder((const uint8_t *)copy, size);
    free(copy);
    return 0;
}
