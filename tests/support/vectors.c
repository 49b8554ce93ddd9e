/*
 * Test support: loading the shared test vectors.
 *
 * The parsed jansson document is kept alive inside struct tbt_vectors and every string handed
 * out is borrowed from it, so the only allocations are the document itself and three arrays
 * (keys, cases, the other_ids pointers of each case); tbt_vectors_free() releases them all.
 * Shape errors are reported on stderr with the file and the case, and fail the whole load.
 *
 * tbt_vector_params() builds the parameter array of the tests that run once per case; the array
 * comes from cr_malloc, the allocator whose memory Criterion's test processes share, so this
 * file links with Criterion (it calls no assertion).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/alloc.h>
#include <criterion/parameterized.h>
#include <jansson.h>

#include "vectors.h"

#define MAX_VECTOR_FILE (1024 * 1024) /* vector files are tens of KiB */

const char *tbt_vector_dir(void)
{
    return "tests/vectors";
}

/* A required (or, with optional set, possibly absent) string member of obj: 0, or -1 on error. */
static int get_string(const char *path, const char *where, json_t *obj, const char *key,
                      int optional, const char **out)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL && optional)
        return 0;
    if (!json_is_string(v)) {
        fprintf(stderr, "%s: %s: \"%s\" %s\n", path, where, key,
                v == NULL ? "is missing" : "is not a string");
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int check_known_fields(const char *path, const char *where, json_t *obj)
{
    static const char *const known[] = {
        "name",        "version",     "negotiated",   "channel_hex",  "header",   "expect",
        "provided_id", "referred_id", "provided_tbh", "referred_tbh", "other_ids"};
    const char *key;
    json_t *value;
    size_t i;

    json_object_foreach(obj, key, value)
    {
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (i == sizeof(known) / sizeof(known[0])) {
            fprintf(stderr, "%s: %s: unknown field \"%s\" (teach tests/support/vectors.c)\n", path,
                    where, key);
            return -1;
        }
    }
    return 0;
}

/*
 * Errata: vectors whose stated reason no implementation can produce, with the reason that the
 * same bytes get elsewhere in the set. Each entry must name the evidence; the verdict ("error")
 * is still checked, and the corrected reason is asserted like any other.
 *
 * draft/base64_bad_length: its header is byte-for-byte the header of draft/trailing_byte (a
 * canonical, 199-character base64url encoding of a 148-byte message followed by one 0x00 byte;
 * 199 mod 4 = 3 is a valid unpadded length), which expects "parse". It was presumably made by
 * appending one character to an encoding assumed to be a multiple of 4 long; the 198-character
 * one it extended is not. tests/unit/test_vectors.c keeps a real bad-length case of its own.
 */
static const struct {
    const char *file, *name, *expect, *reason;
} errata[] = {
    {"draft.json", "base64_bad_length", "error:base64", "parse"},
};

static void apply_errata(const char *path, struct tbt_case *c)
{
    size_t i, plen = strlen(path);

    for (i = 0; i < sizeof(errata) / sizeof(errata[0]); i++) {
        size_t flen = strlen(errata[i].file);
        if (plen >= flen && strcmp(path + plen - flen, errata[i].file) == 0 &&
            strcmp(c->name, errata[i].name) == 0 && strcmp(c->expect, errata[i].expect) == 0)
            c->reason = errata[i].reason;
    }
}

static int parse_expect(const char *path, struct tbt_case *c)
{
    if (strcmp(c->expect, "ok") == 0) {
        c->verdict = TBT_EXPECT_OK;
    } else if (strcmp(c->expect, "error") == 0) {
        c->verdict = TBT_EXPECT_ERROR;
    } else if (strncmp(c->expect, "error:", 6) == 0 && c->expect[6] != '\0') {
        c->verdict = TBT_EXPECT_ERROR;
        c->reason = c->expect + 6;
        apply_errata(path, c);
    } else {
        fprintf(stderr, "%s: %s: bad \"expect\": \"%s\"\n", path, c->name, c->expect);
        return -1;
    }
    return 0;
}

static int parse_other_ids(const char *path, json_t *obj, struct tbt_case *c)
{
    json_t *arr = json_object_get(obj, "other_ids"), *item;
    size_t i;

    if (arr == NULL)
        return 0;
    if (!json_is_array(arr)) {
        fprintf(stderr, "%s: %s: \"other_ids\" is not an array\n", path, c->name);
        return -1;
    }
    c->n_other_ids = json_array_size(arr);
    if (c->n_other_ids == 0)
        return 0;
    c->other_ids = calloc(c->n_other_ids, sizeof(*c->other_ids));
    if (c->other_ids == NULL)
        return -1;
    json_array_foreach(arr, i, item)
    {
        if (!json_is_string(item)) {
            fprintf(stderr, "%s: %s: other_ids[%zu] is not a string\n", path, c->name, i);
            return -1;
        }
        c->other_ids[i] = json_string_value(item);
    }
    return 0;
}

static int parse_case(const char *path, size_t index, json_t *obj, struct tbt_case *c)
{
    char where[64];

    snprintf(where, sizeof(where), "cases[%zu]", index);
    if (!json_is_object(obj)) {
        fprintf(stderr, "%s: %s is not an object\n", path, where);
        return -1;
    }
    if (get_string(path, where, obj, "name", 0, &c->name) != 0)
        return -1;
    if (check_known_fields(path, c->name, obj) != 0 ||
        get_string(path, c->name, obj, "version", 0, &c->version) != 0 ||
        get_string(path, c->name, obj, "negotiated", 0, &c->negotiated) != 0 ||
        get_string(path, c->name, obj, "channel_hex", 0, &c->channel_hex) != 0 ||
        get_string(path, c->name, obj, "header", 0, &c->header) != 0 ||
        get_string(path, c->name, obj, "expect", 0, &c->expect) != 0 ||
        get_string(path, c->name, obj, "provided_id", 1, &c->provided_id) != 0 ||
        get_string(path, c->name, obj, "referred_id", 1, &c->referred_id) != 0 ||
        get_string(path, c->name, obj, "provided_tbh", 1, &c->provided_tbh) != 0 ||
        get_string(path, c->name, obj, "referred_tbh", 1, &c->referred_tbh) != 0)
        return -1;
    if (parse_expect(path, c) != 0 || parse_other_ids(path, obj, c) != 0)
        return -1;
    return 0;
}

static int parse_keys(const char *path, json_t *keys, struct tbt_vectors *v)
{
    const char *name;
    json_t *pem;
    size_t i = 0;

    if (!json_is_object(keys)) {
        fprintf(stderr, "%s: \"keys\" is missing or not an object\n", path);
        return -1;
    }
    v->n_keys = json_object_size(keys);
    if (v->n_keys == 0)
        return 0;
    if ((v->keys = calloc(v->n_keys, sizeof(*v->keys))) == NULL)
        return -1;
    json_object_foreach(keys, name, pem)
    {
        if (!json_is_string(pem)) {
            fprintf(stderr, "%s: keys.%s is not a string\n", path, name);
            return -1;
        }
        v->keys[i].name = name;
        v->keys[i].pem = json_string_value(pem);
        i++;
    }
    return 0;
}

static int parse_cases(const char *path, json_t *cases, struct tbt_vectors *v)
{
    json_t *item;
    size_t i;

    if (!json_is_array(cases) || json_array_size(cases) == 0) {
        fprintf(stderr, "%s: \"cases\" is missing, not an array or empty\n", path);
        return -1;
    }
    v->n_cases = json_array_size(cases);
    if ((v->cases = calloc(v->n_cases, sizeof(*v->cases))) == NULL)
        return -1;
    json_array_foreach(cases, i, item)
    {
        if (parse_case(path, i, item, &v->cases[i]) != 0)
            return -1;
    }
    return 0;
}

struct tbt_vectors *tbt_vectors_load(const char *path)
{
    struct tbt_vectors *v = calloc(1, sizeof(*v));
    json_error_t err;
    json_t *doc;

    if (v == NULL)
        return NULL;
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    v->doc = doc;
    if (doc == NULL) {
        fprintf(stderr, "%s:%d:%d: %s\n", path, err.line, err.column, err.text);
        goto Fail;
    }
    if (!json_is_object(doc) || json_object_size(doc) != 2) {
        fprintf(stderr, "%s: expected an object with exactly \"keys\" and \"cases\"\n", path);
        goto Fail;
    }
    if (parse_keys(path, json_object_get(doc, "keys"), v) != 0 ||
        parse_cases(path, json_object_get(doc, "cases"), v) != 0)
        goto Fail;
    return v;
Fail:
    tbt_vectors_free(v);
    return NULL;
}

struct tbt_vectors *tbt_vectors_load_name(const char *name)
{
    char path[512];

    if ((size_t)snprintf(path, sizeof(path), "%s/%s.json", tbt_vector_dir(), name) >= sizeof(path))
        return NULL;
    return tbt_vectors_load(path);
}

size_t tbt_vector_params(const char *const *names, int n_names, struct tbt_vector_param **out)
{
    struct tbt_vectors *v[TBT_VECTOR_PARAM_FILES] = {NULL};
    struct tbt_vector_param *params;
    size_t n = 0, i, k = 0;
    int f, ok = n_names > 0 && n_names <= TBT_VECTOR_PARAM_FILES;

    if (!ok)
        n_names = 0;
    for (f = 0; f < n_names; f++) {
        v[f] = tbt_vectors_load_name(names[f]);
        ok = ok && v[f] != NULL;
        n += v[f] != NULL ? v[f]->n_cases : 0;
    }
    params = cr_malloc(sizeof(*params) * (ok ? n : 1));
    if (params != NULL && !ok) {
        params[0] = (struct tbt_vector_param){.file = -1, .name = "(vector files did not load)"};
        n = 1;
    }
    for (f = 0; params != NULL && ok && f < n_names; f++) {
        for (i = 0; i < v[f]->n_cases; i++, k++) {
            params[k] = (struct tbt_vector_param){.file = f, .index = i};
            snprintf(params[k].name, sizeof(params[k].name), "%s/%s", names[f],
                     v[f]->cases[i].name);
        }
    }
    for (f = 0; f < n_names; f++)
        tbt_vectors_free(v[f]);
    *out = params;
    return params != NULL ? n : 0;
}

void tbt_vector_params_free(struct criterion_test_params *crp)
{
    cr_free(crp->params);
}

void tbt_vectors_free(struct tbt_vectors *v)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; v->cases != NULL && i < v->n_cases; i++)
        free(v->cases[i].other_ids);
    free(v->cases);
    free(v->keys);
    json_decref((json_t *)v->doc);
    free(v);
}

const char *tbt_vectors_key(const struct tbt_vectors *v, const char *name)
{
    size_t i;

    for (i = 0; i < v->n_keys; i++)
        if (strcmp(v->keys[i].name, name) == 0)
            return v->keys[i].pem;
    return NULL;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tbt_hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex), i;

    if (n % 2 != 0 || n / 2 > cap || n / 2 > (size_t)0x7fffffff)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

int tbt_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    int ret = -1, saved;

    *out = NULL;
    *len = 0;
    if (f == NULL)
        return -1;
    if ((buf = malloc(MAX_VECTOR_FILE + 1)) == NULL)
        goto Exit;
    n = fread(buf, 1, MAX_VECTOR_FILE + 1, f);
    if (ferror(f) || n > MAX_VECTOR_FILE) {
        errno = ferror(f) ? EIO : EFBIG;
        goto Exit;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    ret = 0;
Exit:
    saved = errno;
    free(buf);
    fclose(f);
    errno = saved;
    return ret;
}
