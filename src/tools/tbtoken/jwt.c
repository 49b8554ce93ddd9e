/*
 * `tbtoken jwt`: bound JWTs (tb/jwt.h) on the command line, for operators, demos and tests.
 *
 *   tbtoken jwt issue --alg ES256|RS256|HS256 --key FILE (--tbid B64URL | --tbh TBH)
 *                     --claims JSON|@FILE [--kid KID] [--ttl SECONDS]
 *   tbtoken jwt verify (--keys FILE | --secret FILE) --alg ALG[,ALG...] (--tbid B64URL | --tbh TBH)
 *                      [--issuer ISS] [--audience AUD] [--leeway SECONDS] [--now EPOCH]
 *                      [--] TOKEN|-
 *
 * `issue` prints a token whose cnf.tbh binds it to the Token Binding ID: --key is a PEM private
 * key (ES256: P-256, RS256: RSA >= 2048) or, for HS256, a secret file (>= 32 bytes, a trailing
 * newline ignored). --ttl sets "iat" to now and "exp" to now + SECONDS unless the claims already
 * have them. `verify` checks a token exactly as the proxy does (tb_jwt_check) and prints one
 * JSON object: {"verdict":"ok","sub":SUB,"exp":EXP} or {"verdict":"error","reason":REASON}, with
 * REASON from tb_strerror ("alg", "expired", "unbound", "mismatch", ...). --keys takes PEM
 * public keys / certificates or a JWKS; --secret an HMAC secret file. TOKEN "-" reads it from
 * stdin, which keeps a live token out of the process list. --now fixes the clock (tests).
 *
 * Exit status: 0 ok, 1 error verdict (or a failure), 2 bad usage or an unusable key. Keys and
 * tokens are never written to stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cmd.h"
#include "tb/tb.h"

#define MAX_FILE (1024 * 1024)
#define MAX_TBID 1024

struct jwt_opts {
    const char *alg;            /* --alg */
    const char *key;            /* issue: --key FILE */
    const char *keys, *secret;  /* verify: --keys FILE, --secret FILE */
    const char *tbid, *tbh_arg; /* --tbid B64URL, --tbh TBH */
    const char *claims;         /* --claims JSON or @FILE */
    const char *kid;            /* --kid */
    const char *ttl, *leeway;   /* --ttl, --leeway (seconds) */
    const char *now;            /* --now (epoch seconds) */
    const char *issuer, *audience;
    const char *token;        /* the positional argument of verify */
    char tbh[TB_TBH_LEN + 1]; /* from --tbh, or computed from --tbid */
};

static int usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "tbtoken jwt: %s\n", why);
    fprintf(stderr,
            "usage: tbtoken jwt issue --alg ES256|RS256|HS256 --key FILE (--tbid B64URL | --tbh "
            "TBH)\n"
            "                         --claims JSON|@FILE [--kid KID] [--ttl SECONDS]\n"
            "       tbtoken jwt verify (--keys FILE | --secret FILE) --alg ALG[,ALG...]\n"
            "                          (--tbid B64URL | --tbh TBH) [--issuer ISS] [--audience "
            "AUD]\n"
            "                          [--leeway SECONDS] [--now EPOCH] [--] TOKEN|-\n"
            "--key: PEM private key (ES256, RS256) or secret file (HS256, >= 32 bytes)\n"
            "--keys: PEM public keys or certificates, or a JWKS; --secret: HMAC secret file\n"
            "B64URL: the Token Binding ID as base64url; TBH: base64url(SHA-256(TBID))\n");
    return TBTOKEN_EXIT_USAGE;
}

/* Non-negative decimal seconds, at most max. Returns 0 or -1. */
static int parse_seconds(const char *s, long long max, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    return s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 && *out <= max ? 0 : -1;
}

/* Fills o->tbh from --tbh or --tbid (exactly one of them). Returns 0 or the usage status. */
static int resolve_tbh(struct jwt_opts *o)
{
    uint8_t id[MAX_TBID], md[33];
    int n;

    if ((o->tbid == NULL) == (o->tbh_arg == NULL))
        return usage("give exactly one of --tbid and --tbh");
    if (o->tbh_arg != NULL) {
        if (strlen(o->tbh_arg) != TB_TBH_LEN ||
            tb_base64url_decode(o->tbh_arg, TB_TBH_LEN, md, sizeof(md)) != 32)
            return usage("--tbh must be 43 base64url characters (a SHA-256 hash)");
        memcpy(o->tbh, o->tbh_arg, TB_TBH_LEN + 1);
        return 0;
    }
    n = tb_base64url_decode(o->tbid, strlen(o->tbid), id, sizeof(id));
    if (n <= 0)
        return usage("--tbid must be the base64url of a Token Binding ID");
    if (tb_tbh(id, (size_t)n, o->tbh, sizeof(o->tbh)) < 0) {
        fprintf(stderr, "tbtoken jwt: cannot hash the Token Binding ID\n");
        return TBTOKEN_EXIT_VERDICT_ERROR;
    }
    return 0;
}

