/*
 * The tbtoken command line tool, run as a separate process on the shared test vectors.
 *
 * The binary is $TB_BIN/tbtoken (make test sets TB_BIN), else build/rel/bin/tbtoken, run with
 * tbt_run (tests/support/run.h): no shell, stdin /dev/null, stdout and stderr captured.
 * tbtoken::verify runs `tbtoken verify --version V --negotiated K --channel HEX -- HEADER`
 * for every vector of both files (one parameterized test each) and checks the exit status
 * (0 ok, 1 error) and the one JSON object printed: verdict, reason, IDs, tbh and other_ids
 * exactly as the vector lists them, nothing the vector does not list. Then usage errors
 * (exit 2) and `tbtoken inspect`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>

#include "run.h"
#include "tb/tb.h"
#include "vectors.h"

#define N_FILES 2
#define TIMEOUT_S 60

static const char *const file_names[N_FILES] = {"draft", "rfc"};

static struct tbt_vectors *vec[N_FILES];
static struct tbt_run_result run; /* the last run of the tool: freed by the next and by teardown */

static void setup(void)
{
    int f;

    for (f = 0; f < N_FILES; f++)
        vec[f] = tbt_vectors_load_name(file_names[f]);
    for (f = 0; f < N_FILES; f++)
        cr_assert_not_null(vec[f], "%s/%s.json does not load (see stderr)", tbt_vector_dir(),
                           file_names[f]);
}

static void teardown(void)
{
    int f;

    tbt_run_result_dispose(&run);
    for (f = 0; f < N_FILES; f++) {
        tbt_vectors_free(vec[f]);
        vec[f] = NULL;
    }
}

/* Runs `tbtoken args...` (NULL-terminated) into run; aborts the test if it cannot run. */
static void run_tool(const char *const *args)
{
    tbt_run_result_dispose(&run);
    cr_assert_geq(tbt_run("tbtoken", args, NULL, 0, TIMEOUT_S * 1000, &run), 0, "%s", run.error);
}

/* Expects every key of obj to be in known (NULL-terminated). */
static void check_known_keys(const char *what, json_t *obj, const char *const *known)
{
    const char *key;
    json_t *value;
    size_t i;

    json_object_foreach(obj, key, value)
    {
        for (i = 0; known[i] != NULL && strcmp(known[i], key) != 0; i++)
            ;
        cr_expect_not_null(known[i], "%s: unexpected field \"%s\" in %s", what, key, run.out);
    }
}

/* Expects obj[key] to be the string want, or absent when want is NULL. */
static void check_string(const char *what, json_t *obj, const char *key, const char *want)
{
    json_t *v = json_object_get(obj, key);

    if (want == NULL) {
        cr_expect_null(v, "%s: \"%s\" present, the vector has none: %s", what, key, run.out);
        return;
    }
    cr_expect(json_is_string(v), "%s: \"%s\" missing or not a string: %s", what, key, run.out);
    if (json_is_string(v))
        cr_expect_str_eq(json_string_value(v), want, "%s: \"%s\" is \"%s\", expected \"%s\"", what,
                         key, json_string_value(v), want);
}

static void check_verify_json(const char *what, const struct tbt_case *c)
{
    static const char *const known[] = {
        "verdict",      "reason",       "provided_id", "referred_id",
        "provided_tbh", "referred_tbh", "other_ids",   NULL};
    int ok = c->verdict == TBT_EXPECT_OK;
    json_t *doc = run.json, *reason, *others;
    size_t i;

    cr_assert(json_is_object(doc), "%s: stdout is not one JSON object: [%s]; stderr: %s", what,
              run.out, run.err);
    check_known_keys(what, doc, known);
    check_string(what, doc, "verdict", ok ? "ok" : "error");
    reason = json_object_get(doc, "reason");
    if (ok)
        cr_expect_null(reason, "%s: \"reason\" on an ok verdict: %s", what, run.out);
    else if (c->reason != NULL)
        check_string(what, doc, "reason", c->reason);
    else
        cr_expect(json_is_string(reason) && json_string_length(reason) > 0,
                  "%s: an error verdict without a reason: %s", what, run.out);
    check_string(what, doc, "provided_id", c->provided_id);
    check_string(what, doc, "referred_id", c->referred_id);
    check_string(what, doc, "provided_tbh", c->provided_tbh);
    check_string(what, doc, "referred_tbh", c->referred_tbh);
    others = json_object_get(doc, "other_ids");
    if (c->n_other_ids == 0) {
        cr_expect_null(others, "%s: \"other_ids\" present, the vector has none: %s", what, run.out);
        return;
    }
    cr_assert(json_is_array(others) && json_array_size(others) == c->n_other_ids,
              "%s: \"other_ids\" should be an array of %zu: %s", what, c->n_other_ids, run.out);
    for (i = 0; i < c->n_other_ids; i++) {
        json_t *item = json_array_get(others, i);
        cr_expect(json_is_string(item) && strcmp(json_string_value(item), c->other_ids[i]) == 0,
                  "%s: other_ids[%zu] should be %s: %s", what, i, c->other_ids[i], run.out);
    }
}

