/*
 * fetch (see fetch.h): the redirect loop around one connection at a time.
 *
 * State lives in struct fetch: the current URL and method, the open connection with what its
 * handshake negotiated (protocol, Token Binding key type, the origin's key and the provided-only
 * header), and what the last response asked for (the next URL, a referred binding). Response
 * heads are seen through wrap_head() while the protocol module still holds them: cookies are
 * stored, the Location resolved and the federation header read there, because the fields are
 * gone once the exchange returns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "errors.h"
#include "fetch.h"
#include "h1client.h"
#include "h2client.h"
#include "keystore.h"
#include "tb/channel.h"
#include "tb/message.h"
#include "url.h"

struct fetch {
    const struct tbc_fetch_opts *o;
    struct tbc_fetch_result *res;
    SSL_CTX *ctx;
    long long deadline;
    struct tbc_url first, url, next;
    const char *method;
    struct tbc_body *body; /* NULL once a redirect dropped it */
    /* the connection */
    struct tbc_tls tls;
    struct tbc_url conn_url;
    struct tbc_h2 *h2;
    int connected, is_h2, reusable;
    int tb_kp;     /* negotiated key parameters, -1 without Token Binding */
    EVP_PKEY *key; /* the connection origin's key when tb_kp >= 0 */
    char tb_header[TB_MAX_HEADER + 1];
    /* the last response */
    int follow_next, want_referred;
    int referred_kp; /* key type used with the referring origin (its key is made for that) */
    char referred_origin[TBC_URL_MAX_HOST + 16];
    int cb_err;
};

