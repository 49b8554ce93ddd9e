/*
 * Authentication-Results (tb/authres.h): parser and builder.
 *
 * Parser: RFC 8601 Appendix B's examples (typed in, folded as printed), the no-result form,
 * quoted strings and quoted-pairs, addresses, comments (nested, escaped, everywhere CFWS may
 * be), folding, UTF-8, a table of malformed values with the error each gives, every limit at
 * and over its bound. Each parsed value is described by dump() below, a plain rendering of the
 * fields, and compared with the description written here by hand. Every input is a heap copy of
 * exactly its length, so ASan catches any read past it. Each valid value is also cut at every
 * byte (an error or a valid shorter parse, never more), folded at every space (the same
 * fields), and given a bare CR, a bare LF, a CRLF that is not a fold, or a control byte at
 * every position (always an error: nothing can smuggle a line break or a control byte through).
 *
 * Builder: the spec's example header byte for byte, quoting and escaping, control bytes and
 * invalid UTF-8 refused at every position with the buffer untouched, Keywords, the order of
 * reason and properties, every buffer size from 0 up (never a byte past cap), limits, and
 * build -> parse giving the same fields for every valid value of the tests.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bytes.h"
#include "tb/tb.h"

#define TIMEOUT_S 60

/* ---- helpers ------------------------------------------------------------------------------- */

static int parse_n(const char *s, size_t n, struct tb_authres **out)
{
    char *copy = tbt_dup_exact(s, n);
    int rc = tb_authres_parse(copy, n, out);

    free(copy);
    return rc;
}

struct text {
    char s[16384];
    size_t len;
};

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(t->s + t->len, sizeof(t->s) - t->len, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(t->s) - t->len, "dump too long");
    t->len += (size_t)n;
}

/*
 * The fields of a parsed value, rendered plainly:
 *   {id} [vN] [(comment)...] then per method: ; name[/N]=result [reason={r}] [(comment)...]
 *   [ptype.property={value}...]
 * Strings are shown as the parser decoded them, between braces.
 */
static const char *dump(const struct tb_authres *ar, struct text *t)
{
    size_t i, j;

    t->len = 0;
    t->s[0] = '\0';
    add(t, "{%s}", ar->authserv_id);
    if (ar->version != 0)
        add(t, " v%d", ar->version);
    for (i = 0; i < ar->n_comments; i++)
        add(t, " (%s)", ar->comments[i]);
    for (i = 0; i < ar->n_methods; i++) {
        const struct tb_authres_method *m = &ar->methods[i];

        add(t, "; %s", m->name);
        if (m->version != 0)
            add(t, "/%d", m->version);
        add(t, "=%s", m->result);
        if (m->reason != NULL)
            add(t, " reason={%s}", m->reason);
        for (j = 0; j < m->n_comments; j++)
            add(t, " (%s)", m->comments[j]);
        for (j = 0; j < m->n_props; j++)
            add(t, " %s.%s={%s}", m->props[j].ptype, m->props[j].property, m->props[j].value);
    }
    if (ar->n_methods == 0)
        add(t, "; none");
    return t->s;
}

