/*
 * The proxy's Authentication-Results value (see results.h), written with libtb's builder, which
 * does the RFC 8601 quoting and refuses control bytes.
 */
#include <string.h>
#include <strings.h>

#include "results.h"
#include "tb/authres.h"
#include "tb/error.h"
#include "tb/message.h"

static int prop(struct tb_authres_builder *b, const char *ptype, const char *name, const char *v)
{
    return tb_authres_add_prop(b, ptype, name, v, strlen(v));
}

/* A property whose value came from a client certificate: one the builder refuses (it cannot
 * be written safely) is left out rather than failing the whole header. */
static int cert_prop(struct tb_authres_builder *b, const char *ptype, const char *name,
                     const char *v)
{
    int ret;

    if (v == NULL || v[0] == '\0')
        return 0;
    ret = prop(b, ptype, name, v);
    return ret == TB_EINVAL ? 0 : ret;
}

/* n in decimal into out (16 bytes are enough): no printf on the request path. */
static void utoa(unsigned n, char out[16])
{
    char rev[16];
    size_t k = 0, i;

    do {
        rev[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0 && k < sizeof(rev) - 1);
    for (i = 0; i < k; i++)
        out[i] = rev[k - 1 - i];
    out[k] = '\0';
}

static int put_tls(struct tb_authres_builder *b, const struct tbp_tlsinfo *t, int report_cert)
{
    char len[16];
    int ret;

    if (t == NULL || t->result == TBP_TLSR_NONE)
        return tb_authres_add_method(b, "tls", 0, "none");
    if (!report_cert && t->result != TBP_TLSR_PERMERROR) {
        /* the route does not look at client certificates: reported as if none was asked for */
        if ((ret = tb_authres_add_method(b, "tls", 0, "permerror")) < 0 ||
            (ret = tb_authres_add_comment(b, "no client certificate", 21)) < 0)
            return ret;
    } else {
        if ((ret = tb_authres_add_method(b, "tls", 0, tbp_tls_result_name(t->result))) < 0)
            return ret;
        if (t->reason != NULL &&
            (ret = tb_authres_add_comment(b, t->reason, strlen(t->reason))) < 0 && ret != TB_EINVAL)
            return ret;
    }
    if (report_cert && t->cert != NULL &&
        ((ret = cert_prop(b, "cert", "verif", t->result == TBP_TLSR_PASS ? t->cert->verif : NULL)) <
             0 ||
         (ret = cert_prop(b, "cert", "client", t->cert->subject)) < 0 ||
         (ret = cert_prop(b, "cert", "clientissuer", t->cert->issuer)) < 0 ||
         (ret = cert_prop(b, "cert", "clientalt", t->cert->alt)) < 0))
        return ret;
    if (t->version != NULL && (ret = prop(b, "tls", "v", t->version)) < 0)
        return ret;
    if (t->ciphersuite != NULL && (ret = prop(b, "key", "ciphersuite", t->ciphersuite)) < 0)
        return ret;
    if (t->key_length > 0) {
        utoa((unsigned)t->key_length, len);
        if ((ret = prop(b, "key", "length", len)) < 0 ||
            (ret = prop(b, "key", "strength", tbp_key_strength_name(t->strength))) < 0)
            return ret;
    }
    if (report_cert && t->cert != NULL &&
        (ret = cert_prop(b, "key", "fingerprint", t->cert->fingerprint)) < 0)
        return ret;
    return 0;
}

static int put_tb(struct tb_authres_builder *b, const struct tbp_results_req *rq)
{
    int ret;

    if (!rq->tb)
        return tb_authres_add_method(b, "tokenbinding", 0, "none");
    if ((ret = tb_authres_add_method(b, "tokenbinding", 0, "pass")) < 0 ||
        (ret = prop(b, "tb", "version", rq->tb_version ? rq->tb_version : "draft")) < 0 ||
        (rq->tb_key != NULL && (ret = prop(b, "tb", "key", rq->tb_key)) < 0) ||
        (ret = prop(b, "tb", "referred", rq->tb_referred ? "yes" : "no")) < 0)
        return ret;
    return 0;
}

static const char *check_name(enum tbp_results_check c)
{
    return c == TBP_RES_PASS ? "pass" : c == TBP_RES_FAIL ? "fail" : "none";
}

static int put_check(struct tb_authres_builder *b, const char *method, enum tbp_results_check c,
                     const char *comment)
{
    int ret;

    if (c == TBP_RES_UNSET)
        return 0;
    if ((ret = tb_authres_add_method(b, method, 0, check_name(c))) < 0)
        return ret;
    if (comment != NULL && comment[0] != '\0' &&
        (ret = tb_authres_add_comment(b, comment, strlen(comment))) < 0 && ret != TB_EINVAL)
        return ret;
    return 0;
}

void tbp_results_set_binding(struct tbp_results_req *rq, int version, int key_params)
{
    enum tb_version v = version == TB_VERSION_RFC ? TB_VERSION_RFC : TB_VERSION_DRAFT;

    rq->tb_version = tb_version_name(v);
    rq->tb_key = tb_key_params_name(v, key_params);
}

int tbp_results_value(const char *authserv_id, const struct tbp_results_req *rq, char *buf,
                      size_t cap)
{
    struct tb_authres_builder b;
    int ret;

    if (authserv_id == NULL || rq == NULL || buf == NULL || cap == 0)
        return TB_EINVAL;
    if ((ret = tb_authres_begin(&b, buf, cap, authserv_id, 0)) < 0 ||
        (ret = put_tls(&b, rq->tls, rq->report_cert)) < 0 ||
        (rq->report_tb && (ret = put_tb(&b, rq)) < 0) ||
        (ret = put_check(&b, "tbcookie", rq->tbcookie,
                         rq->tbcookie == TBP_RES_FAIL ? rq->tbcookie_dropped : NULL)) < 0 ||
        (ret = put_check(&b, "tbjwt", rq->tbjwt, NULL)) < 0)
        return ret;
    return tb_authres_end(&b);
}

int tbp_results_is_ours(const char *value, size_t len, const char *authserv_id)
{
    char id[256];
    int n = tb_authres_authserv_id(value, len, id, sizeof(id));

    if (n == TB_ETOOLARGE && len > TB_AUTHRES_MAX_LEN)
        return 1; /* too long to read: not something to pass on unread */
    if (n < 0)
        return n == TB_ETOOLARGE ? 0 : 1; /* an id longer than any we can have is not ours */
    return strlen(authserv_id) == (size_t)n && strncasecmp(id, authserv_id, (size_t)n) == 0;
}
