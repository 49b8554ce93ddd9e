/*
 * The configuration loader's toolkit (see config_load.h): what every section of the file is read
 * with.
 *
 * Messages: every check states only what is wrong; tbp_cfg_fail prefixes the file, the line and
 * the setting path computed from the libconfig tree ("upstreams.app.servers[1]"), so the
 * sections never format locations themselves. An @include'd file is named as the user wrote it,
 * resolved against the config file's directory.
 *
 * Typed access: each getter checks the libconfig type first, then the range, and says what was
 * expected. Durations are integers (seconds) or strings with a unit, stored in milliseconds.
 *
 * Files: paths relative to the config file's directory, checked to be readable regular files at
 * load time, so a typo is reported with its line rather than when a worker first needs the file.
 */
#include "config_load.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tb/error.h"

/* --- messages ----------------------------------------------------------------------------- */

__attribute__((format(printf, 2, 0))) void tbp_sb_vprintf(struct tbp_sbuf *b, const char *fmt,
                                                          va_list ap)
{
    size_t room = b->len < b->cap ? b->cap - b->len : 0, i;
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);

    /* a message is one line: values quoted from the file may hold a newline or other control
     * bytes (libconfig strings can), shown as '?' */
    for (i = b->len; room > 0 && i < b->len + (size_t)(n > 0 ? n : 0) && i + 1 < b->cap; i++)
        if ((unsigned char)b->p[i] < 0x20 || b->p[i] == 0x7f)
            b->p[i] = '?';
    if (n > 0)
        b->len += (size_t)n;
}

__attribute__((format(printf, 2, 3))) void tbp_sb_printf(struct tbp_sbuf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tbp_sb_vprintf(b, fmt, ap);
    va_end(ap);
}

struct tbp_sbuf tbp_sb_make(char *p, size_t cap)
{
    struct tbp_sbuf b = {p, p != NULL ? cap : 0, 0};

    if (b.cap > 0)
        b.p[0] = '\0';
    return b;
}

/* The setting path: "upstreams.app.servers[1]"; nothing for the root. */
static void sb_path(struct tbp_sbuf *b, const config_setting_t *s)
{
    const config_setting_t *parent = config_setting_parent(s);

    if (parent == NULL)
        return;
    sb_path(b, parent);
    if (config_setting_is_group(parent))
        tbp_sb_printf(b, "%s%s", config_setting_is_root(parent) ? "" : ".", config_setting_name(s));
    else
        tbp_sb_printf(b, "[%d]", config_setting_index(s));
}

/* A file name from libconfig: an @include'd one is as written, opened relative to base_dir. */
void tbp_sb_file(struct tbp_sbuf *b, const struct tbp_loader *L, const char *file)
{
    if (file[0] != '/' && strcmp(file, L->file) != 0)
        tbp_sb_printf(b, "%s/", L->base_dir);
    tbp_sb_printf(b, "%s", file);
}

/*
 * Writes "FILE:LINE: PATH[.child]: message" into the loader's err and returns TB_EINVAL. The
 * root has no line: "FILE: child: message".
 */
__attribute__((format(printf, 4, 0))) static int vfail(struct tbp_loader *L,
                                                       const config_setting_t *s, const char *child,
                                                       const char *fmt, va_list ap)
{
    const char *file = config_setting_source_file(s) ? config_setting_source_file(s) : L->file;
    unsigned line = config_setting_source_line(s);
    size_t before;

    L->err.len = 0;
    tbp_sb_file(&L->err, L, file);
    if (line > 0 && !config_setting_is_root(s))
        tbp_sb_printf(&L->err, ":%u: ", line);
    else
        tbp_sb_printf(&L->err, ": ");
    before = L->err.len;
    sb_path(&L->err, s);
    if (child != NULL)
        tbp_sb_printf(&L->err, "%s%s", L->err.len > before ? "." : "", child);
    if (L->err.len > before)
        tbp_sb_printf(&L->err, ": ");
    tbp_sb_vprintf(&L->err, fmt, ap);
    return TB_EINVAL;
}

/* The error at setting s. */
__attribute__((format(printf, 3, 4))) int
tbp_cfg_fail(struct tbp_loader *L, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = vfail(L, s, NULL, fmt, ap);
    va_end(ap);
    return ret;
}

/* The error for a missing member `name` of group g (reported at g's line). */
__attribute__((format(printf, 4, 5))) int tbp_cfg_fail_missing(struct tbp_loader *L,
                                                               const config_setting_t *g,
                                                               const char *name, const char *fmt,
                                                               ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = vfail(L, g, name, fmt, ap);
    va_end(ap);
    return ret;
}

int tbp_cfg_fail_nomem(struct tbp_loader *L)
{
    L->err.len = 0;
    tbp_sb_printf(&L->err, "%s: out of memory", L->file);
    return TB_ENOMEM;
}

/* --- typed access ------------------------------------------------------------------------- */

