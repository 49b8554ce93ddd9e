/*
 * `tbtoken cookie`: bound cookies (tb/cookie.h) on the command line, for operators and tests.
 *
 *   tbtoken cookie genkey [--id ID]
 *   tbtoken cookie bind  --keys FILE (--tbid B64URL | --tbh TBH) [--] NAME VALUE
 *   tbtoken cookie check --keys FILE (--tbid B64URL | --tbh TBH) [--] NAME VALUE
 *
 * `genkey` prints one key-file line (a new random key) to append to a cookie key file; the id
 * defaults to "k" and the UTC time (kYYYYMMDDhhmmss), so keys made one after another sort in
 * the order they were made. `bind` prints VALUE with the suffix that binds it to the Token
 * Binding ID, as the proxy would set it; `check` prints one JSON object: {"verdict":"ok",
 * "value":ORIGINAL} or {"verdict":"error","reason":REASON} with REASON from tb_strerror
 * ("unbound", "mismatch", "unknown_key"). The TBID is given as the base64url of its bytes (what
 * Sec-Provided-Token-Binding-ID carries) or directly as its tbh.
 *
 * Exit status: 0 ok, 1 error verdict (or a failure), 2 bad usage or an unusable key file. The key
 * file's secrets are never printed; messages about it name the line, not its content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cmd.h"
#include "tb/tb.h"

#define KEY_LINE_MAX (TB_COOKIE_MAX_KID + 48)

/* The parsed command line of bind and check. */
struct cookie_opts {
    const char *keys;         /* --keys FILE */
    const char *tbid;         /* --tbid B64URL, or NULL */
    const char *tbh_arg;      /* --tbh TBH, or NULL */
    const char *id;           /* --id ID (genkey) */
    const char *name, *value; /* the two positional arguments (bind, check) */
    char tbh[TB_TBH_LEN + 1]; /* from --tbh, or computed from --tbid */
};

static int usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "tbtoken cookie: %s\n", why);
    fprintf(stderr,
            "usage: tbtoken cookie genkey [--id ID]\n"
            "       tbtoken cookie bind --keys FILE (--tbid B64URL | --tbh TBH) [--] NAME VALUE\n"
            "       tbtoken cookie check --keys FILE (--tbid B64URL | --tbh TBH) [--] NAME VALUE\n"
            "ID: 1..16 of A-Z a-z 0-9 _ - (default kYYYYMMDDhhmmss, UTC)\n"
            "B64URL: the Token Binding ID as base64url; TBH: base64url(SHA-256(TBID)), 43 "
            "characters\n");
    return TBTOKEN_EXIT_USAGE;
}

/* 1 if s is exactly TB_TBH_LEN characters that decode as base64url to 32 bytes. */
static int tbh_ok(const char *s)
{
    uint8_t md[33];

    return strlen(s) == TB_TBH_LEN && tb_base64url_decode(s, TB_TBH_LEN, md, sizeof(md)) == 32;
}

/* Parses the options of genkey (genkey != 0) or bind/check. Returns 0 or the usage status. */
static int parse_opts(int argc, char **argv, int genkey, struct cookie_opts *o)
{
    int i;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot;

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (genkey && strcmp(a, "--id") == 0)
            slot = &o->id;
        else if (!genkey && strcmp(a, "--keys") == 0)
            slot = &o->keys;
        else if (!genkey && strcmp(a, "--tbid") == 0)
            slot = &o->tbid;
        else if (!genkey && strcmp(a, "--tbh") == 0)
            slot = &o->tbh_arg;
        else
            return usage("unknown option");
        if (i + 1 >= argc)
            return usage("option needs a value");
        if (*slot != NULL)
            return usage("option given twice");
        *slot = argv[++i];
    }
    if (genkey)
        return i == argc ? 0 : usage("genkey takes no arguments besides --id");
    if (argc - i != 2)
        return usage("NAME and VALUE are needed");
    o->name = argv[i];
    o->value = argv[i + 1];
    if (o->keys == NULL)
        return usage("--keys FILE is needed");
    if ((o->tbid == NULL) == (o->tbh_arg == NULL))
        return usage("exactly one of --tbid and --tbh is needed");
    return 0;
}

/* Fills o->tbh from --tbh or --tbid. Returns 0 or the usage status. */
static int resolve_tbh(struct cookie_opts *o)
{
    uint8_t *id = NULL;
    size_t len;
    int n, ret = 0;

    if (o->tbh_arg != NULL) {
        if (!tbh_ok(o->tbh_arg))
            return usage("--tbh must be 43 base64url characters (a SHA-256 digest)");
        memcpy(o->tbh, o->tbh_arg, TB_TBH_LEN + 1);
        return 0;
    }
    len = strlen(o->tbid);
    if (len == 0 || len > TB_MAX_HEADER)
        return usage("--tbid must be the base64url of a Token Binding ID");
    if ((id = malloc(TB_MAX_MESSAGE)) == NULL) {
        fprintf(stderr, "tbtoken cookie: out of memory\n");
        return TBTOKEN_EXIT_VERDICT_ERROR;
    }
    n = tb_base64url_decode(o->tbid, len, id, TB_MAX_MESSAGE);
    if (n <= 0)
        ret = usage("--tbid must be the base64url of a Token Binding ID");
    else if (tb_tbh(id, (size_t)n, o->tbh, sizeof(o->tbh)) != TB_TBH_LEN)
        ret = TBTOKEN_EXIT_VERDICT_ERROR;
    free(id);
    return ret;
}

