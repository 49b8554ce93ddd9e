/*
 * The daemon's configuration: a libconfig file (or the command-line quick mode) turned into one
 * immutable `struct tbp_config` on the heap (the command line is cli.h).
 *
 * A loaded config is read-only and shared by every worker thread; nothing in it changes after
 * tbp_config_load / tbp_config_quick return, and every pointer inside it stays valid until
 * tbp_config_free. A reload builds a new one and swaps the pointer. Every option has a default
 * (the TBP_DEF_* values below, documented option by option in conf/README.md); only listeners
 * (address, certificate, key), upstreams and routes must be written.
 *
 * File format rules (conf/README.md has the full reference):
 * - Unknown settings are errors, as are wrong types, out-of-range values, routes naming unknown
 *   upstreams, unreachable routes, duplicate or overlapping listeners, unreadable cert/key files,
 *   no listeners and no routes. Every message names the file, the line and the setting path:
 *   "conf/tbproxy.conf:12: upstreams.app.servers[1]: bad address \"foo\" (...)". A required
 *   setting missing at the top level has no line to point to: "FILE: listen: missing ...".
 * - Durations: an integer is seconds; a string is a non-negative integer followed by a unit,
 *   "ms", "s", "m" or "h" ("500ms", "30s", "2m", "1h"). Stored in milliseconds.
 * - Relative file paths (certificates, keys, log files) are resolved against the directory of the
 *   config file, so `tbproxy -c /etc/tbproxy/tbproxy.conf` works from any directory; `@include`
 *   is resolved against it too. In quick mode they are resolved against the current directory.
 *   Stored paths are absolute.
 * - Addresses are numeric: "127.0.0.1:8443" or "[::1]:8443" (no host names, no port 0).
 */
#ifndef TBP_CONFIG_H
#define TBP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tb/cookie.h"
#include "tb/jwt.h"
#include "tb/message.h"

#define TBP_VERSION "0.1.0"

/* An err buffer of this size holds any message these functions write. */
#define TBP_CONFIG_ERRLEN 1024

/* Defaults (also in conf/README.md and conf/tbproxy.conf). Durations in milliseconds. */
#define TBP_DEF_WORKERS 0 /* 0 = one per online core */
#define TBP_DEF_CIPHERS                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TBP_DEF_GROUPS "X25519:P-256:P-384" /* no ffdhe: see tls.h */
#define TBP_DEF_TICKETS 1
#define TBP_DEF_TICKET_KEY_ROTATION_MS (3600u * 1000)
#define TBP_DEF_TB_ENABLED 1
#define TBP_DEF_TB_REQUIRE 0
#define TBP_DEF_MAX_IDLE 64
#define TBP_DEF_FAIL_TIMEOUT_MS (10u * 1000)
#define TBP_DEF_HANDSHAKE_MS (10u * 1000)
#define TBP_DEF_FIRST_REQUEST_MS (10u * 1000)
#define TBP_DEF_HEADER_READ_MS (30u * 1000)
#define TBP_DEF_IDLE_KEEPALIVE_MS (60u * 1000)
#define TBP_DEF_BODY_READ_MS (60u * 1000)
#define TBP_DEF_UPSTREAM_CONNECT_MS (5u * 1000)
#define TBP_DEF_UPSTREAM_READ_MS (60u * 1000)
#define TBP_DEF_SEND_MS (60u * 1000)
#define TBP_DEF_SHUTDOWN_MS (30u * 1000)      /* timeouts.shutdown: the graceful stop budget */
#define TBP_DEF_ADMIN_LISTEN "127.0.0.1:9901" /* admin.listen */
#define TBP_DEF_MAX_HEADER_BYTES 65536
#define TBP_DEF_MAX_HEADERS 100
#define TBP_DEF_MAX_CONNECTIONS_PER_WORKER 10000
#define TBP_DEF_MAX_URI_BYTES 8192
#define TBP_DEF_MAX_BODY_SIZE 0 /* limits.max_body_size, routes[].max_body_size: unlimited */
#define TBP_DEF_MAX_CONCURRENT_STREAMS 100
#define TBP_DEF_MAX_BUFFER_BYTES (256u * 1024)
#define TBP_MAX_BODY_SIZE_LIMIT (1ull << 50) /* the largest max_body_size that can be written */
#define TBP_DEF_JWT_LEEWAY_S 60              /* routes[].jwt.leeway */
#define TBP_MAX_JWT_LEEWAY_S 3600

