/*
 * Token Binding RFC 8471-8473 through the real tbproxy: the token_binding TLS extension (RFC
 * 8472) negotiated by the listeners, Sec-Token-Binding (RFC 8473) signed over the EKM and what
 * the origin receives.
 *
 * One proxy per test with four listeners, from this file's configuration: `token_binding.version
 * = "rfc"` (the listeners' default), a listener keeping it (rfc), one with
 * `token_binding_version = "draft"`, one with "both", and an rfc one without session tickets
 * (resumption by session id). The origin is the recording origin (recorigin.h), so the tests
 * see exactly the head the proxy forwarded. The client is tlsclient.h / h2test.h with libtb's
 * extension glue (tbt_tls_opts.tb_ext) and libtb's builder for the headers.
 *
 * Covered: rfc negotiated with EMS (pinned to TLS 1.2 although the client allows 1.3), the
 * answer's version (1.0; 0.13 / 0.16 answered as offered; 1.1 answered 1.0; 0.12 and 0.17 not
 * answered) and key parameters (the server's preference among the client's); Sec-Provided- and
 * Sec-Referred-Token-Binding-ID forwarded as the rfc TBIDs, Sec-Token-Binding not forwarded,
 * Authentication-Results in RFC terms, Sec-Token-Binding-Context on a token_binding_context route
 * (base64url of the version, key parameters and EKM; none for a draft connection);
 * 400 for a bad signature, a signature over another connection's EKM, key parameters other than
 * negotiated, a missing header; no Token Binding without EMS (a header then is "unexpected"); a
 * malformed extension fails the handshake; a draft listener does not answer the extension; a
 * "both" listener gives rfc to the extension and draft to TB ALPN ids; an rfc listener selects
 * no draft ALPN id; HTTP/2; resumption by ticket and by session id (rfc again, a new EKM).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "drive.h"
#include "h2test.h"
#include "keys.h"
#include "proc.h"
#include "recorigin.h"
#include "tb/tb.h"
#include "tb/tlsext.h"
#include "tlsclient.h"
#include "world.h"

#define HDR_CAP 4096
#define QUIET_MS 50
#define SETTLE_MAX_MS 3000

enum { L_RFC, L_DRAFT, L_BOTH, L_RFC_IDS, N_LISTENERS };

static struct tbt_world w;
static struct tbt_recorigin rec;
static struct tbt_proc px;
static int port[N_LISTENERS];
static struct tbt_keyset keys;

static void fini(void)
{
    tbt_drive_stop(&px);
    tbt_recorigin_stop(&rec);
    tbt_world_teardown(&w);
    tbt_keyset_free(&keys);
}

TestSuite(rfc, .fini = fini, .timeout = 120);

static void write_conf(void)
{
    char *text = NULL;
    int n = asprintf(
        &text,
        "workers = 1;\n"
        "listen = ( { address = \"127.0.0.1:%d\";\n"
        "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; },\n"
        "           { address = \"127.0.0.1:%d\"; token_binding_version = \"draft\";\n"
        "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; },\n"
        "           { address = \"127.0.0.1:%d\"; token_binding_version = \"both\";\n"
        "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; }; },\n"
        "           { address = \"127.0.0.1:%d\";\n"
        "             tls = { cert = \"cert.pem\"; key = \"key.pem\"; tickets = false; }; } );\n"
        "token_binding = { enabled = true; version = \"rfc\";\n"
        "                  key_types = [ \"p256\", \"rsa2048\" ]; };\n"
        "upstreams = { app = { servers = [ \"127.0.0.1:%d\" ]; }; };\n"
        "routes = ( { prefix = \"/ctx/\"; upstream = \"app\"; token_binding_context = true; },\n"
        "           { upstream = \"app\"; } );\n"
        "log = { error = \"-\"; level = \"info\"; };\n"
        "admin = { listen = \"\"; };\n",
        port[L_RFC], port[L_DRAFT], port[L_BOTH], port[L_RFC_IDS], rec.port);

    cr_assert(n > 0 && text != NULL);
    cr_assert_eq(tbt_write_file(w.dir, "rfc.conf", text, (size_t)n), 0);
    free(text);
}

/* The world (directory, certificate), the recording origin and the proxy under test. */
static void start(void)
{
    char err[TBT_PROC_ERRLEN], conf[700];
    const char *args[] = {"-c", conf, NULL};
    int attempt, i, rc = -1;

    tbt_world_start(&w, NULL);
    tbt_keyset_load(&keys);
    cr_assert_eq(tbt_recorigin_start(&rec, err, sizeof(err)), 0, "%s", err);
    snprintf(conf, sizeof(conf), "%s/rfc.conf", w.dir);
    for (attempt = 0; attempt < TBT_WORLD_START_ATTEMPTS && rc != 0; attempt++) {
        tbt_proc_stop(&px);
        for (i = 0; i < N_LISTENERS; i++) {
            port[i] = tbt_port_free();
            cr_assert_gt(port[i], 0, "no free port: %s", strerror(errno));
        }
        write_conf();
        rc =
            tbt_proc_start(&px, tbt_world_bin(&w, "tbproxy"), args, w.dir, "rfc", err, sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        for (i = 0; i < N_LISTENERS && rc == 0; i++)
            rc = tbt_proc_wait_port(&px, (uint16_t)port[i], TBT_WORLD_START_TIMEOUT_MS, err,
                                    sizeof(err));
        if (rc != 0 && tbt_proc_alive(&px))
            break;
    }
    cr_assert_eq(rc, 0, "%s\n%s", err, tbt_log_tail(&px));
}

/* An offer of version major.minor with the key parameters kps[0..n). */
static struct tb_ext_params offer(uint8_t major, uint8_t minor, const int *kps, size_t n)
{
    struct tb_ext_params o = {.major = major, .minor = minor, .n = n};
    size_t i;

    for (i = 0; i < n; i++)
        o.key_params[i] = (uint8_t)kps[i];
    return o;
}

static const int KP_EC[] = {TB_KP_ECDSAP256};

/* Connects to listener l offering ext (NULL: no extension) and ALPN alpn (NULL: http/1.1). */
static void connect_ext(struct tbt_tls *c, int l, const struct tb_ext_params *ext, const char *alpn,
                        int no_ems, SSL_SESSION *resume)
{
    struct tbt_tls_opts o = {.alpn = alpn != NULL ? alpn : "http/1.1",
                             .tb_ext = ext,
                             .no_ems = no_ems,
                             .resume = resume};

    cr_assert_eq(tbt_tls_connect(c, (uint16_t)port[l], &o), 0, "connect: %s\n%s", c->err,
                 tbt_log_tail(&px));
}

/* Connects to the rfc listener with 1.0 [ecdsap256] and checks rfc was negotiated. */
static void connect_rfc(struct tbt_tls *c)
{
    struct tb_ext_params o = offer(1, 0, KP_EC, 1);

    connect_ext(c, L_RFC, &o, NULL, 0, NULL);
    cr_assert(c->tb_rfc, "no rfc Token Binding (result %d)\n%s", c->tb_rfc_result,
              tbt_log_tail(&px));
}

/* A Sec-Token-Binding value over c's EKM. */
static void rfc_header(struct tbt_tls *c, int kp, EVP_PKEY *key, int rkp, EVP_PKEY *rkey, char *out)
{
    int n = tbt_tls_tb_header_rfc(c, kp, key, rkp, rkey, out, HDR_CAP);

    cr_assert_gt(n, 0, "tbt_tls_tb_header_rfc: %s", c->err);
}

static void rfc_id(int kp, EVP_PKEY *key, char *out, size_t cap)
{
    cr_assert_gt(tbt_tb_id_b64_v(TB_VERSION_RFC, kp, key, out, cap), 0);
}

/*
 * GET path on c with the header `name: value` (name NULL: none). Returns the status (-1: no
 * response); the origin's view of the request in *v when v is not NULL.
 */
static int get_path(struct tbt_tls *c, const char *path, const char *name, const char *value,
                    struct tbt_rec_view *v)
{
    struct tbt_http_response r = {0};
    char req[HDR_CAP + 256];
    int status = -1;

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s%s%s\r\n", path,
             name != NULL ? name : "", name != NULL ? ": " : "", name != NULL ? value : "",
             name != NULL ? "\r\n" : "");
    tbt_recorigin_mark(&rec);
    if (tbt_tls_send_str(c, req) == 0 && tbt_tls_read_response(c, &r, 0, 0) == 0)
        status = r.status;
    tbt_http_response_dispose(&r);
    if (v != NULL) {
        cr_assert_eq(tbt_recorigin_settle(&rec, QUIET_MS, SETTLE_MAX_MS), 0);
        tbt_recorigin_view(&rec, v);
    }
    return status;
}

