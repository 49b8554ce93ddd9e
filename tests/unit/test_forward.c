/*
 * forward: exact bytes of the rebuilt heads. Requests: the six Token Binding names stripped in
 * every case mix whether or not IDs are added, IDs added only when given (others comma-joined),
 * hop-by-hop and Connection-named fields dropped, framing rewritten, X-Forwarded-* / Forwarded
 * from untrusted vs trusted peers, RFC 7239 quoting (IPv6, host with a port), cookie crumbs,
 * CR/LF/NUL and malformed arguments refused with the buffer untouched, every cap below the head's
 * size refused; Sec-Token-Binding-Context written only when given (after the IDs), every incoming
 * spelling of it dropped either way, a bad value refused. Responses: hop-by-hop and framing
 * dropped, Include-Refer*-Token-Binding-ID passed, framing per status (1xx, 204, 304, HEAD).
 * Chunk heads, trailers, error responses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "forward.h"
#include "http.h"

/* clang-format off */
#define S(lit) {(lit), sizeof(lit) - 1}
#define H(n, v) {S(n), S(v)}
/* clang-format on */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const tb_names[] = {
    "Sec-Provided-Token-Binding-ID",
    "Sec-Referred-Token-Binding-ID",
    "Sec-Other-Token-Binding-ID",
    "Sec-Token-Binding-Context",
    "Token-Binding",
    "Sec-Token-Binding",
};

/* Lines every untrusted request from 192.0.2.1 to example.com ends with (before framing). */
#define FWD_V4                                                                                     \
    "X-Forwarded-For: 192.0.2.1\r\n"                                                               \
    "X-Forwarded-Proto: https\r\n"                                                                 \
    "Forwarded: for=192.0.2.1;proto=https;host=example.com\r\n"

static struct tbp_http_head request(const char *method, const char *target,
                                    struct tbp_header *headers, size_t n)
{
    struct tbp_http_head h;

    memset(&h, 0, sizeof(h));
    h.is_request = 1;
    h.method.p = method;
    h.method.len = strlen(method);
    h.target.p = target;
    h.target.len = strlen(target);
    h.version_major = 1;
    h.version_minor = 1;
    h.keep_alive = 1;
    h.headers = headers;
    h.n_headers = n;
    return h;
}

static struct tbp_http_head response(int status, const char *reason, struct tbp_header *headers,
                                     size_t n)
{
    struct tbp_http_head h;

    memset(&h, 0, sizeof(h));
    h.status = status;
    h.reason.p = reason;
    h.reason.len = strlen(reason);
    h.version_major = 1;
    h.version_minor = 1;
    h.headers = headers;
    h.n_headers = n;
    return h;
}

static struct tbp_fwd_info info(void)
{
    struct tbp_fwd_info fi;

    memset(&fi, 0, sizeof(fi));
    fi.client_ip = "192.0.2.1";
    fi.client_port = 50000;
    fi.scheme = "https";
    fi.host.p = "example.com";
    fi.host.len = strlen(fi.host.p);
    fi.framing = TBP_BODY_NONE;
    fi.keep_alive = true;
    return fi;
}

static void expect_request(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                           const char *want)
{
    struct tbp_buf out;
    int rc;

    tbp_buf_init(&out, 64 * 1024);
    rc = tbp_forward_request_head(in, fi, &out);
    cr_assert_eq(rc, 0, "tbp_forward_request_head = %d", rc);
    cr_expect_eq(out.len, strlen(want));
    cr_expect_str_eq(out.p, want);
    tbp_buf_dispose(&out);
}

/* The call fails with `err` and leaves the bytes already in the buffer alone. */
static void expect_request_error(const struct tbp_http_head *in, const struct tbp_fwd_info *fi,
                                 int err)
{
    struct tbp_buf out;
    int rc;

    tbp_buf_init(&out, 64 * 1024);
    cr_assert_eq(tbp_buf_append_str(&out, "previous"), 0);
    rc = tbp_forward_request_head(in, fi, &out);
    cr_expect_eq(rc, err, "tbp_forward_request_head = %d, want %d", rc, err);
    cr_expect_eq(out.len, 8);
    cr_expect_str_eq(out.p, "previous");
    tbp_buf_dispose(&out);
}

static void expect_response(const struct tbp_http_head *in, int keep_alive,
                            enum tbp_body_framing framing, uint64_t length, int head,
                            const char *want)
{
    struct tbp_buf out;
    int rc;

    tbp_buf_init(&out, 64 * 1024);
    rc = tbp_forward_response_head(in, keep_alive, framing, length, head, &out);
    cr_assert_eq(rc, 0, "tbp_forward_response_head = %d", rc);
    cr_expect_str_eq(out.p, want);
    tbp_buf_dispose(&out);
}

static void expect_response_error(const struct tbp_http_head *in, int keep_alive,
                                  enum tbp_body_framing framing, int head, int err)
{
    struct tbp_buf out;
    int rc;

    tbp_buf_init(&out, 64 * 1024);
    cr_assert_eq(tbp_buf_append_str(&out, "previous"), 0);
    rc = tbp_forward_response_head(in, keep_alive, framing, 0, head, &out);
    cr_expect_eq(rc, err, "tbp_forward_response_head = %d, want %d", rc, err);
    cr_expect_str_eq(out.p, "previous");
    tbp_buf_dispose(&out);
}

/* Writes `name` in case mix `variant` into `out` (cap 64): 0 as spelled in the spec, 1 lower
 * (HTTP/2 style), 2 upper, 3 alternating, 4 another mix. */
static void case_variant(const char *name, int variant, char *out)
{
    size_t i, n = strlen(name);

    for (i = 0; i < n && i < 63; i++) {
        char c = name[i];
        char lo = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        char up = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        int upper = variant == 2 || (variant == 3 && i % 2) || (variant == 4 && i % 3);

        out[i] = variant == 0 ? c : upper ? up : lo;
    }
    out[i] = '\0';
}

