/*
 * Test support: the shared Token Binding test vectors (tests/vectors/{draft,rfc}.json).
 *
 * A vector file is {"keys": {name: PEM}, "cases": [case...]} (see tests/vectors/README.md and
 * spec/TOKEN-BINDING.md "Test vectors"). tbt_vectors_load() parses one file with jansson and
 * checks its shape strictly: a missing required field, a field of the wrong type, an "expect"
 * that is not "ok", "error" or "error:<reason>", or a field this loader does not know makes the
 * load fail, so that an expectation added to the vectors can never be silently ignored.
 *
 * Every string in the loaded structure is borrowed from the parsed JSON document held inside it:
 * valid until tbt_vectors_free(). Helpers are prefixed tbt_ (tests), never tb_ (the library).
 */
#ifndef TBT_VECTORS_H
#define TBT_VECTORS_H

#include <stddef.h>
#include <stdint.h>

enum tbt_expect {
    TBT_EXPECT_OK,    /* "ok": the header verifies */
    TBT_EXPECT_ERROR, /* "error" or "error:<reason>": it does not */
};

struct tbt_key {
    const char *name;
    const char *pem;
};

struct tbt_case {
    const char *name;
    const char *version;     /* "draft" / "rfc", as tb_version_parse takes it */
    const char *negotiated;  /* key parameters name, as tb_key_params_parse takes it */
    const char *channel_hex; /* tls_unique (draft) or EKM (rfc), hex */
    const char *header;      /* the header value, as sent */
    const char *expect;      /* the "expect" string as written */
    enum tbt_expect verdict;
    const char *reason;      /* after "error:", or NULL when the vector gives none */
    const char *provided_id; /* base64url TBIDs and tbh; NULL when the vector has none */
    const char *referred_id;
    const char *provided_tbh;
    const char *referred_tbh;
    size_t n_other_ids; /* Sec-Other-Token-Binding-ID items ("09.<b64>"), 0 when none */
    const char **other_ids;
};

struct tbt_vectors {
    void *doc; /* the json_t document every string points into */
    size_t n_keys;
    struct tbt_key *keys;
    size_t n_cases;
    struct tbt_case *cases;
};

#define TBT_VECTOR_PARAM_FILES 8 /* the most files one tbt_vector_params() call takes */

/*
 * One parameter of a Criterion test run once per vector case (ParameterizedTest). file < 0:
 * the vector files did not load, and name says so; the test should fail on it.
 */
struct tbt_vector_param {
    int file;      /* index into the file names given to tbt_vector_params() */
    size_t index;  /* the case's index in that file's cases */
    char name[80]; /* "<file>/<case name>", truncated to fit */
};

/* "tests/vectors": the vector directory, relative to the repository root the tests run from. */
const char *tbt_vector_dir(void);

/*
 * Loads and checks the vector file at path. Returns a heap object to free with
 * tbt_vectors_free(), or NULL after printing the reason (file, line, field) to stderr.
 */
struct tbt_vectors *tbt_vectors_load(const char *path);

/* tbt_vectors_load of "<tbt_vector_dir()>/<name>.json", e.g. name "draft" or "rfc". */
struct tbt_vectors *tbt_vectors_load_name(const char *name);

/*
 * The parameters of a test run once per case of the vector files names[0..n_names-1] (each
 * loaded with tbt_vectors_load_name), in file order then case order, for
 * ParameterizedTestParameters:
 *
 *     struct tbt_vector_param *params;
 *     size_t n = tbt_vector_params(file_names, N_FILES, &params);
 *     return cr_make_param_array(struct tbt_vector_param, params, n, tbt_vector_params_free);
 *
 * When a file does not load (or n_names is not 1..TBT_VECTOR_PARAM_FILES), a single parameter with
 * file -1 and the name "(vector files did not load)", so that the test runs and fails instead of
 * silently running nothing. *out is allocated with cr_malloc (Criterion hands it to the test
 * processes); NULL with a count of 0 when that fails. The files are freed again before returning.
 */
size_t tbt_vector_params(const char *const *names, int n_names, struct tbt_vector_param **out);

struct criterion_test_params;

/* The cleanup for cr_make_param_array: cr_frees the array tbt_vector_params made. */
void tbt_vector_params_free(struct criterion_test_params *crp);

/* Frees v and everything borrowed from it. tbt_vectors_free(NULL) is a no-op. */
void tbt_vectors_free(struct tbt_vectors *v);

/* The PEM of the key called name, or NULL. */
const char *tbt_vectors_key(const struct tbt_vectors *v, const char *name);

/*
 * Decodes hex (either case, even length, nothing else) into out. Returns the byte count, or -1
 * for invalid hex or when cap is too small.
 */
int tbt_hex_decode(const char *hex, uint8_t *out, size_t cap);

/*
 * Reads the whole file at path (at most 1 MiB) into a heap buffer, NUL-terminated for
 * convenience. Returns 0 and sets *out / *len, or -1 with errno set (EFBIG when too large).
 * The caller frees *out with free().
 */
int tbt_read_file(const char *path, char **out, size_t *len);

#endif