/* Hard caps on list lengths. */
#define TBP_MAX_LISTENERS 64
#define TBP_MAX_UPSTREAMS 1024
#define TBP_MAX_SERVERS 256 /* per upstream */
#define TBP_MAX_ROUTES 4096
#define TBP_MAX_TRUSTED 1024
#define TBP_MAX_BIND_COOKIES 64 /* names in one route's bind_cookies */
#define TBP_TB_MAX_KEY_TYPES 2
#define TBP_TB_MAX_PROTOCOLS 2

/* A numeric socket address with its canonical text ("127.0.0.1:8443", "[::1]:8443"). */
struct tbp_addr {
    struct sockaddr_storage ss;
    socklen_t len; /* sizeof(struct sockaddr_in) or sizeof(struct sockaddr_in6) */
    char text[56]; /* canonical form, for logs */
};

/* Protocols Token Binding can be negotiated for (draft ALPN ids "<proto>_tb_<key>"). */
enum tbp_proto {
    TBP_PROTO_HTTP11 = 0, /* "http/1.1" */
    TBP_PROTO_H2 = 1,     /* "h2" */
};

enum tbp_log_level {
    TBP_LOG_DEBUG = 0, /* "debug" */
    TBP_LOG_INFO = 1,  /* "info" (default) */
    TBP_LOG_WARN = 2,  /* "warn" */
    TBP_LOG_ERROR = 3, /* "error" */
};

enum tbp_log_format {
    TBP_LOG_COMBINED = 0, /* "combined": Apache combined + TB outcome + upstream time (default) */
    TBP_LOG_JSON = 1,     /* "json": one JSON object per line, the same fields */
};

/* Client certificates (mTLS) on a listener: `tls.client_certificate`. */
enum tbp_client_cert {
    TBP_CLIENT_CERT_OFF = 0,      /* "off" (default): none is requested */
    TBP_CLIENT_CERT_OPTIONAL = 1, /* "optional": requested; the handshake succeeds without one
                                     and with one that does not verify (the result is reported
                                     to the origin: pass, selfsigned, fail, ...) */
    TBP_CLIENT_CERT_REQUIRED = 2, /* "required": no handshake without a certificate that
                                     verifies against client_ca (and client_crl) */
};

struct tbp_tls_config {
    const char *cert;                 /* required: PEM chain (leaf first), absolute path */
    const char *key;                  /* required: PEM private key, absolute path */
    const char *ciphers;              /* TLS 1.2 list, OpenSSL syntax, AEAD only: TBP_DEF_CIPHERS */
    const char *groups;               /* key exchange groups, OpenSSL names, preference first:
                                         TBP_DEF_GROUPS */
    int tickets;                      /* session tickets for resumption: 1 */
    uint32_t ticket_key_rotation_ms;  /* ticket key lifetime, >= 1 s: 3600 s */
    enum tbp_client_cert client_cert; /* `client_certificate`: TBP_CLIENT_CERT_OFF */
    const char *client_ca;  /* `client_ca`: PEM file of the CA certificates client certificates
                               are verified against (sent to clients as the acceptable CA names),
                               absolute path; required unless client_cert is off; else NULL */
    const char *client_crl; /* `client_crl`: PEM file of CRLs, absolute path; NULL: revocation
                               not checked (only allowed with client_cert not off) */
};