ParameterizedTestParameters(tbtoken, verify)
{
    struct tbt_vector_param *params;
    size_t n = tbt_vector_params(file_names, N_FILES, &params);

    return cr_make_param_array(struct tbt_vector_param, params, n, tbt_vector_params_free);
}

ParameterizedTest(struct tbt_vector_param *p, tbtoken, verify, .init = setup, .fini = teardown,
                  .timeout = TIMEOUT_S)
{
    const struct tbt_case *c;
    char what[160];

    cr_assert_geq(p->file, 0, "%s", p->name);
    cr_assert_lt(p->index, vec[p->file]->n_cases, "%s: the vector file changed", p->name);
    c = &vec[p->file]->cases[p->index];
    snprintf(what, sizeof(what), "%s/%s: tbtoken verify", file_names[p->file], c->name);
    run_tool((const char *const[]){"verify", "--version", c->version, "--negotiated", c->negotiated,
                                   "--channel", c->channel_hex, "--", c->header, NULL});
    cr_expect_eq(run.status, c->verdict == TBT_EXPECT_OK ? 0 : 1,
                 "%s: exit status %d for expect \"%s\"; stdout: %s; stderr: %s", what, run.status,
                 c->expect, run.out, run.err);
    check_verify_json(what, c);
}

/* Runs args and expects the usage exit status 2 and no verdict on stdout. */
static void expect_usage(const char *what, const char *const *args)
{
    run_tool(args);
    cr_expect_eq(run.status, 2, "%s: exit status %d, expected 2 (usage); stdout: %s; stderr: %s",
                 what, run.status, run.out, run.err);
    cr_expect_null(strstr(run.out, "\"verdict\""), "%s: a verdict on a usage error: %s", what,
                   run.out);
}

Test(tbtoken, usage_errors, .init = setup, .fini = teardown, .timeout = TIMEOUT_S)
{
    const struct tbt_case *d = &vec[0]->cases[0], *r = &vec[1]->cases[0];

    expect_usage("no arguments", (const char *const[]){NULL});
    expect_usage("unknown command", (const char *const[]){"frobnicate", NULL});
    expect_usage("verify without a header",
                 (const char *const[]){"verify", "--version", "draft", "--negotiated", "p256",
                                       "--channel", d->channel_hex, NULL});
    expect_usage("unknown --version",
                 (const char *const[]){"verify", "--version", "draft-01", "--negotiated", "p256",
                                       "--channel", d->channel_hex, "--", d->header, NULL});
    expect_usage("rfc --negotiated name with --version draft",
                 (const char *const[]){"verify", "--version", "draft", "--negotiated", "ecdsap256",
                                       "--channel", d->channel_hex, "--", d->header, NULL});
    expect_usage("draft --negotiated name with --version rfc",
                 (const char *const[]){"verify", "--version", "rfc", "--negotiated", "p256",
                                       "--channel", r->channel_hex, "--", r->header, NULL});
    expect_usage("unknown --negotiated",
                 (const char *const[]){"verify", "--version", "draft", "--negotiated", "p384",
                                       "--channel", d->channel_hex, "--", d->header, NULL});
    expect_usage("non-hex --channel",
                 (const char *const[]){"verify", "--version", "draft", "--negotiated", "p256",
                                       "--channel", "zz0011", "--", d->header, NULL});
    expect_usage("odd-length --channel",
                 (const char *const[]){"verify", "--version", "draft", "--negotiated", "p256",
                                       "--channel", "a1b", "--", d->header, NULL});
}

static const struct tbt_case *find_case(int file, const char *name)
{
    size_t i;

    for (i = 0; i < vec[file]->n_cases; i++)
        if (strcmp(vec[file]->cases[i].name, name) == 0)
            return &vec[file]->cases[i];
    cr_assert_fail("%s/%s: no such vector", file_names[file], name);
    return NULL;
}

/* Checks one element of inspect's "bindings" against a role the vector lists (kp NULL: any
 * supported key parameters). */
static void check_inspected(const char *what, json_t *b, const char *type, const char *kp,
                            const char *id, const char *tbh)
{
    static const char *const known[] = {
        "type", "key_params", "id", "tbh", "signature_length", "extensions_length", NULL};

    cr_assert(json_is_object(b), "%s: a binding is not an object: %s", what, run.out);
    check_known_keys(what, b, known);
    check_string(what, b, "type", type);
    if (kp != NULL)
        check_string(what, b, "key_params", kp);
    else
        cr_expect(json_is_string(json_object_get(b, "key_params")) &&
                      strcmp(json_string_value(json_object_get(b, "key_params")), "unsupported") !=
                          0,
                  "%s: key_params missing or unsupported on a verified binding: %s", what, run.out);
    check_string(what, b, "id", id);
    check_string(what, b, "tbh", tbh);
    cr_expect(json_is_integer(json_object_get(b, "signature_length")) &&
                  json_is_integer(json_object_get(b, "extensions_length")),
              "%s: signature_length / extensions_length missing: %s", what, run.out);
}