static int get(struct tbt_tls *c, const char *name, const char *value, struct tbt_rec_view *v)
{
    return get_path(c, "/", name, value, v);
}

/* The value of field name in a request head (first one; case-insensitive), or NULL. */
static const char *head_value(const char *head, const char *name, char *out, size_t cap)
{
    const char *line = strstr(head, "\r\n");
    size_t n = strlen(name);

    while (line != NULL && line[2] != '\0' && line[2] != '\r') {
        const char *start = line + 2, *end = strstr(start, "\r\n");
        if (end == NULL)
            break;
        if ((size_t)(end - start) > n + 1 && strncasecmp(start, name, n) == 0 && start[n] == ':') {
            const char *val = start + n + 1;
            while (*val == ' ')
                val++;
            snprintf(out, cap, "%.*s", (int)(end - val), val);
            return out;
        }
        line = end;
    }
    return NULL;
}

/* The value of field name in the view's request head, or "(none)". */
static const char *field(const struct tbt_rec_view *v, const char *name, char *out, size_t cap)
{
    const char *p = head_value(v->first_head, name, out, cap);

    return p != NULL ? p : "(none)";
}

/* The origin got one request whose provided (and referred, when not NULL) IDs are these. */
static void expect_ids(const struct tbt_rec_view *v, const char *provided, const char *referred)
{
    char got[HDR_CAP];

    cr_assert(v->has_first, "the origin got no request");
    cr_expect_eq(v->n_requests, 1);
    cr_expect_str_eq(field(v, "Sec-Provided-Token-Binding-ID", got, sizeof(got)), provided, "%s",
                     v->first_head);
    if (referred != NULL)
        cr_expect_str_eq(field(v, "Sec-Referred-Token-Binding-ID", got, sizeof(got)), referred,
                         "%s", v->first_head);
    else
        cr_expect_not(tbt_rec_has_field(v->first_head, strlen(v->first_head),
                                        "Sec-Referred-Token-Binding-ID"),
                      "%s", v->first_head);
    cr_expect_not(tbt_rec_has_field(v->first_head, strlen(v->first_head), "Sec-Token-Binding"),
                  "%s", v->first_head);
    cr_expect_not(tbt_rec_has_field(v->first_head, strlen(v->first_head), "Token-Binding"), "%s",
                  v->first_head);
}