/* The option table: name -> slot. Returns the slot for a, or NULL. */
static const char **slot_for(struct jwt_opts *o, const char *a, int verify)
{
    static const char *const both[] = {"--alg", "--tbid", "--tbh"};
    const char **common[] = {&o->alg, &o->tbid, &o->tbh_arg};
    size_t i;

    for (i = 0; i < sizeof(both) / sizeof(both[0]); i++)
        if (strcmp(a, both[i]) == 0)
            return common[i];
    if (!verify) {
        if (strcmp(a, "--key") == 0)
            return &o->key;
        if (strcmp(a, "--claims") == 0)
            return &o->claims;
        if (strcmp(a, "--kid") == 0)
            return &o->kid;
        if (strcmp(a, "--ttl") == 0)
            return &o->ttl;
        return NULL;
    }
    if (strcmp(a, "--keys") == 0)
        return &o->keys;
    if (strcmp(a, "--secret") == 0)
        return &o->secret;
    if (strcmp(a, "--issuer") == 0)
        return &o->issuer;
    if (strcmp(a, "--audience") == 0)
        return &o->audience;
    if (strcmp(a, "--leeway") == 0)
        return &o->leeway;
    if (strcmp(a, "--now") == 0)
        return &o->now;
    return NULL;
}

/* Parses options; verify takes one positional TOKEN, issue none. Returns 0 or usage status. */
static int parse_opts(int argc, char **argv, int verify, struct jwt_opts *o)
{
    const char **slot;
    int i;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if ((slot = slot_for(o, a, verify)) == NULL)
            return usage("unknown option");
        if (i + 1 >= argc)
            return usage("option needs a value");
        if (*slot != NULL)
            return usage("an option is given twice");
        *slot = argv[++i];
    }
    if (verify) {
        if (i != argc - 1)
            return usage("exactly one TOKEN argument is needed");
        o->token = argv[i];
    } else if (i != argc) {
        return usage("issue takes no positional argument");
    }
    if (o->alg == NULL)
        return usage("--alg is required");
    return resolve_tbh(o);
}

/* Reads a file of at most MAX_FILE bytes into a NUL-terminated malloc'd buffer; NULL on error
 * (message printed). The caller wipes and frees it (it may hold a key). */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "tbtoken jwt: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if ((buf = malloc(MAX_FILE + 1)) != NULL) {
        n = fread(buf, 1, MAX_FILE + 1, f);
        if (ferror(f) || n > MAX_FILE) {
            fprintf(stderr, "tbtoken jwt: %s: unreadable or over %d bytes\n", path, MAX_FILE);
            OPENSSL_clear_free(buf, MAX_FILE + 1);
            buf = NULL;
        } else {
            buf[n] = '\0';
            *len = n;
        }
    }
    fclose(f);
    return buf;
}

/* --claims as a JSON object, with iat / exp from --ttl when it is given and they are absent. */
static char *claims_text(const struct jwt_opts *o)
{
    json_t *c = NULL;
    char *file = NULL, *out = NULL;
    size_t len = 0;
    long long ttl = 0;
    time_t now = time(NULL);

    if (o->claims[0] == '@') {
        if ((file = read_file(o->claims + 1, &len)) == NULL)
            return NULL;
        c = json_loadb(file, len, JSON_REJECT_DUPLICATES, NULL);
        free(file);
    } else {
        c = json_loads(o->claims, JSON_REJECT_DUPLICATES, NULL);
    }
    if (!json_is_object(c)) {
        fprintf(stderr, "tbtoken jwt: --claims is not a JSON object\n");
        goto Exit;
    }
    if (o->ttl != NULL) {
        if (parse_seconds(o->ttl, 100LL * 366 * 86400, &ttl) != 0) {
            fprintf(stderr, "tbtoken jwt: --ttl must be seconds (at most 100 years)\n");
            goto Exit;
        }
        if (json_object_get(c, "iat") == NULL)
            json_object_set_new(c, "iat", json_integer((json_int_t)now));
        if (json_object_get(c, "exp") == NULL)
            json_object_set_new(c, "exp", json_integer((json_int_t)now + ttl));
    }
    out = json_dumps(c, JSON_COMPACT);
Exit:
    json_decref(c);
    return out;
}

