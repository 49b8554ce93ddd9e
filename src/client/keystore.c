/*
 * keystore (see keystore.h): key files per origin under ~/.tbclient/keys.
 *
 * Files are read whole into a small fixed buffer (a key file is a few KiB) that is cleansed
 * afterwards, as is the PEM text of a key being written. Creation goes through mkstemp (mode
 * 0600 from the start, never visible with a wider mode) and link(2), so a key file appears
 * complete or not at all and a concurrent writer's key is never overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "errors.h"
#include "keystore.h"
#include "tb/error.h"
#include "tb/message.h"
#include "tb/sign.h"

#define HOME_DIR_NAME "/.tbclient"
#define KEYS_DIR_NAME "/keys/"

__attribute__((format(printf, 2, 3))) static void say(FILE *msg, const char *fmt, ...)
{
    va_list ap;

    if (msg == NULL)
        return;
    va_start(ap, fmt);
    vfprintf(msg, fmt, ap);
    va_end(ap);
}

int tbc_keystore_home(char *out, size_t cap)
{
    const char *env = getenv("TBCLIENT_HOME"), *home;
    struct passwd *pw;
    int n;

    if (env != NULL && *env != '\0') {
        n = snprintf(out, cap, "%s", env);
    } else {
        home = getenv("HOME");
        if ((home == NULL || *home == '\0') && (pw = getpwuid(getuid())) != NULL)
            home = pw->pw_dir;
        if (home == NULL || *home == '\0')
            return TBC_EKEY;
        n = snprintf(out, cap, "%s" HOME_DIR_NAME, home);
    }
    return n < 0 || (size_t)n >= cap ? TBC_EKEY : n;
}

/* The key a key_params value needs, as the draft names it: RSA-2048 for both paddings. */
static int key_kind(int key_params)
{
    return key_params == TB_KP_RSA2048_PSS ? TB_KP_RSA2048_PKCS1 : key_params;
}

int tbc_keystore_path(const char *origin, int key_params, char *out, size_t cap)
{
    const char *type = tb_key_params_name(TB_VERSION_DRAFT, key_kind(key_params));
    char home[TBC_KEYSTORE_MAX_PATH];
    size_t i;
    int n;

    if (type == NULL || origin[0] == '\0' || origin[0] == '.')
        return TBC_EKEY;
    for (i = 0; origin[i] != '\0'; i++)
        if (origin[i] == '/' || (unsigned char)origin[i] < 0x20 || origin[i] == 0x7f)
            return TBC_EKEY;
    if (tbc_keystore_home(home, sizeof(home)) < 0)
        return TBC_EKEY;
    n = snprintf(out, cap, "%s" KEYS_DIR_NAME "%s.%s.pem", home, origin, type);
    return n < 0 || (size_t)n >= cap ? TBC_EKEY : n;
}

/* Creates the directories leading to the file at path (mode 0700), like mkdir -p. 0 or -1. */
static int make_parents(const char *path, FILE *msg)
{
    char dir[TBC_KEYSTORE_MAX_PATH];
    size_t i, n = strlen(path);

    if (n >= sizeof(dir))
        return -1;
    memcpy(dir, path, n + 1);
    for (i = 1; i < n; i++) {
        if (dir[i] != '/')
            continue;
        dir[i] = '\0';
        if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
            struct stat st;
            int e = errno;

            if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
                say(msg, "tbclient: cannot create %s: %s\n", dir, strerror(e));
                return -1;
            }
        }
        dir[i] = '/';
    }
    return 0;
}