/* The proxy answers 400 on c for this header (name NULL: none), and the origin gets nothing. */
static void expect_400(struct tbt_tls *c, const char *name, const char *value, const char *what)
{
    struct tbt_rec_view v;
    int status = get(c, name, value, &v);

    cr_expect_eq(status, 400, "%s: status %d\n%s", what, status, tbt_log_tail(&px));
    cr_expect_eq(v.n_requests, 0, "%s: forwarded", what);
}

/* --- negotiation and verification ------------------------------------------------------------ */

Test(rfc, negotiated_pinned_and_forwarded,
     .description = "extension + EMS: rfc 1.0 on TLS 1.2; provided and referred IDs forwarded")
{
    char hdr[HDR_CAP], pid[512], rid[512], ar[HDR_CAP], ctx[128];
    uint8_t ctx_raw[3 + TB_EKM_LEN];
    struct tbt_rec_view v;
    struct tbt_tls c;

    start();
    connect_rfc(&c);
    cr_expect_eq(c.version, TLS1_2_VERSION, "pinned to TLS 1.2 although 1.3 was offered");
    cr_expect(c.ems && c.reneg);
    cr_expect_eq(c.tb_answer.major, 1);
    cr_expect_eq(c.tb_answer.minor, 0);
    cr_expect_eq(c.tb_answer.n, 1);
    cr_expect_eq(c.tb_answer.key_params[0], TB_KP_ECDSAP256);
    cr_expect_str_eq(c.alpn, "http/1.1");
    rfc_header(&c, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr);
    rfc_id(TB_KP_ECDSAP256, keys.p256_a, pid, sizeof(pid));
    cr_assert_eq(get(&c, "Sec-Token-Binding", hdr, &v), 200, "%s", tbt_log_tail(&px));
    expect_ids(&v, pid, NULL);
    /* again on the same connection, with a referred binding */
    rfc_header(&c, TB_KP_ECDSAP256, keys.p256_a, TB_KP_ECDSAP256, keys.p256_b, hdr);
    rfc_id(TB_KP_ECDSAP256, keys.p256_b, rid, sizeof(rid));
    cr_assert_eq(get(&c, "Sec-Token-Binding", hdr, &v), 200, "%s", tbt_log_tail(&px));
    expect_ids(&v, pid, rid);
    /* Authentication-Results names the version and the key in RFC terms; no context header on
     * a route without token_binding_context */
    cr_expect(strstr(field(&v, "Authentication-Results", ar, sizeof(ar)),
                     "tokenbinding=pass tb.version=rfc tb.key=ecdsap256 tb.referred=yes") != NULL,
              "%s", v.first_head);
    cr_expect_not(
        tbt_rec_has_field(v.first_head, strlen(v.first_head), "Sec-Token-Binding-Context"), "%s",
        v.first_head);
    /* a token_binding_context route: base64url(major, minor, key_parameters, EKM) */
    ctx_raw[0] = 1;
    ctx_raw[1] = 0;
    ctx_raw[2] = TB_KP_ECDSAP256;
    memcpy(ctx_raw + 3, c.ekm, sizeof(c.ekm));
    cr_assert_gt(tb_base64url_encode(ctx_raw, sizeof(ctx_raw), ctx, sizeof(ctx)), 0);
    cr_assert_eq(get_path(&c, "/ctx/a", "Sec-Token-Binding", hdr, &v), 200, "%s",
                 tbt_log_tail(&px));
    expect_ids(&v, pid, rid);
    cr_expect_str_eq(field(&v, "Sec-Token-Binding-Context", ar, sizeof(ar)), ctx, "%s",
                     v.first_head);
    /* the draft TBID is not what is forwarded */
    cr_assert_gt(tbt_tb_id_b64(TB_KP_ECDSAP256, keys.p256_a, rid, sizeof(rid)), 0);
    cr_expect_str_neq(pid, rid);
    tbt_tls_close(&c);
}