/* `tbtoken inspect` of an ok vector: the provided (and referred) bindings as the vector says. */
static void inspect_ok_case(int file, const struct tbt_case *c)
{
    json_t *list, *b;
    uint8_t buf[TB_MAX_MESSAGE];
    char what[160];
    size_t i, provided = 0;
    int n;

    snprintf(what, sizeof(what), "%s/%s: tbtoken inspect", file_names[file], c->name);
    /* the draft is the default: `inspect HEADER` exactly as documented */
    if (file == 0)
        run_tool((const char *const[]){"inspect", c->header, NULL});
    else
        run_tool((const char *const[]){"inspect", "--version", c->version, "--", c->header, NULL});
    cr_expect_eq(run.status, 0, "%s: exit status %d; stdout: %s; stderr: %s", what, run.status,
                 run.out, run.err);
    cr_assert(json_is_object(run.json), "%s: stdout is not one JSON object: [%s]", what, run.out);
    check_string(what, run.json, "version", c->version);
    n = tb_base64url_decode(c->header, strlen(c->header), buf, sizeof(buf));
    cr_expect(json_integer_value(json_object_get(run.json, "length")) == n,
              "%s: \"length\" should be %d: %s", what, n, run.out);
    list = json_object_get(run.json, "bindings");
    cr_assert(json_is_array(list) && json_array_size(list) > 0, "%s: no \"bindings\" array: %s",
              what, run.out);
    json_array_foreach(list, i, b)
    {
        json_t *type = json_object_get(b, "type");
        if (json_is_string(type) && strcmp(json_string_value(type), "provided") == 0) {
            check_inspected(what, b, "provided", c->negotiated, c->provided_id, c->provided_tbh);
            provided++;
        } else if (json_is_string(type) && strcmp(json_string_value(type), "referred") == 0)
            check_inspected(what, b, "referred", NULL, c->referred_id, c->referred_tbh);
    }
    cr_expect_eq(provided, 1, "%s: %zu provided bindings: %s", what, provided, run.out);
}

/* The documented example: a provided and a referred binding, provided first. */
Test(tbtoken, inspect_valid, .init = setup, .fini = teardown, .timeout = TIMEOUT_S)
{
    const struct tbt_case *c = find_case(0, "p256_provided_referred");
    json_t *list;

    inspect_ok_case(0, c);
    list = json_object_get(run.json, "bindings");
    cr_assert_eq(json_array_size(list), 2, "bindings: %s", run.out);
    check_inspected("inspect p256_provided_referred, bindings[0]", json_array_get(list, 0),
                    "provided", "p256", c->provided_id, c->provided_tbh);
    check_inspected("inspect p256_provided_referred, bindings[1]", json_array_get(list, 1),
                    "referred", "p256", c->referred_id, c->referred_tbh);
}

Test(tbtoken, inspect_ok_vectors, .init = setup, .fini = teardown, .timeout = TIMEOUT_S)
{
    size_t i;
    int f;

    for (f = 0; f < N_FILES; f++)
        for (i = 0; i < vec[f]->n_cases; i++)
            if (vec[f]->cases[i].verdict == TBT_EXPECT_OK)
                inspect_ok_case(f, &vec[f]->cases[i]);
}

/* Expects `tbtoken inspect HEADER` to exit 1 with {"error": reason}. */
static void expect_inspect_error(const char *header, const char *reason)
{
    char what[96];

    snprintf(what, sizeof(what), "tbtoken inspect \"%.40s\"", header);
    run_tool((const char *const[]){"inspect", "--", header, NULL});
    cr_expect_eq(run.status, 1, "%s: exit status %d; stdout: %s; stderr: %s", what, run.status,
                 run.out, run.err);
    cr_assert(json_is_object(run.json), "%s: stdout is not one JSON object: [%s]", what, run.out);
    check_string(what, run.json, "error", reason);
    cr_expect_eq(json_object_size(run.json), 1, "%s: %s", what, run.out);
}

Test(tbtoken, inspect_garbage, .init = setup, .fini = teardown, .timeout = TIMEOUT_S)
{
    expect_inspect_error("!!! not a token binding !!!", "base64");
    expect_inspect_error("AAA", "parse"); /* a message of length 0: no binding */
    expect_inspect_error(find_case(0, "truncated")->header, "parse");
}