/* Token Binding versions (token_binding.version, listen.token_binding_version), as bits. */
#define TBP_TBV_DRAFT 1u /* "draft" */
#define TBP_TBV_RFC 2u   /* "rfc"; "both" is TBP_TBV_DRAFT | TBP_TBV_RFC */

struct tbp_listener {
    struct tbp_addr addr; /* required */
    unsigned tb_versions; /* `token_binding_version` ("draft", "rfc", "both"): TBP_TBV_* bits;
                             default token_binding.versions (needs token_binding.enabled) */
    struct tbp_tls_config tls;
};

struct tbp_tb_config {
    int enabled;                                    /* offer Token Binding at all: 1 */
    unsigned versions;                              /* `version` ("draft", "rfc", "both"):
                                                       TBP_TBV_* bits, the listeners' default:
                                                       TBP_TBV_DRAFT */
    size_t n_key_types;                             /* >= 1 */
    int key_types[TBP_TB_MAX_KEY_TYPES];            /* enum tb_key_params, preferred first:
                                                       TB_KP_ECDSAP256, TB_KP_RSA2048_PKCS1 */
    size_t n_protocols;                             /* >= 1 */
    enum tbp_proto protocols[TBP_TB_MAX_PROTOCOLS]; /* preferred first: TBP_PROTO_HTTP11 */
    int require; /* 1: requests on connections without TB get 403: 0 (needs enabled) */
};

struct tbp_upstream {
    const char *name;            /* the setting name under `upstreams`, [A-Za-z0-9_-] */
    size_t n_servers;            /* 1..TBP_MAX_SERVERS, round-robin */
    struct tbp_addr *servers;    /* no duplicates */
    uint32_t connect_timeout_ms; /* default: timeouts.upstream_connect */
    uint32_t read_timeout_ms;    /* default: timeouts.upstream_read */
    unsigned max_idle;           /* idle keep-alive connections kept per worker (0 = none): 64 */
    uint32_t fail_timeout_ms;    /* a failed server is skipped this long (0 = never): 10 s */
};

/* What happens to a bound cookie (bind_cookies) from a client without Token Binding. */
enum tbp_unbound_policy {
    TBP_UNBOUND_DROP = 0, /* "drop" (default): dropped from Cookie, counted */
    TBP_UNBOUND_PASS = 1, /* "pass": an unbound (suffix-less) value passes as is; a bound one is
                             still dropped, and Set-Cookie goes to such clients unbound */
};

/* Where a route's JWT comes from. */
enum tbp_jwt_source {
    TBP_JWT_FROM_AUTHORIZATION = 0, /* "authorization": "Authorization: Bearer <token>" */
    TBP_JWT_FROM_COOKIE = 1,        /* "cookie:NAME" */
};

/* A route's `jwt` group: requests without a valid token bound to the provided TBID get 401. */
struct tbp_jwt_route {
    enum tbp_jwt_source from; /* `from`: TBP_JWT_FROM_AUTHORIZATION */
    const char *cookie;       /* TBP_JWT_FROM_COOKIE: the cookie name (a token); else NULL */
    struct tb_jwt_keys *keys; /* `keys` (public PEM / JWKS) or `secret` (HMAC): owned */
    unsigned algs;            /* `algs`, bits of enum tb_jwt_alg, each fitting the keys */
    const char *issuer;       /* `issuer`: NULL when not checked */
    const char *audience;     /* `audience`: NULL when not checked */
    unsigned leeway_s;        /* `leeway` (duration, whole seconds): 60 s */
    const char *sub_header;   /* `sub_header`: header carrying the verified "sub", or NULL;
                                 stripped from every incoming request of the route. A token,
                                 as written (compare case-insensitively), never a header the
                                 proxy manages (Token Binding, hop-by-hop, Host, Cookie, ...) */
};