Test(rfc, rejections, .description = "bad signature, wrong EKM, other key parameters, missing: 400")
{
    char hdr[HDR_CAP], b64[HDR_CAP];
    uint8_t wrong[TB_EKM_LEN], msg[TB_MAX_MESSAGE];
    struct tb_builder *b = malloc(sizeof(*b));
    const uint8_t *bytes;
    struct tbt_tls c, d;
    size_t len;

    cr_assert_not_null(b);
    start();
    /* a signature with one bit flipped (the message ends with the signature, then ext_len 0) */
    connect_rfc(&c);
    tb_builder_init(b, TB_VERSION_RFC);
    cr_assert_eq(tb_builder_add_signed(b, TB_TYPE_PROVIDED, TB_KP_ECDSAP256, keys.p256_a, c.ekm,
                                       sizeof(c.ekm)),
                 0);
    bytes = tb_builder_bytes(b, &len);
    cr_assert(len > 8 && len <= sizeof(msg));
    memcpy(msg, bytes, len);
    msg[len - 3] ^= 1;
    cr_assert_gt(tb_base64url_encode(msg, len, b64, sizeof(b64)), 0);
    expect_400(&c, "Sec-Token-Binding", b64, "bad signature");
    tbt_tls_close(&c);
    /* the same message unflipped is fine (the flip is what failed) */
    connect_rfc(&c);
    rfc_header(&c, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr);
    cr_expect_eq(get(&c, "Sec-Token-Binding", hdr, NULL), 200, "%s", tbt_log_tail(&px));
    tbt_tls_close(&c);
    /* signed over another connection's EKM, and over random bytes */
    connect_rfc(&c);
    connect_rfc(&d);
    rfc_header(&d, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr);
    expect_400(&c, "Sec-Token-Binding", hdr, "another connection's EKM");
    tbt_tls_close(&c);
    tbt_tls_close(&d);
    connect_rfc(&c);
    cr_assert_eq(RAND_bytes(wrong, sizeof(wrong)), 1);
    cr_assert_gt(tbt_tb_header_v(TB_VERSION_RFC, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, wrong,
                                 sizeof(wrong), hdr, sizeof(hdr), b64, sizeof(b64)),
                 0);
    expect_400(&c, "Sec-Token-Binding", hdr, "random EKM");
    tbt_tls_close(&c);
    /* key parameters other than negotiated (ecdsap256): an RSA binding, valid otherwise */
    connect_rfc(&c);
    rfc_header(&c, TB_KP_RSA2048_PKCS1, keys.rsa_a, 0, NULL, hdr);
    expect_400(&c, "Sec-Token-Binding", hdr, "rsa2048_pkcs1.5 on an ecdsap256 connection");
    tbt_tls_close(&c);
    /* the draft codec over the EKM is not an rfc message */
    connect_rfc(&c);
    cr_assert_gt(tbt_tb_header(TB_KP_ECDSAP256, keys.p256_a, 0, NULL, c.ekm, sizeof(c.ekm), hdr,
                               sizeof(hdr), b64, sizeof(b64)),
                 0);
    expect_400(&c, "Sec-Token-Binding", hdr, "a draft message");
    tbt_tls_close(&c);
    /* no header on a Token Binding connection */
    connect_rfc(&c);
    expect_400(&c, NULL, NULL, "missing header");
    tbt_tls_close(&c);
    /* the draft header instead */
    connect_rfc(&c);
    rfc_header(&c, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr);
    expect_400(&c, "Token-Binding", hdr, "Token-Binding instead of Sec-Token-Binding");
    tbt_tls_close(&c);
    free(b);
}