/* ---- requests: basics ----------------------------------------------------------------------- */

Test(forward_request, minimal_get)
{
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi = info();

    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n" FWD_V4 "Connection: keep-alive\r\n"
                   "\r\n");
}

Test(forward_request, client_fields_kept_in_order_host_replaced)
{
    struct tbp_header hs[] = {
        H("User-Agent", "curl/7.88.1"),
        H("host", "example.com"),
        H("Accept", "*/*"),
        H("X-Custom", "a, b"),
        H("accept-language", "en;q=0.9"),
        H("Expect", "100-continue"),
    };
    struct tbp_http_head in = request("POST", "/submit?x=1&y=%20", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    fi.framing = TBP_BODY_LENGTH;
    fi.content_length = 12345;
    fi.keep_alive = false;
    expect_request(&in, &fi,
                   "POST /submit?x=1&y=%20 HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "User-Agent: curl/7.88.1\r\n"
                   "Accept: */*\r\n"
                   "X-Custom: a, b\r\n"
                   "accept-language: en;q=0.9\r\n"
                   "Expect: 100-continue\r\n" FWD_V4 "Content-Length: 12345\r\n"
                   "Connection: close\r\n"
                   "\r\n");
}

Test(forward_request, empty_value_kept)
{
    struct tbp_header hs[] = {H("X-Empty", "")};
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty: \r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, appends_after_existing_content)
{
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi = info();
    struct tbp_buf out;

    tbp_buf_init(&out, 4096);
    cr_assert_eq(tbp_buf_append_str(&out, "BODY-OF-PREVIOUS"), 0);
    cr_assert_eq(tbp_forward_request_head(&in, &fi, &out), 0);
    cr_expect_str_eq(out.p, "BODY-OF-PREVIOUS"
                            "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                            "Connection: keep-alive\r\n\r\n");
    tbp_buf_dispose(&out);
}

/* ---- requests: Token Binding names ------------------------------------------------------------
 */

Test(forward_request, spoofed_tb_names_stripped_in_every_case_mix)
{
    static const char *const provided = "AgBBBLmQ";
    static const char *const others[] = {"09.AAEC", "0a.zz-_"};
    const char *base = "GET /p HTTP/1.1\r\n"
                       "Host: example.com\r\n"
                       "Accept: */*\r\n" FWD_V4;
    char names[6 * 5][64];
    struct tbp_header hs[1 + 6 * 5 + 1];
    size_t n = 0, i;
    int v, with_ids;

    hs[n++] = (struct tbp_header)H("Accept", "*/*");
    for (i = 0; i < COUNT(tb_names); i++)
        for (v = 0; v < 5; v++) {
            char *name = names[i * 5 + (size_t)v];
            case_variant(tb_names[i], v, name);
            hs[n].name.p = name;
            hs[n].name.len = strlen(name);
            hs[n].value.p = "SPOOFED";
            hs[n].value.len = 7;
            n++;
        }
    hs[n++] = (struct tbp_header)H("Connection", "keep-alive");

    /* every name alone, then all of them at once; on a non-TB and on a TB request */
    for (with_ids = 0; with_ids < 2; with_ids++) {
        char want[1024];
        struct tbp_fwd_info fi = info();

        if (with_ids) {
            fi.provided_id = provided;
            fi.referred_id = "Zm9v";
            fi.other_ids = others;
            fi.n_other_ids = COUNT(others);
        }
        snprintf(want, sizeof(want), "%s%s%s", base,
                 with_ids ? "Sec-Provided-Token-Binding-ID: AgBBBLmQ\r\n"
                            "Sec-Referred-Token-Binding-ID: Zm9v\r\n"
                            "Sec-Other-Token-Binding-ID: 09.AAEC, 0a.zz-_\r\n"
                          : "",
                 "Connection: keep-alive\r\n\r\n");
        for (i = 1; i < n - 1; i++) {
            struct tbp_header one[] = {hs[0], hs[i]};
            struct tbp_http_head in = request("GET", "/p", one, 2);
            expect_request(&in, &fi, want);
        }
        {
            struct tbp_http_head in = request("GET", "/p", hs, n);
            expect_request(&in, &fi, want);
        }
    }
}

Test(forward_request, tb_ids_added_only_when_given)
{
    static const char *const one_other[] = {"09.AQID"};
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi = info();

    fi.provided_id = "cHJvdmlkZWQ";
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Sec-Provided-Token-Binding-ID: cHJvdmlkZWQ\r\n"
                   "Connection: keep-alive\r\n\r\n");

    fi.referred_id = "cmVmZXJyZWQ";
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Sec-Provided-Token-Binding-ID: cHJvdmlkZWQ\r\n"
                   "Sec-Referred-Token-Binding-ID: cmVmZXJyZWQ\r\n"
                   "Connection: keep-alive\r\n\r\n");

    fi.referred_id = NULL;
    fi.other_ids = one_other;
    fi.n_other_ids = 1;
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Sec-Provided-Token-Binding-ID: cHJvdmlkZWQ\r\n"
                   "Sec-Other-Token-Binding-ID: 09.AQID\r\n"
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, other_ids_comma_joined)
{
    static const char *const others[] = {"02.QUJD", "09.REVG", "FF.R0hJ"};
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi = info();

    fi.provided_id = "UA";
    fi.other_ids = others;
    fi.n_other_ids = 3;
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Sec-Provided-Token-Binding-ID: UA\r\n"
                   "Sec-Other-Token-Binding-ID: 02.QUJD, 09.REVG, FF.R0hJ\r\n"
                   "Connection: keep-alive\r\n\r\n");
}