/* Builds ar, parses the output again and expects the same dump. Returns the length built. */
static int expect_round_trip(const struct tb_authres *ar, const char *what)
{
    static char buf[TB_AUTHRES_MAX_LEN + 1];
    static struct text a, b;
    struct tb_authres *again = NULL;
    int n = tb_authres_build(ar, buf, sizeof(buf)), rc;

    cr_assert_gt(n, 0, "%s: build = %d (%s)", what, n, tb_strerror(n));
    cr_assert_eq((size_t)n, strlen(buf));
    for (int i = 0; i < n; i++)
        cr_assert((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f, "%s: control byte in %s", what,
                  buf);
    rc = parse_n(buf, (size_t)n, &again);
    cr_assert_eq(rc, 0, "%s: built \"%s\" does not parse: %d (%s)", what, buf, rc, tb_strerror(rc));
    cr_expect_str_eq(dump(again, &b), dump(ar, &a), "%s: built \"%s\"", what, buf);
    tb_authres_free(again);
    return n;
}

/* Parses s (exact heap copy) and expects the dump want; then the round trip. */
static void expect_parse(const char *s, const char *want)
{
    struct tb_authres *ar = (void *)&ar;
    struct text t;
    int rc = parse_n(s, strlen(s), &ar);

    cr_assert_eq(rc, 0, "parse(\"%s\") = %d (%s)", s, rc, tb_strerror(rc));
    cr_assert_not_null(ar);
    cr_expect_str_eq(dump(ar, &t), want, "parse(\"%s\")", s);
    expect_round_trip(ar, s);
    tb_authres_free(ar);
}

static void expect_error_n(const char *s, size_t n, int want)
{
    struct tb_authres *ar = (void *)&ar;
    int rc = parse_n(s, n, &ar);

    cr_expect_eq(rc, want, "parse(\"%.*s\") = %d (%s), want %d (%s)", (int)n, s, rc,
                 tb_strerror(rc), want, tb_strerror(want));
    cr_expect_null(ar, "*out is NULL after an error");
    if (rc == 0)
        tb_authres_free(ar);
}

static void expect_error(const char *s, int want)
{
    expect_error_n(s, strlen(s), want);
}

/* ---- RFC 8601 Appendix B ------------------------------------------------------------------- */

struct vec {
    const char *in;
    const char *want;
};

/* The examples as RFC 8601 prints them, each line break a fold (CRLF + the indentation). */
static const struct vec rfc[] = {
    /* B.2: service provided, no authentication done */
    {"example.org 1; none", "{example.org} v1; none"},
    {"example.org; none", "{example.org}; none"},
    /* B.3: service provided, authentication done */
    {"example.com;\r\n          spf=pass smtp.mailfrom=example.net",
     "{example.com}; spf=pass smtp.mailfrom={example.net}"},
    /* B.4: several authentications done, single MTA */
    {"example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
     "          spf=pass smtp.mailfrom=example.net",
     "{example.com}; auth=pass (cram-md5) smtp.auth={sender@example.net}; spf=pass "
     "smtp.mailfrom={example.net}"},
    {"example.com; iprev=pass\r\n          policy.iprev=192.0.2.200",
     "{example.com}; iprev=pass policy.iprev={192.0.2.200}"},
    /* B.5: several authentications done, different MTAs */
    {"example.com;\r\n          sender-id=fail header.from=example.com;\r\n"
     "          dkim=pass (good signature) header.d=example.com",
     "{example.com}; sender-id=fail header.from={example.com}; dkim=pass (good signature) "
     "header.d={example.com}"},
    {"example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.com;\r\n"
     "          spf=fail smtp.mailfrom=example.com",
     "{example.com}; auth=pass (cram-md5) smtp.auth={sender@example.com}; spf=fail "
     "smtp.mailfrom={example.com}"},
    /* B.6: multi-tiered authentication */
    {"example.com;\r\n      dkim=pass reason=\"good signature\"\r\n"
     "        header.i=@mail-router.example.net;\r\n      dkim=fail reason=\"bad signature\"\r\n"
     "        header.i=@newyork.example.com",
     "{example.com}; dkim=pass reason={good signature} header.i={@mail-router.example.net}; "
     "dkim=fail reason={bad signature} header.i={@newyork.example.com}"},
    {"mail-router.example.net;\r\n      dkim=pass (good signature) header.d=newyork.example.com\r\n"
     "        header.b=oINEO8hg;\r\n      dkim=fail (bad signature) "
     "header.d=mail-router.example.net\r\n"
     "        header.b=EToRSuvU",
     "{mail-router.example.net}; dkim=pass (good signature) header.d={newyork.example.com} "
     "header.b={oINEO8hg}; dkim=fail (bad signature) header.d={mail-router.example.net} "
     "header.b={EToRSuvU}"},
    /* B.7: comment-heavy */
    {"foo.example.net (foobar) 1 (baz);\r\n"
     "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
     "      policy (A dot can go here) . (like that) expired\r\n"
     "      (this surprised me) = (as I wasn't expecting it) 1362471462",
     "{foo.example.net} v1 (foobar) (baz); dkim/1=fail (Because I like it) (One yay) "
     "(wait for it) (A dot can go here) (like that) (this surprised me) "
     "(as I wasn't expecting it) policy.expired={1362471462}"},
};

/* More valid values: the spec's header, quoting, addresses, comments, UTF-8. */
static const struct vec more[] = {
    {"proxy.example.com;\r\n  tls=pass cert.verif=CA cert.client=\"CN=alice,O=Example\" "
     "cert.clientissuer=\"CN=Example CA\"\r\n    tls.v=TLS1.2 "
     "key.ciphersuite=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 key.length=128\r\n"
     "    key.strength=high key.fingerprint=\"AB:CD:EF\";\r\n"
     "  tokenbinding=pass tb.version=draft tb.key=p256 tb.referred=yes",
     "{proxy.example.com}; tls=pass cert.verif={CA} cert.client={CN=alice,O=Example} "
     "cert.clientissuer={CN=Example CA} tls.v={TLS1.2} "
     "key.ciphersuite={TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256} key.length={128} "
     "key.strength={high} key.fingerprint={AB:CD:EF}; tokenbinding=pass tb.version={draft} "
     "tb.key={p256} tb.referred={yes}"},
    {"x;none", "{x}; none"},
    {"x ; NONE ", "{x}; none"},
    {"  (before) x (after id) ; (after semi) none (at end)",
     "{x} (before) (after id) (after semi) (at end); none"},
    {"x; none=pass", "{x}; none=pass"},
    {"x; none/2=pass", "{x}; none/2=pass"},
    {"\"quoted id\" 7; a-b/0=ok", "{quoted id} v7; a-b=ok"},
    {"\"\"; none", "{}; none"},
    {"x 01; a=b", "{x} v1; a=b"},
    {"x(c)2; a=b", "{x} v2 (c); a=b"},
    {"123; a=b", "{123}; a=b"},
    {"123 4; a=b", "{123} v4; a=b"},
    {"x;a=b;c=d", "{x}; a=b; c=d"},
    {"x;a=b c.d=e;f=g", "{x}; a=b c.d={e}; f=g"},
    {"X; SPF=PASS SMTP.MailFrom=Example.NET", "{X}; SPF=PASS SMTP.MailFrom={Example.NET}"},
    {"x; a=b reason=r", "{x}; a=b reason={r}"},
    {"x; a=b Reason = \"r s\" c.d=e", "{x}; a=b reason={r s} c.d={e}"},
    {"x; a=b reason=\"\"", "{x}; a=b reason={}"},
    {"x; a=b reason.x=y", "{x}; a=b reason.x={y}"},
    {"x; reason=b", "{x}; reason=b"},
    {"x; a=b c.d=\"\"", "{x}; a=b c.d={}"},
    {"x; a=b c.d=\"a \\\"q\\\" \\\\ z\"", "{x}; a=b c.d={a \"q\" \\ z}"},
    {"x; a=b c.d=\"\\a\\(\"", "{x}; a=b c.d={a(}"},
    {"x; a=b c.d=\"semi;colon\" e.f=\"a=b\"", "{x}; a=b c.d={semi;colon} e.f={a=b}"},
    {"x; a=b c.d=\"tab\there\"", "{x}; a=b c.d={tab here}"},
    {"x; a=b c.d=\"fold\r\n here\"", "{x}; a=b c.d={fold here}"},
    {"x; a=b c.d=\"\\ \"", "{x}; a=b c.d={ }"},
    {"x; a=b c.d=\"\\\t\" (\\\t)", "{x}; a=b ( ) c.d={ }"},
    {"x; a=b c.d=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"",
     "{x}; a=b c.d={caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91}"},
    {"x; a=b c.d=\"\\\xc3\xa9\"", "{x}; a=b c.d={\xc3\xa9}"},
    {"x; a=b (caf\xc3\xa9)", "{x}; a=b (caf\xc3\xa9)"},
    {"x; a=b c.d=a.b@c.d", "{x}; a=b c.d={a.b@c.d}"},
    {"x; a=b c.d=first.last+tag@sub.example.org", "{x}; a=b c.d={first.last+tag@sub.example.org}"},
    {"x; a=b c.d=a/b=c?d@e-f.g", "{x}; a=b c.d={a/b=c?d@e-f.g}"},
    {"x; a=b c.d=@x.y", "{x}; a=b c.d={@x.y}"},
    {"x; a=b c.d=\"john doe\"@example.com", "{x}; a=b c.d={\"john doe\"@example.com}"},
    {"x; a=b c.d=\"a\\\"b\\\\c\\d\"@x.y", "{x}; a=b c.d={\"a\\\"b\\\\cd\"@x.y}"},
    {"x; a=b c.d=\"\"@x.y", "{x}; a=b c.d={\"\"@x.y}"},
    {"x; a=b c.d=\"q\"e.f=g", "{x}; a=b c.d={q} e.f={g}"},
    {"x; a=b c.d=example.com.", "{x}; a=b c.d={example.com.}"},
    {"x; a=b c.d=.dots..ok.", "{x}; a=b c.d={.dots..ok.}"},
    {"x; a=b c.d=!#$%&'*+-.^_`{|}~", "{x}; a=b c.d={!#$%&'*+-.^_`{|}~}"},
    {"x; a=b (outer (inner) tail)", "{x}; a=b (outer (inner) tail)"},
    {"x; a=b (a\\(b\\)c\\\\d)", "{x}; a=b (a(b)c\\d)"},
    {"x; a=b (\"quotes\" are ctext)", "{x}; a=b (\"quotes\" are ctext)"},
    {"x; a=b ()", "{x}; a=b ()"},
    {"x; a=b (t\tab)", "{x}; a=b (t ab)"},
    {"x; a=b (fold\r\n\there)", "{x}; a=b (fold here)"},
    {"x; a=b (1(2(3(4(5(6(7(8)7)6)5)4)3)2)1)", "{x}; a=b (1(2(3(4(5(6(7(8)7)6)5)4)3)2)1)"},
    {"x; a=b c.d=e (after prop); f=g", "{x}; a=b (after prop) c.d={e}; f=g"},
    {"x;(c1)a(c2)/(c3)3(c4)=(c5)b(c6)reason(c7)=(c8)r(c9)p(c10).(c11)q(c12)=(c13)v(c14)",
     "{x}; a/3=b reason={r} (c1) (c2) (c3) (c4) (c5) (c6) (c7) (c8) (c9) (c10) (c11) (c12) "
     "(c13) (c14) p.q={v}"},
    {"x\r\n ;\r\n a\r\n =\r\n b\r\n c\r\n .\r\n d\r\n =\r\n e", "{x}; a=b c.d={e}"},
    {"x;\r\n \r\n \t a=b", "{x}; a=b"},
    {"x; a=b c.d=e c.d=f", "{x}; a=b c.d={e} c.d={f}"},
};

Test(authres, rfc8601_appendix_b, .timeout = TIMEOUT_S)
{
    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++)
        expect_parse(rfc[i].in, rfc[i].want);
}

Test(authres, valid_values, .timeout = TIMEOUT_S)
{
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        expect_parse(more[i].in, more[i].want);
}

Test(authres, comment_heavy_example_fields, .timeout = TIMEOUT_S)
{
    struct tb_authres *ar = NULL;
    const struct tb_authres_method *m;

    cr_assert_eq(parse_n(rfc[9].in, strlen(rfc[9].in), &ar), 0);
    cr_expect_str_eq(ar->authserv_id, "foo.example.net");
    cr_expect_eq(ar->version, 1);
    cr_assert_eq(ar->n_comments, 2);
    cr_expect_str_eq(ar->comments[1], "baz");
    cr_assert_eq(ar->n_methods, 1);
    m = &ar->methods[0];
    cr_expect_str_eq(m->name, "dkim");
    cr_expect_eq(m->version, 1);
    cr_expect_str_eq(m->result, "fail");
    cr_expect_null(m->reason);
    cr_expect_eq(m->n_comments, 7);
    cr_assert_eq(m->n_props, 1);
    cr_expect_str_eq(m->props[0].ptype, "policy");
    cr_expect_str_eq(m->props[0].property, "expired");
    cr_expect_str_eq(m->props[0].value, "1362471462");
    tb_authres_free(ar);
}

/* ---- errors -------------------------------------------------------------------------------- */

struct bad {
    const char *in;
    int want;
};