Test(rfc, no_ems_no_token_binding,
     .description = "the extension without EMS is not answered; TLS 1.3; a header is unexpected")
{
    struct tb_ext_params o = offer(1, 0, KP_EC, 1);
    char hdr[HDR_CAP], *log;
    struct tbt_tls c;

    start();
    connect_ext(&c, L_RFC, &o, NULL, 1, NULL);
    cr_expect_not(c.tb_rfc);
    cr_expect_eq(c.tb_rfc_result, TB_EUNSUPPORTED, "answered: %d", c.tb_rfc_result);
    cr_expect_eq(c.version, TLS1_3_VERSION, "not pinned: %#x", (unsigned)c.version);
    cr_expect_eq(get(&c, NULL, NULL, NULL), 200, "%s", tbt_log_tail(&px));
    rfc_header(&c, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr);
    expect_400(&c, "Sec-Token-Binding", hdr, "a header without Token Binding");
    tbt_tls_close(&c);
    log = tbt_proc_log(&px, 0);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "token binding rejected: unexpected") != NULL, "%s", log);
    free(log);
    /* EMS off and TLS 1.2 only: still no answer (and not pinned to anything else) */
    {
        struct tbt_tls_opts to = {
            .alpn = "http/1.1", .tb_ext = &o, .no_ems = 1, .max_version = TLS1_2_VERSION};
        cr_assert_eq(tbt_tls_connect(&c, (uint16_t)port[L_RFC], &to), 0, "%s", c.err);
        cr_expect_not(c.tb_rfc);
        cr_expect_not(c.ems);
        cr_expect_eq(get(&c, NULL, NULL, NULL), 200, "%s", tbt_log_tail(&px));
        tbt_tls_close(&c);
    }
}

/* The ClientHello extension as bytes, whatever they are: for the malformed case. */
static const unsigned char *raw_ext;
static size_t raw_ext_len;

static int raw_add(SSL *s, unsigned int type, unsigned int context, const unsigned char **out,
                   size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    (void)s, (void)type, (void)context, (void)x, (void)chainidx, (void)al, (void)arg;
    *out = raw_ext;
    *outlen = raw_ext_len;
    return 1;
}

static int raw_parse(SSL *s, unsigned int type, unsigned int context, const unsigned char *in,
                     size_t inlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    (void)s, (void)type, (void)context, (void)in, (void)inlen, (void)x, (void)chainidx, (void)al,
        (void)arg;
    return 1;
}

/* A TLS 1.2 handshake with listener l offering ext[0..len) as the token_binding extension (any
 * answer accepted): 0 when it completes, -1 when it fails. */
static int raw_handshake(int l, const unsigned char *ext, size_t len)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port[l]),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    int fd, ret;

    cr_assert_not_null(ctx);
    raw_ext = ext;
    raw_ext_len = len;
    cr_assert_eq(SSL_CTX_add_custom_ext(ctx, TB_EXT_TYPE,
                                        SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO, raw_add,
                                        NULL, NULL, raw_parse, NULL),
                 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    cr_assert_eq(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_neq(fd, -1);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "%s", strerror(errno));
    cr_assert_not_null(ssl = SSL_new(ctx));
    SSL_set_fd(ssl, fd);
    ret = SSL_connect(ssl) == 1 ? 0 : -1;
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return ret;
}

Test(rfc, malformed_extension_fails_the_handshake)
{
    static const unsigned char bad_len[] = {1, 0, 2, TB_KP_ECDSAP256}; /* list says 2, has 1 */
    static const unsigned char empty[] = {1, 0, 0};                    /* an empty list */
    static const unsigned char cut[] = {1};                            /* no list length */
    static const unsigned char good[] = {1, 0, 1, TB_KP_ECDSAP256};
    struct tbt_tls c;

    start();
    cr_expect_eq(raw_handshake(L_RFC, bad_len, sizeof(bad_len)), -1);
    cr_expect_eq(raw_handshake(L_RFC, empty, sizeof(empty)), -1);
    cr_expect_eq(raw_handshake(L_RFC, cut, sizeof(cut)), -1);
    /* the same client with well-formed bytes completes: it is the bytes that failed */
    cr_expect_eq(raw_handshake(L_RFC, good, sizeof(good)), 0, "%s", tbt_log_tail(&px));
    /* a draft listener does not look at the extension at all */
    cr_expect_eq(raw_handshake(L_DRAFT, bad_len, sizeof(bad_len)), 0, "%s", tbt_log_tail(&px));
    /* and the rfc listener still serves */
    connect_rfc(&c);
    tbt_tls_close(&c);
}

/* --- the answer's version and key parameters ------------------------------------------------- */

/* Connects to the rfc listener offering major.minor with kps; returns whether rfc is on. */
static int connect_offer(struct tbt_tls *c, uint8_t major, uint8_t minor, const int *kps, size_t n)
{
    struct tb_ext_params o = offer(major, minor, kps, n);

    connect_ext(c, L_RFC, &o, NULL, 0, NULL);
    return c->tb_rfc;
}

