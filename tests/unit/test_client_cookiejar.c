/*
 * src/client/cookiejar: Set-Cookie parsing and storage (RFC 6265), the Cookie header, dates,
 * and the Netscape cookie file (load, save, mode 0600).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cookiejar.h"
#include "errors.h"
#include "proc.h"

#define NOW ((time_t)1800000000) /* 2027-01-15 */

static struct tbc_jar jar;
static char dir[512];

static void setup(void)
{
    tbc_jar_init(&jar);
    cr_assert_eq(tbt_tempdir("tbclient-jar", dir, sizeof(dir)), 0);
}

static void teardown(void)
{
    tbc_jar_dispose(&jar);
    tbt_rmdir_all(dir);
}

TestSuite(client_cookiejar, .init = setup, .fini = teardown);

static const char *header(const char *host, const char *target)
{
    static char buf[TBC_COOKIE_MAX_HEADER];

    tbc_jar_header(&jar, host, target, NOW, buf, sizeof(buf));
    return buf;
}

Test(client_cookiejar, host_only_and_path_default)
{
    cr_assert_eq(tbc_jar_set(&jar, "a.example.com", "/app/login?x=1", "sid=1; HttpOnly", NOW), 0);
    cr_assert_eq(jar.n, 1);
    cr_assert(jar.c[0].host_only);
    cr_assert(jar.c[0].http_only);
    cr_assert_str_eq(jar.c[0].path, "/app");
    cr_assert_eq(jar.c[0].expires, 0);
    cr_assert_str_eq(header("a.example.com", "/app"), "sid=1");
    cr_assert_str_eq(header("a.example.com", "/app/x"), "sid=1");
    cr_assert_str_eq(header("a.example.com", "/apple"), "");
    cr_assert_str_eq(header("b.a.example.com", "/app"), "");
    cr_assert_str_eq(header("A.EXAMPLE.COM", "/app"), "sid=1");
}

Test(client_cookiejar, domain_attribute)
{
    cr_assert_eq(tbc_jar_set(&jar, "a.example.com", "/", "d=1; Domain=.Example.com; Path=/", NOW),
                 0);
    cr_assert_eq(jar.c[0].host_only, 0);
    cr_assert_str_eq(jar.c[0].domain, "example.com");
    cr_assert_str_eq(header("example.com", "/"), "d=1");
    cr_assert_str_eq(header("x.y.example.com", "/z"), "d=1");
    cr_assert_str_eq(header("badexample.com", "/"), "");
    /* a domain the host is not in, and a dotless one, are refused */
    cr_assert_eq(tbc_jar_set(&jar, "a.example.com", "/", "e=1; Domain=other.com", NOW), 1);
    cr_assert_eq(tbc_jar_set(&jar, "a.example.com", "/", "e=1; Domain=com", NOW), 1);
    cr_assert_eq(tbc_jar_set(&jar, "127.0.0.1", "/", "e=1; Domain=0.0.1", NOW), 1);
    /* Domain equal to the host stays host-only */
    cr_assert_eq(tbc_jar_set(&jar, "localhost", "/", "f=1; Domain=localhost", NOW), 0);
    cr_assert_eq(jar.n, 2);
    cr_assert(jar.c[1].host_only);
}

Test(client_cookiejar, replace_and_delete)
{
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "a=1; Path=/", NOW), 0);
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "b=2; Path=/", NOW), 0);
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "a=3; Path=/", NOW), 0);
    cr_assert_eq(jar.n, 2);
    cr_assert_str_eq(header("h", "/"), "a=3; b=2", "older first: %s", header("h", "/"));
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "a=; Max-Age=0; Path=/", NOW), 0);
    cr_assert_str_eq(header("h", "/"), "b=2");
    cr_assert_eq(
        tbc_jar_set(&jar, "h", "/", "b=x; Path=/; Expires=Thu, 01 Jan 1970 00:00:01 GMT", NOW), 0);
    cr_assert_eq(jar.n, 0);
}

Test(client_cookiejar, max_age_wins_over_expires)
{
    char buf[64];

    cr_assert_eq(
        tbc_jar_set(&jar, "h", "/", "a=1; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=60", NOW),
        0);
    cr_assert_eq(jar.n, 1);
    cr_assert_eq(jar.c[0].expires, NOW + 60);
    cr_assert_str_eq(header("h", "/"), "a=1");
    cr_assert_eq(tbc_jar_header(&jar, "h", "/", NOW + 61, buf, sizeof(buf)), 0);
}

Test(client_cookiejar, longer_path_first)
{
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "short=1; Path=/", NOW), 0);
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "long=2; Path=/a/b", NOW), 0);
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "mid=3; Path=/a/", NOW), 0);
    cr_assert_str_eq(header("h", "/a/b/c?q"), "long=2; mid=3; short=1");
    cr_assert_str_eq(header("h", "/a"), "short=1");
}

Test(client_cookiejar, bad_set_cookie_ignored)
{
    static const char *const bad[] = {"novalue", "=v", " = v", "a\x01=1", "a b=1", "a=\x7f"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(tbc_jar_set(&jar, "h", "/", bad[i], NOW), 1, "%s", bad[i]);
    cr_assert_eq(jar.n, 0);
}

Test(client_cookiejar, tbproxy_bound_value_kept_as_is)
{
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "sid=abc~tb1~Zm9vYmFyYmF6cXV4; Secure", NOW), 0);
    cr_assert_str_eq(header("h", "/"), "sid=abc~tb1~Zm9vYmFyYmF6cXV4");
}