static const struct bad bad[] = {
    {"", TB_EPARSE},
    {" ", TB_EPARSE},
    {"(only a comment)", TB_EPARSE},
    {"example.org", TB_EPARSE}, /* neither none nor a method */
    {"example.org;", TB_EPARSE},
    {"example.org; ", TB_EPARSE},
    {";none", TB_EPARSE}, /* no authserv-id */
    {"; spf=pass", TB_EPARSE},
    {"example.org; none; spf=pass", TB_EPARSE}, /* none is the only resinfo */
    {"example.org; spf=pass; none", TB_EPARSE},
    {"example.org; none/1", TB_EPARSE},
    {"example.org; none pass", TB_EPARSE},
    {"example.org; none;", TB_EPARSE},
    {"example.org 1 2; none", TB_EPARSE},
    {"example.org one; none", TB_EPARSE},
    {"\"id\"1; none", TB_EPARSE}, /* CFWS before the version */
    {"x; spf", TB_EPARSE},
    {"x; spf=", TB_EPARSE},
    {"x; spf= ", TB_EPARSE},
    {"x; =pass", TB_EPARSE},
    {"x; spf==pass", TB_EPARSE},
    {"x; spf=pass;", TB_EPARSE},
    {"x; spf=pass;;dkim=pass", TB_EPARSE},
    {"x; spf-=pass", TB_EPARSE}, /* a Keyword does not end in '-' */
    {"x; spf=pass-", TB_EPARSE},
    {"x; sp_f=pass", TB_EPARSE},
    {"x; spf=\"pass\"", TB_EPARSE}, /* a result is a Keyword */
    {"x; spf=pa.ss", TB_EPARSE},
    {"x; spf/=pass", TB_EPARSE},
    {"x; spf/a=pass", TB_EPARSE},
    {"x; spf/1/2=pass", TB_EPARSE},
    {"x; spf=pass smtp", TB_EPARSE},
    {"x; spf=pass smtp.", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom= ", TB_EPARSE},
    {"x; spf=pass smtp..mailfrom=a", TB_EPARSE},
    {"x; spf=pass .mailfrom=a", TB_EPARSE},
    {"x; spf=pass smtp.mail_from=a", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a b", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a=b", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a/b", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a?", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=[a]", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a,b", TB_EPARSE},
    {"x; spf=pass, dkim=pass", TB_EPARSE}, /* two fields joined with ',' */
    {"x; spf=pass smtp.mailfrom=a:b", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=<a@b.c>", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@b", TB_EPARSE}, /* domain-name has two labels */
    {"x; spf=pass smtp.mailfrom=a@b.", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@.b.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@b..c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@-b.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@b-.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@b.c-", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@b_c.d", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a@b.c@d.e", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=.a@b.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a.@b.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a..b@b.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=a @b.c", TB_EPARSE}, /* no CFWS inside an address */
    {"x; spf=pass smtp.mailfrom=a@ b.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=\"a\" @b.c", TB_EPARSE},
    {"x; spf=pass smtp.mailfrom=@", TB_EPARSE},
    {"x; spf=pass reason=a reason=b", TB_EPARSE}, /* one reason */
    {"x; spf=pass a.b=c reason=d", TB_EPARSE},    /* before the properties */
    {"x; spf=pass reason=", TB_EPARSE},
    {"x; spf=pass reason=a@b.c", TB_EPARSE}, /* a reason is a value, not an address */
    {"x; spf=pass reason", TB_EPARSE},
    {"x; spf=pass reasons=a", TB_EPARSE},
    {"x; spf=pass \"q\"", TB_EPARSE},
    {"\"unterminated; none", TB_EPARSE},
    {"x; a=b c.d=\"unterminated", TB_EPARSE},
    {"x; a=b c.d=\"ends in backslash\\", TB_EPARSE},
    {"x; a=b c.d=\"\\", TB_EPARSE},
    {"x; a=b (unterminated", TB_EPARSE},
    {"x; a=b (unbalanced (nested)", TB_EPARSE},
    {"x; a=b (\\", TB_EPARSE},
    {"x; a=b )", TB_EPARSE},
    {"(x; none", TB_EPARSE},
    {"x; a=b c.d=\"bare\rcr\"", TB_EPARSE},
    {"x; a=b c.d=\"bare\nlf\"", TB_EPARSE},
    {"x; a=b c.d=\"crlf\r\nno wsp\"", TB_EPARSE},
    {"x; a=b c.d=\"qp \\\r\n x\"", TB_EPARSE}, /* a quoted-pair of CR */
    {"x; a=b c.d=\"nul \\\x01\"", TB_EPARSE},
    {"x; a=b (bare\rcr)", TB_EPARSE},
    {"x; a=b (bare\nlf)", TB_EPARSE},
    {"x; a=b\r\n", TB_EPARSE}, /* a trailing CRLF is not a fold */
    {"x; a=b\r\n\r\n c.d=e", TB_EPARSE},
    {"x; a=b\n c.d=e", TB_EPARSE},
    {"x; a=b\r c.d=e", TB_EPARSE},
    {"x; a=b\r\nc.d=e", TB_EPARSE},
    {"x; a=b\r\nX-Injected: 1", TB_EPARSE},
    {"\r\n x; none", TB_OK}, /* a fold as leading CFWS is fine */
    {"x; a=b c.d=\"\x7f\"", TB_EPARSE},
    {"x; a=b (\x1b[31m)", TB_EPARSE},
    {"x; a=b c.d=caf\xc3\xa9", TB_EPARSE}, /* 8-bit only quoted or in comments */
    {"caf\xc3\xa9; none", TB_EPARSE},
    {"x; a=b c.d=\"\xc3\"", TB_EPARSE}, /* truncated UTF-8 */
    {"x; a=b c.d=\"\xc3(\"", TB_EPARSE},
    {"x; a=b c.d=\"\x80\"", TB_EPARSE},     /* lone continuation byte */
    {"x; a=b c.d=\"\xc0\xaf\"", TB_EPARSE}, /* overlong */
    {"x; a=b c.d=\"\xe0\x80\xaf\"", TB_EPARSE},
    {"x; a=b c.d=\"\xed\xa0\x80\"", TB_EPARSE},     /* surrogate */
    {"x; a=b c.d=\"\xf4\x90\x80\x80\"", TB_EPARSE}, /* over U+10FFFF */
    {"x; a=b c.d=\"\xff\"", TB_EPARSE},
    {"x; a=b c.d=\"\xc3\xc3\"", TB_EPARSE}, /* a lead byte where a continuation goes */
    {"x; a=b (\xe2\x82\xe2)", TB_EPARSE},
    {"x; a=b (\xe2\x82", TB_EPARSE}, /* cut inside a character, at the end */
    {"x; a=b (\xf0\x9f\x94", TB_EPARSE},
    {"x; a=b (\xfe)", TB_EPARSE},
    {"x; a=b c.d=\"\\\xc3\"", TB_EPARSE},
};

Test(authres, malformed_values, .timeout = TIMEOUT_S)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (bad[i].want == TB_OK) {
            struct tb_authres *ar = NULL;

            cr_expect_eq(parse_n(bad[i].in, strlen(bad[i].in), &ar), 0, "%s", bad[i].in);
            tb_authres_free(ar);
        } else {
            expect_error(bad[i].in, bad[i].want);
        }
    }
}

Test(authres, nul_inside_the_length, .timeout = TIMEOUT_S)
{
    static const char v[] = "x; a=b c.d=\"n\0l\"";
    static const char w[] = "x; a=b\0 c.d=e";

    expect_error_n(v, sizeof(v) - 1, TB_EPARSE);
    expect_error_n(w, sizeof(w) - 1, TB_EPARSE);
    /* the length counts, not a NUL after it: "x; a=b" of "x; a=bc" */
    expect_error_n("x; a=b c", 8, TB_EPARSE);
    {
        struct tb_authres *ar = NULL;
        struct text t;

        cr_assert_eq(parse_n("x; a=bc", 6, &ar), 0);
        cr_expect_str_eq(dump(ar, &t), "{x}; a=b");
        tb_authres_free(ar);
    }
}

Test(authres, bad_arguments, .timeout = TIMEOUT_S)
{
    struct tb_authres *ar = (void *)&ar;

    cr_expect_eq(tb_authres_parse("x; none", 7, NULL), TB_EINVAL);
    cr_expect_eq(tb_authres_parse(NULL, 1, &ar), TB_EINVAL);
    cr_expect_eq(tb_authres_parse(NULL, 0, &ar), TB_EPARSE);
    cr_expect_null(ar);
    tb_authres_free(NULL);
}

/* ---- limits -------------------------------------------------------------------------------- */

/* "x" then n methods "; mK=pass" */
static void methods_value(struct text *t, size_t n)
{
    t->len = 0;
    add(t, "x");
    for (size_t i = 0; i < n; i++)
        add(t, "; m%zu=pass", i);
}

Test(authres, limit_methods, .timeout = TIMEOUT_S)
{
    struct tb_authres *ar = NULL;
    struct text t;

    methods_value(&t, TB_AUTHRES_MAX_METHODS);
    cr_assert_eq(parse_n(t.s, t.len, &ar), 0);
    cr_expect_eq(ar->n_methods, TB_AUTHRES_MAX_METHODS);
    cr_expect_str_eq(ar->methods[TB_AUTHRES_MAX_METHODS - 1].name, "m15");
    expect_round_trip(ar, "16 methods");
    tb_authres_free(ar);
    methods_value(&t, TB_AUTHRES_MAX_METHODS + 1);
    expect_error_n(t.s, t.len, TB_ETOOLARGE);
}

/* "x; a=b" then n properties spread over two methods */
static void props_value(struct text *t, size_t n)
{
    t->len = 0;
    add(t, "x; a=b");
    for (size_t i = 0; i < n; i++)
        add(t, "%s p.q%zu=v", i == n / 2 ? "; c=d" : "", i);
}