__attribute__((format(printf, 2, 3))) static void note(struct fetch *f, const char *fmt, ...)
{
    va_list ap;

    if (f->o->verbose == NULL)
        return;
    va_start(ap, fmt);
    vfprintf(f->o->verbose, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static int fail(struct fetch *f, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(f->res->err, sizeof(f->res->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* --- the connection -------------------------------------------------------------------------- */

static void disconnect(struct fetch *f)
{
    tbc_h2_free(f->h2);
    f->h2 = NULL;
    tbc_tls_close(&f->tls);
    EVP_PKEY_free(f->key);
    f->key = NULL;
    f->connected = f->is_h2 = f->reusable = 0;
    f->tb_kp = -1;
    OPENSSL_cleanse(f->tb_header, sizeof(f->tb_header));
}

/* The key for origin: --key for every origin, else the key store. 0 or TBC_EKEY. */
static int origin_key(struct fetch *f, const char *origin, int kp, EVP_PKEY **key)
{
    char path[TBC_KEYSTORE_MAX_PATH];
    int created = 0, rc;

    if (f->o->key_file != NULL) {
        snprintf(path, sizeof(path), "%s", f->o->key_file); /* for the note only */
        rc = tbc_key_file_get(f->o->key_file, kp, key, &created, f->o->msg);
    } else {
        rc = tbc_keystore_get(origin, kp, key, &created, path, f->o->msg);
    }
    if (rc != 0)
        return fail(f, TBC_EKEY, "no Token Binding key for %s (see the message above)", origin);
    note(f, "* Token Binding key for %s: %s (%s)\n", origin, path, created ? "created" : "loaded");
    return 0;
}

static void note_id(struct fetch *f, const char *role, int kp, EVP_PKEY *key)
{
    char id[TBC_TB_MAX_ID_B64], tbh[TB_TBH_LEN + 1];

    if (f->o->verbose != NULL && tbc_tb_describe(f->o->tb_version, kp, key, id, tbh) == 0)
        note(f, "* Token Binding %s ID: %s\n* Token Binding %s tbh: %s\n", role, id, role, tbh);
}

/* The connection's channel value: draft tls_unique, rfc EKM. */
static const uint8_t *channel_of(struct fetch *f, size_t *len)
{
    if (f->o->tb_version == TB_VERSION_RFC) {
        *len = TB_EKM_LEN;
        return f->tls.ekm;
    }
    *len = TB_TLS_UNIQUE_LEN;
    return f->tls.tls_unique;
}

/* After a handshake that negotiated Token Binding (a TB ALPN id, or the token_binding
 * extension's answer): checks, key, provided header. */
static int start_binding(struct fetch *f, int kp)
{
    enum tb_version v = f->o->tb_version;
    char origin[TBC_URL_MAX_HOST + 16];
    const uint8_t *ch;
    size_t ch_len;
    int rc;

    if (kp != f->o->key_params)
        return fail(f, TBC_ETLS, "the server selected Token Binding key type %s, not offered",
                    tbc_tb_key_name(v, kp));
    if (v == TB_VERSION_DRAFT &&
        (f->tls.version != TLS1_2_VERSION || !f->tls.ems || !f->tls.has_tls_unique))
        return fail(f, TBC_ETLS,
                    "the server selected Token Binding without TLS 1.2 and "
                    "Extended Master Secret");
    if (v == TB_VERSION_RFC && !f->tls.has_ekm)
        return fail(f, TBC_ETLS, "Token Binding negotiated without an EKM");
    tbc_url_origin(&f->url, origin, sizeof(origin));
    if ((rc = origin_key(f, origin, kp, &f->key)) != 0)
        return rc;
    f->tb_kp = kp;
    ch = channel_of(f, &ch_len);
    rc = tbc_tb_header(v, kp, f->key, -1, NULL, ch, ch_len, f->tb_header, sizeof(f->tb_header));
    if (rc < 0)
        return fail(f, rc, "cannot sign the %s header", tbc_tb_header_name(v));
    note_id(f, "provided", kp, f->key);
    return 0;
}

static void note_tls(struct fetch *f)
{
    X509 *cert = SSL_get1_peer_certificate(f->tls.ssl);
    char subject[256] = "(none)";

    if (cert != NULL)
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    X509_free(cert);
    note(f, "* Connected to %s (%s)\n", f->url.host, f->tls.peer);
    note(f, "* TLS: %s, cipher %s, ALPN %s, extended master secret %s\n",
         SSL_get_version(f->tls.ssl), SSL_get_cipher_name(f->tls.ssl),
         f->tls.alpn[0] ? f->tls.alpn : "(none)",
         f->tls.version != TLS1_2_VERSION ? "n/a (TLS 1.3)"
         : f->tls.ems                     ? "yes"
                                          : "no");
    note(f, "* Server certificate: %s; %s\n", subject,
         f->o->tls.insecure ? "not verified (-k)" : "verified");
    if (f->tls.has_tls_unique) {
        char hex[2 * TB_TLS_UNIQUE_LEN + 1];
        size_t i;

        for (i = 0; i < TB_TLS_UNIQUE_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", f->tls.tls_unique[i]);
        note(f, "* tls_unique: %s\n", hex);
    } else {
        note(f, "* tls_unique: none (TLS 1.3 has no tls_unique)\n");
    }
}

static int connect_origin(struct fetch *f)
{
    unsigned char alpn[TBC_ALPN_MAX];
    struct tb_ext_params offer;
    long long cd = f->deadline;
    int alen, kp, rc, rfc = f->o->tb_version == TB_VERSION_RFC;

    if (f->o->connect_timeout_ms > 0) {
        long long c = tbc_now_ms() + f->o->connect_timeout_ms;

        cd = cd == 0 || c < cd ? c : cd;
    }
    /* rfc: plain ALPN ids, Token Binding in the token_binding extension */
    alen = tbc_tb_alpn(f->o->proto, f->o->tb && !rfc ? f->o->key_params : -1, alpn, sizeof(alpn));
    if (alen < 0)
        return fail(f, TBC_EINTERNAL, "ALPN offer");
    if (f->o->tb && rfc)
        tbc_tb_offer(f->o->key_params, &offer);
    note(f, "* Connecting to %s port %u\n", f->url.host, (unsigned)f->url.port);
    rc = tbc_tls_connect(&f->tls, f->ctx, &f->url, alpn, (size_t)alen,
                         f->o->tb && rfc ? &offer : NULL, cd);
    if (rc != 0)
        return fail(f, rc, "%s", f->tls.err);
    f->connected = 1;
    f->conn_url = f->url;
    note_tls(f);
    f->tb_kp = -1;
    if (tbc_tb_selected(f->tls.alpn, &kp, &f->is_h2) && !rfc) {
        if ((rc = start_binding(f, kp)) != 0)
            return rc;
    } else if (f->o->tb && rfc && f->tls.tb_rfc) {
        note(f,
             "* Token Binding: RFC 8471 version %u.%u, key parameters %s (signed over the EKM)\n",
             f->tls.tb_answer.major, f->tls.tb_answer.minor,
             tbc_tb_key_name(TB_VERSION_RFC, f->tls.tb_answer.key_params[0]));
        if ((rc = start_binding(f, f->tls.tb_answer.key_params[0])) != 0)
            return rc;
    } else if (f->o->tb) {
        note(f,
             rfc ? "* Token Binding: not negotiated (the server did not answer the "
                   "token_binding extension)\n"
                 : "* Token Binding: not negotiated (the server did not select a TB protocol)\n");
    }
    if (f->o->proto == TBC_PROTO_H2 && !f->is_h2)
        return fail(f, TBC_EH2, "the server did not select HTTP/2");
    if (f->is_h2 && (rc = tbc_h2_new(&f->h2, &f->tls)) != 0)
        return fail(f, rc, "HTTP/2 session setup failed");
    return 0;
}

static int ensure_connection(struct fetch *f)
{
    if (f->connected && f->reusable && tbc_url_same_origin(&f->conn_url, &f->url)) {
        note(f, "* Re-using the connection to %s\n", f->url.host);
        return 0;
    }
    if (f->connected)
        disconnect(f);
    return connect_origin(f);
}

/* --- the request ----------------------------------------------------------------------------- */

/* Is name one of the fields -H must not carry to another origin? */
static int origin_private(const char *name)
{
    return strcasecmp(name, "authorization") == 0 || strcasecmp(name, "cookie") == 0 ||
           strcasecmp(name, "host") == 0;
}

/* Defaults, then the user's fields (replacing defaults), then removals. */
static int user_fields(struct fetch *f, struct tbc_headers *req, int first_origin)
{
    const struct tbc_headers *uh = f->o->headers, *rm = f->o->removed;
    const char *ua = f->o->user_agent != NULL ? f->o->user_agent : TBC_USER_AGENT;
    size_t i;
    int rc = 0;

    if (*ua != '\0')
        rc = tbc_headers_add_str(req, "User-Agent", ua);
    if (rc == 0)
        rc = tbc_headers_add_str(req, "Accept", "*/*");
    for (i = 0; rc == 0 && uh != NULL && i < uh->n; i++) {
        const struct tbc_header *h = &uh->h[i];

        if (!first_origin && origin_private(h->name))
            continue;
        if (strcasecmp(h->name, "user-agent") == 0 || strcasecmp(h->name, "accept") == 0)
            rc = tbc_headers_set(req, h->name, h->value);
        else
            rc = tbc_headers_add_str(req, h->name, h->value);
    }
    for (i = 0; rm != NULL && i < rm->n; i++)
        tbc_headers_remove(req, rm->h[i].name);
    return rc;
}

/* Content-Type / Content-Length of the body. */
static int body_fields(struct fetch *f, struct tbc_headers *req)
{
    char len[32];
    int rc = 0;

    if (f->body == NULL)
        return 0;
    if (f->o->content_type != NULL && tbc_headers_get(req, "content-type") == NULL &&
        !(f->o->removed != NULL && tbc_headers_get(f->o->removed, "content-type") != NULL))
        rc = tbc_headers_add_str(req, "Content-Type", f->o->content_type);
    tbc_headers_remove(req, "content-length");
    tbc_headers_remove(req, "transfer-encoding");
    if (rc == 0 && f->body->len >= 0) {
        snprintf(len, sizeof(len), "%lld", (long long)f->body->len);
        rc = tbc_headers_add_str(req, "Content-Length", len);
    }
    return rc;
}

/* Cookie: the user's value (if any) and the jar's, joined. */
static int cookie_field(struct fetch *f, struct tbc_headers *req)
{
    char jar[TBC_COOKIE_MAX_HEADER], joined[TBC_COOKIE_MAX_HEADER + 4096];
    const char *user = tbc_headers_get(req, "cookie");

    if (f->o->jar == NULL ||
        tbc_jar_header(f->o->jar, f->url.host, f->url.target, time(NULL), jar, sizeof(jar)) == 0)
        return 0;
    if (user == NULL)
        return tbc_headers_add_str(req, "Cookie", jar);
    snprintf(joined, sizeof(joined), "%s; %s", user, jar);
    return tbc_headers_set(req, "Cookie", joined);
}

/* Token-Binding (draft) / Sec-Token-Binding (rfc): the connection's header, or one with a
 * referred binding too. */
static int binding_field(struct fetch *f, struct tbc_headers *req)
{
    const char *name = tbc_tb_header_name(f->o->tb_version);
    char *hdr = f->tb_header;
    EVP_PKEY *rkey = NULL;
    const uint8_t *ch;
    size_t ch_len;
    int rc;

    if (f->tb_kp < 0) {
        if (f->want_referred)
            note(f, "* Token Binding: no referred binding (not negotiated on this connection)\n");
        return 0;
    }
    if (tbc_headers_get(req, name) != NULL) {
        note(f, "* Token Binding: sending the %s field given with -H instead\n", name);
        return 0;
    }
    if (f->want_referred) {
        if ((rc = origin_key(f, f->referred_origin, f->referred_kp, &rkey)) != 0)
            return rc;
        if ((hdr = malloc(TB_MAX_HEADER + 1)) == NULL) {
            EVP_PKEY_free(rkey);
            return TBC_ENOMEM;
        }
        ch = channel_of(f, &ch_len);
        rc = tbc_tb_header(f->o->tb_version, f->tb_kp, f->key, f->referred_kp, rkey, ch, ch_len,
                           hdr, TB_MAX_HEADER + 1);
        note(f, "* Token Binding referred origin: %s\n", f->referred_origin);
        note_id(f, "referred", f->referred_kp, rkey);
        EVP_PKEY_free(rkey);
        if (rc < 0) {
            free(hdr);
            return fail(f, rc, "cannot sign the %s header", name);
        }
    }
    rc = tbc_headers_add_str(req, name, hdr);
    if (hdr != f->tb_header)
        free(hdr);
    return rc;
}

static void note_request(struct fetch *f, const struct tbc_request *rq)
{
    size_t i;

    if (f->o->verbose == NULL)
        return;
    note(f, "> %s %s %s\n> Host: %s\n", rq->method, rq->target, f->is_h2 ? "HTTP/2" : "HTTP/1.1",
         rq->authority);
    for (i = 0; i < rq->headers->n; i++) {
        const struct tbc_header *h = &rq->headers->h[i];

        if (strcasecmp(h->name, "token-binding") == 0 ||
            strcasecmp(h->name, "sec-token-binding") == 0)
            note(f, "> %s: [%zu characters]\n", h->name, strlen(h->value));
        else
            note(f, "> %s: %s\n", h->name, h->value);
    }
    if (!f->is_h2 && rq->body != NULL && rq->body->len < 0)
        note(f, "> Transfer-Encoding: chunked\n");
    note(f, ">\n");
}

/* --- the response ---------------------------------------------------------------------------- */

static int is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static void note_response(struct fetch *f, const struct tbc_response *r)
{
    size_t i;

    if (f->o->verbose == NULL)
        return;
    if (r->version == 20)
        note(f, "< HTTP/2 %d\n", r->status);
    else
        note(f, "< HTTP/%d.%d %d %s\n", r->version / 10, r->version % 10, r->status, r->reason);
    for (i = 0; i < r->headers->n; i++)
        note(f, "< %s: %s\n", r->headers->h[i].name, r->headers->h[i].value);
    note(f, "<\n");
}

/* Cookies, redirect decision, federation request; then the caller's on_head. */
static int wrap_head(void *arg, const struct tbc_response *r)
{
    struct fetch *f = arg;
    const char *loc = tbc_headers_get(r->headers, "location"), *inc;
    size_t i;
    int rc;

    note_response(f, r);
    f->res->status = r->status;
    for (i = 0; f->o->jar != NULL && i < r->headers->n; i++)
        if (strcasecmp(r->headers->h[i].name, "set-cookie") == 0 &&
            tbc_jar_set(f->o->jar, f->url.host, f->url.target, r->headers->h[i].value,
                        time(NULL)) == TBC_ENOMEM)
            return TBC_ENOMEM;
    f->follow_next = f->o->follow && is_redirect(r->status) && loc != NULL;
    f->want_referred = 0;
    if (f->follow_next) {
        if ((rc = tbc_url_resolve(&f->url, loc, &f->next)) != 0)
            return fail(f, rc, "cannot follow the redirect to \"%.200s\": %s", loc,
                        tbc_strerror(rc));
        /* draft-balfanz: Include-Referer-...; RFC 8473 section 5.3: Include-Referred-... */
        inc = tbc_headers_get(r->headers, f->o->tb_version == TB_VERSION_RFC
                                              ? "include-referred-token-binding-id"
                                              : "include-referer-token-binding-id");
        /* from an origin this client has a Token Binding key for, on a redirect its version
           names: draft-balfanz 301 and 302, RFC 8473 section 5.3 any (301, 302, 303, 307, 308) */
        f->want_referred = f->tb_kp >= 0 && inc != NULL && strcasecmp(inc, "true") == 0 &&
                           (f->o->tb_version == TB_VERSION_RFC || r->status == 301 ||
                            r->status == 302);
        f->referred_kp = f->tb_kp;
        tbc_url_origin(&f->url, f->referred_origin, sizeof(f->referred_origin));
    }
    rc = f->o->cb.on_head != NULL ? f->o->cb.on_head(f->o->ctx, r, !f->follow_next) : 0;
    if (rc < 0 && f->res->err[0] == '\0')
        fail(f, rc, "%s", tbc_strerror(rc));
    return rc;
}

static int wrap_body(void *arg, const char *p, size_t n)
{
    struct fetch *f = arg;

    if (f->follow_next || f->o->cb.on_body == NULL)
        return 0; /* the body of a redirect is read and dropped */
    return f->o->cb.on_body(f->o->ctx, p, n);
}

/* --- the loop -------------------------------------------------------------------------------- */

/* One request on the current connection. */
static int exchange(struct fetch *f)
{
    static const struct tbc_response_cb cb = {wrap_head, wrap_body};
    int first_origin = tbc_url_same_origin(&f->url, &f->first), rc;
    const char *user_host =
        first_origin && f->o->headers != NULL ? tbc_headers_get(f->o->headers, "host") : NULL;
    char authority[TBC_URL_MAX_HOST + 16];
    struct tbc_headers req = {0};
    struct tbc_request rq;

    tbc_url_authority(&f->url, authority, sizeof(authority));
    rq.method = f->method;
    rq.authority = user_host != NULL ? user_host : authority;
    rq.target = f->url.target;
    rq.headers = &req;
    rq.body = f->body;
    if ((rc = user_fields(f, &req, first_origin)) == 0)
        tbc_headers_remove(&req, "host");
    if (rc == 0 && (rc = body_fields(f, &req)) == 0 && (rc = cookie_field(f, &req)) == 0)
        rc = binding_field(f, &req);
    if (rc != 0) {
        tbc_headers_dispose(&req);
        return f->res->err[0] ? rc : fail(f, rc, "building the request: %s", tbc_strerror(rc));
    }
    note_request(f, &rq);
    f->reusable = 0;
    if (f->is_h2) {
        rc = tbc_h2_exchange(f->h2, &rq, &cb, f, f->deadline);
        f->reusable = rc == 0 && tbc_h2_reusable(f->h2);
    } else {
        rc = tbc_h1_exchange(&f->tls, &rq, &cb, f, f->deadline, &f->reusable);
    }
    tbc_headers_dispose(&req);
    if (rc != 0 && f->res->err[0] == '\0')
        fail(f, rc, "%s", f->tls.err[0] ? f->tls.err : tbc_strerror(rc));
    return rc;
}

/* The method and body for the next request after status (fetch.h: Redirects). */
static int next_request(struct fetch *f, int status)
{
    int to_get = (status == 303 && strcasecmp(f->method, "HEAD") != 0) ||
                 ((status == 301 || status == 302) && strcasecmp(f->method, "POST") == 0);

    if (to_get) {
        f->method = "GET";
        f->body = NULL;
    } else if (f->body != NULL && tbc_body_rewind(f->body) != 0) {
        return fail(f, TBC_EREWIND,
                    "the redirect needs the request body again and it cannot "
                    "be read twice (a pipe)");
    }
    f->url = f->next;
    return 0;
}

static int run(struct fetch *f)
{
    int rc;

    for (;;) {
        if ((rc = ensure_connection(f)) != 0 || (rc = exchange(f)) != 0)
            return rc;
        if (!f->follow_next)
            return 0;
        if (f->res->redirects == f->o->max_redirs)
            return fail(f, TBC_EREDIRS, "maximum (%d) redirects followed", f->o->max_redirs);
        f->res->redirects++;
        if ((rc = next_request(f, f->res->status)) != 0)
            return rc;
        if (f->o->verbose != NULL) {
            char text[TBC_URL_MAX_HOST + TBC_URL_MAX_TARGET + 32];

            tbc_url_format(&f->url, text, sizeof(text));
            note(f, "* Following the redirect to %s\n", text);
        }
    }
}

int tbc_fetch(const struct tbc_fetch_opts *o, struct tbc_fetch_result *res)
{
    struct fetch *f = calloc(1, sizeof(*f));
    struct tbc_tls_ctx_opts tls;
    long long start = tbc_now_ms();
    int rc;

    memset(res, 0, sizeof(*res));
    if (f == NULL)
        return TBC_ENOMEM;
    f->o = o;
    f->res = res;
    f->tb_kp = -1;
    f->tls.fd = -1;
    f->body = o->body != NULL && o->body->kind != TBC_BODY_NONE ? o->body : NULL;
    f->method = o->method != NULL ? o->method : f->body != NULL ? "POST" : "GET";
    f->deadline = o->max_time_ms > 0 ? start + o->max_time_ms : 0;
    if ((rc = tbc_url_parse(o->url, &f->url)) != 0) {
        rc = fail(f, rc,
                  rc == TBC_EUNSUPPORTED ? "only https:// URLs are supported" : "malformed URL");
        goto Exit;
    }
    f->first = f->url;
    tls = o->tls;
    tls.tb_ext = o->tb && o->tb_version == TB_VERSION_RFC;
    if ((f->ctx = tbc_tls_ctx_new(&tls, &rc, res->err, sizeof(res->err))) == NULL)
        goto Exit;
    rc = run(f);
Exit:
    if (rc == TBC_ETIMEOUT)
        fail(f, rc, "operation timed out after %lld ms%s", tbc_now_ms() - start,
             f->connected ? "" : " (connecting)");
    disconnect(f);
    SSL_CTX_free(f->ctx);
    free(f);
    return rc;
}
