/*
 * request: the message model the HTTP/1.1 and HTTP/2 client modules share.
 *
 * A request is a method, an authority, a target, a list of header fields (names as the user
 * wrote them; h2client lower-cases them) and an optional body source. The body is streamed: from
 * memory (-d text) or from a file descriptor (-d @file), read in blocks as the connection takes
 * them, never loaded whole. Its length is known for memory and regular files; for a pipe it is
 * not (HTTP/1.1 then sends it chunked, HTTP/2 without content-length).
 *
 * A response is delivered through callbacks: on_head once per final response (interim 1xx heads
 * are consumed by the protocol modules), then on_body for each piece of the body. The response
 * head and its fields belong to the protocol module and are valid only during on_head.
 */
#ifndef TBC_REQUEST_H
#define TBC_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TBC_MAX_FIELDS 200         /* header fields of a request or a response */
#define TBC_MAX_FIELD_BYTES 65536  /* bytes of names and values of a response head */
#define TBC_BODY_BLOCK (64 * 1024) /* bytes read from a body source at a time */

struct tbc_header {
    char *name, *value; /* owned, NUL-terminated */
};

/* An ordered list of header fields. Embedded; zero-initialised is empty. */
struct tbc_headers {
    struct tbc_header *h;
    size_t n, cap;
};

/* Appends a copy of name[0..nlen) / value[0..vlen). 0, TBC_ENOMEM, or TBC_EUSAGE when more
 * than TBC_MAX_FIELDS fields. */
int tbc_headers_add(struct tbc_headers *hs, const char *name, size_t nlen, const char *value,
                    size_t vlen);
/* Same with NUL-terminated strings. */
int tbc_headers_add_str(struct tbc_headers *hs, const char *name, const char *value);
/* Replaces the value of every field called name (case-insensitive), or appends one. */
int tbc_headers_set(struct tbc_headers *hs, const char *name, const char *value);
/* The value of the first field called name (case-insensitive), or NULL. */
const char *tbc_headers_get(const struct tbc_headers *hs, const char *name);
/* Removes every field called name (case-insensitive). */
void tbc_headers_remove(struct tbc_headers *hs, const char *name);
/* Frees every field; the list is empty afterwards. */
void tbc_headers_dispose(struct tbc_headers *hs);

/*
 * Is "Name: value" a field this client may send? A token name (RFC 9110), a value without CR,
 * LF or NUL. 1 or 0.
 */
int tbc_header_valid(const char *name, size_t nlen, const char *value, size_t vlen);

enum tbc_body_kind {
    TBC_BODY_NONE = 0, /* no body */
    TBC_BODY_MEM = 1,  /* mem[0..len) */
    TBC_BODY_FD = 2,   /* read from fd: a regular file (len known, rewindable) or a pipe */
};

/* A request body source. The caller owns fd and mem. */
struct tbc_body {
    enum tbc_body_kind kind;
    const char *mem;
    int fd;
    int64_t len;    /* total bytes, -1 when unknown (a pipe) */
    int64_t offset; /* where the file starts (0 for a file opened for us) */
    uint64_t done;  /* bytes handed out since the last rewind */
    int rewindable; /* memory or a regular file */
};

/* The source for mem[0..len) (a copy of the pointer; mem must outlive the body). */
void tbc_body_mem(struct tbc_body *b, const char *mem, size_t len);
/* The source for fd from its current offset: regular files have a length, pipes do not.
 * Returns 0 or TBC_EREAD (fstat failed). */
int tbc_body_fd(struct tbc_body *b, int fd);
/* Reads up to cap bytes. Returns the count, 0 at the end, or TBC_EREAD. */
ssize_t tbc_body_read(struct tbc_body *b, void *buf, size_t cap);
/* Back to the start, for sending the body again (307/308). 0, or TBC_EREWIND (a pipe). */
int tbc_body_rewind(struct tbc_body *b);

struct tbc_request {
    const char *method;
    const char *authority;             /* Host / :authority */
    const char *target;                /* path and query */
    const struct tbc_headers *headers; /* everything else, Content-Length included */
    struct tbc_body *body;             /* NULL or TBC_BODY_NONE: no body */
};

struct tbc_response {
    int status;
    int version;        /* 10, 11 or 20 */
    const char *reason; /* HTTP/1.x reason phrase ("" for HTTP/2) */
    const struct tbc_headers *headers;
};

/*
 * What a protocol module calls. on_head: the final response head; return 0 to read the body or
 * a negative TBC_E* code to stop (the exchange then fails with it and the connection is not
 * reusable). on_body: n > 0 bytes of the body, valid during the call; return 0 or a negative
 * TBC_E* code to stop likewise.
 */
struct tbc_response_cb {
    int (*on_head)(void *ctx, const struct tbc_response *r);
    int (*on_body)(void *ctx, const char *p, size_t n);
};

#endif