Test(authres, limit_properties, .timeout = TIMEOUT_S)
{
    struct tb_authres *ar = NULL;
    struct text t;

    props_value(&t, TB_AUTHRES_MAX_PROPS);
    cr_assert_eq(parse_n(t.s, t.len, &ar), 0);
    cr_assert_eq(ar->n_methods, 2);
    cr_expect_eq(ar->methods[0].n_props + ar->methods[1].n_props, TB_AUTHRES_MAX_PROPS);
    cr_expect_str_eq(ar->methods[1].props[ar->methods[1].n_props - 1].property, "q63");
    expect_round_trip(ar, "64 properties");
    tb_authres_free(ar);
    props_value(&t, TB_AUTHRES_MAX_PROPS + 1);
    expect_error_n(t.s, t.len, TB_ETOOLARGE);
}

/* n comments spread over the id, a method and "none" */
static void comments_value(struct text *t, size_t n, int none)
{
    t->len = 0;
    add(t, "x");
    for (size_t i = 0; i < n; i++)
        add(t, "%s (c%zu)", i == n / 2 ? (none ? ";" : "; a=b") : "", i);
    if (none)
        add(t, " none");
}

Test(authres, limit_comments, .timeout = TIMEOUT_S)
{
    struct tb_authres *ar = NULL;
    struct text t;

    for (int none = 0; none <= 1; none++) {
        comments_value(&t, TB_AUTHRES_MAX_COMMENTS, none);
        cr_assert_eq(parse_n(t.s, t.len, &ar), 0, "%s", t.s);
        if (none) {
            cr_expect_eq(ar->n_comments, TB_AUTHRES_MAX_COMMENTS);
        } else {
            cr_expect_eq(ar->n_comments, TB_AUTHRES_MAX_COMMENTS / 2);
            cr_expect_eq(ar->methods[0].n_comments, TB_AUTHRES_MAX_COMMENTS / 2);
            cr_expect_str_eq(ar->methods[0].comments[0], "c16");
        }
        expect_round_trip(ar, t.s);
        tb_authres_free(ar);
        comments_value(&t, TB_AUTHRES_MAX_COMMENTS + 1, none);
        expect_error_n(t.s, t.len, TB_ETOOLARGE);
    }
}

Test(authres, limit_nesting, .timeout = TIMEOUT_S)
{
    struct text t;

    for (int depth = 1; depth <= TB_AUTHRES_MAX_NESTING + 2; depth++) {
        t.len = 0;
        add(&t, "x; a=b ");
        for (int i = 0; i < depth; i++)
            add(&t, "(");
        for (int i = 0; i < depth; i++)
            add(&t, ")");
        if (depth <= TB_AUTHRES_MAX_NESTING) {
            struct tb_authres *ar = NULL;

            cr_expect_eq(parse_n(t.s, t.len, &ar), 0, "depth %d", depth);
            tb_authres_free(ar);
        } else {
            expect_error_n(t.s, t.len, TB_ETOOLARGE);
        }
    }
    /* deep nesting far past the limit fails early, without recursion */
    {
        size_t n = TB_AUTHRES_MAX_LEN;
        char *deep = malloc(n);

        cr_assert_not_null(deep);
        memcpy(deep, "x; a=b ", 7);
        memset(deep + 7, '(', n - 7);
        expect_error_n(deep, n, TB_ETOOLARGE);
        free(deep);
    }
}

Test(authres, limit_versions, .timeout = TIMEOUT_S)
{
    expect_parse("x 999999999; a/999999999=b", "{x} v999999999; a/999999999=b");
    expect_error("x 1000000000; a=b", TB_ETOOLARGE);
    expect_error("x 0000000001; a=b", TB_ETOOLARGE);
    expect_error("x; a/1000000000=b", TB_ETOOLARGE);
}

Test(authres, limit_length, .timeout = TIMEOUT_S)
{
    size_t n = TB_AUTHRES_MAX_LEN;
    char *v = malloc(n + 1);
    struct tb_authres *ar = NULL;

    cr_assert_not_null(v);
    /* x; a=b c.d="vvvv...v" of exactly TB_AUTHRES_MAX_LEN bytes */
    memcpy(v, "x; a=b c.d=\"", 12);
    memset(v + 12, 'v', n - 13);
    v[n - 1] = '"';
    cr_assert_eq(parse_n(v, n, &ar), 0);
    cr_expect_eq(strlen(ar->methods[0].props[0].value), n - 13);
    expect_round_trip(ar, "longest value");
    tb_authres_free(ar);
    v[n - 1] = 'v';
    v[n] = '"';
    expect_error_n(v, n + 1, TB_ETOOLARGE);
    free(v);
}

/* ---- every cut, every fold, every injected byte -------------------------------------------- */

static void all_valid(void (*fn)(const char *in, const char *want))
{
    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++)
        fn(rfc[i].in, rfc[i].want);
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        fn(more[i].in, more[i].want);
}

/* Counts of a parse: a cut value never has more of anything than the whole. */
static size_t n_props(const struct tb_authres *ar)
{
    size_t n = 0;

    for (size_t i = 0; i < ar->n_methods; i++)
        n += ar->methods[i].n_props;
    return n;
}

static void cut_everywhere(const char *in, const char *want)
{
    struct tb_authres *whole = NULL;
    size_t len = strlen(in);
    int ok = 0;

    (void)want;
    cr_assert_eq(parse_n(in, len, &whole), 0);
    for (size_t cut = 0; cut < len; cut++) {
        struct tb_authres *ar = (void *)&ar;
        int rc = parse_n(in, cut, &ar);

        cr_assert(rc == 0 || rc == TB_EPARSE, "\"%s\" cut at %zu: %d (%s)", in, cut, rc,
                  tb_strerror(rc));
        if (rc != 0) {
            cr_assert_null(ar);
            continue;
        }
        ok++;
        cr_assert_leq(ar->n_methods, whole->n_methods, "\"%s\" cut at %zu", in, cut);
        cr_assert_leq(n_props(ar), n_props(whole), "\"%s\" cut at %zu", in, cut);
        expect_round_trip(ar, in);
        tb_authres_free(ar);
    }
    tb_authres_free(whole);
    (void)ok;
}

Test(authres, every_truncation, .timeout = TIMEOUT_S)
{
    all_valid(cut_everywhere);
}

Test(authres, truncations_that_parse, .timeout = TIMEOUT_S)
{
    static const char v[] = "example.com; spf=pass smtp.mailfrom=example.net";
    size_t n_ok = 0;

    /*
     * Exactly the cuts that end in the result ("spf=p" .. "spf=pass", 4), after it ("spf=pass ",
     * 1) or in the property value ("mailfrom=e" .. "mailfrom=example.net", 11) parse.
     */
    for (size_t cut = 0; cut <= sizeof(v) - 1; cut++) {
        struct tb_authres *ar = NULL;
        int rc = parse_n(v, cut, &ar);
        int want_ok = (cut >= 18 && cut <= 22) || cut >= 37;

        cr_expect_eq(rc, want_ok ? 0 : TB_EPARSE, "cut at %zu: %d", cut, rc);
        if (rc == 0) {
            n_ok++;
            cr_expect_eq(ar->n_methods, 1);
            cr_expect_eq(ar->methods[0].n_props, cut >= 37 ? 1u : 0u);
            tb_authres_free(ar);
        }
    }
    cr_expect_eq(n_ok, 4 + 1 + 11);
}

/* Replaces every single space of in by a fold (CRLF + space): the same fields. */
static void fold_everywhere(const char *in, const char *want)
{
    size_t len = strlen(in);
    char *v = malloc(len + 3);
    struct text t;

    cr_assert_not_null(v);
    for (size_t i = 0; i < len; i++) {
        struct tb_authres *ar = NULL;

        /* not the WSP of a fold, nor a quoted-pair's */
        if (in[i] != ' ' || (i > 0 && (in[i - 1] == '\n' || in[i - 1] == '\\')))
            continue;
        memcpy(v, in, i);
        memcpy(v + i, "\r\n ", 3);
        memcpy(v + i + 3, in + i + 1, len - i - 1);
        cr_assert_eq(parse_n(v, len + 2, &ar), 0, "\"%s\" folded at %zu", in, i);
        cr_expect_str_eq(dump(ar, &t), want, "\"%s\" folded at %zu", in, i);
        tb_authres_free(ar);
    }
    free(v);
}

Test(authres, fold_at_every_space, .timeout = TIMEOUT_S)
{
    all_valid(fold_everywhere);
}

/* Inserts ins (n bytes) at every position of in: always TB_EPARSE. */
static void insert_everywhere(const char *in, const char *ins, size_t n)
{
    size_t len = strlen(in);
    char *v = malloc(len + n);

    cr_assert_not_null(v);
    for (size_t i = 0; i <= len; i++) {
        memcpy(v, in, i);
        memcpy(v + i, ins, n);
        memcpy(v + i + n, in + i, len - i);
        expect_error_n(v, len + n, TB_EPARSE);
    }
    free(v);
}