/* A route's demand on one property of the connection (token_binding, client_certificate). */
enum tbp_policy {
    TBP_POLICY_OPTIONAL = 0, /* "optional": reported when present (the default) */
    TBP_POLICY_OFF = 1,      /* "off": not required, and not reported to the origin */
    TBP_POLICY_REQUIRED = 2, /* "required": a request without it gets 403 */
};

struct tbp_route {
    const char *host;   /* lower case: "*" (any), "*.example.com" (subdomains), "example.com" */
    const char *prefix; /* path prefix, starts with '/', plain byte comparison: "/" */
    size_t prefix_len;
    const struct tbp_upstream *upstream; /* required; points into tbp_config.upstreams */
    /* companion module: bound cookies, bound JWTs, federation (all off by default) */
    size_t n_bind_cookies;     /* `bind_cookies = ["session", ...]`: names bound (needs
                                  cookie_keys); 0 with bind_all_cookies 0: none */
    const char **bind_cookies; /* the names (RFC 6265 tokens, distinct, at most
                                  TBP_MAX_BIND_COOKIES), case-sensitive as cookie names are */
    int bind_all_cookies;      /* `bind_cookies = "*"` (or ["*"]): every cookie */
    enum tbp_unbound_policy unbound_cookies; /* `unbound_cookies`: TBP_UNBOUND_DROP */
    uint64_t max_body_size;  /* `max_body_size`: request body bytes (0: no limit); default
                                limits.max_body_size. Over it: 413, or the request is cut */
    int refer_token_binding; /* `refer_token_binding`: add "Include-Referer-Token-Binding-ID:
                                true" to this route's 301 and 302 responses (rfc connections:
                                Include-Referred-, to any 3xx but 304): 0 */
    const struct tbp_jwt_route *jwt; /* `jwt = {...}`, NULL when absent */
    /* route policy and what the origin is told (issue 9; spec AUTH-RESULTS.md) */
    enum tbp_policy token_binding;      /* `token_binding`: OPTIONAL (REQUIRED when the top-level
                                           token_binding.require is on). OFF: the IDs are never
                                           forwarded, nothing is refused for lack of a binding */
    enum tbp_policy client_certificate; /* `client_certificate`: OPTIONAL. REQUIRED: 403 unless
                                           the client certificate verified (tls=pass); OFF: no
                                           cert.* properties in Authentication-Results */
    int authentication_results;         /* `authentication_results`: add the proxy's
                                           Authentication-Results header: 1 */
    int token_binding_context;          /* `token_binding_context`: forward
                                           Sec-Token-Binding-Context on rfc connections: 0 */
};

struct tbp_timeouts {             /* all > 0 */
    uint32_t handshake_ms;        /* TLS handshake: 10 s */
    uint32_t first_request_ms;    /* from the end of the handshake to the first request's head
                                     complete (h2: the first stream's HEADERS): 10 s */
    uint32_t header_read_ms;      /* a request's header section, from its first byte to its end
                                     (a deadline, not reset by each read): 30 s */
    uint32_t idle_keepalive_ms;   /* between requests on a kept-alive connection: 60 s */
    uint32_t body_read_ms;        /* between two reads of a request body: 60 s */
    uint32_t send_ms;             /* response bytes waiting for a client that reads nothing
                                     (no write progress, or an h2 stream window kept shut): the
                                     connection (h2: the stream) is cut after this long: 60 s */
    uint32_t upstream_connect_ms; /* default for upstreams.*.connect_timeout: 5 s */
    uint32_t upstream_read_ms;    /* default for upstreams.*.read_timeout: 60 s */
    uint32_t shutdown_ms;         /* graceful stop (SIGTERM, SIGQUIT): in-flight requests get
                                     this long to finish, then the rest is cut: 30 s */
};

