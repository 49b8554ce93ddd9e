/*
 * src/client/url: parsing https URLs, the authority and origin strings, and resolving Location
 * references (RFC 3986 section 5.4's examples, adapted to https).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "errors.h"
#include "url.h"

static struct tbc_url parse_ok(const char *s)
{
    struct tbc_url u;
    int rc = tbc_url_parse(s, &u);

    cr_assert_eq(rc, 0, "%s: %d", s, rc);
    return u;
}

Test(client_url, parses_host_port_target)
{
    struct tbc_url u = parse_ok("https://Example.COM:8443/a/b?x=1#frag");

    cr_assert_str_eq(u.host, "example.com");
    cr_assert_eq(u.port, 8443);
    cr_assert_str_eq(u.target, "/a/b?x=1");
    cr_assert_eq(u.is_ip, 0);
}

Test(client_url, defaults)
{
    struct tbc_url u = parse_ok("HTTPS://localhost");

    cr_assert_eq(u.port, 443);
    cr_assert_str_eq(u.target, "/");
    u = parse_ok("https://localhost:?q");
    cr_assert_eq(u.port, 443);
    cr_assert_str_eq(u.target, "/?q");
    u = parse_ok("https://localhost#x");
    cr_assert_str_eq(u.target, "/");
}

Test(client_url, ip_literals)
{
    struct tbc_url u = parse_ok("https://127.0.0.1:8443/echo");
    char buf[64];

    cr_assert(u.is_ip && !u.is_ipv6);
    u = parse_ok("https://[::1]:8443/echo");
    cr_assert(u.is_ip && u.is_ipv6);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(tbc_url_authority(&u, buf, sizeof(buf)), 10);
    cr_assert_str_eq(buf, "[::1]:8443");
    cr_assert_gt(tbc_url_origin(&u, buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "[::1]:8443");
    u = parse_ok("https://[2001:DB8::1]/");
    cr_assert_str_eq(u.host, "2001:db8::1");
}

Test(client_url, authority_and_origin)
{
    struct tbc_url u = parse_ok("https://localhost/x");
    char buf[64];

    tbc_url_authority(&u, buf, sizeof(buf));
    cr_assert_str_eq(buf, "localhost");
    tbc_url_origin(&u, buf, sizeof(buf));
    cr_assert_str_eq(buf, "localhost:443");
    tbc_url_format(&u, buf, sizeof(buf));
    cr_assert_str_eq(buf, "https://localhost/x");
    cr_assert_eq(tbc_url_origin(&u, buf, 5), TBC_EURL);
}

Test(client_url, rejects)
{
    static const char *const bad[] = {
        "",
        "localhost/echo",
        "https://",
        "https:///path",
        "https://user@host/",
        "https://host:0/",
        "https://host:65536/",
        "https://host:12a/",
        "https://ho st/",
        "https://host/a b",
        "https://host/\x01",
        "https://host/\xc3\xa9",
        "https://[::1/",
        "https://[nothex]/",
        "https://host!/",
    };
    struct tbc_url u;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(tbc_url_parse(bad[i], &u), TBC_EURL, "\"%s\" accepted", bad[i]);
    cr_expect_eq(tbc_url_parse("http://host/", &u), TBC_EUNSUPPORTED);
    cr_expect_eq(tbc_url_parse("ftp://host/", &u), TBC_EUNSUPPORTED);
}

Test(client_url, target_length_bound)
{
    static char s[TBC_URL_MAX_TARGET + 64];
    struct tbc_url u;

    memcpy(s, "https://h/", 10);
    memset(s + 10, 'a', TBC_URL_MAX_TARGET - 1);
    s[10 + TBC_URL_MAX_TARGET - 1] = '\0';
    cr_assert_eq(tbc_url_parse(s, &u), 0);
    cr_assert_eq(strlen(u.target), TBC_URL_MAX_TARGET);
    s[10 + TBC_URL_MAX_TARGET - 1] = 'b';
    s[10 + TBC_URL_MAX_TARGET] = '\0';
    cr_assert_eq(tbc_url_parse(s, &u), TBC_EURL);
}

/* RFC 3986 5.4.1 and 5.4.2, base "http://a/b/c/d;p?q" made https */
Test(client_url, resolve_rfc3986_examples)
{
    static const char *const cases[][2] = {
        {"g", "https://a/b/c/g"},
        {"./g", "https://a/b/c/g"},
        {"g/", "https://a/b/c/g/"},
        {"/g", "https://a/g"},
        {"//g", "https://g/"},
        {"?y", "https://a/b/c/d;p?y"},
        {"g?y", "https://a/b/c/g?y"},
        {"#s", "https://a/b/c/d;p?q"},
        {"g#s", "https://a/b/c/g"},
        {";x", "https://a/b/c/;x"},
        {"", "https://a/b/c/d;p?q"},
        {".", "https://a/b/c/"},
        {"./", "https://a/b/c/"},
        {"..", "https://a/b/"},
        {"../", "https://a/b/"},
        {"../g", "https://a/b/g"},
        {"../..", "https://a/"},
        {"../../g", "https://a/g"},
        {"../../../g", "https://a/g"},
        {"/./g", "https://a/g"},
        {"/../g", "https://a/g"},
        {"g.", "https://a/b/c/g."},
        {"..g", "https://a/b/c/..g"},
        {"./../g", "https://a/b/g"},
        {"./g/.", "https://a/b/c/g/"},
        {"g/./h", "https://a/b/c/g/h"},
        {"g/../h", "https://a/b/c/h"},
        {"g?y/./x", "https://a/b/c/g?y/./x"},
        {"https://other:8443/x", "https://other:8443/x"},
        {"g h", "https://a/b/c/g%20h"},
    };
    struct tbc_url base = parse_ok("https://a/b/c/d;p?q"), out;
    char text[256];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = tbc_url_resolve(&base, cases[i][0], &out);

        cr_expect_eq(rc, 0, "\"%s\": %d", cases[i][0], rc);
        if (rc != 0)
            continue;
        tbc_url_format(&out, text, sizeof(text));
        cr_expect_str_eq(text, cases[i][1], "\"%s\" -> %s", cases[i][0], text);
    }
}

Test(client_url, resolve_errors)
{
    struct tbc_url base = parse_ok("https://a/b"), out;

    cr_expect_eq(tbc_url_resolve(&base, "http://a/", &out), TBC_EUNSUPPORTED);
    cr_expect_eq(tbc_url_resolve(&base, "//u@h/", &out), TBC_EURL);
}

Test(client_url, same_origin)
{
    struct tbc_url a = parse_ok("https://h:1/x"), b = parse_ok("https://H:1/y"),
                   c = parse_ok("https://h:2/x");

    cr_assert(tbc_url_same_origin(&a, &b));
    cr_assert(!tbc_url_same_origin(&a, &c));
}