static int cmd_issue(int argc, char **argv)
{
    struct jwt_opts o = {0};
    char *claims = NULL, *key = NULL, *token = NULL;
    size_t key_len = 0, key_full = 0;
    int alg, ret, r;

    if ((ret = parse_opts(argc, argv, 0, &o)) != 0)
        return ret;
    if (o.key == NULL || o.claims == NULL)
        return usage("issue needs --key and --claims");
    if ((alg = tb_jwt_alg_parse(o.alg)) < 0)
        return usage("--alg must be ES256, RS256 or HS256");
    ret = TBTOKEN_EXIT_USAGE;
    if ((claims = claims_text(&o)) == NULL || (key = read_file(o.key, &key_len)) == NULL)
        goto Exit;
    key_full = key_len;
    if (alg == TB_JWT_HS256 && key_len > 0 && key[key_len - 1] == '\n') {
        key_len--;
        if (key_len > 0 && key[key_len - 1] == '\r')
            key_len--;
    }
    r = tb_jwt_bind(claims, o.tbh, (enum tb_jwt_alg)alg, (const uint8_t *)key, key_len, o.kid,
                    &token);
    if (r == TB_EINVAL) {
        fprintf(stderr, "tbtoken jwt: %s: not a key for %s (or --kid / claims unusable)\n", o.key,
                o.alg);
        goto Exit;
    }
    ret = TBTOKEN_EXIT_VERDICT_ERROR;
    if (r != 0) {
        fprintf(stderr, "tbtoken jwt: signing failed: %s\n", tb_strerror(r));
        goto Exit;
    }
    printf("%s\n", token);
    ret = 0;
Exit:
    free(token);
    free(claims);
    if (key != NULL)
        OPENSSL_clear_free(key, key_full + 1);
    return ret;
}

/* --alg A[,B...] as bits. Returns them, or 0 if one is unknown. */
static unsigned parse_algs(const char *list)
{
    char buf[64], *tok, *save = NULL;
    unsigned bits = 0;
    int a;

    if (strlen(list) >= sizeof(buf))
        return 0;
    memcpy(buf, list, strlen(list) + 1);
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if ((a = tb_jwt_alg_parse(tok)) < 0)
            return 0;
        bits |= (unsigned)a;
    }
    return bits;
}

/* The token argument, or for "-" the first line of stdin (malloc'd into *buf). */
static const char *token_text(const char *arg, char **buf, size_t *len)
{
    size_t n;

    if (strcmp(arg, "-") != 0) {
        *len = strlen(arg);
        return arg;
    }
    if ((*buf = malloc(TB_JWT_MAX_TOKEN + 2)) == NULL)
        return NULL;
    n = fread(*buf, 1, TB_JWT_MAX_TOKEN + 1, stdin);
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r'))
        n--;
    (*buf)[n] = '\0';
    *len = n;
    return *buf;
}

static int print_verdict(int r, const struct tb_jwt_result *res)
{
    json_t *obj = json_object();
    char *s;

    json_object_set_new(obj, "verdict", json_string(r == 0 ? "ok" : "error"));
    if (r != 0) {
        json_object_set_new(obj, "reason", json_string(tb_strerror(r)));
    } else {
        json_object_set_new(obj, "sub", json_string(res->sub));
        json_object_set_new(obj, "exp", json_integer((json_int_t)res->exp));
    }
    s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (s == NULL)
        return -1;
    printf("%s\n", s);
    free(s);
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    struct jwt_opts o = {0};
    struct tb_jwt_keys *keys = NULL;
    struct tb_jwt_policy p = {0};
    struct tb_jwt_result res;
    char err[512], *buf = NULL;
    const char *token;
    long long n = 0;
    size_t len = 0;
    int ret, r;

    if ((ret = parse_opts(argc, argv, 1, &o)) != 0)
        return ret;
    if ((o.keys == NULL) == (o.secret == NULL))
        return usage("give exactly one of --keys and --secret");
    if ((p.algs = parse_algs(o.alg)) == 0)
        return usage("--alg must list ES256, RS256 or HS256, comma-separated");
    if (o.leeway != NULL) {
        if (parse_seconds(o.leeway, 86400, &n) != 0)
            return usage("--leeway must be seconds (at most a day)");
        p.leeway_s = (unsigned)n;
    }
    if (o.now != NULL) {
        if (parse_seconds(o.now, INT64_MAX, &n) != 0 || n == 0)
            return usage("--now must be seconds since the epoch");
        p.now = n;
    }
    p.issuer = o.issuer;
    p.audience = o.audience;
    r = o.keys != NULL ? tb_jwt_keys_load_public(o.keys, &keys, err, sizeof(err))
                       : tb_jwt_keys_load_secret(o.secret, &keys, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "tbtoken jwt: %s\n", r == TB_ENOMEM ? "out of memory" : err);
        return TBTOKEN_EXIT_USAGE;
    }
    p.keys = keys;
    ret = TBTOKEN_EXIT_VERDICT_ERROR;
    if ((token = token_text(o.token, &buf, &len)) == NULL) {
        fprintf(stderr, "tbtoken jwt: out of memory\n");
        goto Exit;
    }
    r = tb_jwt_check(token, len, &p, o.tbh, &res);
    if (print_verdict(r, &res) == 0 && r == 0)
        ret = 0;
Exit:
    if (buf != NULL)
        OPENSSL_clear_free(buf, TB_JWT_MAX_TOKEN + 2);
    tb_jwt_keys_free(keys);
    return ret;
}

int tbtoken_jwt_main(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "issue") == 0)
        return cmd_issue(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (argc >= 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
        usage(NULL);
        return 0;
    }
    return usage(argc < 1 ? "issue or verify?" : "unknown jwt command");
}