/* Reads the regular file fd (at most cap - 1 bytes) into buf, NUL-terminated. Length or -1. */
static ssize_t read_small(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t r;

    for (;;) {
        r = read(fd, buf + len, cap - 1 - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            return -1;
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap - 1)
            return -1; /* larger than any key we make */
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

int tbc_key_load_file(const char *path, EVP_PKEY **key, FILE *msg)
{
    char pem[TBC_KEY_MAX_PEM];
    struct stat st;
    ssize_t len = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = TBC_EKEY;

    *key = NULL;
    if (fd == -1 && errno == ENOENT)
        return 1;
    if (fd == -1) {
        say(msg, "tbclient: cannot open key %s: %s\n", path, strerror(errno));
        return TBC_EKEY;
    }
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        say(msg, "tbclient: key %s: %s\n", path, "not a regular file");
        goto Exit;
    }
    if ((st.st_mode & 077) != 0)
        say(msg, "tbclient: warning: key %s is readable by others (%s)\n", path, "chmod 600 it");
    len = read_small(fd, pem, sizeof(pem));
    if (len < 0 || tb_key_load_pem(pem, (size_t)len, key) != 0) {
        say(msg, "tbclient: key %s: %s\n", path,
            len < 0 ? "unreadable or too large" : "not a PEM private key");
        goto Exit;
    }
    rc = 0;
Exit:
    OPENSSL_cleanse(pem, sizeof(pem));
    close(fd);
    return rc;
}

/* Writes all of buf to fd. 0 or -1. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);

        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

int tbc_key_save_file(const char *path, EVP_PKEY *key, FILE *msg)
{
    char pem[TBC_KEY_MAX_PEM], tmp[TBC_KEYSTORE_MAX_PATH + 16];
    int len = tb_key_to_pem(key, pem, sizeof(pem)), fd = -1, rc = TBC_EKEY;

    if (len < 0 || (size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp) ||
        make_parents(path, msg) != 0)
        goto Exit;
    if ((fd = mkstemp(tmp)) == -1) {
        say(msg, "tbclient: cannot create %s: %s\n", tmp, strerror(errno));
        goto Exit;
    }
    if (fchmod(fd, 0600) == -1 || write_all(fd, pem, (size_t)len) != 0 || fsync(fd) == -1) {
        say(msg, "tbclient: cannot write %s: %s\n", tmp, strerror(errno));
        goto Exit;
    }
    if (link(tmp, path) == 0)
        rc = 0;
    else if (errno == EEXIST)
        rc = 1;
    else
        say(msg, "tbclient: cannot create %s: %s\n", path, strerror(errno));
Exit:
    if (fd != -1) {
        close(fd);
        unlink(tmp);
    }
    OPENSSL_cleanse(pem, sizeof(pem));
    return rc;
}

int tbc_key_matches(EVP_PKEY *key, int key_params)
{
    uint8_t id[1024];

    return tb_id_encode(TB_VERSION_DRAFT, key_kind(key_params), key, id, sizeof(id)) > 0;
}

int tbc_key_file_get(const char *path, int key_params, EVP_PKEY **key, int *created, FILE *msg)
{
    int rc, attempt;

    if (created != NULL)
        *created = 0;
    for (attempt = 0; attempt < 2; attempt++) {
        if ((rc = tbc_key_load_file(path, key, msg)) < 0)
            return rc;
        if (rc == 0) {
            if (tbc_key_matches(*key, key_params))
                return 0;
            say(msg, "tbclient: key %s is not a %s key\n", path,
                tb_key_params_name(TB_VERSION_DRAFT, key_kind(key_params)));
            EVP_PKEY_free(*key);
            *key = NULL;
            return TBC_EKEY;
        }
        if (tb_key_generate(key_kind(key_params), key) != 0) {
            say(msg, "tbclient: %s: %s\n", path, "key generation failed");
            return TBC_EKEY;
        }
        rc = tbc_key_save_file(path, *key, msg);
        if (rc == 0) {
            if (created != NULL)
                *created = 1;
            return 0;
        }
        EVP_PKEY_free(*key);
        *key = NULL;
        if (rc < 0)
            return rc;
        /* rc == 1: another process made it meanwhile: load theirs */
    }
    return TBC_EKEY;
}

int tbc_keystore_get(const char *origin, int key_params, EVP_PKEY **key, int *created, char *path,
                     FILE *msg)
{
    char buf[TBC_KEYSTORE_MAX_PATH];
    char *p = path != NULL ? path : buf;

    *key = NULL;
    if (tbc_keystore_path(origin, key_params, p, TBC_KEYSTORE_MAX_PATH) < 0) {
        say(msg, "tbclient: no key store path for %s%s\n", origin, " (set HOME or TBCLIENT_HOME)");
        return TBC_EKEY;
    }
    return tbc_key_file_get(p, key_params, key, created, msg);
}
