/*
 * tbtoken: libtb on the command line.
 *
 *   tbtoken verify --version draft|rfc --negotiated KEYTYPE --channel HEX [--] HEADER
 *   tbtoken inspect [--version draft|rfc] [--] HEADER
 *   tbtoken cookie genkey|bind|check ...      (tbtoken/cookie.c)
 *   tbtoken jwt issue|verify ...              (tbtoken/jwt.c)
 *
 * `verify` checks one header value exactly as the proxy does and prints one JSON object with the
 * verdict, the reason on error, and the forwarded IDs and tbh values on success. Exit status:
 * 0 ok, 1 error verdict, 2 bad usage. `inspect` decodes without verifying, for people debugging
 * a client. The header value is printed nowhere: it may be a live credential. `cookie` makes
 * cookie keys and binds or checks bound cookies (tb/cookie.h); subcommands with more than a
 * screenful of code live in src/tools/tbtoken/ behind cmd.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tb/tb.h"
#include "tbtoken/cmd.h"

#define EXIT_VERDICT_ERROR 1
#define EXIT_USAGE 2

struct options {
    int version;
    int negotiated;
    const char *negotiated_name;
    uint8_t channel[TB_MAX_CHANNEL];
    size_t channel_len;
    int have_channel;
    const char *header;
};

static int usage(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "tbtoken: %s\n", why);
    fprintf(stderr,
            "usage: tbtoken verify --version draft|rfc --negotiated KEYTYPE --channel HEX [--] "
            "HEADER\n"
            "       tbtoken inspect [--version draft|rfc] [--] HEADER\n"
            "       tbtoken cookie genkey [--id ID]\n"
            "       tbtoken cookie bind|check --keys FILE (--tbid B64URL | --tbh TBH) [--] NAME "
            "VALUE\n"
            "       tbtoken jwt issue|verify ...   (tbtoken jwt --help)\n"
            "KEYTYPE: p256, rsa2048 (draft); ecdsap256, rsa2048_pss, rsa2048_pkcs1.5 (rfc)\n"
            "HEX: the channel value, tls_unique (draft) or EKM (rfc)\n");
    return EXIT_USAGE;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex into out; returns the byte count or -1 if not even-length hex that fits. */
static int hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex), i;

    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

/* Parses argv after the subcommand. Returns 0 or an exit status for bad usage. */
static int parse_options(int argc, char **argv, struct options *o, int need_verify_args)
{
    int i, n;

    o->version = TB_VERSION_DRAFT;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (i + 1 >= argc)
            return usage("option needs a value");
        if (strcmp(a, "--version") == 0) {
            if ((o->version = tb_version_parse(argv[++i])) < 0)
                return usage("--version must be draft or rfc");
        } else if (strcmp(a, "--negotiated") == 0) {
            o->negotiated_name = argv[++i];
        } else if (strcmp(a, "--channel") == 0) {
            if ((n = hex_decode(argv[++i], o->channel, sizeof(o->channel))) < 0)
                return usage("--channel must be hex, at most 64 bytes");
            o->channel_len = (size_t)n;
            o->have_channel = 1;
        } else {
            return usage("unknown option");
        }
    }
    if (i != argc - 1)
        return usage("exactly one HEADER argument is needed");
    o->header = argv[i];
    if (!need_verify_args)
        return 0;
    if (o->negotiated_name == NULL || !o->have_channel)
        return usage("verify needs --negotiated and --channel");
    o->negotiated = tb_key_params_parse(o->version, o->negotiated_name);
    if (o->negotiated < 0)
        return usage("unknown --negotiated key type for this version");
    return 0;
}

static void set_b64(json_t *obj, const char *key, const struct tb_slice *s)
{
    char buf[TB_MAX_HEADER + 1];

    if (tb_base64url_encode(s->p, s->len, buf, sizeof(buf)) >= 0)
        json_object_set_new(obj, key, json_string(buf));
}

static void set_tbh(json_t *obj, const char *key, const struct tb_slice *id)
{
    char tbh[TB_TBH_LEN + 1];

    if (tb_tbh(id->p, id->len, tbh, sizeof(tbh)) >= 0)
        json_object_set_new(obj, key, json_string(tbh));
}

static int print_json(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);

    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(obj);
    return s != NULL ? 0 : -1;
}

