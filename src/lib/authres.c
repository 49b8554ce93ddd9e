/*
 * Authentication-Results (RFC 8601): parser and builder. See include/tb/authres.h.
 *
 * The parser is a cursor over (s, len) with one function per grammar rule; none recurses
 * (nested comments are a depth counter). Everything it keeps is copied, decoded, into an arena
 * allocated with the result: 2 * len + 1 bytes always suffice, since every stored string comes
 * from distinct input bytes (at least one per string, never fewer than it holds) and needs one
 * NUL. put() still checks the bound and a full arena fails the parse rather than overflow.
 *
 * The builder validates a whole part before writing any of it, writes through emit() which
 * only records an overflow, and rolls back to where the part began when one happened. Its
 * quoting uses the same character classes as the parser, so what it writes parses back to the
 * same strings.
 */
#include <stdlib.h>
#include <string.h>

#include "tb/authres.h"
#include "tb/error.h"

/* --- character classes ------------------------------------------------------------------- */

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_letdig(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_ldh(unsigned char c)
{
    return is_letdig(c) || c == '-';
}

static int is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 2045 token: US-ASCII except SPACE, CTLs and tspecials. */
static int is_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 5322 atext */
static int is_atext(unsigned char c)
{
    return is_letdig(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length (2..4) of the valid UTF-8 sequence of a non-ASCII character at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned long cp, min;
    size_t need, i;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 1, cp = s[0] & 0x1f, min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 2, cp = s[0] & 0x0f, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 3, cp = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < need + 1)
        return 0;
    for (i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need + 1;
}

static int ascii_casecmp(const char *a, const char *b)
{
    unsigned char ca, cb;

    do {
        ca = (unsigned char)*a++;
        cb = (unsigned char)*b++;
        if (ca >= 'A' && ca <= 'Z')
            ca = (unsigned char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (unsigned char)(cb - 'A' + 'a');
    } while (ca == cb && ca != 0);
    return ca - cb;
}

/* RFC 5321 Keyword (Ldh-str): 1*(ALPHA / DIGIT / "-"), not ending in "-". */
static int is_keyword(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || s[n - 1] == '-')
        return 0;
    for (i = 0; i < n; i++)
        if (!is_ldh((unsigned char)s[i]))
            return 0;
    return 1;
}

static int is_token(const char *s, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (!is_token_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/* RFC 5322 dot-atom-text: 1*atext *("." 1*atext) */
static int is_dot_atom(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i - 1] == '.')
                return 0;
        } else if (!is_atext((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* RFC 6376 domain-name: sub-domain 1*("." sub-domain), sub-domain = Let-dig [Ldh-str] */
static int is_domain(const char *s, size_t n)
{
    size_t i, label = 0, labels = 1;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            labels++;
        } else if (is_letdig(c) || (c == '-' && label > 0)) {
            label++;
        } else {
            return 0;
        }
    }
    return label > 0 && s[n - 1] != '-' && labels >= 2;
}

/* [dot-atom-text] "@" domain-name, the address form of a property value */
static int is_address(const char *s, size_t n)
{
    const char *at = n > 0 ? memchr(s, '@', n) : NULL;

    if (at == NULL)
        return 0;
    return (at == s || is_dot_atom(s, (size_t)(at - s))) &&
           is_domain(at + 1, n - (size_t)(at - s) - 1);
}

/*
 * Text the builder may put in a quoted string or comment: no byte below 0x20 (tab, CR, LF and
 * NUL included), no 0x7f, and only valid UTF-8 above.
 */
static int is_clean_text(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;

    while (i < n) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return 0;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        if ((k = utf8_seq(u + i, n - i)) == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* --- parser -------------------------------------------------------------------------------- */

struct parser {
    const unsigned char *s;
    size_t len;
    size_t pos;
    char *arena; /* decoded strings: after the result, or the caller's buffer for the id */
    size_t alen, acap;
    int overflow;          /* the arena was too small */
    int discard;           /* put() keeps nothing (comments when only the id is wanted) */
    struct tb_authres *ar; /* NULL: comments are checked, not kept */
    size_t n_comments, n_props;
};

static void put(struct parser *p, unsigned char c)
{
    if (p->discard)
        return;
    if (p->alen >= p->acap) {
        p->overflow = 1;
        return;
    }
    p->arena[p->alen++] = (char)c;
}

static const char *str_begin(struct parser *p)
{
    return p->arena + p->alen;
}

static void str_end(struct parser *p)
{
    put(p, '\0');
}

static int at(const struct parser *p, unsigned char c)
{
    return p->pos < p->len && p->s[p->pos] == c;
}

/* CRLF followed by WSP at pos (a fold)? The WSP stays for the caller. */
static int at_fold(const struct parser *p)
{
    return p->pos + 2 < p->len && p->s[p->pos] == '\r' && p->s[p->pos + 1] == '\n' &&
           is_wsp(p->s[p->pos + 2]);
}

/*
 * One character of a quoted string or comment, not a delimiter: a quoted-pair, a fold (dropped),
 * a WSP (kept as a space), a printable ASCII or a UTF-8 character. With requote (a quoted
 * local-part kept in canonical form), '"' and '\' are written escaped. TB_EPARSE for anything
 * else.
 */
static int text_char(struct parser *p, int requote)
{
    unsigned char c = p->s[p->pos];
    size_t k;

    if (c == '\\') {
        if (p->pos + 1 >= p->len)
            return TB_EPARSE;
        c = p->s[p->pos + 1];
        if (is_wsp(c)) {
            put(p, ' ');
            p->pos += 2;
        } else if (c > 0x20 && c < 0x7f) {
            if (requote && (c == '"' || c == '\\'))
                put(p, '\\');
            put(p, c);
            p->pos += 2;
        } else if (c >= 0x80 && (k = utf8_seq(p->s + p->pos + 1, p->len - p->pos - 1)) > 0) {
            p->pos++;
            while (k-- > 0)
                put(p, p->s[p->pos++]);
        } else {
            return TB_EPARSE;
        }
    } else if (c == '\r') {
        if (!at_fold(p))
            return TB_EPARSE;
        p->pos += 2;
    } else if (is_wsp(c)) {
        put(p, ' ');
        p->pos++;
    } else if (c > 0x20 && c < 0x7f) {
        put(p, c);
        p->pos++;
    } else if (c >= 0x80 && (k = utf8_seq(p->s + p->pos, p->len - p->pos)) > 0) {
        while (k-- > 0)
            put(p, p->s[p->pos++]);
    } else {
        return TB_EPARSE;
    }
    return 0;
}

/* A comment at pos ('('), nested ones kept with their parentheses; kept when p->ar is set. */
static int comment(struct parser *p)
{
    int depth = 1, discard = p->discard, ret = 0;
    const char *text;

    p->discard = discard || p->ar == NULL;
    text = str_begin(p);
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) {
            ret = TB_EPARSE;
            goto out;
        }
        if (p->s[p->pos] == '(') {
            if (++depth > TB_AUTHRES_MAX_NESTING) {
                ret = TB_ETOOLARGE;
                goto out;
            }
            put(p, '(');
            p->pos++;
        } else if (p->s[p->pos] == ')') {
            p->pos++;
            if (--depth == 0)
                break;
            put(p, ')');
        } else if ((ret = text_char(p, 0)) < 0) {
            goto out;
        }
    }
    str_end(p);
    if (p->ar != NULL) {
        if (p->n_comments >= TB_AUTHRES_MAX_COMMENTS) {
            ret = TB_ETOOLARGE;
            goto out;
        }
        p->ar->comment_store[p->n_comments++] = text;
    }
out:
    p->discard = discard;
    return ret;
}

/* [CFWS]: spaces, tabs, folds and comments. *seen (may be NULL) tells whether there was any. */
static int cfws(struct parser *p, int *seen)
{
    size_t start = p->pos;
    int ret;

    while (p->pos < p->len) {
        if (is_wsp(p->s[p->pos])) {
            p->pos++;
        } else if (at_fold(p)) {
            p->pos += 2;
        } else if (p->s[p->pos] == '(') {
            if ((ret = comment(p)) < 0)
                return ret;
        } else {
            break;
        }
    }
    if (seen != NULL)
        *seen = p->pos > start;
    return 0;
}

/* A quoted string at pos ('"'), its content decoded (or re-quoted, see text_char). */
static int quoted_string(struct parser *p, int requote)
{
    int ret;

    p->pos++;
    while (!at(p, '"')) {
        if (p->pos >= p->len)
            return TB_EPARSE;
        if ((ret = text_char(p, requote)) < 0)
            return ret;
    }
    p->pos++;
    return 0;
}

/* Copies the run [from, pos) to the arena as one string. */
static const char *keep(struct parser *p, size_t from)
{
    const char *str = str_begin(p);

    while (from < p->pos)
        put(p, p->s[from++]);
    str_end(p);
    return str;
}

static int keyword(struct parser *p, const char **out)
{
    size_t from = p->pos;

    while (p->pos < p->len && is_ldh(p->s[p->pos]))
        p->pos++;
    if (!is_keyword((const char *)p->s + from, p->pos - from))
        return TB_EPARSE;
    *out = keep(p, from);
    return 0;
}

/* 1*DIGIT, at most 9 of them */
static int number(struct parser *p, int *out)
{
    size_t from = p->pos;
    int v = 0;

    while (p->pos < p->len && is_digit(p->s[p->pos])) {
        if (p->pos - from >= 9)
            return TB_ETOOLARGE;
        v = v * 10 + (p->s[p->pos++] - '0');
    }
    if (p->pos == from)
        return TB_EPARSE;
    *out = v;
    return 0;
}

/* RFC 2045 value: token / quoted-string */
static int value(struct parser *p, const char **out)
{
    size_t from = p->pos;
    int ret;

    if (at(p, '"')) {
        *out = str_begin(p);
        if ((ret = quoted_string(p, 0)) < 0)
            return ret;
        str_end(p);
        return 0;
    }
    while (p->pos < p->len && is_token_char(p->s[p->pos]))
        p->pos++;
    if (p->pos == from)
        return TB_EPARSE;
    *out = keep(p, from);
    return 0;
}

/* domain-name at pos, appended to the current arena string (which the caller ends) */
static int domain(struct parser *p)
{
    size_t from = p->pos;

    while (p->pos < p->len && (is_ldh(p->s[p->pos]) || p->s[p->pos] == '.'))
        p->pos++;
    if (!is_domain((const char *)p->s + from, p->pos - from))
        return TB_EPARSE;
    while (from < p->pos)
        put(p, p->s[from++]);
    return 0;
}

/*
 * pvalue without its CFWS: value / [[local-part] "@"] domain-name. A run of atext and dots
 * followed by '@' is a dot-atom local-part, else it must be a token; a quoted string followed by
 * '@' is a quoted local-part, kept re-quoted in canonical form.
 */
static int pvalue(struct parser *p, const char **out)
{
    size_t from = p->pos;
    int ret;

    *out = str_begin(p);
    if (at(p, '"')) {
        size_t save_alen = p->alen;

        if ((ret = quoted_string(p, 0)) < 0)
            return ret;
        if (!at(p, '@')) {
            str_end(p);
            return 0;
        }
        p->alen = save_alen; /* an address: again, in canonical form */
        p->pos = from;
        put(p, '"');
        if ((ret = quoted_string(p, 1)) < 0)
            return ret;
        put(p, '"');
    } else {
        while (p->pos < p->len && (is_atext(p->s[p->pos]) || p->s[p->pos] == '.'))
            p->pos++;
        if (!at(p, '@')) {
            if (!is_token((const char *)p->s + from, p->pos - from))
                return TB_EPARSE;
            *out = keep(p, from);
            return 0;
        }
        if (p->pos > from && !is_dot_atom((const char *)p->s + from, p->pos - from))
            return TB_EPARSE;
        while (from < p->pos)
            put(p, p->s[from++]);
    }
    put(p, '@');
    p->pos++;
    if ((ret = domain(p)) < 0)
        return ret;
    str_end(p);
    return 0;
}

/* [CFWS] authserv-id [CFWS authres-version] [CFWS], up to the first ';' */
static int authserv(struct parser *p, const char **id, int *version)
{
    int ret, seen;

    if ((ret = cfws(p, NULL)) < 0 || (ret = value(p, id)) < 0 || (ret = cfws(p, &seen)) < 0)
        return ret;
    *version = 0;
    if (p->pos < p->len && is_digit(p->s[p->pos])) {
        if (!seen)
            return TB_EPARSE;
        if ((ret = number(p, version)) < 0 || (ret = cfws(p, NULL)) < 0)
            return ret;
    }
    return 0;
}

/* After a method's result: [reason] properties, up to the next ';' or the end. */
static int method_rest(struct parser *p, struct tb_authres_method *m)
{
    struct tb_authres_prop *pr;
    const char *k, *v;
    int ret;

    for (;;) {
        if ((ret = cfws(p, NULL)) < 0)
            return ret;
        if (p->pos >= p->len || at(p, ';'))
            return 0;
        if ((ret = keyword(p, &k)) < 0 || (ret = cfws(p, NULL)) < 0)
            return ret;
        if (at(p, '=') && ascii_casecmp(k, "reason") == 0 && m->reason == NULL && m->n_props == 0) {
            p->pos++;
            if ((ret = cfws(p, NULL)) < 0 || (ret = value(p, &v)) < 0)
                return ret;
            m->reason = v;
            continue;
        }
        if (!at(p, '.'))
            return TB_EPARSE;
        if (p->n_props >= TB_AUTHRES_MAX_PROPS)
            return TB_ETOOLARGE;
        pr = &p->ar->prop_store[p->n_props];
        pr->ptype = k;
        p->pos++;
        if ((ret = cfws(p, NULL)) < 0 || (ret = keyword(p, &pr->property)) < 0 ||
            (ret = cfws(p, NULL)) < 0)
            return ret;
        if (!at(p, '='))
            return TB_EPARSE;
        p->pos++;
        if ((ret = cfws(p, NULL)) < 0 || (ret = pvalue(p, &pr->value)) < 0)
            return ret;
        p->n_props++;
        m->n_props++;
    }
}

/*
 * The resinfos from the first ';' to the end, or the no-result form. Comments from a ';' to the
 * next belong to that method; method i's comments start at comment_start[i].
 */
static int resinfos(struct parser *p, size_t *comment_start)
{
    struct tb_authres *ar = p->ar;
    struct tb_authres_method *m;
    const char *name;
    int ret, version, slash;

    while (at(p, ';')) {
        size_t first_comment = p->n_comments;

        p->pos++;
        if ((ret = cfws(p, NULL)) < 0 || (ret = keyword(p, &name)) < 0 || (ret = cfws(p, NULL)) < 0)
            return ret;
        version = 0;
        slash = at(p, '/');
        if (slash) {
            p->pos++;
            if ((ret = cfws(p, NULL)) < 0 || (ret = number(p, &version)) < 0 ||
                (ret = cfws(p, NULL)) < 0)
                return ret;
        }
        if (!at(p, '=')) {
            /* "; none": the only resinfo, nothing after it */
            if (ar->n_methods == 0 && !slash && ascii_casecmp(name, "none") == 0 &&
                p->pos >= p->len)
                return 0;
            return TB_EPARSE;
        }
        if (ar->n_methods >= TB_AUTHRES_MAX_METHODS)
            return TB_ETOOLARGE;
        comment_start[ar->n_methods] = first_comment;
        m = &ar->methods[ar->n_methods++];
        m->name = name;
        m->version = version;
        m->props = &ar->prop_store[p->n_props];
        p->pos++;
        if ((ret = cfws(p, NULL)) < 0 || (ret = keyword(p, &m->result)) < 0 ||
            (ret = method_rest(p, m)) < 0)
            return ret;
    }
    return p->pos < p->len ? TB_EPARSE : 0;
}

/* Points each list at its part of comment_store. */
static void link_comments(struct tb_authres *ar, size_t n_comments, const size_t *comment_start)
{
    size_t i, end;

    ar->comments = ar->comment_store;
    ar->n_comments = ar->n_methods > 0 ? comment_start[0] : n_comments;
    for (i = 0; i < ar->n_methods; i++) {
        end = i + 1 < ar->n_methods ? comment_start[i + 1] : n_comments;
        ar->methods[i].comments = ar->comment_store + comment_start[i];
        ar->methods[i].n_comments = end - comment_start[i];
    }
}

int tb_authres_parse(const char *value_, size_t len, struct tb_authres **out)
{
    size_t comment_start[TB_AUTHRES_MAX_METHODS];
    struct parser p = {0};
    struct tb_authres *ar = NULL;
    int ret;

    if (out == NULL || (value_ == NULL && len > 0))
        return TB_EINVAL;
    *out = NULL;
    if (len > TB_AUTHRES_MAX_LEN)
        return TB_ETOOLARGE;
    /* every string comes from distinct input bytes, at least one each, plus its NUL */
    ar = calloc(1, sizeof(*ar) + 2 * len + 1);
    if (ar == NULL)
        return TB_ENOMEM;
    p.s = (const unsigned char *)value_;
    p.len = len;
    p.arena = (char *)(ar + 1);
    p.acap = 2 * len + 1;
    p.ar = ar;
    if ((ret = authserv(&p, &ar->authserv_id, &ar->version)) < 0)
        goto out;
    if (!at(&p, ';')) {
        ret = TB_EPARSE;
        goto out;
    }
    if ((ret = resinfos(&p, comment_start)) < 0)
        goto out;
    if (p.overflow) {
        ret = TB_ETOOLARGE; /* cannot happen: see the arena's size */
        goto out;
    }
    link_comments(ar, p.n_comments, comment_start);
    *out = ar;
    ar = NULL;
out:
    free(ar);
    return ret;
}

void tb_authres_free(struct tb_authres *ar)
{
    free(ar);
}

int tb_authres_authserv_id(const char *value_, size_t len, char *out, size_t cap)
{
    struct parser p = {0};
    const char *id;
    int ret;

    if (out == NULL || (value_ == NULL && len > 0))
        return TB_EINVAL;
    if (cap > 0)
        out[0] = '\0';
    if (len > TB_AUTHRES_MAX_LEN)
        return TB_ETOOLARGE;
    p.s = (const unsigned char *)value_;
    p.len = len;
    p.arena = out;
    p.acap = cap;
    if ((ret = cfws(&p, NULL)) < 0 || (ret = value(&p, &id)) < 0)
        goto out;
    if (p.overflow) {
        ret = TB_ETOOLARGE;
        goto out;
    }
    ret = (int)strlen(id);
out:
    if (ret < 0 && cap > 0)
        out[0] = '\0';
    return ret;
}

const struct tb_authres_method *tb_authres_find_method(const struct tb_authres *ar,
                                                       const char *name,
                                                       const struct tb_authres_method *after)
{
    size_t i = 0;

    if (ar == NULL || name == NULL)
        return NULL;
    if (after != NULL) {
        if (after < ar->methods || after >= ar->methods + ar->n_methods)
            return NULL;
        i = (size_t)(after - ar->methods) + 1;
    }
    for (; i < ar->n_methods && i < TB_AUTHRES_MAX_METHODS; i++)
        if (ar->methods[i].name != NULL && ascii_casecmp(ar->methods[i].name, name) == 0)
            return &ar->methods[i];
    return NULL;
}

const struct tb_authres_prop *tb_authres_find_prop(const struct tb_authres_method *m,
                                                   const char *ptype, const char *property,
                                                   const struct tb_authres_prop *after)
{
    size_t i = 0;

    if (m == NULL || ptype == NULL || property == NULL || (m->props == NULL && m->n_props > 0))
        return NULL;
    if (after != NULL) {
        if (after < m->props || after >= m->props + m->n_props)
            return NULL;
        i = (size_t)(after - m->props) + 1;
    }
    for (; i < m->n_props; i++) {
        const struct tb_authres_prop *pr = &m->props[i];

        if (pr->ptype != NULL && pr->property != NULL && ascii_casecmp(pr->ptype, ptype) == 0 &&
            ascii_casecmp(pr->property, property) == 0)
            return pr;
    }
    return NULL;
}

/* --- builder ------------------------------------------------------------------------------- */

enum builder_state {
    B_NONE = 0,          /* not begun, or begin failed: every call fails */
    B_ID = 1,            /* authserv-id written, no method yet */
    B_METHOD = 2,        /* a method written: reason, properties and comments go to it */
    B_METHOD_FAILED = 3, /* the last add_method failed: no reason or property until the next */
    B_DONE = 4,          /* ended */
};

/* A part being written: from where it began, so that it can be undone. */
struct part {
    struct tb_authres_builder *b;
    size_t start;
    int overflow;
};

static void part_begin(struct part *w, struct tb_authres_builder *b)
{
    w->b = b;
    w->start = b->len;
    w->overflow = 0;
}

static void emit(struct part *w, const char *s, size_t n)
{
    struct tb_authres_builder *b = w->b;

    if (w->overflow || n > b->cap - b->len) {
        w->overflow = 1;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void emit_str(struct part *w, const char *s)
{
    emit(w, s, strlen(s));
}

/* Ends a part: 0 with the NUL written, or TB_ETOOLARGE with the buffer as it was. */
static int part_end(struct part *w)
{
    if (w->overflow)
        w->b->len = w->start;
    w->b->buf[w->b->len] = '\0';
    return w->overflow ? TB_ETOOLARGE : 0;
}

static void emit_version(struct part *w, char sep, int version)
{
    char tmp[16];
    size_t n = sizeof(tmp);

    if (version == 0)
        return;
    do {
        tmp[--n] = (char)('0' + version % 10);
        version /= 10;
    } while (version > 0);
    tmp[--n] = sep;
    emit(w, tmp + n, sizeof(tmp) - n);
}

/* s between '"' (or '(' and ')'), with a '\' before each byte of `special` */
static void emit_escaped(struct part *w, char open, const char *s, size_t n, const char *special,
                         char close)
{
    size_t i, from = 0;

    emit(w, &open, 1);
    for (i = 0; i < n; i++) {
        if (s[i] != '\0' && strchr(special, s[i]) != NULL) {
            emit(w, s + from, i - from);
            emit(w, "\\", 1);
            from = i;
        }
    }
    emit(w, s + from, n - from);
    emit(w, &close, 1);
}

/* A value: as is when a token (or, with address, an address), else a quoted string. */
static void emit_value(struct part *w, const char *s, size_t n, int address)
{
    if (is_token(s, n) || (address && is_address(s, n)))
        emit(w, s, n);
    else
        emit_escaped(w, '"', s, n, "\"\\", '"');
}

int tb_authres_begin(struct tb_authres_builder *b, char *buf, size_t cap, const char *authserv_id,
                     int version)
{
    struct part w;
    int ret;

    if (b == NULL)
        return TB_EINVAL;
    memset(b, 0, sizeof(*b));
    if (buf == NULL || cap == 0)
        return TB_EINVAL;
    buf[0] = '\0';
    if (authserv_id == NULL || version < 0 || version > TB_AUTHRES_MAX_VERSION ||
        !is_clean_text(authserv_id, strlen(authserv_id)))
        return TB_EINVAL;
    b->buf = buf;
    /* usable: cap without the NUL, never over what the parser takes */
    b->cap = cap - 1 < TB_AUTHRES_MAX_LEN ? cap - 1 : TB_AUTHRES_MAX_LEN;
    part_begin(&w, b);
    emit_value(&w, authserv_id, strlen(authserv_id), 0);
    emit_version(&w, ' ', version);
    if ((ret = part_end(&w)) < 0)
        return ret;
    b->state = B_ID;
    return 0;
}

int tb_authres_add_method(struct tb_authres_builder *b, const char *name, int version,
                          const char *result)
{
    struct part w;
    int ret;

    if (b == NULL || b->state == B_NONE || b->state == B_DONE)
        return TB_EINVAL;
    if (name == NULL || result == NULL || !is_keyword(name, strlen(name)) ||
        !is_keyword(result, strlen(result)) || version < 0 || version > TB_AUTHRES_MAX_VERSION) {
        ret = TB_EINVAL;
        goto out;
    }
    if (b->n_methods >= TB_AUTHRES_MAX_METHODS) {
        ret = TB_ETOOLARGE;
        goto out;
    }
    part_begin(&w, b);
    emit(&w, "; ", 2);
    emit_str(&w, name);
    emit_version(&w, '/', version);
    emit(&w, "=", 1);
    emit_str(&w, result);
    if ((ret = part_end(&w)) < 0)
        goto out;
    b->n_methods++;
    b->method_props = 0;
    b->method_reason = 0;
    b->state = B_METHOD;
out:
    /* after a failure, nothing may land on the method before (with none, nothing can) */
    if (ret < 0 && b->state == B_METHOD)
        b->state = B_METHOD_FAILED;
    return ret;
}

int tb_authres_add_reason(struct tb_authres_builder *b, const char *reason, size_t len)
{
    struct part w;
    int ret;

    if (b == NULL || b->state != B_METHOD || b->method_reason || b->method_props > 0 ||
        (reason == NULL && len > 0) || !is_clean_text(reason, len))
        return TB_EINVAL;
    if (reason == NULL)
        reason = ""; /* with len 0 */
    part_begin(&w, b);
    emit(&w, " reason=", 8);
    emit_value(&w, reason, len, 0);
    if ((ret = part_end(&w)) < 0)
        return ret;
    b->method_reason = 1;
    return 0;
}

int tb_authres_add_prop(struct tb_authres_builder *b, const char *ptype, const char *property,
                        const char *value_, size_t len)
{
    struct part w;
    int ret;

    if (b == NULL || b->state != B_METHOD || ptype == NULL || property == NULL ||
        !is_keyword(ptype, strlen(ptype)) || !is_keyword(property, strlen(property)) ||
        (value_ == NULL && len > 0) || !is_clean_text(value_, len))
        return TB_EINVAL;
    if (b->n_props >= TB_AUTHRES_MAX_PROPS)
        return TB_ETOOLARGE;
    if (value_ == NULL)
        value_ = ""; /* with len 0 */
    part_begin(&w, b);
    emit(&w, " ", 1);
    emit_str(&w, ptype);
    emit(&w, ".", 1);
    emit_str(&w, property);
    emit(&w, "=", 1);
    emit_value(&w, value_, len, 1);
    if ((ret = part_end(&w)) < 0)
        return ret;
    b->n_props++;
    b->method_props++;
    return 0;
}

int tb_authres_add_comment(struct tb_authres_builder *b, const char *text, size_t len)
{
    struct part w;
    int ret;

    if (b == NULL || b->state == B_NONE || b->state == B_DONE || b->state == B_METHOD_FAILED ||
        (text == NULL && len > 0) || !is_clean_text(text, len))
        return TB_EINVAL;
    if (b->n_comments >= TB_AUTHRES_MAX_COMMENTS)
        return TB_ETOOLARGE;
    if (text == NULL)
        text = ""; /* with len 0 */
    part_begin(&w, b);
    emit(&w, " ", 1);
    emit_escaped(&w, '(', text, len, "()\\", ')');
    if ((ret = part_end(&w)) < 0)
        return ret;
    b->n_comments++;
    return 0;
}

int tb_authres_end(struct tb_authres_builder *b)
{
    struct part w;
    int ret;

    if (b == NULL || b->state == B_NONE || b->state == B_DONE)
        return TB_EINVAL;
    if (b->n_methods == 0) {
        part_begin(&w, b);
        emit(&w, "; none", 6);
        if ((ret = part_end(&w)) < 0)
            return ret;
    }
    b->state = B_DONE;
    return (int)b->len;
}

static int build_comments(struct tb_authres_builder *b, const char *const *c, size_t n)
{
    size_t i;
    int ret;

    if (c == NULL && n > 0)
        return TB_EINVAL;
    for (i = 0; i < n; i++) {
        if (c[i] == NULL)
            return TB_EINVAL;
        if ((ret = tb_authres_add_comment(b, c[i], strlen(c[i]))) < 0)
            return ret;
    }
    return 0;
}

int tb_authres_build(const struct tb_authres *ar, char *buf, size_t cap)
{
    struct tb_authres_builder b;
    size_t i, j;
    int ret;

    if (ar == NULL || ar->n_methods > TB_AUTHRES_MAX_METHODS)
        return TB_EINVAL;
    if ((ret = tb_authres_begin(&b, buf, cap, ar->authserv_id, ar->version)) < 0 ||
        (ret = build_comments(&b, ar->comments, ar->n_comments)) < 0)
        goto out;
    for (i = 0; i < ar->n_methods; i++) {
        const struct tb_authres_method *m = &ar->methods[i];

        if ((ret = tb_authres_add_method(&b, m->name, m->version, m->result)) < 0 ||
            (ret = build_comments(&b, m->comments, m->n_comments)) < 0)
            goto out;
        if (m->reason != NULL &&
            (ret = tb_authres_add_reason(&b, m->reason, strlen(m->reason))) < 0)
            goto out;
        if (m->props == NULL && m->n_props > 0) {
            ret = TB_EINVAL;
            goto out;
        }
        for (j = 0; j < m->n_props; j++) {
            const struct tb_authres_prop *pr = &m->props[j];

            if (pr->value == NULL) {
                ret = TB_EINVAL;
                goto out;
            }
            if ((ret = tb_authres_add_prop(&b, pr->ptype, pr->property, pr->value,
                                           strlen(pr->value))) < 0)
                goto out;
        }
    }
    ret = tb_authres_end(&b);
out:
    if (ret < 0 && buf != NULL && cap > 0)
        buf[0] = '\0';
    return ret;
}