static int load_keys(const char *path, struct tb_cookie_keyring **kr)
{
    char err[512];

    if (tb_cookie_keyring_load(path, kr, err, sizeof(err)) != 0) {
        fprintf(stderr, "tbtoken cookie: %s\n", err);
        return TBTOKEN_EXIT_USAGE;
    }
    return 0;
}

static int cmd_genkey(int argc, char **argv)
{
    struct cookie_opts o = {0};
    char id[TB_COOKIE_MAX_KID + 1], line[KEY_LINE_MAX];
    time_t now = time(NULL);
    struct tm tm;
    int ret, n;

    if ((ret = parse_opts(argc, argv, 1, &o)) != 0)
        return ret;
    if (o.id == NULL) {
        if (gmtime_r(&now, &tm) == NULL || strftime(id, sizeof(id), "k%Y%m%d%H%M%S", &tm) == 0)
            return TBTOKEN_EXIT_VERDICT_ERROR;
        o.id = id;
    }
    n = tb_cookie_key_generate(o.id, line, sizeof(line));
    if (n == TB_EINVAL)
        return usage("--id must be 1..16 characters of A-Z a-z 0-9 _ -");
    if (n < 0) {
        fprintf(stderr, "tbtoken cookie: cannot generate a key: %s\n", tb_strerror(n));
        return TBTOKEN_EXIT_VERDICT_ERROR;
    }
    ret = fwrite(line, 1, (size_t)n, stdout) == (size_t)n && fflush(stdout) == 0
              ? 0
              : TBTOKEN_EXIT_VERDICT_ERROR;
    OPENSSL_cleanse(line, sizeof(line));
    return ret;
}

static int cmd_bind(int argc, char **argv)
{
    struct cookie_opts o = {0};
    struct tb_cookie_keyring *kr = NULL;
    char suffix[TB_COOKIE_SUFFIX_MAX + 1];
    int ret, n;

    if ((ret = parse_opts(argc, argv, 0, &o)) != 0 || (ret = resolve_tbh(&o)) != 0 ||
        (ret = load_keys(o.keys, &kr)) != 0)
        goto Exit;
    n = tb_cookie_bind(kr, o.name, strlen(o.name), o.value, strlen(o.value), o.tbh, suffix,
                       sizeof(suffix));
    if (n < 0) {
        fprintf(stderr, "tbtoken cookie: bind failed: %s\n", tb_strerror(n));
        ret = TBTOKEN_EXIT_VERDICT_ERROR;
        goto Exit;
    }
    printf("%s%s\n", o.value, suffix);
    ret = fflush(stdout) == 0 ? 0 : TBTOKEN_EXIT_VERDICT_ERROR;
Exit:
    tb_cookie_keyring_free(kr);
    return ret;
}

static int cmd_check(int argc, char **argv)
{
    struct cookie_opts o = {0};
    struct tb_cookie_keyring *kr = NULL;
    json_t *obj = NULL, *v;
    char *s = NULL;
    size_t orig_len = 0;
    int ret, rc;

    if ((ret = parse_opts(argc, argv, 0, &o)) != 0 || (ret = resolve_tbh(&o)) != 0 ||
        (ret = load_keys(o.keys, &kr)) != 0)
        goto Exit;
    rc = tb_cookie_check(kr, o.name, strlen(o.name), o.value, strlen(o.value), o.tbh, &orig_len);
    obj = json_object();
    ret = TBTOKEN_EXIT_VERDICT_ERROR;
    if (obj == NULL)
        goto Exit;
    if (rc == 0) {
        json_object_set_new(obj, "verdict", json_string("ok"));
        /* argv may hold bytes that are not UTF-8, which a JSON string cannot carry */
        if ((v = json_stringn(o.value, orig_len)) == NULL) {
            fprintf(stderr, "tbtoken cookie: the value is not UTF-8\n");
            goto Exit;
        }
        json_object_set_new(obj, "value", v);
    } else {
        json_object_set_new(obj, "verdict", json_string("error"));
        json_object_set_new(obj, "reason", json_string(tb_strerror(rc)));
    }
    if ((s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        goto Exit;
    printf("%s\n", s);
    if (fflush(stdout) == 0)
        ret = rc == 0 ? 0 : TBTOKEN_EXIT_VERDICT_ERROR;
Exit:
    free(s);
    json_decref(obj);
    tb_cookie_keyring_free(kr);
    return ret;
}

int tbtoken_cookie_main(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "genkey") == 0)
        return cmd_genkey(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "bind") == 0)
        return cmd_bind(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (argc >= 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
        usage(NULL);
        return 0;
    }
    return usage(argc < 1 ? "no cookie command" : "unknown cookie command");
}
