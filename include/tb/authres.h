/*
 * The Authentication-Results header value (RFC 8601): a bounded parser and a builder, for the
 * proxy that writes the header, for origin apps that read it, and for the tests.
 *
 *   authserv-id [version] ; method[/version]=result [(comment)] [reason=value] ptype.property=value
 *
 * Parsing (tb_authres_parse) follows RFC 8601 section 2.2 strictly: CFWS (spaces, tabs, folding
 * CRLF + WSP, comments nested up to TB_AUTHRES_MAX_NESTING deep, quoted-pairs) wherever the
 * grammar allows it, quoted strings with escapes, "none" as the no-result form, property values
 * that are tokens, quoted strings or addresses ([local-part]@domain-name). Anything else (a bare
 * CR or LF, a control byte, a byte over 0x7f outside a quoted string or comment, invalid UTF-8,
 * a ',' joining two header fields, a missing result) is TB_EPARSE. A value is at most
 * TB_AUTHRES_MAX_LEN bytes with at most TB_AUTHRES_MAX_METHODS methods, TB_AUTHRES_MAX_PROPS
 * properties and TB_AUTHRES_MAX_COMMENTS comments in all (TB_ETOOLARGE). The parser never reads
 * past len, does not recurse, and makes one allocation: the result and the text it points to.
 *
 * What the result holds: names (method, result, ptype, property) exactly as written, to be
 * compared case-insensitively (the lookup helpers do); values and comments decoded: quotes and
 * quoted-pairs removed, folding CRLFs removed, and a tab inside a quoted string or comment (or
 * quoted) read as a space, so a parsed string never holds a control byte and can always be built
 * again. A comment keeps the parentheses of comments nested in it. Comments belong to the part of
 * the value they appear in: before the first ';' (or in "; none") to the authserv-id, from a ';' to
 * the next to that method, in order (RFC 8601 B.7 puts them anywhere). An address whose local-part
 * is a quoted string is kept in its canonical form ("john doe"@example.com); no CFWS is allowed
 * inside an address.
 *
 * Building (struct tb_authres_builder) writes one line into a caller's buffer, always
 * NUL-terminated: a value that is not an RFC 2045 token is written as a quoted string with '"'
 * and '\' escaped (property values that are addresses stay as they are), a comment with '(',
 * ')' and '\' escaped. Control bytes are never written: a value or comment holding one (CR, LF,
 * NUL, tab or any other byte below 0x20, or 0x7f) or holding invalid UTF-8 is refused with
 * TB_EINVAL: the builder refuses rather than replaces, so that what the origin reads is what the
 * caller meant or nothing. Each call either writes its whole part or returns an error with the
 * value in buf as it was (bytes after its NUL may have changed; nothing is written past cap),
 * so a caller may leave out a property it cannot write (a certificate subject holding a
 * control byte) and go on. The builder never writes what the parser would refuse: the same
 * limits apply (TB_ETOOLARGE), and tb_authres_parse of its output gives back what it was given.
 */
#ifndef TB_AUTHRES_H
#define TB_AUTHRES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TB_AUTHRES_MAX_LEN 8192          /* bytes of a header value */
#define TB_AUTHRES_MAX_METHODS 16        /* methods (resinfo) in one value */
#define TB_AUTHRES_MAX_PROPS 64          /* properties in one value, all methods together */
#define TB_AUTHRES_MAX_COMMENTS 32       /* comments in one value */
#define TB_AUTHRES_MAX_NESTING 8         /* depth of nested comments */
#define TB_AUTHRES_MAX_VERSION 999999999 /* authres-version, method-version: up to 9 digits */

/* ptype "." property "=" value, e.g. smtp.mailfrom=example.net, tls.v=TLS1.3 */
struct tb_authres_prop {
    const char *ptype;    /* as written */
    const char *property; /* as written */
    const char *value;    /* decoded */
};

struct tb_authres_method {
    const char *name;            /* as written: "spf", "tls", "tokenbinding" */
    int version;                 /* method-version ("dkim/1"); 0 when absent (or written 0) */
    const char *result;          /* as written: "pass", "fail", "none", ... */
    const char *reason;          /* reason=... decoded, NULL when absent */
    const char *const *comments; /* n_comments decoded comments, in order */
    size_t n_comments;
    const struct tb_authres_prop *props; /* n_props properties, in order */
    size_t n_props;
};

/*
 * A parsed value. Every pointer stays valid until tb_authres_free. n_methods == 0 means the
 * "authserv-id; none" form. To build one by hand for tb_authres_build, fill the public fields
 * (pointing to your own arrays); the *_store arrays are where the parser keeps its lists.
 */
struct tb_authres {
    const char *authserv_id; /* decoded */
    int version;             /* authres-version; 0 when absent (which means 1) */
    const char *const *comments;
    size_t n_comments;
    size_t n_methods;
    struct tb_authres_method methods[TB_AUTHRES_MAX_METHODS];
    const char *comment_store[TB_AUTHRES_MAX_COMMENTS];
    struct tb_authres_prop prop_store[TB_AUTHRES_MAX_PROPS];
};

