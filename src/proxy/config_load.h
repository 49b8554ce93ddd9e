/*
 * Internal to the configuration loader (config.c, config_read.c, config_route.c): not for the
 * rest of the daemon, which sees only config.h.
 *
 * The loader is split by concern: config_read.c holds the toolkit every section uses (error
 * messages with file:line and the setting path, typed access to libconfig settings, durations,
 * files); config.c the config object (memory, defaults), the global sections, loading, quick
 * mode and the queries; config_route.c the routes and the companion-module settings (bound
 * cookies, bound JWTs, federation) with the top-level cookie_keys they depend on.
 *
 * Conventions shared by every function below that takes a loader: they return 0 or a negative
 * TB_E* code; on failure the loader's err holds the one-line message ("FILE:LINE: path: what"),
 * and nothing else has to be undone (whatever was allocated is owned by the config and freed
 * with it).
 */
#ifndef TBP_CONFIG_LOAD_H
#define TBP_CONFIG_LOAD_H

#include <libconfig.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define TBP_MS_PER_S 1000u
#define TBP_MS_PER_DAY (86400u * 1000)

/* One thing the config owns: plain memory (free_fn NULL: free()) or a library object. */
struct tbp_config_owned {
    void *p;
    void (*free_fn)(void *);
};

/* Every allocation and object the config owns, freed in reverse order by tbp_config_free. */
struct tbp_config_mem {
    size_t n, cap;
    struct tbp_config_owned *items;
};

/* A bounded string builder: writes what fits, always NUL-terminated when cap > 0. */
struct tbp_sbuf {
    char *p;
    size_t cap, len;
};

/* State of one tbp_config_load. */
struct tbp_loader {
    struct tbp_config *cfg;
    const char *file;     /* the path as given, used in messages */
    const char *base_dir; /* absolute directory of the file, for relative paths */
    struct tbp_sbuf err;
    SSL_CTX *ssl; /* made on first use, to check cipher lists */
};

/* --- the config's memory (config.c) ------------------------------------------------------- */

/* Zeroed memory (size 0: 1 byte) owned by cfg, or NULL. */
void *tbp_cfg_alloc(struct tbp_config *cfg, size_t size);
/* A copy of s owned by cfg, or NULL. */
char *tbp_cfg_strdup(struct tbp_config *cfg, const char *s);
/*
 * Hands object p to cfg: tbp_config_free calls free_fn(p). Returns 0; on no memory calls
 * free_fn(p) at once and returns TB_ENOMEM, so p is never leaked either way.
 */
int tbp_cfg_adopt(struct tbp_config *cfg, void *p, void (*free_fn)(void *));

/* --- messages (config_read.c) ------------------------------------------------------------- */

struct tbp_sbuf tbp_sb_make(char *p, size_t cap);
__attribute__((format(printf, 2, 0))) void tbp_sb_vprintf(struct tbp_sbuf *b, const char *fmt,
                                                          va_list ap);
__attribute__((format(printf, 2, 3))) void tbp_sb_printf(struct tbp_sbuf *b, const char *fmt, ...);
/* A file name from libconfig: an @include'd one is as written, opened relative to base_dir. */
void tbp_sb_file(struct tbp_sbuf *b, const struct tbp_loader *L, const char *file);

/* Writes "FILE:LINE: PATH: message" (the root has no line) into L->err; returns TB_EINVAL. */
__attribute__((format(printf, 3, 4))) int
tbp_cfg_fail(struct tbp_loader *L, const config_setting_t *s, const char *fmt, ...);
/* The same for a missing member `name` of group g (reported at g's line, path "g.name"). */
__attribute__((format(printf, 4, 5))) int tbp_cfg_fail_missing(struct tbp_loader *L,
                                                               const config_setting_t *g,
                                                               const char *name, const char *fmt,
                                                               ...);
/* "FILE: out of memory"; returns TB_ENOMEM. */
int tbp_cfg_fail_nomem(struct tbp_loader *L);

/* --- typed access (config_read.c) --------------------------------------------------------- */