/* base64url of 1, 0, 2 (RFC 8471 1.0, ecdsap256) and an EKM of the bytes 0..31 */
#define CONTEXT "AQACAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

Test(forward_request, token_binding_context_added_only_when_given)
{
    static const char *const one_other[] = {"09.AQID"};
    struct tbp_header hs[] = {H("Accept", "*/*"), H("Sec-Token-Binding-Context", "SPOOFED"),
                              H("sec-token-binding-context", "AQAC"),
                              H("SEC_TOKEN_BINDING_CONTEXT", "AQAC"),
                              H("Sec_Token-Binding_Context", "AQAC")};
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    /* none given: every incoming spelling dropped, none written */
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
    /* given: ours only, once, after the IDs */
    fi.provided_id = "cHJvdmlkZWQ";
    fi.referred_id = "cmVmZXJyZWQ";
    fi.other_ids = one_other;
    fi.n_other_ids = 1;
    fi.tb_context = CONTEXT;
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n" FWD_V4
                   "Sec-Provided-Token-Binding-ID: cHJvdmlkZWQ\r\n"
                   "Sec-Referred-Token-Binding-ID: cmVmZXJyZWQ\r\n"
                   "Sec-Other-Token-Binding-ID: 09.AQID\r\n"
                   "Sec-Token-Binding-Context: " CONTEXT "\r\n"
                   "Connection: keep-alive\r\n\r\n");
    /* the provided ID alone; the incoming one named by Connection (hop-by-hop): still ours */
    {
        struct tbp_header hop[] = {H("Connection", "Sec-Token-Binding-Context"),
                                   H("Sec-Token-Binding-Context", "SPOOFED")};
        struct tbp_http_head in2 = request("GET", "/", hop, COUNT(hop));

        fi = info();
        fi.provided_id = "cHJvdmlkZWQ";
        fi.tb_context = CONTEXT;
        expect_request(&in2, &fi,
                       "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                       "Sec-Provided-Token-Binding-ID: cHJvdmlkZWQ\r\n"
                       "Sec-Token-Binding-Context: " CONTEXT "\r\n"
                       "Connection: keep-alive\r\n\r\n");
    }
}

Test(forward_request, bad_token_binding_context_refused)
{
    static const char *const bad[] = {"", "a b", "AQAC\r\nX-Injected: 1", "AQAC=", "AQ+C", "AQ/C"};
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi;
    size_t i;

    for (i = 0; i < COUNT(bad); i++) {
        fi = info();
        fi.provided_id = "AAAA";
        fi.tb_context = bad[i];
        expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    }
}

/* ---- requests: hop-by-hop and framing ---------------------------------------------------------
 */

Test(forward_request, hop_by_hop_fields_stripped)
{
    struct tbp_header hs[] = {
        H("Connection", "keep-alive"),
        H("Proxy-Connection", "keep-alive"),
        H("Keep-Alive", "timeout=5"),
        H("TE", "trailers"),
        H("te", "gzip"),
        H("Upgrade", "h2c"),
        H("HTTP2-Settings", "AAMAAABkAAQAAP__"),
        H("Accept", "text/html"),
    };
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    /* HTTP2-Settings stays: nothing named it in Connection */
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "HTTP2-Settings: AAMAAABkAAQAAP__\r\n"
                   "Accept: text/html\r\n" FWD_V4 "Connection: keep-alive\r\n\r\n");
}

/* CGI-style origins read '_' as '-': the underscore spellings of managed names are dropped too;
 * other names with '_' pass. */