static void inject_everywhere(const char *in, const char *want)
{
    static const char *const breaks[] = {
        "\r", "\n", "\n ", "\r ", "\r\nX", "\r\n\r\n ", "\r\nX-Injected: 1\r\n"};
    static const char ctl[] = {0x00, 0x01, 0x07, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f};
    static const char high[] = {(char)0x80, (char)0xbf, (char)0xc0, (char)0xf8, (char)0xff};

    (void)want;
    for (size_t i = 0; i < sizeof(breaks) / sizeof(breaks[0]); i++)
        insert_everywhere(in, breaks[i], strlen(breaks[i]));
    for (size_t i = 0; i < sizeof(ctl); i++)
        insert_everywhere(in, &ctl[i], 1);
    for (size_t i = 0; i < sizeof(high); i++)
        insert_everywhere(in, &high[i], 1);
}

Test(authres, line_breaks_and_control_bytes_anywhere, .timeout = TIMEOUT_S)
{
    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++)
        inject_everywhere(rfc[i].in, rfc[i].want);
    inject_everywhere(more[0].in, more[0].want);
    inject_everywhere("x; a=b c.d=\"q \\\" (x)\" (c (n) \\) d) e.f=a@b.c", NULL);
}

/* ---- lookups and the authserv-id ----------------------------------------------------------- */

Test(authres, find_method_and_prop, .timeout = TIMEOUT_S)
{
    static const char v[] = "example.com; DKIM=pass header.d=a.example HEADER.D=b.example "
                            "header.i=@a.example; spf=fail smtp.MailFrom=x.example; "
                            "dkim=fail header.d=c.example";
    struct tb_authres *ar = NULL;
    const struct tb_authres_method *m, *m2;
    const struct tb_authres_prop *p;

    cr_assert_eq(parse_n(v, sizeof(v) - 1, &ar), 0);
    m = tb_authres_find_method(ar, "dkim", NULL);
    cr_assert_eq(m, &ar->methods[0]);
    cr_expect_str_eq(m->name, "DKIM", "names as written");
    p = tb_authres_find_prop(m, "Header", "d", NULL);
    cr_assert_not_null(p);
    cr_expect_str_eq(p->value, "a.example");
    p = tb_authres_find_prop(m, "header", "D", p);
    cr_assert_not_null(p);
    cr_expect_str_eq(p->value, "b.example");
    cr_expect_null(tb_authres_find_prop(m, "header", "d", p));
    cr_expect_null(tb_authres_find_prop(m, "smtp", "mailfrom", NULL), "only this method's");
    m2 = tb_authres_find_method(ar, "DkIm", m);
    cr_assert_eq(m2, &ar->methods[2]);
    cr_expect_str_eq(tb_authres_find_prop(m2, "header", "d", NULL)->value, "c.example");
    cr_expect_null(tb_authres_find_method(ar, "dkim", m2));
    m = tb_authres_find_method(ar, "SPF", NULL);
    cr_assert_eq(m, &ar->methods[1]);
    cr_expect_str_eq(tb_authres_find_prop(m, "SMTP", "mailfrom", NULL)->value, "x.example");
    cr_expect_null(tb_authres_find_method(ar, "dkim2", NULL));
    cr_expect_null(tb_authres_find_method(ar, "dki", NULL));
    cr_expect_null(tb_authres_find_prop(m, "smtp", "mailfro", NULL));
    cr_expect_null(tb_authres_find_prop(m, "smt", "mailfrom", NULL));
    /* NULL arguments, and an `after` from elsewhere */
    cr_expect_null(tb_authres_find_method(NULL, "dkim", NULL));
    cr_expect_null(tb_authres_find_method(ar, NULL, NULL));
    cr_expect_null(tb_authres_find_method(ar, "dkim", &ar->methods[5]));
    cr_expect_null(tb_authres_find_prop(NULL, "a", "b", NULL));
    cr_expect_null(tb_authres_find_prop(m, NULL, "b", NULL));
    cr_expect_null(tb_authres_find_prop(m, "a", NULL, NULL));
    cr_expect_null(tb_authres_find_prop(m, "smtp", "mailfrom", &ar->methods[0].props[0]));
    tb_authres_free(ar);
}

Test(authres, authserv_id_alone, .timeout = TIMEOUT_S)
{
    static const struct {
        const char *in;
        int want;
        const char *id;
    } cases[] = {
        {"proxy.example.com; tls=pass", 17, "proxy.example.com"},
        {"Proxy.Example.COM", 17, "Proxy.Example.COM"},
        {"  (c (nested)) proxy.example.com 1; none", 17, "proxy.example.com"},
        {"\r\n proxy.example.com;", 17, "proxy.example.com"},
        {"proxy.example.com; garbage ((( \x01", 17, "proxy.example.com"},
        {"\"proxy \\\"x\\\"\"; none", 9, "proxy \"x\""},
        {"\"\"; none", 0, ""},
        {"", TB_EPARSE, ""},
        {"  ", TB_EPARSE, ""},
        {"; none", TB_EPARSE, ""},
        {"(unterminated proxy.example.com; none", TB_EPARSE, ""},
        {"\"unterminated; none", TB_EPARSE, ""},
        {"\x01proxy", TB_EPARSE, ""},
        {"\nproxy", TB_EPARSE, ""},
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *copy = tbt_dup_exact(cases[i].in, strlen(cases[i].in));
        int rc = tb_authres_authserv_id(copy, strlen(cases[i].in), out, sizeof(out));

        cr_expect_eq(rc, cases[i].want, "\"%s\": %d", cases[i].in, rc);
        cr_expect_str_eq(out, cases[i].id, "\"%s\"", cases[i].in);
        free(copy);
    }
    /* cap: the id and its NUL */
    cr_expect_eq(tb_authres_authserv_id("abcd; none", 10, out, 5), 4);
    cr_expect_str_eq(out, "abcd");
    cr_expect_eq(tb_authres_authserv_id("abcd; none", 10, out, 4), TB_ETOOLARGE);
    cr_expect_str_eq(out, "");
    cr_expect_eq(tb_authres_authserv_id("abcd; none", 10, out, 0), TB_ETOOLARGE);
    cr_expect_eq(tb_authres_authserv_id("(a long comment is not kept) ab", 31, out, 3), 2);
    cr_expect_str_eq(out, "ab");
    {
        char *big = malloc(TB_AUTHRES_MAX_LEN + 1);

        cr_assert_not_null(big);
        memset(big, 'a', TB_AUTHRES_MAX_LEN + 1);
        strcpy(out, "stale");
        cr_expect_eq(tb_authres_authserv_id(big, TB_AUTHRES_MAX_LEN + 1, out, sizeof(out)),
                     TB_ETOOLARGE);
        cr_expect_str_eq(out, "");
        free(big);
    }
    cr_expect_eq(tb_authres_authserv_id(NULL, 1, out, sizeof(out)), TB_EINVAL);
    cr_expect_eq(tb_authres_authserv_id("a", 1, NULL, 1), TB_EINVAL);
}

/* ---- builder ------------------------------------------------------------------------------- */

static const char fp[] = "3A:F1:9C:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67:"
                         "89:AB:CD:EF:10:32:54:76:98";

/* The spec's example (AUTH-RESULTS.md), on one line. */
static int build_spec_example(char *buf, size_t cap)
{
    struct tb_authres_builder b;
    static const char client[] = "CN=alice,O=Example", issuer[] = "CN=Example CA";
    int rc;

    if ((rc = tb_authres_begin(&b, buf, cap, "proxy.example.com", 0)) < 0 ||
        (rc = tb_authres_add_method(&b, "tls", 0, "pass")) < 0 ||
        (rc = tb_authres_add_prop(&b, "cert", "verif", "CA", 2)) < 0 ||
        (rc = tb_authres_add_prop(&b, "cert", "client", client, strlen(client))) < 0 ||
        (rc = tb_authres_add_prop(&b, "cert", "clientissuer", issuer, strlen(issuer))) < 0 ||
        (rc = tb_authres_add_prop(&b, "tls", "v", "TLS1.2", 6)) < 0 ||
        (rc = tb_authres_add_prop(&b, "key", "ciphersuite",
                                  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 39)) < 0 ||
        (rc = tb_authres_add_prop(&b, "key", "length", "128", 3)) < 0 ||
        (rc = tb_authres_add_prop(&b, "key", "strength", "high", 4)) < 0 ||
        (rc = tb_authres_add_prop(&b, "key", "fingerprint", fp, strlen(fp))) < 0 ||
        (rc = tb_authres_add_method(&b, "tokenbinding", 0, "pass")) < 0 ||
        (rc = tb_authres_add_prop(&b, "tb", "version", "draft", 5)) < 0 ||
        (rc = tb_authres_add_prop(&b, "tb", "key", "p256", 4)) < 0 ||
        (rc = tb_authres_add_prop(&b, "tb", "referred", "yes", 3)) < 0)
        return rc;
    return tb_authres_end(&b);
}