/* Rejects any member of group g whose name is not in `known` (NULL-terminated). */
int tbp_cfg_check_known(struct tbp_loader *L, const config_setting_t *g, const char *const *known);
int tbp_cfg_expect_group(struct tbp_loader *L, const config_setting_t *s);
/* A list of groups ( { ... }, ... ) with 1..max elements; `what` names one in messages. */
int tbp_cfg_expect_group_list(struct tbp_loader *L, const config_setting_t *s, int max,
                              const char *what);
/* An array or list of 0 (allow_empty) or 1..max strings. */
int tbp_cfg_expect_string_list(struct tbp_loader *L, const config_setting_t *s, int max,
                               int allow_empty);
/* *out points into the libconfig tree: copy it (tbp_cfg_strdup) to keep it past the load. */
int tbp_cfg_get_string(struct tbp_loader *L, const config_setting_t *s, const char **out);
int tbp_cfg_get_bool(struct tbp_loader *L, const config_setting_t *s, int *out);
int tbp_cfg_get_uint(struct tbp_loader *L, const config_setting_t *s, unsigned min, unsigned max,
                     unsigned *out);
/* A duration: integer seconds or "500ms" / "30s" / "2m" / "1h", in min_ms..max_ms. */
int tbp_cfg_get_duration(struct tbp_loader *L, const config_setting_t *s, uint32_t min_ms,
                         uint32_t max_ms, uint32_t *out);
/*
 * A size in bytes: an integer, or a string of digits with an optional unit "k", "m" or "g"
 * (KiB, MiB, GiB; either case: "512k", "10m", "1g"); 0..TBP_MAX_BODY_SIZE_LIMIT.
 */
int tbp_cfg_get_size(struct tbp_loader *L, const config_setting_t *s, uint64_t *out);
/* Optional members of g: absent leaves *out alone. */
int tbp_cfg_opt_bool(struct tbp_loader *L, const config_setting_t *g, const char *name, int *out);
int tbp_cfg_opt_uint(struct tbp_loader *L, const config_setting_t *g, const char *name,
                     unsigned min, unsigned max, unsigned *out);
int tbp_cfg_opt_duration(struct tbp_loader *L, const config_setting_t *g, const char *name,
                         uint32_t min_ms, uint32_t max_ms, uint32_t *out);
int tbp_cfg_opt_size(struct tbp_loader *L, const config_setting_t *g, const char *name,
                     uint64_t *out);

/* --- files (config_read.c) ---------------------------------------------------------------- */

/* 0 when `path` is a readable regular file; else a positive errno, or -1 for not regular. */
int tbp_cfg_file_check(const char *path);
/* The text for a tbp_cfg_file_check result. */
const char *tbp_cfg_file_check_str(int err);
/* `p` made absolute against `base` (when relative), owned by cfg; NULL on no memory. */
char *tbp_cfg_resolve_path(struct tbp_config *cfg, const char *base, const char *p);
/*
 * Setting s names a readable regular file (a non-empty string, relative to the config file's
 * directory): *out is its absolute path, owned by the config.
 */
int tbp_cfg_file(struct tbp_loader *L, const config_setting_t *s, const char **out);

/* --- routes and the companion module (config_route.c) ------------------------------------- */

/* Top-level `cookie_keys`: loads the keyring into L->cfg->cookie_keys. Before the routes. */
int tbp_cfg_parse_cookie_keys(struct tbp_loader *L, const config_setting_t *root);
/* `routes`: needs the upstreams, token_binding and cookie_keys already read. */
int tbp_cfg_parse_routes(struct tbp_loader *L, const config_setting_t *root);
/* `authserv_id` (default: the host name, tbp_cfg_default_authserv_id). */
int tbp_cfg_parse_authserv_id(struct tbp_loader *L, const config_setting_t *root);
/* The host name when it is a usable authserv-id (a copy the config owns), else "tbproxy"; NULL
 * when out of memory. */
const char *tbp_cfg_default_authserv_id(struct tbp_config *cfg);

/* ASCII lower case. */
static inline char tbp_cfg_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

#endif