Test(forward_request, underscore_spellings_of_managed_names_stripped)
{
    struct tbp_header hs[] = {
        H("Transfer_Encoding", "chunked"),          H("Content_Length", "0"),
        H("Sec_Provided_Token_Binding_ID", "AAAA"), H("sec-referred_token-binding-id", "AAAA"),
        H("X_Forwarded_For", "203.0.113.9"),        H("X_Real_IP", "203.0.113.9"),
        H("Proxy_Connection", "keep-alive"),        H("My_Header", "kept"),
    };
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "My_Header: kept\r\n" FWD_V4 "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, connection_named_fields_stripped)
{
    struct tbp_header hs[] = {
        H("X-Secret", "s1"),
        H("Connection", "close,  x-secret , ,Keep-Alive"),
        H("x-keep", "k"),
        H("X-Other", "o"),
        H("connection", "X-OTHER"),
        H("X-Secret", "s2"),
        H("X-Secretive", "kept: not the same token"),
        H("Connection", "host, Content-Type, Sec-Provided-Token-Binding-ID"),
        H("Content-Type", "text/plain"),
        H("Sec-Provided-Token-Binding-ID", "SPOOF"),
    };
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    /* naming Host removes the client's Host, never the one this hop writes */
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "x-keep: k\r\n"
                   "X-Secretive: kept: not the same token\r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, framing_rewritten_from_info)
{
    struct tbp_header hs[] = {
        H("Content-Length", "999"),
        H("Transfer-Encoding", "chunked"),
        H("content-length", "5"),
    };
    struct tbp_http_head in = request("PUT", "/up", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    fi.framing = TBP_BODY_CHUNKED;
    expect_request(&in, &fi,
                   "PUT /up HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Transfer-Encoding: chunked\r\n"
                   "Connection: keep-alive\r\n\r\n");
    fi.framing = TBP_BODY_LENGTH;
    fi.content_length = 0;
    expect_request(&in, &fi,
                   "PUT /up HTTP/1.1\r\nHost: example.com\r\n" FWD_V4 "Content-Length: 0\r\n"
                   "Connection: keep-alive\r\n\r\n");
    fi.content_length = UINT64_MAX;
    expect_request(&in, &fi,
                   "PUT /up HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Content-Length: 18446744073709551615\r\n"
                   "Connection: keep-alive\r\n\r\n");
    fi.framing = TBP_BODY_NONE;
    expect_request(&in, &fi,
                   "PUT /up HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
    fi.framing = TBP_BODY_UNTIL_CLOSE; /* a request body cannot end with the connection */
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    fi.framing = (enum tbp_body_framing)42;
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
}

Test(forward_request, cookie_crumbs_joined_at_first)
{
    struct tbp_header hs[] = {
        H("cookie", "a=1"), H("accept", "*/*"),      H("cookie", "b=2"),
        H("cookie", ""),    H("cookie", "c=3; d=4"),
    };
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "cookie: a=1; b=2; c=3; d=4\r\n"
                   "accept: */*\r\n" FWD_V4 "Connection: keep-alive\r\n\r\n");
}

/* ---- requests: X-Forwarded-* and Forwarded ----------------------------------------------------
 */

static struct tbp_header forwarding_fields[] = {
    H("X-Forwarded-For", "203.0.113.7"),
    H("Accept", "*/*"),
    H("X-Forwarded-Proto", "http"),
    H("X-Forwarded-Host", "public.example"),
    H("Forwarded", "for=203.0.113.7;proto=http"),
    H("x-forwarded-for", "198.51.100.2, 10.0.0.1"),
    H("X-Forwarded-Port", "80"),
    H("X-Real-IP", "203.0.113.7"),
    H("FORWARDED", "for=10.0.0.1"),
    H("X-Forwarded-", "prefix alone is not a forwarding field"),
};

Test(forward_request, untrusted_peer_forwarding_fields_replaced)
{
    struct tbp_http_head in = request("GET", "/", forwarding_fields, COUNT(forwarding_fields));
    struct tbp_fwd_info fi = info();

    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "Accept: */*\r\n"
                   "X-Forwarded-: prefix alone is not a forwarding field\r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, trusted_peer_chain_extended)
{
    struct tbp_http_head in = request("GET", "/", forwarding_fields, COUNT(forwarding_fields));
    struct tbp_fwd_info fi = info();

    fi.peer_trusted = true;
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "Accept: */*\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: public.example\r\n"
                   "X-Forwarded-Port: 80\r\n"
                   "X-Real-IP: 203.0.113.7\r\n"
                   "X-Forwarded-: prefix alone is not a forwarding field\r\n"
                   "X-Forwarded-For: 203.0.113.7, 198.51.100.2, 10.0.0.1, 192.0.2.1\r\n"
                   "Forwarded: for=203.0.113.7;proto=http, for=10.0.0.1, "
                   "for=192.0.2.1;proto=https;host=example.com\r\n"
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, trusted_peer_without_chain_same_as_untrusted)
{
    struct tbp_header hs[] = {H("Accept", "*/*"), H("X-Forwarded-For", "")};
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    fi.peer_trusted = true;
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, trusted_peer_connection_named_forwarding_dropped)
{
    struct tbp_header hs[] = {
        H("X-Forwarded-For", "203.0.113.7"),
        H("X-Forwarded-Proto", "http"),
        H("Connection", "X-Forwarded-For, x-forwarded-proto"),
    };
    struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();

    fi.peer_trusted = true;
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, ipv6_client_quoted_in_forwarded)
{
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi = info();

    fi.client_ip = "2001:db8:cafe::17";
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "X-Forwarded-For: 2001:db8:cafe::17\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "Forwarded: for=\"[2001:db8:cafe::17]\";proto=https;host=example.com\r\n"
                   "Connection: keep-alive\r\n\r\n");
    fi.client_ip = "::1";
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "X-Forwarded-For: ::1\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "Forwarded: for=\"[::1]\";proto=https;host=example.com\r\n"
                   "Connection: keep-alive\r\n\r\n");
    fi.client_ip = "::ffff:192.0.2.1";
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n"
                   "X-Forwarded-For: ::ffff:192.0.2.1\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "Forwarded: for=\"[::ffff:192.0.2.1]\";proto=https;host=example.com\r\n"
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, forwarded_host_quoted_when_not_a_token)
{
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi = info();

    fi.host = (struct tbp_str)S("example.com:8443");
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com:8443\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "Forwarded: for=192.0.2.1;proto=https;host=\"example.com:8443\"\r\n"
                   "Connection: keep-alive\r\n\r\n");
    fi.host = (struct tbp_str)S("[::1]:8443");
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: [::1]:8443\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "Forwarded: for=192.0.2.1;proto=https;host=\"[::1]:8443\"\r\n"
                   "Connection: keep-alive\r\n\r\n");
    fi.host = (struct tbp_str)S("a\"b\\c");
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: a\"b\\c\r\n"
                   "X-Forwarded-For: 192.0.2.1\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "Forwarded: for=192.0.2.1;proto=https;host=\"a\\\"b\\\\c\"\r\n"
                   "Connection: keep-alive\r\n\r\n");
}

Test(forward_request, null_scheme_is_https)
{
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi = info();

    fi.scheme = NULL;
    expect_request(&in, &fi,
                   "GET / HTTP/1.1\r\nHost: example.com\r\n" FWD_V4
                   "Connection: keep-alive\r\n\r\n");
}

/* ---- requests: refusals -----------------------------------------------------------------------
 */