/* On c (rfc with key parameters kp), a binding of key verifies: 200 and the ID forwarded. */
static void expect_verifies(struct tbt_tls *c, int kp, EVP_PKEY *key, const char *what)
{
    char hdr[HDR_CAP], id[1024];
    struct tbt_rec_view v;

    rfc_header(c, kp, key, 0, NULL, hdr);
    rfc_id(kp, key, id, sizeof(id));
    cr_expect_eq(get(c, "Sec-Token-Binding", hdr, &v), 200, "%s\n%s", what, tbt_log_tail(&px));
    expect_ids(&v, id, NULL);
}

Test(rfc, version_downgrade,
     .description = "0.13, 0.16 answered as offered, 1.1 answered 1.0, 0.12 and 0.17 not answered")
{
    static const struct {
        uint8_t major, minor, want_major, want_minor;
    } cases[] = {{0, 13, 0, 13}, {0, 16, 0, 16}, {1, 1, 1, 0}, {1, 0, 1, 0}};
    struct tbt_tls c;
    size_t i;

    start();
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect(connect_offer(&c, cases[i].major, cases[i].minor, KP_EC, 1),
                  "%u.%u: no Token Binding (%d)", cases[i].major, cases[i].minor, c.tb_rfc_result);
        cr_expect_eq(c.tb_answer.major, cases[i].want_major, "%u.%u", cases[i].major,
                     cases[i].minor);
        cr_expect_eq(c.tb_answer.minor, cases[i].want_minor, "%u.%u", cases[i].major,
                     cases[i].minor);
        if (c.tb_rfc)
            expect_verifies(&c, TB_KP_ECDSAP256, keys.p256_a, "negotiated version");
        tbt_tls_close(&c);
    }
    for (i = 0; i < 2; i++) {
        uint8_t minor = i == 0 ? 12 : 17; /* below 0.13; a draft above ours, not 1.0 */
        cr_expect_not(connect_offer(&c, 0, minor, KP_EC, 1), "0.%u answered", minor);
        cr_expect_eq(c.tb_rfc_result, TB_EUNSUPPORTED);
        cr_expect_eq(c.version, TLS1_3_VERSION, "0.%u: not answered, not pinned", minor);
        cr_expect_eq(get(&c, NULL, NULL, NULL), 200);
        tbt_tls_close(&c);
    }
}

Test(rfc, key_parameters,
     .description = "the server's preference among the client's; RSA PKCS#1 and PSS verify")
{
    static const int pkcs1_ec[] = {TB_KP_RSA2048_PKCS1, TB_KP_ECDSAP256};
    static const int pkcs1[] = {TB_KP_RSA2048_PKCS1};
    static const int pss[] = {TB_KP_RSA2048_PSS};
    static const int pkcs1_pss[] = {TB_KP_RSA2048_PKCS1, TB_KP_RSA2048_PSS};
    static const int unknown[] = {7, 200};
    char hdr[HDR_CAP];
    struct tbt_tls c;

    start();
    cr_assert(connect_offer(&c, 1, 0, pkcs1_ec, 2));
    cr_expect_eq(c.tb_answer.key_params[0], TB_KP_ECDSAP256, "p256 is the listener's first");
    expect_verifies(&c, TB_KP_ECDSAP256, keys.p256_a, "[pkcs1.5, ecdsap256]");
    tbt_tls_close(&c);

    cr_assert(connect_offer(&c, 1, 0, pkcs1, 1));
    cr_expect_eq(c.tb_answer.key_params[0], TB_KP_RSA2048_PKCS1);
    expect_verifies(&c, TB_KP_RSA2048_PKCS1, keys.rsa_a, "rsa2048_pkcs1.5");
    tbt_tls_close(&c);

    cr_assert(connect_offer(&c, 1, 0, pss, 1));
    cr_expect_eq(c.tb_answer.key_params[0], TB_KP_RSA2048_PSS);
    expect_verifies(&c, TB_KP_RSA2048_PSS, keys.rsa_a, "rsa2048_pss");
    tbt_tls_close(&c);

    /* "rsa2048" prefers pss to pkcs1.5 */
    cr_assert(connect_offer(&c, 1, 0, pkcs1_pss, 2));
    cr_expect_eq(c.tb_answer.key_params[0], TB_KP_RSA2048_PSS);
    tbt_tls_close(&c);

    /* a pss connection refuses a pkcs1.5 binding of the same key */
    cr_assert(connect_offer(&c, 1, 0, pss, 1));
    rfc_header(&c, TB_KP_RSA2048_PKCS1, keys.rsa_a, 0, NULL, hdr);
    expect_400(&c, "Sec-Token-Binding", hdr, "pkcs1.5 on a pss connection");
    tbt_tls_close(&c);

    /* nothing in common: no answer */
    cr_expect_not(connect_offer(&c, 1, 0, unknown, 2));
    cr_expect_eq(c.tb_rfc_result, TB_EUNSUPPORTED);
    cr_expect_eq(get(&c, NULL, NULL, NULL), 200);
    tbt_tls_close(&c);
}