static const char spec_line[] =
    "proxy.example.com; tls=pass cert.verif=CA cert.client=\"CN=alice,O=Example\" "
    "cert.clientissuer=\"CN=Example CA\" tls.v=TLS1.2 "
    "key.ciphersuite=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 key.length=128 key.strength=high "
    "key.fingerprint=\"3A:F1:9C:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67:"
    "89:AB:CD:EF:10:32:54:76:98\"; tokenbinding=pass tb.version=draft tb.key=p256 "
    "tb.referred=yes";

Test(authres, spec_example_round_trip, .timeout = TIMEOUT_S)
{
    char buf[1024];
    struct tb_authres *ar = NULL;
    const struct tb_authres_method *tls, *tbm;
    int n = build_spec_example(buf, sizeof(buf));

    cr_assert_eq(n, (int)sizeof(spec_line) - 1, "%d (%s): %s", n, tb_strerror(n), buf);
    cr_assert_str_eq(buf, spec_line);
    cr_assert_eq(parse_n(buf, (size_t)n, &ar), 0);
    cr_expect_str_eq(ar->authserv_id, "proxy.example.com");
    cr_expect_eq(ar->version, 0);
    cr_assert_eq(ar->n_methods, 2);
    tls = tb_authres_find_method(ar, "tls", NULL);
    cr_assert_not_null(tls);
    cr_expect_str_eq(tls->result, "pass");
    cr_expect_eq(tls->n_props, 8);
    cr_expect_str_eq(tb_authres_find_prop(tls, "cert", "client", NULL)->value,
                     "CN=alice,O=Example");
    cr_expect_str_eq(tb_authres_find_prop(tls, "cert", "clientissuer", NULL)->value,
                     "CN=Example CA");
    cr_expect_str_eq(tb_authres_find_prop(tls, "tls", "v", NULL)->value, "TLS1.2");
    cr_expect_str_eq(tb_authres_find_prop(tls, "key", "fingerprint", NULL)->value, fp);
    cr_expect_str_eq(tb_authres_find_prop(tls, "key", "length", NULL)->value, "128");
    tbm = tb_authres_find_method(ar, "tokenbinding", NULL);
    cr_assert_not_null(tbm);
    cr_expect_eq(tbm->n_props, 3);
    cr_expect_str_eq(tb_authres_find_prop(tbm, "tb", "key", NULL)->value, "p256");
    cr_expect_str_eq(tb_authres_find_prop(tbm, "tb", "referred", NULL)->value, "yes");
    expect_round_trip(ar, "spec example");
    tb_authres_free(ar);
}

/* One property with value v written by the builder: the text after "x; m=r p.q=". */
static int prop_text(const char *v, size_t n, char *out, size_t cap)
{
    struct tb_authres_builder b;
    char buf[512];
    int rc;

    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
    rc = tb_authres_add_prop(&b, "p", "q", v, n);
    const char *text = rc == 0 ? buf + 11 : buf + 6;

    cr_assert_eq(strncmp(buf, rc == 0 ? "x; m=r p.q=" : "x; m=r", rc == 0 ? 11 : 7), 0, "%s", buf);
    cr_assert_lt(strlen(text), cap);
    memcpy(out, text, strlen(text) + 1);
    return rc;
}

Test(authres, builder_quoting, .timeout = TIMEOUT_S)
{
    static const struct {
        const char *value, *written;
    } cases[] = {
        {"example.net", "example.net"},
        {"TLS1.3", "TLS1.3"},
        {"!#$%&'*+-.^_`{|}~", "!#$%&'*+-.^_`{|}~"},
        {"sender@example.net", "sender@example.net"}, /* an address */
        {"@example.net", "@example.net"},
        {"a/b=c?d@e.f", "a/b=c?d@e.f"},
        {"sender@localhost", "\"sender@localhost\""}, /* not a domain-name: quoted */
        {"a..b@example.net", "\"a..b@example.net\""},
        {"\"john doe\"@x.y", "\"\\\"john doe\\\"@x.y\""},
        {"", "\"\""},
        {"two words", "\"two words\""},
        {"CN=alice,O=Example", "\"CN=alice,O=Example\""},
        {"a;b", "\"a;b\""},
        {"a:b", "\"a:b\""},
        {"a(b)", "\"a(b)\""},
        {"<a>", "\"<a>\""},
        {"[a]", "\"[a]\""},
        {"a/b", "\"a/b\""},
        {"a=b", "\"a=b\""},
        {"a?", "\"a?\""},
        {"say \"hi\"", "\"say \\\"hi\\\"\""},
        {"back\\slash", "\"back\\\\slash\""},
        {"\\\"", "\"\\\\\\\"\""},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
        {"\xf0\x9f\x94\x91", "\"\xf0\x9f\x94\x91\""},
    };
    char out[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = prop_text(cases[i].value, strlen(cases[i].value), out, sizeof(out));

        cr_expect_eq(rc, 0, "\"%s\": %d", cases[i].value, rc);
        cr_expect_str_eq(out, cases[i].written, "\"%s\"", cases[i].value);
    }
}

Test(authres, builder_comments_reason_id, .timeout = TIMEOUT_S)
{
    struct tb_authres_builder b;
    char buf[256];
    static const char c1[] = "a (nested) \\ \"q\"";

    /* the address form is for property values only */
    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "a@b.c", 0), 0);
    cr_expect_str_eq(buf, "\"a@b.c\"");
    cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
    cr_assert_eq(tb_authres_add_reason(&b, "a@b.c", 5), 0);
    cr_expect_str_eq(buf, "\"a@b.c\"; m=r reason=\"a@b.c\"");
    expect_parse(buf, "{a@b.c}; m=r reason={a@b.c}");

    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "auth serv", 1), 0);
    cr_expect_str_eq(buf, "\"auth serv\" 1");
    cr_assert_eq(tb_authres_add_comment(&b, "id note", 7), 0);
    cr_assert_eq(tb_authres_add_method(&b, "dkim", 1, "fail"), 0);
    cr_assert_eq(tb_authres_add_comment(&b, c1, strlen(c1)), 0);
    cr_assert_eq(tb_authres_add_comment(&b, "", 0), 0);
    cr_assert_eq(tb_authres_add_reason(&b, "bad signature", 13), 0);
    cr_assert_eq(tb_authres_add_prop(&b, "header", "d", "example.com", 11), 0);
    cr_assert_eq(tb_authres_add_comment(&b, ")", 1), 0);
    cr_assert_eq(tb_authres_add_method(&b, "spf", 0, "none"), 0);
    cr_assert_eq(tb_authres_add_reason(&b, "token", 5), 0);
    cr_assert_eq(tb_authres_end(&b), (int)strlen(buf));
    cr_expect_str_eq(buf, "\"auth serv\" 1 (id note); dkim/1=fail (a \\(nested\\) \\\\ \"q\") () "
                          "reason=\"bad signature\" header.d=example.com (\\)); spf=none "
                          "reason=token");
    expect_parse(buf, "{auth serv} v1 (id note); dkim/1=fail reason={bad signature} "
                      "(a (nested) \\ \"q\") () ()) header.d={example.com}; spf=none "
                      "reason={token}");
}

Test(authres, builder_none_and_order, .timeout = TIMEOUT_S)
{
    struct tb_authres_builder b;
    char buf[64];

    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "example.org", 1), 0);
    cr_expect_eq(tb_authres_add_reason(&b, "r", 1), TB_EINVAL, "no method yet");
    cr_expect_eq(tb_authres_add_prop(&b, "a", "b", "c", 1), TB_EINVAL, "no method yet");
    cr_assert_eq(tb_authres_add_comment(&b, "no auth", 7), 0);
    cr_assert_eq(tb_authres_end(&b), (int)strlen("example.org 1 (no auth); none"));
    cr_expect_str_eq(buf, "example.org 1 (no auth); none");
    cr_expect_eq(tb_authres_end(&b), TB_EINVAL, "ended");
    cr_expect_eq(tb_authres_add_method(&b, "a", 0, "b"), TB_EINVAL, "ended");
    cr_expect_eq(tb_authres_add_comment(&b, "c", 1), TB_EINVAL, "ended");
    cr_expect_str_eq(buf, "example.org 1 (no auth); none");

    /* reason: once, before the properties */
    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    cr_assert_eq(tb_authres_add_method(&b, "a", 0, "b"), 0);
    cr_assert_eq(tb_authres_add_reason(&b, "r", 1), 0);
    cr_expect_eq(tb_authres_add_reason(&b, "s", 1), TB_EINVAL);
    cr_assert_eq(tb_authres_add_prop(&b, "p", "q", "v", 1), 0);
    cr_assert_eq(tb_authres_add_method(&b, "c", 0, "d"), 0);
    cr_assert_eq(tb_authres_add_prop(&b, "p", "q", "v", 1), 0);
    cr_expect_eq(tb_authres_add_reason(&b, "r", 1), TB_EINVAL);
    cr_assert_eq(tb_authres_end(&b), (int)strlen("x; a=b reason=r p.q=v; c=d p.q=v"));
    cr_expect_str_eq(buf, "x; a=b reason=r p.q=v; c=d p.q=v");
}