Test(forward_request, cr_lf_nul_in_any_value_refused)
{
    static const char *const bad[] = {"a\r\nX-Injected: 1", "a\rb", "a\nb", "\r\n"};
    static const char *const names[] = {"Accept", "X-Forwarded-For", "Sec-Token-Binding",
                                        "Connection", "Cookie"};
    size_t i, j;

    for (i = 0; i < COUNT(names); i++) {
        for (j = 0; j < COUNT(bad); j++) {
            struct tbp_header hs[] = {
                H("Accept", "*/*"),
                {{names[i], strlen(names[i])}, {bad[j], strlen(bad[j])}},
            };
            struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
            struct tbp_fwd_info fi = info();

            expect_request_error(&in, &fi, TBP_EFWD_INVALID);
            fi.peer_trusted = true;
            expect_request_error(&in, &fi, TBP_EFWD_INVALID);
        }
        {
            struct tbp_header hs[] = {{{names[i], strlen(names[i])}, {"a\0b", 3}}};
            struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
            struct tbp_fwd_info fi = info();

            expect_request_error(&in, &fi, TBP_EFWD_INVALID);
        }
    }
}

Test(forward_request, bad_names_refused)
{
    static const struct tbp_str bad[] = {
        S(""), S("X Y"), S("X:Y"), S("X\r\nY"), S(":path"), S("X\0Y"), S("\xc3\xa9"),
    };
    size_t i;

    for (i = 0; i < COUNT(bad); i++) {
        struct tbp_header hs[] = {{bad[i], S("v")}};
        struct tbp_http_head in = request("GET", "/", hs, COUNT(hs));
        struct tbp_fwd_info fi = info();

        expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    }
}

Test(forward_request, bad_request_line_refused)
{
    static const char *const methods[] = {"", "GE T", "GET\r\n", "G(T"};
    static const char *const targets[] = {"", "/a b", "/\r\nX: 1", "/\x7f", "/\t"};
    struct tbp_fwd_info fi = info();
    struct tbp_http_head in;
    size_t i;

    for (i = 0; i < COUNT(methods); i++) {
        in = request(methods[i], "/", NULL, 0);
        expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    }
    for (i = 0; i < COUNT(targets); i++) {
        in = request("GET", targets[i], NULL, 0);
        expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    }
    in = request("GET", "/", NULL, 0);
    in.is_request = 0;
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
}

Test(forward_request, bad_info_refused)
{
    static const char *const bad_ids[] = {"", "a b", "ab\r\n", "ab=", "a+b", "a/b"};
    static const char *const bad_others[] = {"",    "9.AA",  "09AA",        "0g.AA",
                                             "09.", "09.A=", "09.A\r\nX: y"};
    struct tbp_http_head in = request("GET", "/", NULL, 0);
    struct tbp_fwd_info fi;
    size_t i;

    fi = info();
    fi.client_ip = NULL;
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    fi.client_ip = "192.0.2.1\r\nX: 1";
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    fi.client_ip = "not-an-ip";
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    fi.client_ip = "[::1]";
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);

    fi = info();
    fi.host = (struct tbp_str)S("");
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    fi.host = (struct tbp_str)S("example.com\r\nX-Injected: 1");
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    fi.host = (struct tbp_str)S("exa\x01mple.com");
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);

    fi = info();
    fi.scheme = "ht tps";
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);

    for (i = 0; i < COUNT(bad_ids); i++) {
        fi = info();
        fi.provided_id = bad_ids[i];
        expect_request_error(&in, &fi, TBP_EFWD_INVALID);
        fi = info();
        fi.referred_id = bad_ids[i];
        expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    }
    for (i = 0; i < COUNT(bad_others); i++) {
        const char *one[] = {"09.AAAA", bad_others[i]};
        fi = info();
        fi.other_ids = one;
        fi.n_other_ids = 2;
        expect_request_error(&in, &fi, TBP_EFWD_INVALID);
    }
    fi = info();
    fi.n_other_ids = 1; /* count without an array */
    expect_request_error(&in, &fi, TBP_EFWD_INVALID);
}

Test(forward_request, every_cap_below_the_head_refused_unchanged)
{
    static const char *const others[] = {"09.AAEC"};
    struct tbp_header hs[] = {H("Accept", "*/*"), H("Cookie", "a=1"), H("cookie", "b=2"),
                              H("X-Forwarded-For", "203.0.113.7"), H("Forwarded", "for=x")};
    struct tbp_http_head in = request("POST", "/a", hs, COUNT(hs));
    struct tbp_fwd_info fi = info();
    struct tbp_buf out;
    size_t full, cap;

    fi.peer_trusted = true;
    fi.provided_id = "AAAA";
    fi.referred_id = "BBBB";
    fi.other_ids = others;
    fi.n_other_ids = 1;
    fi.tb_context = CONTEXT;
    fi.framing = TBP_BODY_LENGTH;
    fi.content_length = 10;
    tbp_buf_init(&out, 4096);
    cr_assert_eq(tbp_forward_request_head(&in, &fi, &out), 0);
    full = out.len;
    tbp_buf_dispose(&out);

    for (cap = 0; cap <= full; cap++) {
        int rc;

        tbp_buf_init(&out, cap);
        rc = tbp_forward_request_head(&in, &fi, &out);
        if (cap < full) {
            cr_assert_eq(rc, TBP_EBUF, "cap %zu of %zu: %d", cap, full, rc);
            cr_assert_eq(out.len, 0, "cap %zu left %zu bytes", cap, out.len);
        } else {
            cr_assert_eq(rc, 0);
            cr_assert_eq(out.len, full);
        }
        tbp_buf_dispose(&out);
    }
}

/* ---- responses --------------------------------------------------------------------------------
 */

