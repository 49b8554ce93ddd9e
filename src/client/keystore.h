/*
 * keystore: Token Binding keys kept per origin, as a browser keeps them.
 *
 * A key lives in <home>/keys/<host>:<port>.<keytype>.pem, where <home> is $TBCLIENT_HOME when
 * set and not empty, else ~/.tbclient ($HOME, else the password database), <host>:<port> is the
 * origin as tbc_url_origin() writes it and <keytype> the draft key type name ("p256",
 * "rsa2048"). The file holds a key, not a key parameters value, so both Token Binding versions
 * share it: an origin's P-256 key serves draft p256 and rfc ecdsap256, its RSA-2048 key draft
 * rsa2048 and rfc rsa2048_pss and rsa2048_pkcs1.5 alike (one RSA key per origin; the padding is
 * the signature's, not the key's), so a site sees the same identity over both versions. The
 * directories are created with mode 0700 and key files with mode 0600 (written to a temporary file
 * in the same directory, then renamed, so a reader never sees half a key). A key file whose mode
 * lets group or others read it still loads, with a warning: refusing would lock the user out of an
 * identity, and the warning says what to fix.
 *
 * Keys are private keys in PKCS#8 PEM, unencrypted, like ~/.ssh keys without a passphrase: the
 * file mode is the protection. Nothing in this module prints key material.
 *
 * Two tbclient processes may meet a missing key at once: a new key file is published with
 * link(2), which never replaces, and the loser loads the winner's key, so both use one key.
 *
 * Functions that take a FILE *msg write warnings and the reason of a failure there, one line
 * each (NULL: silent).
 */
#ifndef TBC_KEYSTORE_H
#define TBC_KEYSTORE_H

#include <stddef.h>
#include <stdio.h>

#include <openssl/evp.h>

#define TBC_KEYSTORE_MAX_PATH 4096
#define TBC_KEY_MAX_PEM 8192 /* PEM text of a P-256 or RSA-2048 private key, with room */

/*
 * The key store's home directory into out: $TBCLIENT_HOME, else $HOME/.tbclient, else the
 * user's home directory from the password database + "/.tbclient". Returns the length, or
 * TBC_EKEY when no home is known or cap is too small.
 */
int tbc_keystore_home(char *out, size_t cap);

/*
 * The path of the key for origin (host:port) and key_params (any enum tb_key_params value:
 * TB_KP_RSA2048_PSS shares TB_KP_RSA2048_PKCS1's file) into out. TBC_EKEY when the origin holds
 * a character that has no place in a file name ('/', a control, a leading '.'), the key type is
 * unknown, or cap is too small. Returns the length.
 */
int tbc_keystore_path(const char *origin, int key_params, char *out, size_t cap);

/*
 * Loads the private key in the PEM file at path into *key (caller frees with EVP_PKEY_free).
 * Returns 0, 1 when the file does not exist (nothing loaded), or TBC_EKEY (unreadable, not a
 * regular file, over TBC_KEY_MAX_PEM, not a key). A file readable by group or others loads with
 * a warning on msg.
 */
int tbc_key_load_file(const char *path, EVP_PKEY **key, FILE *msg);

/*
 * Creates path holding key as PKCS#8 PEM, mode 0600: written to a temporary file beside it,
 * then linked into place (never replacing a file). Missing parent directories are created with
 * mode 0700. Returns 0, 1 when path exists already (nothing written), or TBC_EKEY.
 */
int tbc_key_save_file(const char *path, EVP_PKEY *key, FILE *msg);

/* Does key fit key_params (a P-256 EC key; an RSA key of 2048 bits for either padding)? 1 or 0. */
int tbc_key_matches(EVP_PKEY *key, int key_params);

/*
 * The key for origin and key_params: loaded from the store, or generated and saved there when
 * none exists. *created tells which (may be NULL); path (may be NULL, else
 * TBC_KEYSTORE_MAX_PATH bytes) receives the file name. A stored key of the wrong type is an
 * error, not replaced. Returns 0 or TBC_EKEY.
 */
int tbc_keystore_get(const char *origin, int key_params, EVP_PKEY **key, int *created, char *path,
                     FILE *msg);

/*
 * The key at path (--key FILE) for key_params: loaded, or generated and saved there when the
 * file does not exist. Returns 0 or TBC_EKEY (also when the key does not fit key_params).
 */
int tbc_key_file_get(const char *path, int key_params, EVP_PKEY **key, int *created, FILE *msg);

#endif