static json_t *verified_json(const struct tb_roles *r)
{
    json_t *obj = json_object(), *others;
    char item[TB_MAX_HEADER + 4];
    size_t i;

    json_object_set_new(obj, "verdict", json_string("ok"));
    set_b64(obj, "provided_id", &r->provided->id);
    if (r->referred != NULL)
        set_b64(obj, "referred_id", &r->referred->id);
    set_tbh(obj, "provided_tbh", &r->provided->id);
    if (r->referred != NULL)
        set_tbh(obj, "referred_tbh", &r->referred->id);
    if (r->n_other > 0) {
        others = json_array();
        for (i = 0; i < r->n_other; i++) {
            const struct tb_binding *b = r->other[i];
            if (tb_other_id_item(b->type, b->id.p, b->id.len, item, sizeof(item)) >= 0)
                json_array_append_new(others, json_string(item));
        }
        json_object_set_new(obj, "other_ids", others);
    }
    return obj;
}

static int cmd_verify(int argc, char **argv)
{
    struct options o = {0};
    struct tb_verified *res = NULL;
    struct tb_verifier *v = NULL;
    json_t *obj;
    int ret;

    if ((ret = parse_options(argc, argv, &o, 1)) != 0)
        return ret;
    res = malloc(sizeof(*res));
    v = tb_verifier_new(16);
    if (res == NULL || v == NULL) {
        fprintf(stderr, "tbtoken: out of memory\n");
        ret = EXIT_VERDICT_ERROR;
        goto Exit;
    }
    ret = tb_verify_header(v, o.version, o.negotiated, o.header, strlen(o.header), o.channel,
                           o.channel_len, res);
    if (ret == 0) {
        obj = verified_json(&res->roles);
    } else {
        obj = json_object();
        json_object_set_new(obj, "verdict", json_string("error"));
        json_object_set_new(obj, "reason", json_string(tb_strerror(ret)));
    }
    print_json(obj);
    ret = ret == 0 ? 0 : EXIT_VERDICT_ERROR;
Exit:
    tb_verifier_free(v);
    free(res);
    return ret;
}

static json_t *binding_json(enum tb_version version, const struct tb_binding *b)
{
    json_t *obj = json_object();
    const char *kp = tb_key_params_name(version, b->key_params);

    if (b->type == TB_TYPE_PROVIDED)
        json_object_set_new(obj, "type", json_string("provided"));
    else if (b->type == TB_TYPE_REFERRED)
        json_object_set_new(obj, "type", json_string("referred"));
    else
        json_object_set_new(obj, "type", json_integer(b->type));
    json_object_set_new(obj, "key_params", json_string(kp != NULL ? kp : "unsupported"));
    set_b64(obj, "id", &b->id);
    set_tbh(obj, "tbh", &b->id);
    json_object_set_new(obj, "signature_length", json_integer((json_int_t)b->sig.len));
    json_object_set_new(obj, "extensions_length", json_integer((json_int_t)b->ext.len));
    return obj;
}

static int cmd_inspect(int argc, char **argv)
{
    struct options o = {0};
    struct tb_message *m = NULL;
    uint8_t *buf = NULL;
    json_t *obj, *list;
    size_t len, i;
    int ret, n;

    if ((ret = parse_options(argc, argv, &o, 0)) != 0)
        return ret;
    len = strlen(o.header);
    buf = malloc(TB_MAX_MESSAGE);
    m = malloc(sizeof(*m));
    ret = TB_ENOMEM;
    if (buf == NULL || m == NULL)
        goto Exit;
    ret = TB_ETOOLARGE;
    if (len > TB_MAX_HEADER)
        goto Exit;
    if ((n = tb_base64url_decode(o.header, len, buf, TB_MAX_MESSAGE)) < 0) {
        ret = n == TB_EINVAL ? TB_ETOOLARGE : n;
        goto Exit;
    }
    if ((ret = tb_message_parse(o.version, buf, (size_t)n, m)) != 0)
        goto Exit;
    obj = json_object();
    json_object_set_new(obj, "version", json_string(tb_version_name(o.version)));
    json_object_set_new(obj, "length", json_integer(n));
    list = json_array();
    for (i = 0; i < m->count; i++)
        json_array_append_new(list, binding_json(o.version, &m->b[i]));
    json_object_set_new(obj, "bindings", list);
    print_json(obj);
Exit:
    if (ret != 0) {
        obj = json_object();
        json_object_set_new(obj, "error", json_string(tb_strerror(ret)));
        print_json(obj);
    }
    free(m);
    free(buf);
    return ret == 0 ? 0 : EXIT_VERDICT_ERROR;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "inspect") == 0)
        return cmd_inspect(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "cookie") == 0)
        return tbtoken_cookie_main(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "jwt") == 0)
        return tbtoken_jwt_main(argc - 2, argv + 2);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(NULL);
        return 0;
    }
    return usage(argc < 2 ? "no command" : "unknown command");
}