Test(client_cookiejar, limits)
{
    char big[TBC_COOKIE_MAX + 16];
    char name[32];
    int i;

    memset(big, 'v', sizeof(big) - 1);
    big[0] = 'n';
    big[1] = '=';
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", big, NOW), 1);
    for (i = 0; i < TBC_JAR_MAX_COOKIES + 5; i++) {
        snprintf(name, sizeof(name), "c%d=1", i);
        cr_assert_geq(tbc_jar_set(&jar, "h", "/", name, NOW), 0);
    }
    cr_assert_eq(jar.n, TBC_JAR_MAX_COOKIES);
}

Test(client_cookiejar, header_cap)
{
    char buf[16];

    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "aaaa=1111", NOW), 0);
    cr_assert_eq(tbc_jar_set(&jar, "h", "/", "b=2", NOW), 0);
    cr_assert_eq(tbc_jar_header(&jar, "h", "/", NOW, buf, sizeof(buf)), 14);
    cr_assert_str_eq(buf, "aaaa=1111; b=2");
    cr_assert_eq(tbc_jar_header(&jar, "h", "/", NOW, buf, 12), 9);
    cr_assert_str_eq(buf, "aaaa=1111");
}

Test(client_cookiejar, dates)
{
    static const struct {
        const char *s;
        long long t;
    } ok[] = {
        {"Wed, 21 Oct 2015 07:28:00 GMT", 1445412480},
        {"Wednesday, 21-Oct-15 07:28:00 GMT", 1445412480},
        {"Wed Oct 21 07:28:00 2015", 1445412480},
        {"21 oct 2015 7:28:0", 1445412480},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
        {"Sat, 01 Jan 2000 00:00:00 GMT", 946684800},
        {"01-Jan-69 00:00:00", 3124224000},
    };
    static const char *const bad[] = {"",
                                      "tomorrow",
                                      "Wed, 32 Oct 2015 07:28:00 GMT",
                                      "Wed, 21 Oct 2015 24:00:00 GMT",
                                      "21 Oct 1500 00:00:00",
                                      "21 Foo 2015 00:00:00"};
    time_t t;
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_expect_eq(tbc_cookie_date(ok[i].s, &t), 0, "%s", ok[i].s);
        cr_expect_eq((long long)t, ok[i].t, "%s: %lld", ok[i].s, (long long)t);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(tbc_cookie_date(bad[i], &t), -1, "%s", bad[i]);
}

Test(client_cookiejar, file_round_trip)
{
    char path[600];
    struct stat st;
    struct tbc_jar back;

    snprintf(path, sizeof(path), "%s/jar.txt", dir);
    cr_assert_eq(tbc_jar_set(&jar, "a.example.com", "/", "s=1; Secure; HttpOnly", NOW), 0);
    cr_assert_eq(tbc_jar_set(&jar, "a.example.com", "/",
                             "d=2; Domain=example.com; Path=/p; "
                             "Max-Age=100",
                             NOW),
                 0);
    cr_assert_eq(tbc_jar_save(&jar, path, NOW), 0);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    tbc_jar_init(&back);
    cr_assert_eq(tbc_jar_load(&back, path, NOW), 2);
    cr_assert_str_eq(back.c[0].name, "s");
    cr_assert(back.c[0].secure && back.c[0].http_only && back.c[0].host_only);
    cr_assert_str_eq(back.c[1].domain, "example.com");
    cr_assert_eq(back.c[1].host_only, 0);
    cr_assert_str_eq(back.c[1].path, "/p");
    cr_assert_eq(back.c[1].expires, NOW + 100);
    /* expired by the time it is loaded again */
    tbc_jar_dispose(&back);
    cr_assert_eq(tbc_jar_load(&back, path, NOW + 200), 1);
    tbc_jar_dispose(&back);
}

Test(client_cookiejar, file_lines)
{
    static const char text[] = "# Netscape HTTP Cookie File\n"
                               "\n"
                               "h\tFALSE\t/\tFALSE\t0\tok\tv\r\n"
                               "h\tFALSE\t/\tFALSE\t0\tempty\t\n"
                               "h\tFALSE\t/\tFALSE\t0\ttoo\tmany\tfields\n"
                               "h\tFALSE\tnoslash\tFALSE\t0\tbad\tv\n"
                               "h\tFALSE\t/\tFALSE\tsoon\tbad\tv\n"
                               "h\tFALSE\t/\tFALSE\t0\tshort\n"
                               "#HttpOnly_.h\tTRUE\t/\tFALSE\t0\thttp\tv\n";
    char path[600];

    cr_assert_eq(tbt_write_file(dir, "in.txt", text, sizeof(text) - 1), 0);
    snprintf(path, sizeof(path), "%s/in.txt", dir);
    cr_assert_eq(tbc_jar_load(&jar, path, NOW), 3);
    cr_assert_str_eq(jar.c[1].value, "");
    cr_assert(jar.c[2].http_only && !jar.c[2].host_only);
    snprintf(path, sizeof(path), "%s/missing.txt", dir);
    cr_assert_eq(tbc_jar_load(&jar, path, NOW), TBC_ECOOKIE);
}

Test(client_cookiejar, long_line_skipped)
{
    static const char good[] = "\nh\tFALSE\t/\tFALSE\t0\tok\tv\n";
    size_t n = TBC_COOKIE_MAX_LINE * 2;
    char *text = malloc(n + sizeof(good)), path[600];

    cr_assert_not_null(text);
    memset(text, 'x', n);
    memcpy(text + n, good, sizeof(good) - 1);
    cr_assert_eq(tbt_write_file(dir, "long.txt", text, n + sizeof(good) - 1), 0);
    free(text);
    snprintf(path, sizeof(path), "%s/long.txt", dir);
    cr_assert_eq(tbc_jar_load(&jar, path, NOW), 1);
    cr_assert_str_eq(jar.c[0].name, "ok");
}
