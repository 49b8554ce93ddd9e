/*
 * Configuration generations (see gen.h): a configuration and its listeners' TLS contexts, built
 * and checked in one step so that a certificate or key that cannot be used is a validation error
 * of the configuration that names it, found before anything is swapped in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gen.h"

_Static_assert(TBP_TLS_CLIENT_CERT_OFF == (int)TBP_CLIENT_CERT_OFF &&
                   TBP_TLS_CLIENT_CERT_OPTIONAL == (int)TBP_CLIENT_CERT_OPTIONAL &&
                   TBP_TLS_CLIENT_CERT_REQUIRED == (int)TBP_CLIENT_CERT_REQUIRED,
               "client certificate modes");
_Static_assert(TBP_TLS_TB_DRAFT == TBP_TBV_DRAFT && TBP_TLS_TB_RFC == TBP_TBV_RFC,
               "Token Binding version bits");

/* The TLS settings of listener i of cfg. */
static void tls_settings(const struct tbp_config *cfg, size_t i, struct tbp_tls_settings *s)
{
    const struct tbp_tls_config *t = &cfg->listeners[i].tls;
    size_t k;

    *s = (struct tbp_tls_settings){0};
    s->cert = t->cert;
    s->key = t->key;
    s->ciphers = t->ciphers;
    s->groups = t->groups;
    s->tickets = t->tickets;
    s->ticket_rotation = t->ticket_key_rotation_ms / 1000;
    s->tb_enabled = cfg->tb.enabled;
    s->tb_versions = cfg->listeners[i].tb_versions;
    s->n_tb_key_types = cfg->tb.n_key_types < 2 ? cfg->tb.n_key_types : 2;
    s->n_tb_protocols = cfg->tb.n_protocols < 2 ? cfg->tb.n_protocols : 2;
    for (k = 0; k < s->n_tb_protocols; k++)
        s->tb_protocols[k] = cfg->tb.protocols[k] == TBP_PROTO_H2 ? TBP_ALPN_H2 : TBP_ALPN_H1;
    for (k = 0; k < s->n_tb_key_types; k++)
        s->tb_key_types[k] = cfg->tb.key_types[k];
    s->client_cert = (int)t->client_cert;
    s->client_ca = t->client_ca;
    s->client_crl = t->client_crl;
}

static void gen_free(struct tbp_gen *g)
{
    size_t i;

    for (i = 0; g->tls != NULL && i < g->cfg->n_listeners; i++)
        tbp_tls_free(g->tls[i]);
    free(g->tls);
    tbp_config_free(g->cfg);
    free(g);
}

int tbp_gen_new(struct tbp_config *cfg, const struct tbp_gen *prev, unsigned id,
                struct tbp_gen **out, char *err, size_t errlen)
{
    struct tbp_gen *g = calloc(1, sizeof(*g));
    char why[TBP_CONFIG_ERRLEN];
    size_t i;
    int k;

    *out = NULL;
    if (g == NULL || (g->tls = calloc(cfg->n_listeners, sizeof(*g->tls))) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(g);
        return -1;
    }
    g->cfg = cfg;
    for (i = 0; i < cfg->n_listeners; i++) {
        struct tbp_tls_settings s;
        tls_settings(cfg, i, &s);
        if ((g->tls[i] = tbp_tls_new(&s, why, sizeof(why))) == NULL) {
            snprintf(err, errlen, "listen %s: %s", cfg->listeners[i].addr.text, why);
            g->cfg = NULL; /* still the caller's */
            for (; i > 0; i--)
                tbp_tls_free(g->tls[i - 1]);
            free(g->tls);
            free(g);
            return -1;
        }
        if (prev != NULL && (k = tbp_config_listener_find(prev->cfg, &cfg->listeners[i].addr)) >= 0)
            tbp_tls_inherit_tickets(g->tls[i], prev->tls[k]);
    }
    g->id = id;
    g->loaded = (int64_t)time(NULL);
    g->refs = 1;
    *out = g;
    return 0;
}

void tbp_gen_ref(struct tbp_gen *g)
{
    __atomic_add_fetch(&g->refs, 1u, __ATOMIC_RELAXED);
}

void tbp_gen_unref(struct tbp_gen *g)
{
    if (g != NULL && __atomic_sub_fetch(&g->refs, 1u, __ATOMIC_ACQ_REL) == 0)
        gen_free(g);
}