/* --- listeners of each version --------------------------------------------------------------- */

Test(rfc, draft_listener_ignores_the_extension)
{
    struct tb_ext_params o = offer(1, 0, KP_EC, 1);
    char hdr[HDR_CAP];
    struct tbt_tls c;

    start();
    connect_ext(&c, L_DRAFT, &o, NULL, 0, NULL);
    cr_expect_not(c.tb_rfc);
    cr_expect_eq(c.tb_rfc_result, TB_EUNSUPPORTED, "answered: %d", c.tb_rfc_result);
    cr_expect_eq(c.version, TLS1_3_VERSION);
    cr_expect_eq(get(&c, NULL, NULL, NULL), 200);
    tbt_tls_close(&c);
    /* with TB ALPN ids beside it: draft */
    connect_ext(&c, L_DRAFT, &o, "http/1.1_tb_p256,http/1.1", 0, NULL);
    cr_expect_not(c.tb_rfc);
    cr_expect_str_eq(c.alpn, "http/1.1_tb_p256");
    cr_assert_gt(tbt_tls_tb_header(&c, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr, sizeof(hdr)), 0,
                 "%s", c.err);
    cr_expect_eq(get(&c, "Token-Binding", hdr, NULL), 200, "%s", tbt_log_tail(&px));
    tbt_tls_close(&c);
}

Test(rfc, both_listener,
     .description = "extension: rfc (plain ALPN id); TB ALPN ids only: draft; both offered: rfc")
{
    struct tb_ext_params o = offer(1, 0, KP_EC, 1);
    char hdr[HDR_CAP], id[512];
    struct tbt_rec_view v;
    struct tbt_tls c;

    start();
    connect_ext(&c, L_BOTH, &o, NULL, 0, NULL);
    cr_assert(c.tb_rfc, "%d", c.tb_rfc_result);
    cr_expect_eq(c.version, TLS1_2_VERSION);
    cr_expect_str_eq(c.alpn, "http/1.1");
    expect_verifies(&c, TB_KP_ECDSAP256, keys.p256_a, "both: rfc");
    tbt_tls_close(&c);

    connect_ext(&c, L_BOTH, NULL, "http/1.1_tb_p256,http/1.1", 0, NULL);
    cr_expect_not(c.tb_rfc);
    cr_expect_eq(c.version, TLS1_2_VERSION);
    cr_expect_str_eq(c.alpn, "http/1.1_tb_p256");
    cr_assert_gt(tbt_tls_tb_header(&c, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr, sizeof(hdr)), 0,
                 "%s", c.err);
    cr_assert_gt(tbt_tb_id_b64(TB_KP_ECDSAP256, keys.p256_a, id, sizeof(id)), 0);
    cr_expect_eq(get_path(&c, "/ctx/", "Token-Binding", hdr, &v), 200, "%s", tbt_log_tail(&px));
    expect_ids(&v, id, NULL);
    cr_expect_not(
        tbt_rec_has_field(v.first_head, strlen(v.first_head), "Sec-Token-Binding-Context"),
        "draft connections have no context: %s", v.first_head);
    tbt_tls_close(&c);

    connect_ext(&c, L_BOTH, &o, "http/1.1_tb_p256,http/1.1", 0, NULL);
    cr_assert(c.tb_rfc, "%d", c.tb_rfc_result);
    cr_expect_str_eq(c.alpn, "http/1.1", "rfc chosen: no draft id");
    expect_verifies(&c, TB_KP_ECDSAP256, keys.p256_a, "both offered: rfc");
    tbt_tls_close(&c);

    /* an rfc connection of a both listener wants Sec-Token-Binding, not Token-Binding */
    connect_ext(&c, L_BOTH, &o, NULL, 0, NULL);
    cr_assert(c.tb_rfc);
    cr_assert_gt(tbt_tb_header(TB_KP_ECDSAP256, keys.p256_a, 0, NULL, c.ekm, sizeof(c.ekm), hdr,
                               sizeof(hdr), id, sizeof(id)),
                 0);
    expect_400(&c, "Token-Binding", hdr, "draft header on an rfc connection");
    tbt_tls_close(&c);
}

Test(rfc, rfc_listener_selects_no_draft_id)
{
    struct tbt_tls c;

    start();
    connect_ext(&c, L_RFC, NULL, "http/1.1_tb_p256,http/1.1_tb_rsa2048,http/1.1", 0, NULL);
    cr_expect_not(c.tb_rfc);
    cr_expect_str_eq(c.alpn, "http/1.1");
    cr_expect_eq(c.version, TLS1_3_VERSION, "not pinned");
    cr_expect_eq(get(&c, NULL, NULL, NULL), 200);
    tbt_tls_close(&c);
}

/* --- HTTP/2 ---------------------------------------------------------------------------------- */