struct tbp_limits {
    unsigned max_header_bytes;           /* request header section, 1 KiB..1 MiB: 65536 */
    unsigned max_headers;                /* header fields per request, 1..10000: 100 */
    unsigned max_connections_per_worker; /* 1..1000000: 10000 */
    unsigned max_uri_bytes;              /* request-target bytes, 64..1 MiB: 8192 (over: 414) */
    uint64_t max_body_size;              /* default for routes[].max_body_size: 0 (no limit) */
    unsigned max_concurrent_streams;     /* h2 SETTINGS_MAX_CONCURRENT_STREAMS, 1..10000: 100 */
    unsigned max_buffer_bytes;           /* high-water mark of each connection's output (client
                                            and origin side), 16 KiB..64 MiB: 256 KiB */
};

/* A trusted-proxy prefix: address bits beyond prefix_len are zero. */
struct tbp_cidr {
    int family;          /* AF_INET or AF_INET6 */
    unsigned prefix_len; /* 0..32 or 0..128 */
    uint8_t addr[16];    /* network byte order; 4 bytes used for AF_INET */
};

struct tbp_log_config {
    const char *access;         /* absolute path, "-" (stdout) or "" (off): "" */
    const char *error;          /* absolute path or "-" (stderr): "-" */
    enum tbp_log_level level;   /* TBP_LOG_INFO */
    enum tbp_log_format format; /* TBP_LOG_COMBINED */
};

/* The admin server (/metrics, /healthz, /readyz, /status; src/proxy/admin.h). */
struct tbp_admin_config {
    int enabled;          /* 0 when `admin.listen = ""`: 1 */
    struct tbp_addr addr; /* `admin.listen`, when enabled: TBP_DEF_ADMIN_LISTEN; never overlaps a
                             listener */
};

struct tbp_config_mem; /* private: every allocation the config owns */

struct tbp_config {
    const char *path;   /* absolute path of the file loaded; NULL in quick mode */
    unsigned workers;   /* >= 1: `workers = 0` (default) resolved to the online cores at load */
    size_t n_listeners; /* >= 1 */
    struct tbp_listener *listeners;
    struct tbp_tb_config tb;
    size_t n_upstreams;             /* >= 1 */
    struct tbp_upstream *upstreams; /* file order */
    size_t n_routes;                /* >= 1; first match wins */
    struct tbp_route *routes;
    struct tbp_timeouts timeouts;
    struct tbp_limits limits;
    size_t n_trusted; /* trusted_proxies: [] (trust no one) */
    struct tbp_cidr *trusted;
    struct tbp_log_config log;
    struct tb_cookie_keyring *cookie_keys; /* `cookie_keys = "file"`: owned; NULL when unset */
    const char *user; /* `user = "name"`: the account to switch to after binding the sockets and
                         opening the logs (the name existed at load); NULL: stay (default) */
    struct tbp_admin_config admin;
    const char *authserv_id; /* `authserv_id`: the name the proxy signs its Authentication-Results
                                with, and whose incoming ones it removes: the host name
                                (gethostname) at load; a token or a dot-atom, 1..255 bytes */
    struct tbp_config_mem *mem;
};

/*
 * Loads and validates the libconfig file at `path`. On success returns 0 and stores a new config
 * in *out (free with tbp_config_free). On failure returns a negative TB_E* code (TB_EINVAL for
 * anything wrong with the file, TB_ENOMEM), leaves *out NULL and writes one line without a
 * trailing newline into err (truncated to errlen; TBP_CONFIG_ERRLEN is always enough).
 */
int tbp_config_load(const char *path, struct tbp_config **out, char *err, size_t errlen);

/*
 * Quick mode (`--listen A --upstream A --cert F --key F`): one listener, one upstream pool
 * "default" with that one server, one route "*" "/" to it, Token Binding on (draft, p256 then
 * rsa2048, for h2 and http/1.1; tbp_config_quick_tb_version changes the version), tickets on, the
 * admin server on TBP_DEF_ADMIN_LISTEN, no `user`, every other option at its default. Same contract
 * as tbp_config_load; messages name the option ("--listen: bad address \"x\" ..."). The admin
 * address is not checked against the listener here: tbp_config_quick_admin (`--admin`) does that.
 */
