/*
 * Fixed test keys: p256_a, p256_b, rsa_a and rsa_1024 are the ones in shared/spec/vectors;
 * rsa_b was made once for these tests. Loading fixed keys keeps RSA key generation out of the
 * unit tests (it is slow, more so under ASan).
 */
#ifndef TBT_KEYS_H
#define TBT_KEYS_H

#include <openssl/evp.h>

extern const char TBT_PEM_P256_A[];
extern const char TBT_PEM_P256_B[];
extern const char TBT_PEM_RSA_1024[];
extern const char TBT_PEM_RSA_A[];
extern const char TBT_PEM_RSA_B[];

/* Loads a PEM private key; aborts the test process if it does not load. Free with EVP_PKEY_free. */
EVP_PKEY *tbt_key_load(const char *pem);

/* The four keys most tests sign with: "a" keys for provided bindings, "b" for referred. */
struct tbt_keyset {
    EVP_PKEY *p256_a, *p256_b, *rsa_a, *rsa_b;
};
void tbt_keyset_load(struct tbt_keyset *k);
void tbt_keyset_free(struct tbt_keyset *k);

#endif
