/*
 * Configuration generations: one loaded configuration together with what is built from it for
 * every worker alike (the listeners' TLS contexts), reference-counted so that a reload (SIGHUP)
 * can put a new one in place while the connections accepted under an older one keep theirs.
 *
 * Who holds a reference: the main thread on the generation in use (struct tbp_proxy's current),
 * and each worker on every generation it has a per-worker state for (worker.h: struct
 * tbp_wgen), i.e. the one new connections get and the older ones still used by open
 * connections. The main thread takes a worker's reference before it hands the generation over
 * (the mailbox), so a generation can never be freed between the hand-over and the worker's
 * taking it. The last tbp_gen_unref frees the configuration and the contexts, on whichever
 * thread drops it: nothing in a generation is tied to a thread.
 *
 * A generation is as immutable as its configuration: only `refs` changes after tbp_gen_new.
 */
#ifndef TBP_GEN_H
#define TBP_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tls.h"

struct tbp_gen {
    struct tbp_config *cfg; /* owned */
    struct tbp_tls **tls;   /* one context per cfg->listeners entry, owned */
    unsigned id;            /* 1 for the configuration the process started with, +1 per reload */
    int64_t loaded;         /* Unix seconds: when the configuration was loaded */
    unsigned refs;          /* atomic; the generation is freed when it drops to 0 */
};

/*
 * Builds a generation from cfg: one TLS context per listener (certificate, key, ciphers, tickets
 * and the Token Binding ALPN preferences), each taking over the ticket keys of the context that
 * `prev` (NULL: none) had for the same address. Returns 0 with *out set (one reference, owned by
 * the caller; the generation now owns cfg), or -1 with "listen ADDR: what" in err, cfg untouched
 * and still the caller's.
 */
int tbp_gen_new(struct tbp_config *cfg, const struct tbp_gen *prev, unsigned id,
                struct tbp_gen **out, char *err, size_t errlen);

/* Takes one more reference (any thread). */
void tbp_gen_ref(struct tbp_gen *g);

/* Drops one reference (any thread); the last one frees g and everything it owns. NULL: no-op. */
void tbp_gen_unref(struct tbp_gen *g);

#endif