Test(authres, builder_failed_method_blocks_its_properties, .timeout = TIMEOUT_S)
{
    struct tb_authres_builder b;
    char buf[40];

    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    cr_assert_eq(tb_authres_add_method(&b, "tls", 0, "pass"), 0);
    cr_expect_eq(tb_authres_add_method(&b, "bad_name", 0, "pass"), TB_EINVAL);
    cr_expect_eq(tb_authres_add_prop(&b, "tb", "key", "p256", 4), TB_EINVAL);
    cr_expect_eq(tb_authres_add_reason(&b, "r", 1), TB_EINVAL);
    cr_expect_eq(tb_authres_add_comment(&b, "c", 1), TB_EINVAL);
    cr_expect_str_eq(buf, "x; tls=pass");
    /* too large for the rest of the buffer: the same */
    cr_expect_eq(tb_authres_add_method(&b, "a-very-long-method-name", 0, "pass"), TB_ETOOLARGE);
    cr_expect_eq(tb_authres_add_prop(&b, "tb", "key", "p256", 4), TB_EINVAL);
    cr_expect_str_eq(buf, "x; tls=pass");
    cr_assert_eq(tb_authres_add_method(&b, "tb", 0, "pass"), 0);
    cr_assert_eq(tb_authres_add_prop(&b, "tb", "key", "p256", 4), 0);
    cr_assert_eq(tb_authres_end(&b), (int)strlen("x; tls=pass; tb=pass tb.key=p256"));
    cr_expect_str_eq(buf, "x; tls=pass; tb=pass tb.key=p256");
}

Test(authres, builder_keywords_and_versions, .timeout = TIMEOUT_S)
{
    static const char *const bad_kw[] = {"",    "-",   "a-",       "a_b", "a.b",
                                         "a b", "a=b", "\xc3\xa9", "a\r", "a;"};
    static const char *const good_kw[] = {"a", "A", "0", "-a", "a-b", "sender-id", "x509"};
    struct tb_authres_builder b;
    char buf[512];

    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    for (size_t i = 0; i < sizeof(bad_kw) / sizeof(bad_kw[0]); i++) {
        cr_expect_eq(tb_authres_add_method(&b, bad_kw[i], 0, "pass"), TB_EINVAL, "%s", bad_kw[i]);
        cr_expect_eq(tb_authres_add_method(&b, "m", 0, bad_kw[i]), TB_EINVAL, "%s", bad_kw[i]);
        cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
        cr_expect_eq(tb_authres_add_prop(&b, bad_kw[i], "q", "v", 1), TB_EINVAL, "%s", bad_kw[i]);
        cr_expect_eq(tb_authres_add_prop(&b, "p", bad_kw[i], "v", 1), TB_EINVAL, "%s", bad_kw[i]);
        cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    }
    for (size_t i = 0; i < sizeof(good_kw) / sizeof(good_kw[0]); i++) {
        cr_expect_eq(tb_authres_add_method(&b, good_kw[i], 0, good_kw[i]), 0, "%s", good_kw[i]);
        cr_expect_eq(tb_authres_add_prop(&b, good_kw[i], good_kw[i], "v", 1), 0, "%s", good_kw[i]);
    }
    cr_expect_eq(tb_authres_add_method(&b, "m", -1, "r"), TB_EINVAL);
    cr_expect_eq(tb_authres_add_method(&b, "m", TB_AUTHRES_MAX_VERSION + 1, "r"), TB_EINVAL);
    cr_expect_eq(tb_authres_add_method(&b, NULL, 0, "r"), TB_EINVAL);
    cr_expect_eq(tb_authres_add_method(&b, "m", 0, NULL), TB_EINVAL);
    cr_expect_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", -1), TB_EINVAL);
    cr_expect_str_eq(buf, "");
    cr_expect_eq(tb_authres_add_method(&b, "m", 0, "r"), TB_EINVAL, "begin failed");
    cr_expect_eq(tb_authres_end(&b), TB_EINVAL, "begin failed");
    cr_expect_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", TB_AUTHRES_MAX_VERSION + 1),
                 TB_EINVAL);
    cr_expect_eq(tb_authres_begin(&b, buf, sizeof(buf), NULL, 0), TB_EINVAL);
    cr_expect_eq(tb_authres_begin(&b, NULL, 10, "x", 0), TB_EINVAL);
    cr_expect_eq(tb_authres_begin(&b, buf, 0, "x", 0), TB_EINVAL);
    cr_expect_eq(tb_authres_begin(NULL, buf, sizeof(buf), "x", 0), TB_EINVAL);
    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", TB_AUTHRES_MAX_VERSION), 0);
    cr_assert_eq(tb_authres_add_method(&b, "m", TB_AUTHRES_MAX_VERSION, "r"), 0);
    cr_assert_eq(tb_authres_add_prop(&b, "p", "q", NULL, 0), 0, "an empty value");
    cr_expect_eq(tb_authres_add_prop(&b, "p", "q", NULL, 1), TB_EINVAL);
    cr_assert_gt(tb_authres_end(&b), 0);
    cr_expect_str_eq(buf, "x 999999999; m/999999999=r p.q=\"\"");
}

/* Every byte a header must not carry, at every position of a value, id, reason and comment. */
Test(authres, builder_refuses_control_bytes, .timeout = TIMEOUT_S)
{
    static const char base[] = "abc def";
    struct tb_authres_builder b;
    char buf[128], before[128], v[16], id[16];

    for (int c = 0; c < 0x100; c++) {
        int ctl = c < 0x20 || c == 0x7f || c >= 0x80; /* a lone byte >= 0x80 is invalid UTF-8 */

        for (size_t pos = 0; pos <= sizeof(base) - 1; pos++) {
            size_t n = sizeof(base);

            memcpy(v, base, pos);
            v[pos] = (char)c;
            memcpy(v + pos + 1, base + pos, sizeof(base) - 1 - pos);
            cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
            cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
            strcpy(before, buf);
            cr_expect_eq(tb_authres_add_prop(&b, "p", "q", v, n), ctl ? TB_EINVAL : 0,
                         "byte 0x%02x at %zu", c, pos);
            if (ctl)
                cr_expect_str_eq(buf, before, "nothing written");
            cr_expect_eq(tb_authres_add_comment(&b, v, n), ctl ? TB_EINVAL : 0);
            if (ctl) {
                cr_expect_eq(tb_authres_add_reason(&b, v, n), TB_EINVAL);
                cr_expect_str_eq(buf, before, "nothing written");
            }
            if (c != 0) { /* the id is a C string: NUL ends it */
                memcpy(id, v, n);
                id[n] = '\0';
                cr_expect_eq(tb_authres_begin(&b, buf, sizeof(buf), id, 0), ctl ? TB_EINVAL : 0,
                             "id byte 0x%02x at %zu", c, pos);
            }
        }
    }
}

Test(authres, builder_utf8, .timeout = TIMEOUT_S)
{
    static const char *const good[] = {"\xc2\x80",         "\xdf\xbf",        "\xe0\xa0\x80",
                                       "\xed\x9f\xbf",     "\xee\x80\x80",    "\xef\xbf\xbf",
                                       "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"};
    static const char *const bad_utf8[] = {"\x80",
                                           "\xc1\xbf",
                                           "\xc2",
                                           "\xc2\x41",
                                           "\xe0\x9f\xbf",
                                           "\xed\xa0\x80",
                                           "\xed\xbf\xbf",
                                           "\xe2\x82",
                                           "\xf0\x8f\xbf\xbf",
                                           "\xf4\x90\x80\x80",
                                           "\xf5\x80\x80\x80",
                                           "\xfe",
                                           "\xff",
                                           "\xf0\x90\x80",
                                           "\xc2\xc2",
                                           "\xe2\x82\xe2",
                                           "\xe2\x82\xc0",
                                           "\xf0\x9f\x94\xf0"};
    char out[64];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_expect_eq(prop_text(good[i], strlen(good[i]), out, sizeof(out)), 0, "good %zu", i);
    for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++)
        cr_expect_eq(prop_text(bad_utf8[i], strlen(bad_utf8[i]), out, sizeof(out)), TB_EINVAL,
                     "bad %zu", i);
}