/*
 * Parses one Authentication-Results field value (without the field name; each field on its
 * own: two fields joined with ',' do not parse). On success returns 0 and sets *out to a new result
 * to be freed with tb_authres_free. Errors: TB_EPARSE (not RFC 8601), TB_ETOOLARGE (a limit above),
 * TB_ENOMEM, TB_EINVAL (NULL out, or NULL value with len > 0); *out is NULL then.
 */
int tb_authres_parse(const char *value, size_t len, struct tb_authres **out);
void tb_authres_free(struct tb_authres *ar);

/*
 * Reads only the authserv-id at the start of a value (after optional CFWS), decoded and
 * NUL-terminated into out: enough for a proxy to recognise, and remove, a header that claims
 * its own authserv-id (compare it case-insensitively) even when the rest of it is malformed.
 * Returns the id's length, TB_EPARSE
 * (no authserv-id: a malformed comment or quoted string, or no token), TB_ETOOLARGE (it does not
 * fit cap with its NUL, or len > TB_AUTHRES_MAX_LEN), TB_EINVAL (NULL arguments).
 */
int tb_authres_authserv_id(const char *value, size_t len, char *out, size_t cap);

/*
 * Lookups, names compared case-insensitively (ASCII). Return the first match after `after`
 * (NULL: from the start), NULL when there is none; so a loop finds every "dkim" method or every
 * "cert.clientalt" property.
 */
const struct tb_authres_method *tb_authres_find_method(const struct tb_authres *ar,
                                                       const char *name,
                                                       const struct tb_authres_method *after);
const struct tb_authres_prop *tb_authres_find_prop(const struct tb_authres_method *m,
                                                   const char *ptype, const char *property,
                                                   const struct tb_authres_prop *after);

/* The builder's state: use the functions below, do not touch the fields. */
struct tb_authres_builder {
    char *buf;
    size_t cap; /* usable bytes, without the NUL */
    size_t len;
    int state;
    size_t n_methods, n_props, n_comments;
    size_t method_props; /* properties of the current method */
    int method_reason;   /* the current method has its reason */
};

/*
 * Starts a value in buf (cap bytes, the NUL included; at most TB_AUTHRES_MAX_LEN + 1 are used):
 * the authserv-id, as is when it is a token, else as a quoted string ("" when empty), then the
 * authres-version when version > 0. Returns 0, TB_ETOOLARGE (it does not fit), TB_EINVAL (a
 * control byte or invalid UTF-8 in the id, NULL arguments, cap 0, version < 0 or over
 * TB_AUTHRES_MAX_VERSION). After a failure buf holds "" and every later call fails.
 */
int tb_authres_begin(struct tb_authres_builder *b, char *buf, size_t cap, const char *authserv_id,
                     int version);

/*
 * Appends "; name[/version]=result" (version > 0 written, 0 none). name and result must be
 * RFC 5321 Keywords (letters, digits and '-', not ending in '-'). Returns 0, TB_EINVAL (not a
 * Keyword, version out of range, called before begin or after end), TB_ETOOLARGE (it does not
 * fit, or TB_AUTHRES_MAX_METHODS are there). After a failure add_reason and add_prop fail with
 * TB_EINVAL until an add_method succeeds, so nothing lands on the method before.
 */
int tb_authres_add_method(struct tb_authres_builder *b, const char *name, int version,
                          const char *result);

/*
 * The three below take their text with a length, so that a NUL inside it is refused rather
 * than cutting it short (len 0: the text may be NULL). They return 0, TB_EINVAL (a control
 * byte or invalid UTF-8 in the text, a name that is not a Keyword, or not allowed here) or
 * TB_ETOOLARGE (it does not fit, or a limit is reached).
 *
 * add_reason appends " reason=value" to the current method: once, before its properties.
 * add_prop appends " ptype.property=value" to the current method, the value as is when it is
 * a token or an address ([dot-atom]@domain-name), else quoted.
 * add_comment appends " (text)": after the authserv-id it belongs to it, after a method to
 * that method (not after a failed add_method).
 */
int tb_authres_add_reason(struct tb_authres_builder *b, const char *reason, size_t len);
int tb_authres_add_prop(struct tb_authres_builder *b, const char *ptype, const char *property,
                        const char *value, size_t len);
int tb_authres_add_comment(struct tb_authres_builder *b, const char *text, size_t len);

/*
 * Ends the value: appends "; none" when no method was added. Returns the length of the value in
 * buf (without the NUL), TB_ETOOLARGE when "; none" does not fit, TB_EINVAL when begin failed.
 * Nothing can be added afterwards.
 */
int tb_authres_end(struct tb_authres_builder *b);

/*
 * Writes a whole result (parsed, or filled by hand) into buf: its comments, each method with
 * its comments, reason and properties. Returns the length, or the first error of the calls
 * above. tb_authres_parse of the output gives the same fields.
 */
int tb_authres_build(const struct tb_authres *ar, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