Test(rfc, h2_stream_with_sec_token_binding)
{
    struct tb_ext_params o = offer(1, 0, KP_EC, 1);
    struct tbt_h2_opts ho = {.alpn = "h2_tb_p256,h2", .tb_ext = &o};
    char hdr[HDR_CAP], id[512], got[HDR_CAP];
    const char *extra[] = {"sec-token-binding", hdr, NULL};
    struct tbt_rec_view v;
    struct tbt_h2 h;
    int32_t sid;

    start();
    cr_assert_eq(tbt_h2_connect(&h, (uint16_t)port[L_BOTH], &ho), 0, "%s", h.err);
    cr_assert(h.tls.tb_rfc, "%d", h.tls.tb_rfc_result);
    cr_expect_str_eq(h.tls.alpn, "h2", "rfc chosen: a plain id");
    cr_expect_eq(h.tls.version, TLS1_2_VERSION);
    rfc_header(&h.tls, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr);
    rfc_id(TB_KP_ECDSAP256, keys.p256_a, id, sizeof(id));
    tbt_recorigin_mark(&rec);
    cr_assert_gt(sid = tbt_h2_submit(&h, "GET", "/h2", extra, NULL, 0), 0, "%s", h.err);
    cr_assert_eq(tbt_h2_run(&h, &sid, 1, 10000), 0, "%s", h.err);
    cr_expect_eq(tbt_h2_stream(&h, sid)->status, 200, "%s", tbt_log_tail(&px));
    cr_assert_eq(tbt_recorigin_settle(&rec, QUIET_MS, SETTLE_MAX_MS), 0);
    tbt_recorigin_view(&rec, &v);
    expect_ids(&v, id, NULL);
    cr_expect_str_eq(field(&v, "Sec-Provided-Token-Binding-ID", got, sizeof(got)), id);
    /* a stream without the header on this Token Binding connection */
    cr_assert_gt(sid = tbt_h2_submit(&h, "GET", "/h2", NULL, NULL, 0), 0, "%s", h.err);
    tbt_h2_run(&h, &sid, 1, 10000);
    cr_expect_eq(tbt_h2_stream(&h, sid)->status, 400, "missing header on h2");
    tbt_h2_close(&h);

    /* the rfc-only listener over h2 too */
    ho.alpn = "h2";
    cr_assert_eq(tbt_h2_connect(&h, (uint16_t)port[L_RFC], &ho), 0, "%s", h.err);
    cr_assert(h.tls.tb_rfc);
    rfc_header(&h.tls, TB_KP_ECDSAP256, keys.p256_a, 0, NULL, hdr);
    cr_assert_gt(sid = tbt_h2_submit(&h, "GET", "/h2", extra, NULL, 0), 0, "%s", h.err);
    cr_assert_eq(tbt_h2_run(&h, &sid, 1, 10000), 0, "%s", h.err);
    cr_expect_eq(tbt_h2_stream(&h, sid)->status, 200, "%s", tbt_log_tail(&px));
    tbt_h2_close(&h);
}

/* --- resumption ------------------------------------------------------------------------------ */

/* A full handshake, then one resuming its session: rfc both times, different EKMs. */
static void resume_on(int l, const char *what)
{
    struct tb_ext_params o = offer(1, 0, KP_EC, 1);
    uint8_t first_ekm[TB_EKM_LEN];
    struct tbt_tls c, d;
    SSL_SESSION *sess;

    connect_ext(&c, l, &o, NULL, 0, NULL);
    cr_assert(c.tb_rfc, "%s: %d", what, c.tb_rfc_result);
    cr_assert(c.has_ekm);
    memcpy(first_ekm, c.ekm, sizeof(first_ekm));
    expect_verifies(&c, TB_KP_ECDSAP256, keys.p256_a, what);
    sess = tbt_tls_session(&c);
    cr_assert_not_null(sess);
    tbt_tls_close(&c);
    connect_ext(&d, l, &o, NULL, 0, sess);
    SSL_SESSION_free(sess);
    cr_expect(d.reused, "%s: not resumed", what);
    cr_assert(d.tb_rfc, "%s: resumed without rfc (%d)", what, d.tb_rfc_result);
    cr_expect_eq(d.version, TLS1_2_VERSION);
    cr_expect_eq(d.tb_answer.key_params[0], TB_KP_ECDSAP256);
    cr_expect(d.has_ekm && memcmp(first_ekm, d.ekm, sizeof(first_ekm)) != 0, "%s: the same EKM",
              what);
    expect_verifies(&d, TB_KP_ECDSAP256, keys.p256_a, what);
    tbt_tls_close(&d);
}

Test(rfc, resumption, .description = "ticket and session id: rfc again, a new EKM that verifies")
{
    start();
    resume_on(L_RFC, "ticket");
    resume_on(L_RFC_IDS, "session id");
}