/* Rejects any member of group g whose name is not in `known` (NULL-terminated). */
int tbp_cfg_check_known(struct tbp_loader *L, const config_setting_t *g, const char *const *known)
{
    int i, n = config_setting_length(g);

    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        size_t k;

        for (k = 0; known[k] != NULL && strcmp(known[k], name) != 0; k++)
            ;
        if (known[k] == NULL) {
            tbp_cfg_fail(L, s, "unknown setting (known here:");
            for (k = 0; known[k] != NULL; k++)
                tbp_sb_printf(&L->err, " %s", known[k]);
            tbp_sb_printf(&L->err, ")");
            return TB_EINVAL;
        }
    }
    return 0;
}

int tbp_cfg_expect_group(struct tbp_loader *L, const config_setting_t *s)
{
    return config_setting_is_group(s) ? 0 : tbp_cfg_fail(L, s, "expected a group { ... }");
}

/* A list of groups: ( { ... }, { ... } ), with 1..max elements. */
int tbp_cfg_expect_group_list(struct tbp_loader *L, const config_setting_t *s, int max,
                              const char *what)
{
    int i, n;

    if (!config_setting_is_list(s))
        return tbp_cfg_fail(L, s, "expected a list of groups ( { ... }, ... )");
    n = config_setting_length(s);
    if (n == 0)
        return tbp_cfg_fail(L, s, "at least one %s is required", what);
    if (n > max)
        return tbp_cfg_fail(L, s, "too many entries (%d, at most %d)", n, max);
    for (i = 0; i < n; i++)
        if (tbp_cfg_expect_group(L, config_setting_get_elem(s, (unsigned)i)) < 0)
            return TB_EINVAL;
    return 0;
}

/* An array or list of 1..max strings. */
int tbp_cfg_expect_string_list(struct tbp_loader *L, const config_setting_t *s, int max,
                               int allow_empty)
{
    int i, n;

    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return tbp_cfg_fail(L, s, "expected a list of strings [ \"...\", ... ]");
    n = config_setting_length(s);
    if (n == 0 && !allow_empty)
        return tbp_cfg_fail(L, s, "must not be empty");
    if (n > max)
        return tbp_cfg_fail(L, s, "too many entries (%d, at most %d)", n, max);
    for (i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return tbp_cfg_fail(L, e, "expected a string");
    }
    return 0;
}

int tbp_cfg_get_string(struct tbp_loader *L, const config_setting_t *s, const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return tbp_cfg_fail(L, s, "expected a string");
    *out = config_setting_get_string(s);
    return 0;
}

int tbp_cfg_get_bool(struct tbp_loader *L, const config_setting_t *s, int *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return tbp_cfg_fail(L, s, "expected true or false");
    *out = config_setting_get_bool(s);
    return 0;
}

int tbp_cfg_get_uint(struct tbp_loader *L, const config_setting_t *s, unsigned min, unsigned max,
                     unsigned *out)
{
    long long v;

    if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
        return tbp_cfg_fail(L, s, "expected an integer");
    v = config_setting_get_int64(s);
    if (v < (long long)min || v > (long long)max)
        return tbp_cfg_fail(L, s, "%lld is out of range (%u..%u)", v, min, max);
    *out = (unsigned)v;
    return 0;
}

/* "500ms", "30s", "2m", "1h": digits then a unit. 0 or -1. */
static int parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t v = 0;
    size_t i;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > 1000000000000ull)
            return -1;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s, units[i].name) == 0) {
            *ms = v * units[i].ms;
            return 0;
        }
    }
    return -1;
}

/* ms in the largest exact unit: "10s", "500ms", "2m". */
static void fmt_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* A duration: integer seconds or a string with a unit; min_ms..max_ms. */
int tbp_cfg_get_duration(struct tbp_loader *L, const config_setting_t *s, uint32_t min_ms,
                         uint32_t max_ms, uint32_t *out)
{
    char lo[24], hi[24], got[24];
    uint64_t ms;

    if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
        long long v = config_setting_get_int64(s);
        if (v < 0)
            return tbp_cfg_fail(L, s, "a duration cannot be negative");
        ms = v > 1000000000000ll ? UINT64_MAX : (uint64_t)v * TBP_MS_PER_S;
    } else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        if (parse_duration(config_setting_get_string(s), &ms) < 0)
            return tbp_cfg_fail(L, s,
                                "bad duration \"%s\" (want seconds as an integer, or a string "
                                "like \"500ms\", \"30s\", \"2m\", \"1h\")",
                                config_setting_get_string(s));
    } else {
        return tbp_cfg_fail(L, s,
                            "expected a duration (integer seconds, or \"500ms\", \"30s\", \"2m\")");
    }
    if (ms < min_ms || ms > max_ms) {
        fmt_duration(min_ms, lo, sizeof(lo));
        fmt_duration(max_ms, hi, sizeof(hi));
        if (ms == UINT64_MAX)
            snprintf(got, sizeof(got), "too long");
        else
            fmt_duration(ms, got, sizeof(got));
        return tbp_cfg_fail(L, s, "%s is out of range (%s..%s)", got, lo, hi);
    }
    *out = (uint32_t)ms;
    return 0;
}