Test(forward_response, fields_kept_hop_by_hop_and_framing_dropped)
{
    struct tbp_header hs[] = {
        H("Content-Type", "text/html"),
        H("Content-Length", "1234"),
        H("Connection", "keep-alive, X-Hop"),
        H("Keep-Alive", "timeout=5, max=100"),
        H("X-Hop", "dropped"),
        H("Set-Cookie", "a=1; Secure"),
        H("Set-Cookie", "b=2; HttpOnly"),
        H("Transfer-Encoding", "chunked"),
        H("Upgrade", "h2c"),
        H("Proxy-Connection", "close"),
        H("TE", "trailers"),
        H("Cache-Control", "no-store"),
    };
    struct tbp_http_head in = response(200, "OK", hs, COUNT(hs));

    expect_response(&in, 1, TBP_BODY_LENGTH, 1234, 0,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/html\r\n"
                    "Set-Cookie: a=1; Secure\r\n"
                    "Set-Cookie: b=2; HttpOnly\r\n"
                    "Cache-Control: no-store\r\n"
                    "Content-Length: 1234\r\n"
                    "\r\n");
    expect_response(&in, 0, TBP_BODY_CHUNKED, 0, 0,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/html\r\n"
                    "Set-Cookie: a=1; Secure\r\n"
                    "Set-Cookie: b=2; HttpOnly\r\n"
                    "Cache-Control: no-store\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "Connection: close\r\n"
                    "\r\n");
}

Test(forward_response, include_referer_token_binding_id_passes_untouched)
{
    struct tbp_header hs[] = {
        H("Location", "https://idp.example/authorize?x=1"),
        H("Include-Referer-Token-Binding-ID", "true"),
        H("include-referred-token-binding-id", "true"),
        H("Content-Length", "0"),
    };
    struct tbp_http_head in = response(302, "Found", hs, COUNT(hs));

    expect_response(&in, 1, TBP_BODY_LENGTH, 0, 0,
                    "HTTP/1.1 302 Found\r\n"
                    "Location: https://idp.example/authorize?x=1\r\n"
                    "Include-Referer-Token-Binding-ID: true\r\n"
                    "include-referred-token-binding-id: true\r\n"
                    "Content-Length: 0\r\n"
                    "\r\n");
}