/* Every buffer size: the exact line when it fits, else TB_ETOOLARGE; never a byte past cap. */
Test(authres, builder_every_buffer_size, .timeout = TIMEOUT_S)
{
    size_t full = sizeof(spec_line) - 1;

    for (size_t cap = 0; cap <= full + 2; cap++) {
        char *buf = malloc(cap + 8);
        int n;

        cr_assert_not_null(buf);
        memset(buf, '#', cap + 8);
        n = build_spec_example(buf, cap);
        if (cap == 0)
            cr_expect_eq(n, TB_EINVAL);
        else if (cap <= full)
            cr_expect_eq(n, TB_ETOOLARGE, "cap %zu: %d", cap, n);
        else
            cr_expect_eq(n, (int)full, "cap %zu: %d", cap, n);
        if (cap > 0)
            cr_expect_lt(strlen(buf), cap, "NUL-terminated within cap");
        if (n > 0)
            cr_expect_str_eq(buf, spec_line);
        else if (cap > 0)
            cr_expect_eq(strncmp(buf, spec_line, strlen(buf)), 0, "a prefix made of whole parts");
        for (size_t i = cap; i < cap + 8; i++)
            cr_expect_eq(buf[i], '#', "cap %zu: byte %zu untouched", cap, i);
        free(buf);
    }
}

Test(authres, builder_rolls_back_a_part_that_does_not_fit, .timeout = TIMEOUT_S)
{
    struct tb_authres_builder b;
    char buf[24];

    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
    cr_expect_eq(tb_authres_add_prop(&b, "p", "q", "a value too long", 16), TB_ETOOLARGE);
    cr_expect_str_eq(buf, "x; m=r");
    cr_expect_eq(tb_authres_add_comment(&b, "a comment too long", 18), TB_ETOOLARGE);
    cr_expect_str_eq(buf, "x; m=r");
    cr_assert_eq(tb_authres_add_prop(&b, "p", "q", "short", 5), 0);
    cr_assert_eq(tb_authres_end(&b), (int)strlen("x; m=r p.q=short"));
    cr_expect_str_eq(buf, "x; m=r p.q=short");
    /* "; none" that does not fit */
    cr_assert_eq(tb_authres_begin(&b, buf, 6, "abcd", 0), 0);
    cr_expect_eq(tb_authres_end(&b), TB_ETOOLARGE);
    cr_expect_str_eq(buf, "abcd");
    cr_assert_eq(tb_authres_begin(&b, buf, 11, "abcd", 0), 0);
    cr_expect_eq(tb_authres_end(&b), 10);
    cr_expect_str_eq(buf, "abcd; none");
}

Test(authres, builder_limits, .timeout = TIMEOUT_S)
{
    static char buf[TB_AUTHRES_MAX_LEN + 100];
    struct tb_authres_builder b;
    char *big = malloc(TB_AUTHRES_MAX_LEN);

    cr_assert_not_null(big);
    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    for (int i = 0; i < TB_AUTHRES_MAX_METHODS; i++)
        cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
    cr_expect_eq(tb_authres_add_method(&b, "m", 0, "r"), TB_ETOOLARGE);
    for (int i = 0; i < TB_AUTHRES_MAX_PROPS; i++)
        cr_assert_eq(tb_authres_add_prop(&b, "p", "q", "v", 1), TB_EINVAL, "after a failure");
    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
    for (int i = 0; i < TB_AUTHRES_MAX_PROPS; i++)
        cr_assert_eq(tb_authres_add_prop(&b, "p", "q", "v", 1), 0);
    cr_expect_eq(tb_authres_add_prop(&b, "p", "q", "v", 1), TB_ETOOLARGE);
    for (int i = 0; i < TB_AUTHRES_MAX_COMMENTS; i++)
        cr_assert_eq(tb_authres_add_comment(&b, "c", 1), 0);
    cr_expect_eq(tb_authres_add_comment(&b, "c", 1), TB_ETOOLARGE);
    /* never longer than the parser takes, however large the buffer */
    cr_assert_eq(tb_authres_begin(&b, buf, sizeof(buf), "x", 0), 0);
    cr_assert_eq(tb_authres_add_method(&b, "m", 0, "r"), 0);
    memset(big, 'v', TB_AUTHRES_MAX_LEN);
    /* "x; m=r p.q=" is 11 bytes */
    cr_expect_eq(tb_authres_add_prop(&b, "p", "q", big, TB_AUTHRES_MAX_LEN - 10), TB_ETOOLARGE);
    cr_expect_eq(tb_authres_add_prop(&b, "p", "q", big, TB_AUTHRES_MAX_LEN - 11), 0);
    cr_assert_eq(tb_authres_end(&b), TB_AUTHRES_MAX_LEN);
    {
        struct tb_authres *ar = NULL;

        cr_expect_eq(parse_n(buf, TB_AUTHRES_MAX_LEN, &ar), 0, "the parser takes it");
        tb_authres_free(ar);
    }
    free(big);
}

Test(authres, build_by_hand, .timeout = TIMEOUT_S)
{
    static const struct tb_authres_prop props[] = {{"smtp", "mailfrom", "example.net"},
                                                   {"smtp", "helo", "mail example"},
                                                   {"smtp", "rcpt", NULL}};
    static const char *const comments[] = {"one", "t(w)o"};
    struct tb_authres ar;
    char buf[256];

    memset(&ar, 0, sizeof(ar)); /* versions 0: absent */
    ar.authserv_id = "example.com";
    ar.n_methods = 2;
    ar.methods[0].name = "spf";
    ar.methods[0].result = "pass";
    ar.methods[0].props = props;
    ar.methods[0].n_props = 2;
    ar.methods[1].name = "dkim";
    ar.methods[1].version = 1;
    ar.methods[1].result = "none";
    ar.methods[1].comments = comments;
    ar.methods[1].n_comments = 2;
    ar.methods[1].reason = "no signature";
    static const char want[] = "example.com; spf=pass smtp.mailfrom=example.net smtp.helo=\"mail "
                               "example\"; dkim/1=none (one) (t\\(w\\)o) reason=\"no signature\"";
    cr_assert_eq(tb_authres_build(&ar, buf, sizeof(buf)), (int)sizeof(want) - 1);
    cr_expect_str_eq(buf, want);
    expect_round_trip(&ar, "by hand");
    /* holes: NULL where a string must be */
    ar.methods[0].n_props = 3;
    cr_expect_eq(tb_authres_build(&ar, buf, sizeof(buf)), TB_EINVAL, "a NULL value");
    ar.methods[0].n_props = 2;
    {
        static const char *const bad_comments[] = {"fine", "line\r\nbreak"};

        ar.methods[1].comments = bad_comments;
        cr_expect_eq(tb_authres_build(&ar, buf, sizeof(buf)), TB_EINVAL, "a CRLF in a comment");
        cr_expect_str_eq(buf, "");
        ar.comments = bad_comments;
        ar.n_comments = 2;
        ar.methods[1].comments = comments;
        cr_expect_eq(tb_authres_build(&ar, buf, sizeof(buf)), TB_EINVAL, "in the id's comment");
        ar.n_comments = 0;
        ar.methods[1].reason = "tab\there";
        cr_expect_eq(tb_authres_build(&ar, buf, sizeof(buf)), TB_EINVAL, "a tab in a reason");
        ar.methods[1].reason = "no signature";
        cr_assert_eq(tb_authres_build(&ar, buf, sizeof(buf)), (int)sizeof(want) - 1);
    }
    ar.methods[1].comments = NULL;
    cr_expect_eq(tb_authres_build(&ar, buf, sizeof(buf)), TB_EINVAL);
    cr_expect_str_eq(buf, "", "nothing on failure");
    ar.methods[1].n_comments = 0;
    ar.methods[1].result = NULL;
    cr_expect_eq(tb_authres_build(&ar, buf, sizeof(buf)), TB_EINVAL);
    ar.methods[1].result = "none";
    ar.n_methods = TB_AUTHRES_MAX_METHODS + 1;
    cr_expect_eq(tb_authres_build(&ar, buf, sizeof(buf)), TB_EINVAL);
    cr_expect_eq(tb_authres_build(NULL, buf, sizeof(buf)), TB_EINVAL);
    ar.n_methods = 0;
    cr_assert_eq(tb_authres_build(&ar, buf, sizeof(buf)), 17);
    cr_expect_str_eq(buf, "example.com; none");
}

Test(authres, strerror_of_its_codes, .timeout = TIMEOUT_S)
{
    cr_expect_str_eq(tb_strerror(TB_EPARSE), "parse");
    cr_expect_str_eq(tb_strerror(TB_ETOOLARGE), "too_large");
    cr_expect_str_eq(tb_strerror(TB_EINVAL), "invalid");
}