/* "512", "64k", "10M", "1g": digits then an optional binary unit. 0 or -1 (also past 2^60). */
static int parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mult = 1;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > (1ull << 60))
            return -1;
    }
    if (*s == 'k' || *s == 'K')
        mult = 1ull << 10;
    else if (*s == 'm' || *s == 'M')
        mult = 1ull << 20;
    else if (*s == 'g' || *s == 'G')
        mult = 1ull << 30;
    else if (*s != '\0')
        return -1;
    if (*s != '\0' && s[1] != '\0')
        return -1;
    if (v > (1ull << 60) / mult)
        return -1;
    *out = v * mult;
    return 0;
}

int tbp_cfg_get_size(struct tbp_loader *L, const config_setting_t *s, uint64_t *out)
{
    uint64_t v;

    if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
        long long n = config_setting_get_int64(s);
        if (n < 0)
            return tbp_cfg_fail(L, s, "a size cannot be negative");
        v = (uint64_t)n;
    } else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        if (parse_size(config_setting_get_string(s), &v) < 0)
            return tbp_cfg_fail(L, s,
                                "bad size \"%s\" (want bytes as an integer, or a string like "
                                "\"512k\", \"10m\", \"1g\")",
                                config_setting_get_string(s));
    } else {
        return tbp_cfg_fail(L, s, "expected a size (integer bytes, or \"512k\", \"10m\", \"1g\")");
    }
    if (v > TBP_MAX_BODY_SIZE_LIMIT)
        return tbp_cfg_fail(L, s, "%llu is out of range (0..%llu)", (unsigned long long)v,
                            (unsigned long long)TBP_MAX_BODY_SIZE_LIMIT);
    *out = v;
    return 0;
}

/* Optional members: absent leaves *out alone. */
int tbp_cfg_opt_bool(struct tbp_loader *L, const config_setting_t *g, const char *name, int *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    return s != NULL ? tbp_cfg_get_bool(L, s, out) : 0;
}

int tbp_cfg_opt_uint(struct tbp_loader *L, const config_setting_t *g, const char *name,
                     unsigned min, unsigned max, unsigned *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    return s != NULL ? tbp_cfg_get_uint(L, s, min, max, out) : 0;
}

int tbp_cfg_opt_duration(struct tbp_loader *L, const config_setting_t *g, const char *name,
                         uint32_t min_ms, uint32_t max_ms, uint32_t *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    return s != NULL ? tbp_cfg_get_duration(L, s, min_ms, max_ms, out) : 0;
}

int tbp_cfg_opt_size(struct tbp_loader *L, const config_setting_t *g, const char *name,
                     uint64_t *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    return s != NULL ? tbp_cfg_get_size(L, s, out) : 0;
}

/* --- files -------------------------------------------------------------------------------- */

/* 0 when `path` is a readable regular file; else a positive errno, or -1 for not regular. */
int tbp_cfg_file_check(const char *path)
{
    struct stat st;
    int fd, ret = 0;

    /* stat first: a device node or FIFO is refused without being opened (an open can have side
     * effects on a device); then open, for the permission check stat cannot make */
    if (stat(path, &st) == -1)
        return errno;
    if (!S_ISREG(st.st_mode))
        return -1;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1)
        return errno;
    if (fstat(fd, &st) == -1)
        ret = errno;
    else if (!S_ISREG(st.st_mode))
        ret = -1;
    close(fd);
    return ret;
}

const char *tbp_cfg_file_check_str(int err)
{
    return err == -1 ? "not a regular file" : strerror(err);
}

/* `p` made absolute against `base` (when relative), owned by cfg; NULL on no memory. */
char *tbp_cfg_resolve_path(struct tbp_config *cfg, const char *base, const char *p)
{
    size_t bl, pl;
    char *out;

    if (p[0] == '/')
        return tbp_cfg_strdup(cfg, p);
    bl = strlen(base);
    pl = strlen(p);
    out = tbp_cfg_alloc(cfg, bl + pl + 2);
    if (out != NULL)
        snprintf(out, bl + pl + 2, "%s%s%s", base, bl > 0 && base[bl - 1] == '/' ? "" : "/", p);
    return out;
}

/* Setting s names a readable regular file: its absolute path, owned by the config. */
int tbp_cfg_file(struct tbp_loader *L, const config_setting_t *s, const char **out)
{
    const char *v = "";
    char *path;
    int ret;

    if ((ret = tbp_cfg_get_string(L, s, &v)) < 0)
        return ret;
    if (v[0] == '\0')
        return tbp_cfg_fail(L, s, "must not be empty");
    if ((path = tbp_cfg_resolve_path(L->cfg, L->base_dir, v)) == NULL)
        return tbp_cfg_fail_nomem(L);
    if ((ret = tbp_cfg_file_check(path)) != 0) {
        if (strcmp(path, v) == 0)
            return tbp_cfg_fail(L, s, "cannot read \"%s\": %s", v, tbp_cfg_file_check_str(ret));
        return tbp_cfg_fail(L, s, "cannot read \"%s\" (%s): %s", v, path,
                            tbp_cfg_file_check_str(ret));
    }
    *out = path;
    return 0;
}
