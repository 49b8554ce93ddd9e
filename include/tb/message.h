/*
 * Token Binding messages: the two wire versions, parsing, serializing and validation.
 *
 * One data model serves both versions (see spec/TOKEN-BINDING.md): a message is a list of
 * bindings, each with a type, a key, a signature and extensions. Parsing does not allocate: every
 * field of a parsed binding is a slice into the caller's input buffer, valid as long as that
 * buffer is. The codec is bounded: a message is at most TB_MAX_MESSAGE bytes and at most
 * TB_MAX_BINDINGS bindings, every length prefix is checked against its parent and each block must
 * be consumed exactly.
 */
#ifndef TB_MESSAGE_H
#define TB_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_MAX_MESSAGE 8192 /* bytes of a decoded TokenBindingMessage, length prefix included */
#define TB_MAX_BINDINGS 8   /* bindings in one message */
#define TB_MAX_CHANNEL 64   /* bytes of a channel value (tls_unique: 12, EKM: 32) */
/* Characters of a header value that can hold TB_MAX_MESSAGE bytes (with padding). */
#define TB_MAX_HEADER ((TB_MAX_MESSAGE + 2) / 3 * 4)

enum tb_version {
    TB_VERSION_DRAFT = 0, /* draft-popov-token-binding-00 + draft-balfanz-https-token-binding-00 */
    TB_VERSION_RFC = 1,   /* RFC 8471 / 8472 / 8473 */
};

enum tb_type {
    TB_TYPE_PROVIDED = 0,
    TB_TYPE_REFERRED = 1,
};

/*
 * Key parameters, one enum for both versions (values are RFC 8471's). In the draft, "p256" is
 * TB_KP_ECDSAP256 and "rsa2048" is TB_KP_RSA2048_PKCS1. A parsed key we cannot verify (other
 * hash, curve, algorithm, an RSA modulus that is not 2048 bits or an RSA exponent over 32
 * bits) is TB_KP_UNSUPPORTED.
 */
enum tb_key_params {
    TB_KP_UNSUPPORTED = -1,
    TB_KP_RSA2048_PKCS1 = 0,
    TB_KP_RSA2048_PSS = 1,
    TB_KP_ECDSAP256 = 2,
};

struct tb_slice {
    const uint8_t *p;
    size_t len;
};

struct tb_binding {
    uint8_t type;             /* enum tb_type, or any other value */
    int key_params;           /* enum tb_key_params */
    struct tb_slice id;       /* the TBID as forwarded and hashed (draft: without its type byte) */
    struct tb_slice point;    /* ECDSA: X||Y, 64 bytes */
    struct tb_slice modulus;  /* RSA */
    struct tb_slice exponent; /* RSA */
    struct tb_slice sig;      /* signature as sent (draft ECDSA: DER; rfc ECDSA: R||S) */
    struct tb_slice ext;      /* extensions, structure checked, contents ignored */
};

struct tb_message {
    enum tb_version version;
    size_t count;
    struct tb_binding b[TB_MAX_BINDINGS];
};

/* The bindings of a validated message by role. Pointers into the message they came from. */
struct tb_roles {
    const struct tb_binding *provided;
    const struct tb_binding *referred; /* NULL when absent */
    size_t n_other;                    /* other types with a supported key, in message order */
    const struct tb_binding *other[TB_MAX_BINDINGS];
};

/*
 * Parses a decoded TokenBindingMessage. On success returns 0 and fills *out, whose slices point
 * into buf. Errors: TB_ETOOLARGE (len > TB_MAX_MESSAGE or too many bindings), TB_EPARSE (any
 * length or structure error, no binding), TB_EUNSUPPORTED (draft: a signature algorithm whose key
 * layout is unknown, so the message cannot be walked), TB_EINVAL (bad arguments).
 */
int tb_message_parse(enum tb_version version, const uint8_t *buf, size_t len,
                     struct tb_message *out);

/*
 * Writes m in wire form (length prefix included) to out. Returns the byte count, or TB_EINVAL
 * when cap is too small or a field does not fit its length prefix.
 */
int tb_message_serialize(const struct tb_message *m, uint8_t *out, size_t cap);

/*
 * Checks a parsed message against spec "Validation" rules 3 and 4: exactly one provided binding
 * (TB_ENOPROVIDED, TB_EDUPLICATE), no binding type twice (TB_EDUPLICATE), the provided binding's
 * key parameters equal `negotiated` (TB_EKEYPARAMS), a referred binding with a supported key
 * (TB_EUNSUPPORTED). Other types with unsupported keys are ignored. Fills *out. Signatures are
 * not checked here: see tb_verify_binding().
 */
int tb_message_validate(const struct tb_message *m, int negotiated, struct tb_roles *out);

/*
 * Names of key parameters as used on the command line and in config: draft "p256", "rsa2048";
 * rfc "ecdsap256", "rsa2048_pss", "rsa2048_pkcs1.5". tb_key_params_name returns NULL for a value
 * the version does not have; tb_key_params_parse returns TB_EINVAL for an unknown name.
 */
const char *tb_key_params_name(enum tb_version version, int key_params);
int tb_key_params_parse(enum tb_version version, const char *name);

/* "draft" / "rfc"; tb_version_parse returns TB_EINVAL for anything else. */
const char *tb_version_name(enum tb_version version);
int tb_version_parse(const char *name);

#ifdef __cplusplus
}
#endif
#endif