Test(forward_response, no_body_framing_writes_zero_length)
{
    struct tbp_http_head in = response(200, "OK", NULL, 0);

    expect_response(&in, 1, TBP_BODY_NONE, 0, 0, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

Test(forward_response, until_close_only_when_closing)
{
    struct tbp_header hs[] = {H("Content-Type", "text/plain")};
    struct tbp_http_head in = response(200, "OK", hs, COUNT(hs));

    expect_response(&in, 0, TBP_BODY_UNTIL_CLOSE, 0, 0,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n");
    expect_response_error(&in, 1, TBP_BODY_UNTIL_CLOSE, 0, TBP_EFWD_INVALID);
    expect_response_error(&in, 1, (enum tbp_body_framing)7, 0, TBP_EFWD_INVALID);
}

Test(forward_response, head_keeps_origin_content_length)
{
    struct tbp_header hs[] = {H("Content-Type", "text/html"), H("content-length", "5000")};
    struct tbp_header chunked[] = {H("Transfer-Encoding", "chunked")};
    struct tbp_header weird[] = {H("Content-Length", "5, 5")};
    struct tbp_http_head in = response(200, "OK", hs, COUNT(hs));

    /* framing_to_client is ignored: there is no body */
    expect_response(&in, 1, TBP_BODY_NONE, 0, 1,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n");
    expect_response(&in, 0, TBP_BODY_CHUNKED, 0, 1,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n"
                    "Connection: close\r\n\r\n");
    in = response(200, "OK", chunked, COUNT(chunked));
    expect_response(&in, 1, TBP_BODY_NONE, 0, 1, "HTTP/1.1 200 OK\r\n\r\n");
    in = response(200, "OK", weird, COUNT(weird));
    expect_response(&in, 1, TBP_BODY_NONE, 0, 1, "HTTP/1.1 200 OK\r\n\r\n");
}

Test(forward_response, status_204_and_304)
{
    struct tbp_header hs[] = {H("ETag", "\"v1\""), H("Content-Length", "42")};
    struct tbp_http_head in = response(204, "No Content", hs, 1);

    expect_response(&in, 1, TBP_BODY_LENGTH, 42, 0,
                    "HTTP/1.1 204 No Content\r\nETag: \"v1\"\r\n\r\n");
    expect_response(&in, 0, TBP_BODY_NONE, 0, 0,
                    "HTTP/1.1 204 No Content\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n");
    in = response(204, "No Content", hs, 2); /* an origin's stray Content-Length on 204 */
    expect_response(&in, 1, TBP_BODY_NONE, 0, 0, "HTTP/1.1 204 No Content\r\nETag: \"v1\"\r\n\r\n");

    in = response(304, "Not Modified", hs, 2);
    expect_response(&in, 1, TBP_BODY_NONE, 0, 0,
                    "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n");
    in = response(304, "Not Modified", hs, 1);
    expect_response(&in, 1, TBP_BODY_CHUNKED, 0, 0,
                    "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
}

Test(forward_response, interim_1xx)
{
    struct tbp_header hs[] = {H("Link", "</s.css>; rel=preload"), H("Connection", "close")};
    struct tbp_http_head in = response(100, "Continue", NULL, 0);

    expect_response(&in, 0, TBP_BODY_LENGTH, 5, 0, "HTTP/1.1 100 Continue\r\n\r\n");
    in = response(103, "Early Hints", hs, COUNT(hs));
    expect_response(&in, 1, TBP_BODY_NONE, 0, 0,
                    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
}

Test(forward_response, reason_rewritten_empty_allowed)
{
    struct tbp_http_head in = response(404, "", NULL, 0);

    expect_response(&in, 1, TBP_BODY_LENGTH, 3, 0, "HTTP/1.1 404 \r\nContent-Length: 3\r\n\r\n");
    in = response(599, "Odd\tbut fine \xc3\xa9", NULL, 0);
    expect_response(&in, 1, TBP_BODY_LENGTH, 0, 0,
                    "HTTP/1.1 599 Odd\tbut fine \xc3\xa9\r\nContent-Length: 0\r\n\r\n");
}

Test(forward_response, refusals)
{
    struct tbp_header crlf[] = {H("Set-Cookie", "a=1\r\nSet-Cookie: admin=1")};
    struct tbp_header lf[] = {H("Location", "/x\n")};
    struct tbp_header nul[] = {{S("X-A"), {"a\0b", 3}}};
    struct tbp_header badname[] = {H("Bad Name", "v")};
    struct tbp_http_head in;

    in = response(200, "OK", crlf, 1);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(200, "OK", lf, 1);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(200, "OK", nul, 1);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(200, "OK", badname, 1);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(200, "OK\r\nX-Injected: 1", NULL, 0);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(200, "O\x01K", NULL, 0);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(99, "Low", NULL, 0);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(600, "High", NULL, 0);
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
    in = response(200, "OK", NULL, 0);
    in.is_request = 1;
    expect_response_error(&in, 1, TBP_BODY_NONE, 0, TBP_EFWD_INVALID);
}

Test(forward_response, every_cap_below_the_head_refused_unchanged)
{
    struct tbp_header hs[] = {H("Content-Type", "text/html"),
                              H("Include-Referer-Token-Binding-ID", "true")};
    struct tbp_http_head in = response(301, "Moved Permanently", hs, COUNT(hs));
    const char *want = "HTTP/1.1 301 Moved Permanently\r\nContent-Type: text/html\r\n"
                       "Include-Referer-Token-Binding-ID: true\r\nContent-Length: 12\r\n"
                       "Connection: close\r\n\r\n";
    size_t full = strlen(want), cap;

    for (cap = 0; cap <= full; cap++) {
        struct tbp_buf out;
        int rc;

        tbp_buf_init(&out, cap);
        rc = tbp_forward_response_head(&in, 0, TBP_BODY_LENGTH, 12, 0, &out);
        if (cap < full) {
            cr_assert_eq(rc, TBP_EBUF, "cap %zu: %d", cap, rc);
            cr_assert_eq(out.len, 0);
        } else {
            cr_assert_eq(rc, 0);
            cr_assert_str_eq(out.p, want);
        }
        tbp_buf_dispose(&out);
    }
}

/* ---- chunked bodies ---------------------------------------------------------------------------
 */

Test(forward_chunk, chunk_heads)
{
    char out[32];

    cr_expect_eq(tbp_chunk_head(out, 1), 3);
    cr_expect_str_eq(out, "1\r\n");
    cr_expect_eq(tbp_chunk_head(out, 255), 4);
    cr_expect_str_eq(out, "ff\r\n");
    cr_expect_eq(tbp_chunk_head(out, 16384), 6);
    cr_expect_str_eq(out, "4000\r\n");
    cr_expect_eq(tbp_chunk_head(out, SIZE_MAX), (int)(sizeof(size_t) * 2 + 2));
    cr_expect_eq(tbp_chunk_head(out, 0), 0); /* a zero chunk would end the body */
    cr_expect_str_eq(out, "");
    cr_expect_str_eq(TBP_CHUNK_LAST, "0\r\n\r\n");
    cr_expect_str_eq(TBP_CHUNK_END, "\r\n");
}

Test(forward_chunk, trailers_filtered)
{
    struct tbp_header hs[] = {
        H("Server-Timing", "db;dur=53"),
        H("Sec-Provided-Token-Binding-ID", "SPOOF"),
        H("sec-token-binding", "SPOOF"),
        H("TOKEN-BINDING", "SPOOF"),
        H("Connection", "x-hop"),
        H("X-Hop", "h"),
        H("Content-Length", "5"),
        H("Transfer-Encoding", "chunked"),
        H("Host", "evil"),
        H("Trailer", "x"),
        H("X-Forwarded-For", "1.2.3.4"),
        H("Forwarded", "for=1.2.3.4"),
        H("Digest", "sha-256=abc="),
        H("Sec_Provided_Token_Binding_ID", "SPOOF"),
        H("Transfer_Encoding", "chunked"),
        H("X_Forwarded_For", "1.2.3.4"),
        H("Authentication-Results", "proxy; tls=pass"),
        H("authentication_results", "proxy; tls=pass"),
        H("X_Custom_Trailer", "kept"),
    };
    struct tbp_buf out;

    tbp_buf_init(&out, 4096);
    cr_assert_eq(tbp_forward_trailers(NULL, 0, &out), 0);
    cr_expect_str_eq(out.p, TBP_CHUNK_LAST);
    tbp_buf_reset(&out);
    cr_assert_eq(tbp_forward_trailers(hs, COUNT(hs), &out), 0);
    cr_expect_str_eq(out.p, "0\r\nServer-Timing: db;dur=53\r\nDigest: sha-256=abc=\r\n"
                            "X_Custom_Trailer: kept\r\n\r\n");
    tbp_buf_dispose(&out);
}

Test(forward_chunk, trailer_refusals)
{
    struct tbp_header crlf[] = {H("X-A", "ok"), H("X-B", "a\r\n\r\nGET / HTTP/1.1")};
    struct tbp_header badname[] = {H("X A", "v")};
    struct tbp_buf out;

    tbp_buf_init(&out, 4096);
    cr_assert_eq(tbp_buf_append_str(&out, "data"), 0);
    cr_expect_eq(tbp_forward_trailers(crlf, COUNT(crlf), &out), TBP_EFWD_INVALID);
    cr_expect_eq(tbp_forward_trailers(badname, 1, &out), TBP_EFWD_INVALID);
    cr_expect_eq(tbp_forward_trailers(NULL, 1, &out), TBP_EFWD_INVALID);
    cr_expect_str_eq(out.p, "data");
    tbp_buf_dispose(&out);
    tbp_buf_init(&out, 4);
    cr_expect_eq(tbp_forward_trailers(NULL, 0, &out), TBP_EBUF);
    cr_expect_eq(out.len, 0);
    tbp_buf_dispose(&out);
}

Test(forward_chunk, chunked_end_drops_unusable_trailers)
{
    struct tbp_header crlf[] = {H("X-A", "ok"), H("X-B", "a\r\n\r\nGET / HTTP/1.1")};
    struct tbp_header good[] = {H("X-Checksum", "abc")};
    struct tbp_buf out;

    tbp_buf_init(&out, 4096);
    cr_assert_eq(tbp_forward_chunked_end(crlf, COUNT(crlf), &out), 0);
    cr_expect_str_eq(out.p, TBP_CHUNK_LAST, "bad trailers: the last chunk alone");
    tbp_buf_reset(&out);
    cr_assert_eq(tbp_forward_chunked_end(good, COUNT(good), &out), 0);
    cr_expect_str_eq(out.p, "0\r\nX-Checksum: abc\r\n\r\n");
    tbp_buf_dispose(&out);
}

/* ---- error responses --------------------------------------------------------------------------
 */

Test(forward_error, bad_token_binding_exact_bytes)
{
    static const char want_body[] = "400 Bad Request: token binding signature\n";
    struct tbp_buf out;
    int rc;

    tbp_buf_init(&out, 4096);
    rc = tbp_forward_error_response(400, "token binding signature", 1, &out);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(out.p, "HTTP/1.1 400 Bad Request\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 41\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "400 Bad Request: token binding signature\n");
    cr_expect_eq(strlen(want_body), 41);
    tbp_buf_dispose(&out);
}

Test(forward_error, every_status_without_reason_keep_alive)
{
    static const struct {
        int status;
        const char *phrase;
    } all[] = {
        {400, "Bad Request"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    size_t i;

    for (i = 0; i < COUNT(all); i++) {
        char body[128], want[512];
        struct tbp_buf out;
        int rc;

        snprintf(body, sizeof(body), "%d %s\n", all[i].status, all[i].phrase);
        snprintf(want, sizeof(want),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 all[i].status, all[i].phrase, strlen(body), body);
        tbp_buf_init(&out, 4096);
        rc = tbp_forward_error_response(all[i].status, NULL, 0, &out);
        cr_expect_eq(rc, 0, "status %d", all[i].status);
        cr_expect_str_eq(out.p, want);
        tbp_buf_dispose(&out);
    }
}

Test(forward_error, upstream_errors_with_reason)
{
    struct tbp_buf out;

    tbp_buf_init(&out, 4096);
    cr_assert_eq(tbp_forward_error_response(502, "origin refused", 0, &out), 0);
    cr_expect_str_eq(out.p, "HTTP/1.1 502 Bad Gateway\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 32\r\n"
                            "\r\n"
                            "502 Bad Gateway: origin refused\n");
    tbp_buf_dispose(&out);
}

Test(forward_error, refusals_leave_buffer_unchanged)
{
    static const int bad_status[] = {0, 100, 200, 301, 401, 418, 599, -400};
    static const char *const bad_reason[] = {
        "a\r\nSet-Cookie: x=1",
        "tab\there",
        "caf\xc3\xa9",
        "nul\x7f",
    };
    char long_reason[200];
    struct tbp_buf out;
    size_t i;

    tbp_buf_init(&out, 4096);
    cr_assert_eq(tbp_buf_append_str(&out, "previous"), 0);
    for (i = 0; i < COUNT(bad_status); i++)
        cr_expect_eq(tbp_forward_error_response(bad_status[i], NULL, 1, &out), TBP_EFWD_INVALID,
                     "status %d", bad_status[i]);
    for (i = 0; i < COUNT(bad_reason); i++)
        cr_expect_eq(tbp_forward_error_response(400, bad_reason[i], 1, &out), TBP_EFWD_INVALID);
    memset(long_reason, 'x', 129);
    long_reason[129] = '\0';
    cr_expect_eq(tbp_forward_error_response(400, long_reason, 1, &out), TBP_EFWD_INVALID);
    long_reason[128] = '\0'; /* exactly at the limit */
    cr_expect_eq(tbp_forward_error_response(400, long_reason, 1, &out), 0);
    cr_expect_eq(strncmp(out.p, "previousHTTP/1.1 400 ", 21), 0);
    tbp_buf_dispose(&out);

    for (i = 0; i < 80; i++) { /* every cap below the response */
        tbp_buf_init(&out, i);
        cr_expect_eq(tbp_forward_error_response(500, NULL, 1, &out), TBP_EBUF);
        cr_expect_eq(out.len, 0);
        tbp_buf_dispose(&out);
    }
}

/* Paths every origin reads the same way; the others would let "/./api" miss an "/api/" route. */
Test(http_path, normal_form)
{
    static const char *const ok[] = {"/",     "/api/me",        "/a/",     "/a.b/c..d/.e",
                                     "/%20x", "/a%3Fb",         "/%C3%A9", "*",
                                     "",      "/a/b/c?x=//./.."};
    static const char *const bad[] = {"//api/me", "/./api/me", "/api/../x", "/api/.",   "/api/..",
                                      "/a//b",    "/%61pi/me", "/%2e/x",    "/%2F/api", "/a%5cb",
                                      "/a\\b",    "/a%",       "/a%4",      "/a%zz",    "/%7e"};
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *q = strchr(ok[i], '?');
        size_t n = q != NULL ? (size_t)(q - ok[i]) : strlen(ok[i]);
        cr_expect(tbp_http_path_normal(ok[i], n), "%s is normal", ok[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(!tbp_http_path_normal(bad[i], strlen(bad[i])), "%s is not normal", bad[i]);
}