int tbp_config_quick(const char *listen, const char *upstream, const char *cert, const char *key,
                     struct tbp_config **out, char *err, size_t errlen);

/*
 * Quick mode's `--admin ADDR`: the admin server listens on addr instead, or is disabled when addr
 * is "". Returns 0, or TB_EINVAL with "--admin: ..." in err (a bad address, or one that overlaps
 * the listener); cfg is unchanged then.
 */
int tbp_config_quick_admin(struct tbp_config *cfg, const char *addr, char *err, size_t errlen);

/*
 * Quick mode's `--client-cert MODE --client-ca FILE [--client-crl FILE]`: the listener's client
 * certificates, with the rules of the file's tls.client_certificate / client_ca / client_crl
 * (mode NULL means "off"; client_ca is required unless off; neither file with off; the files
 * must be readable, relative to the current directory). Returns 0, or TB_EINVAL (TB_ENOMEM) with
 * "--client-...: ..." in err; the listener's settings are unchanged then.
 */
int tbp_config_quick_client_cert(struct tbp_config *cfg, const char *mode, const char *ca,
                                 const char *crl, char *err, size_t errlen);

/*
 * Quick mode's `--tb-version draft|rfc|both`: token_binding.version and the listener's. Returns
 * 0, or TB_EINVAL with "--tb-version: ..." in err; cfg is unchanged then.
 */
int tbp_config_quick_tb_version(struct tbp_config *cfg, const char *v, char *err, size_t errlen);

/* Frees a config and everything it points to; NULL is a no-op. */
void tbp_config_free(struct tbp_config *cfg);

/*
 * 1 if `sa` (AF_INET or AF_INET6; an IPv4-mapped IPv6 address is matched as IPv4) is inside one
 * of the trusted_proxies prefixes, else 0 (also for NULL or other families).
 */
int tbp_config_trusted(const struct tbp_config *cfg, const struct sockaddr *sa);

/*
 * The first route matching a request, or NULL. `host` is the Host value as received (a port,
 * "[v6]" brackets and one trailing dot are ignored, case-insensitive; NULL or empty matches only
 * "*" routes); `path` is the request-target's path (plain prefix comparison, no normalisation:
 * normalise before calling if routes must not be bypassed with "//" or "..").
 */
const struct tbp_route *tbp_config_route(const struct tbp_config *cfg, const char *host,
                                         size_t host_len, const char *path, size_t path_len);

/*
 * 1 if a and b are the same socket address (family, address and port), else 0. A reload keeps a
 * listening socket whose address is equal in the new configuration; an overlapping one (the
 * wildcard and a specific address on one port) is a different socket.
 */
int tbp_addr_equal(const struct tbp_addr *a, const struct tbp_addr *b);

/* The index in cfg->listeners of the listener whose address equals a (tbp_addr_equal), or -1. */
int tbp_config_listener_find(const struct tbp_config *cfg, const struct tbp_addr *a);

/* "off", "optional", "required". */
const char *tbp_client_cert_name(enum tbp_client_cert mode);
/* The mode named s ("off", "optional", "required": exact, lower case): 0, or TB_EINVAL. */
int tbp_client_cert_parse(const char *s, enum tbp_client_cert *out);

/* The Token Binding versions named s ("draft", "rfc", "both": exact, lower case) as TBP_TBV_*
 * bits: 0, or TB_EINVAL. tbp_tb_versions_name: the name of such bits ("?" for others). */
int tbp_tb_versions_parse(const char *s, unsigned *out);
const char *tbp_tb_versions_name(unsigned versions);

/* "debug", "info", "warn", "error". */
const char *tbp_log_level_name(enum tbp_log_level level);
/* "http/1.1", "h2". */
const char *tbp_proto_name(enum tbp_proto proto);

#endif
