/*
 * src/client/keystore: where keys live ($TBCLIENT_HOME, ~/.tbclient), the modes of what is
 * created (directories 0700, files 0600), load-or-create, and what is refused. Each Criterion
 * test runs in its own process, so the environment changes stay inside one test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "errors.h"
#include "keystore.h"
#include "keys.h"
#include "proc.h"
#include "tb/message.h"

static char dir[512];

static void setup(void)
{
    cr_assert_eq(tbt_tempdir("tbclient-keys", dir, sizeof(dir)), 0);
}

/* The directory holds home/keys/<files>: remove them bottom-up. */
static void teardown(void)
{
    char sub[600];

    snprintf(sub, sizeof(sub), "%s/home/keys", dir);
    tbt_rmdir_all(sub);
    snprintf(sub, sizeof(sub), "%s/home", dir);
    tbt_rmdir_all(sub);
    tbt_rmdir_all(dir);
}

TestSuite(client_keystore, .init = setup, .fini = teardown);

static void use_home(void)
{
    char home[600];

    snprintf(home, sizeof(home), "%s/home", dir);
    cr_assert_eq(setenv("TBCLIENT_HOME", home, 1), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return st.st_mode & 07777;
}

Test(client_keystore, paths)
{
    char out[TBC_KEYSTORE_MAX_PATH], want[TBC_KEYSTORE_MAX_PATH];

    use_home();
    cr_assert_gt(tbc_keystore_path("localhost:8443", TB_KP_ECDSAP256, out, sizeof(out)), 0);
    snprintf(want, sizeof(want), "%s/home/keys/localhost:8443.p256.pem", dir);
    cr_assert_str_eq(out, want);
    cr_assert_gt(tbc_keystore_path("[::1]:443", TB_KP_RSA2048_PKCS1, out, sizeof(out)), 0);
    snprintf(want, sizeof(want), "%s/home/keys/[::1]:443.rsa2048.pem", dir);
    cr_assert_str_eq(out, want);
    /* rfc rsa2048_pss (and pkcs1.5) use the origin's one RSA key; unknown kinds have no file */
    cr_assert_gt(tbc_keystore_path("[::1]:443", TB_KP_RSA2048_PSS, out, sizeof(out)), 0);
    cr_assert_str_eq(out, want);
    cr_assert_eq(tbc_keystore_path("h:1", TB_KP_UNSUPPORTED, out, sizeof(out)), TBC_EKEY);
    cr_assert_eq(tbc_keystore_path("h:1", 7, out, sizeof(out)), TBC_EKEY);
    cr_assert_eq(tbc_keystore_path("h:1", TB_KP_ECDSAP256, out, 10), TBC_EKEY);
}

Test(client_keystore, home_fallbacks)
{
    char out[TBC_KEYSTORE_MAX_PATH];

    cr_assert_eq(setenv("TBCLIENT_HOME", "", 1), 0);
    cr_assert_eq(setenv("HOME", "/home/someone", 1), 0);
    cr_assert_gt(tbc_keystore_home(out, sizeof(out)), 0);
    cr_assert_str_eq(out, "/home/someone/.tbclient");
    cr_assert_eq(unsetenv("TBCLIENT_HOME"), 0);
    cr_assert_gt(tbc_keystore_path("h:1", TB_KP_ECDSAP256, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "/home/someone/.tbclient/keys/h:1.p256.pem");
    cr_assert_eq(unsetenv("HOME"), 0);
    cr_assert_gt(tbc_keystore_home(out, sizeof(out)), 0); /* from the password database */
}

Test(client_keystore, origins_that_are_no_file_names)
{
    static const char *const bad[] = {"", ".hidden:1", "a/b:1", "../x:1", "a\nb:1", "a\x7f:1"};
    char out[TBC_KEYSTORE_MAX_PATH];
    size_t i;

    use_home();
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(tbc_keystore_path(bad[i], TB_KP_ECDSAP256, out, sizeof(out)), TBC_EKEY, "%s",
                     bad[i]);
}

Test(client_keystore, created_once_with_modes)
{
    char path[TBC_KEYSTORE_MAX_PATH], sub[600];
    EVP_PKEY *k1 = NULL, *k2 = NULL;
    int created = -1;

    use_home();
    cr_assert_eq(tbc_keystore_get("localhost:8443", TB_KP_ECDSAP256, &k1, &created, path, NULL), 0);
    cr_assert_eq(created, 1);
    cr_assert_eq(mode_of(path), 0600);
    snprintf(sub, sizeof(sub), "%s/home", dir);
    cr_assert_eq(mode_of(sub), 0700);
    snprintf(sub, sizeof(sub), "%s/home/keys", dir);
    cr_assert_eq(mode_of(sub), 0700);
    cr_assert_eq(tbc_keystore_get("localhost:8443", TB_KP_ECDSAP256, &k2, &created, NULL, NULL), 0);
    cr_assert_eq(created, 0);
    cr_assert_eq(EVP_PKEY_eq(k1, k2), 1, "a second get loads the same key");
    cr_assert(tbc_key_matches(k1, TB_KP_ECDSAP256));
    cr_assert(!tbc_key_matches(k1, TB_KP_RSA2048_PKCS1));
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

Test(client_keystore, one_key_per_origin_and_type)
{
    EVP_PKEY *a = NULL, *b = NULL;

    use_home();
    cr_assert_eq(tbc_keystore_get("a:1", TB_KP_ECDSAP256, &a, NULL, NULL, NULL), 0);
    cr_assert_eq(tbc_keystore_get("a:2", TB_KP_ECDSAP256, &b, NULL, NULL, NULL), 0);
    cr_assert_neq(EVP_PKEY_eq(a, b), 1);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

Test(client_keystore, wrong_type_is_an_error_not_replaced)
{
    char path[TBC_KEYSTORE_MAX_PATH];
    EVP_PKEY *p256 = tbt_key_load(TBT_PEM_P256_A), *k = NULL;

    use_home();
    cr_assert_gt(tbc_keystore_path("h:1", TB_KP_RSA2048_PKCS1, path, sizeof(path)), 0);
    cr_assert_eq(tbc_key_save_file(path, p256, NULL), 0);
    cr_assert_eq(tbc_keystore_get("h:1", TB_KP_RSA2048_PKCS1, &k, NULL, NULL, NULL), TBC_EKEY);
    cr_assert_null(k);
    cr_assert_eq(tbc_key_load_file(path, &k, NULL), 0);
    cr_assert_eq(EVP_PKEY_eq(k, p256), 1);
    EVP_PKEY_free(k);
    EVP_PKEY_free(p256);
}

Test(client_keystore, save_never_replaces)
{
    char path[600];
    EVP_PKEY *a = tbt_key_load(TBT_PEM_P256_A), *b = tbt_key_load(TBT_PEM_P256_B), *k = NULL;

    snprintf(path, sizeof(path), "%s/k.pem", dir);
    cr_assert_eq(tbc_key_save_file(path, a, NULL), 0);
    cr_assert_eq(tbc_key_save_file(path, b, NULL), 1);
    cr_assert_eq(tbc_key_load_file(path, &k, NULL), 0);
    cr_assert_eq(EVP_PKEY_eq(k, a), 1);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(k);
}

Test(client_keystore, key_file_get)
{
    char path[600];
    EVP_PKEY *k1 = NULL, *k2 = NULL, *rsa = tbt_key_load(TBT_PEM_RSA_A);
    int created = -1;

    snprintf(path, sizeof(path), "%s/sub/mine.pem", dir);
    cr_assert_eq(tbc_key_file_get(path, TB_KP_ECDSAP256, &k1, &created, NULL), 0);
    cr_assert_eq(created, 1);
    cr_assert_eq(mode_of(path), 0600);
    cr_assert_eq(tbc_key_file_get(path, TB_KP_ECDSAP256, &k2, &created, NULL), 0);
    cr_assert_eq(created, 0);
    cr_assert_eq(EVP_PKEY_eq(k1, k2), 1);
    EVP_PKEY_free(k2);
    cr_assert_eq(tbc_key_file_get(path, TB_KP_RSA2048_PKCS1, &k2, NULL, NULL), TBC_EKEY);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    /* an RSA key file loads for rsa2048 */
    snprintf(path, sizeof(path), "%s/rsa.pem", dir);
    cr_assert_eq(tbc_key_save_file(path, rsa, NULL), 0);
    cr_assert_eq(tbc_key_file_get(path, TB_KP_RSA2048_PKCS1, &k2, &created, NULL), 0);
    cr_assert_eq(created, 0);
    EVP_PKEY_free(k2);
    /* ... and for rfc rsa2048_pss: one RSA key serves both paddings; not for ecdsap256 */
    cr_assert_eq(tbc_key_file_get(path, TB_KP_RSA2048_PSS, &k2, &created, NULL), 0);
    cr_assert_eq(EVP_PKEY_eq(k2, rsa), 1);
    cr_assert(tbc_key_matches(k2, TB_KP_RSA2048_PSS));
    cr_assert(!tbc_key_matches(k1, TB_KP_RSA2048_PSS));
    EVP_PKEY_free(k2);
    cr_assert_eq(tbc_key_file_get(path, TB_KP_ECDSAP256, &k2, NULL, NULL), TBC_EKEY);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(rsa);
}

/* The store keeps keys, not key parameters: rsa2048_pss finds the key made for rsa2048 (and the
 * other way round), so an origin sees one RSA identity over draft and rfc. */
Test(client_keystore, rsa_paddings_share_one_key)
{
    EVP_PKEY *a = NULL, *b = NULL;
    int created = -1;

    use_home();
    cr_assert_eq(tbc_keystore_get("h:2", TB_KP_RSA2048_PSS, &a, &created, NULL, NULL), 0);
    cr_assert_eq(created, 1);
    cr_assert_eq(tbc_keystore_get("h:2", TB_KP_RSA2048_PKCS1, &b, &created, NULL, NULL), 0);
    cr_assert_eq(created, 0);
    cr_assert_eq(EVP_PKEY_eq(a, b), 1);
    cr_assert_eq(EVP_PKEY_get_bits(a), 2048);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

Test(client_keystore, load_refusals_and_warning)
{
    char path[600], *text = NULL;
    size_t len = 0;
    EVP_PKEY *k = NULL;
    FILE *msg;

    snprintf(path, sizeof(path), "%s/missing.pem", dir);
    cr_assert_eq(tbc_key_load_file(path, &k, NULL), 1);
    cr_assert_eq(tbt_write_file(dir, "junk.pem", "not a key\n", 10), 0);
    snprintf(path, sizeof(path), "%s/junk.pem", dir);
    cr_assert_eq(tbc_key_load_file(path, &k, NULL), TBC_EKEY);
    cr_assert_eq(tbc_key_load_file(dir, &k, NULL), TBC_EKEY, "a directory");
    cr_assert_eq(tbt_write_file(dir, "open.pem", TBT_PEM_P256_A, strlen(TBT_PEM_P256_A)), 0);
    snprintf(path, sizeof(path), "%s/open.pem", dir);
    cr_assert_eq(chmod(path, 0644), 0);
    msg = open_memstream(&text, &len);
    cr_assert_not_null(msg);
    cr_assert_eq(tbc_key_load_file(path, &k, msg), 0);
    fclose(msg);
    cr_assert_not_null(strstr(text, "readable by others"), "%s", text);
    cr_assert_null(strstr(text, "PRIVATE"), "no key material in messages");
    free(text);
    EVP_PKEY_free(k);
}
