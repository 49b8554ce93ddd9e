/*
 * Per-connection Token Binding checks (see binding.h).
 *
 * The expensive part (decode, parse, verify) goes through libtb with this thread's verifier and
 * its key cache; the decoded message lands in a per-thread scratch area, so nothing is allocated
 * on that path except the copies of the IDs kept for the repeat case.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "binding.h"
#include "tb/tb.h"

static __thread struct tb_verified scratch;

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int tbp_binding_init_channel(struct tbp_binding *b, const struct tbp_tls_info *info,
                             const uint8_t *channel, size_t channel_len)
{
    memset(b, 0, sizeof(*b));
    b->key_params = info->tb_key_params;
    b->version = info->tb_version == TB_VERSION_RFC ? TB_VERSION_RFC : TB_VERSION_DRAFT;
    b->major = info->tb_major;
    b->minor = info->tb_minor;
    b->listener_versions = info->tb_listener_versions;
    if (b->key_params < 0)
        return 0;
    if (channel_len > sizeof(b->channel))
        return -1;
    memcpy(b->channel, channel, channel_len);
    b->channel_len = channel_len;
    return 0;
}

int tbp_binding_init(struct tbp_binding *b, SSL *ssl, const struct tbp_tls_info *info)
{
    uint8_t ch[TB_MAX_CHANNEL];
    int n = 0, ret;

    if (info->tb_key_params >= 0) {
        n = info->tb_version == TB_VERSION_RFC ? tb_channel_ekm(ssl, ch, sizeof(ch))
                                               : tb_channel_tls_unique(ssl, ch, sizeof(ch));
        if (n < 0) {
            memset(b, 0, sizeof(*b));
            b->key_params = -1;
            return -1;
        }
    }
    ret = tbp_binding_init_channel(b, info, ch, (size_t)n);
    OPENSSL_cleanse(ch, sizeof(ch));
    return ret;
}

const char *tbp_binding_header(const struct tbp_binding *b)
{
    return b->version == TB_VERSION_RFC ? "sec-token-binding" : "token-binding";
}

int tbp_binding_context(const struct tbp_binding *b, char *out, size_t cap)
{
    uint8_t ctx[3 + TB_MAX_CHANNEL];
    int n;

    if (b->key_params < 0 || b->version != TB_VERSION_RFC || b->channel_len == 0)
        return -1;
    ctx[0] = b->major;
    ctx[1] = b->minor;
    ctx[2] = (uint8_t)b->key_params;
    memcpy(ctx + 3, b->channel, b->channel_len);
    n = tb_base64url_encode(ctx, 3 + b->channel_len, out, cap);
    OPENSSL_cleanse(ctx, sizeof(ctx));
    return n < 0 ? -1 : n;
}

static void forget(struct tbp_binding *b)
{
    if (b->value != NULL)
        OPENSSL_cleanse(b->value, b->value_len);
    free(b->value);
    free(b->provided);
    free(b->referred);
    free(b->other);
    b->value = b->provided = b->referred = b->other = NULL;
    b->value_len = 0;
    b->tbh[0] = '\0';
}

void tbp_binding_dispose(struct tbp_binding *b)
{
    forget(b);
    OPENSSL_cleanse(b->channel, sizeof(b->channel));
}

static char *b64_dup(const struct tb_slice *s)
{
    size_t cap = tb_base64url_encoded_len(s->len) + 1;
    char *p = malloc(cap);

    if (p != NULL && tb_base64url_encode(s->p, s->len, p, cap) < 0) {
        free(p);
        p = NULL;
    }
    return p;
}

/* "09.<id>, 0a.<id>" for the other bindings, or NULL when there are none. */
static char *others_dup(const struct tb_roles *r)
{
    size_t i, cap = 1, len = 0;
    char *p;
    int n;

    if (r->n_other == 0)
        return NULL;
    for (i = 0; i < r->n_other; i++)
        cap += 5 + tb_base64url_encoded_len(r->other[i]->id.len);
    if ((p = malloc(cap)) == NULL)
        return NULL;
    for (i = 0; i < r->n_other; i++) {
        if (i > 0) {
            memcpy(p + len, ", ", 2);
            len += 2;
        }
        n = tb_other_id_item(r->other[i]->type, r->other[i]->id.p, r->other[i]->id.len, p + len,
                             cap - len);
        if (n < 0) {
            free(p);
            return NULL;
        }
        len += (size_t)n;
    }
    return p;
}

/* Keeps the verified value, its IDs and the provided ID's tbh for the next request. -1 on
 * allocation failure. */
static int remember(struct tbp_binding *b, const struct tbp_str *v, const struct tb_roles *r)
{
    forget(b);
    b->value = malloc(v->len + 1);
    b->provided = b64_dup(&r->provided->id);
    b->referred = r->referred ? b64_dup(&r->referred->id) : NULL;
    b->other = others_dup(r);
    if (b->value == NULL || b->provided == NULL || (r->referred && b->referred == NULL) ||
        (r->n_other && b->other == NULL) ||
        tb_tbh(r->provided->id.p, r->provided->id.len, b->tbh, sizeof(b->tbh)) != TB_TBH_LEN) {
        forget(b);
        return -1;
    }
    memcpy(b->value, v->p, v->len);
    b->value[v->len] = '\0';
    b->value_len = v->len;
    return 0;
}

int tbp_binding_check(struct tbp_binding *b, const struct tbp_http_head *h, const char **reason)
{
    const char *name = tbp_binding_header(b);
    const struct tbp_header *hdr = NULL;
    struct tb_verifier *v;
    size_t i, count = 0;
    uint64_t t0;
    int ret;

    /* without a binding: a header of any version this listener speaks is refused (the draft
     * one always, as before rfc existed), whatever b->version says (tb_version is meaningless
     * without a binding, so it must not pick the names); the other version's header on a
     * binding is stripped on the way to the origin like every spoofed one */
    if (b->key_params < 0) {
        for (i = 0; i < h->n_headers; i++) {
            if (tbp_http_name_eq(h->headers[i].name, "token-binding") ||
                ((b->listener_versions & TBP_TLS_TB_RFC) &&
                 tbp_http_name_eq(h->headers[i].name, "sec-token-binding"))) {
                *reason = "unexpected";
                return -1;
            }
        }
        return 0;
    }
    for (i = 0; i < h->n_headers; i++) /* one pass: the first of ours and how many */
        if (tbp_http_name_eq(h->headers[i].name, name) && count++ == 0)
            hdr = &h->headers[i];
    if (count != 1) {
        *reason = count == 0 ? "missing" : "multiple";
        return -1;
    }
    if (b->value != NULL && b->value_len == hdr->value.len &&
        CRYPTO_memcmp(b->value, hdr->value.p, b->value_len) == 0) {
        b->cache_hits++;
        return 0;
    }
    if ((v = tb_verifier_thread()) == NULL) {
        *reason = tb_strerror(TB_ENOMEM);
        return -1;
    }
    b->verifies++;
    t0 = mono_ns();
    ret = tb_verify_header(v, (enum tb_version)b->version, b->key_params, hdr->value.p,
                           hdr->value.len, b->channel, b->channel_len, &scratch);
    b->verify_ns = mono_ns() - t0;
    if (ret == 0 && remember(b, &hdr->value, &scratch.roles) != 0)
        ret = TB_ENOMEM;
    if (ret != 0) {
        forget(b);
        *reason = tb_strerror(ret);
        return -1;
    }
    return 0;
}
