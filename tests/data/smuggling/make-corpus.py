#!/usr/bin/env python3
"""Writes the request-smuggling corpus of tests/unit/test_smuggling.c: one <name>.req per case.

The .req files are the corpus (raw bytes after a small header, format in test_smuggling.c); this
script is how they were made, so that a case can be changed or added without hand-editing CR,
LF and NUL bytes. Run from anywhere:

    python3 tests/data/smuggling/make-corpus.py [DIR]     # DIR defaults to this script's directory

It rewrites every case it knows and leaves other files alone. Statuses are what tbproxy decides
(h1parse.h: 400 syntax and framing, 414 a target over limits.max_uri_bytes, 431 header limits,
501 transfer codings and CONNECT, 505 versions; exchange.c: 400 a request-target that is neither
origin-form nor http/https absolute-form, or whose authority is not the Host); a list ("400 501") where either answer is safe and the choice is not the point.
"""
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
os.makedirs(out, exist_ok=True)
H = "Host: app.example\r\n"
cases = []


def case(name, about, status, origin, raw, **kw):
    """status: allowed statuses ("close": no answer); origin: none / one / incomplete."""
    cases.append((name, about, status, origin, raw, kw))

# ---- controls (not hostile: they prove the harness sees forwarding) ----
case("control-get", "a plain GET: forwarded once", "200", "one",
     "GET /ok?x=1 HTTP/1.1\r\n" + H + "User-Agent: t\r\n\r\n",
     origin_method="GET", origin_target="/ok?x=1", origin_body=0, splits="bytes")
case("control-post-length", "a POST with Content-Length: forwarded once with its body", "200", "one",
     "POST /p HTTP/1.1\r\n" + H + "Content-Length: 5\r\n\r\nhello", origin_method="POST", origin_body=5, splits="bytes")
case("control-post-chunked", "a chunked POST: forwarded once, chunked, same payload", "200", "one",
     "POST /p HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
     origin_body=8, splits="bytes")

# ---- Content-Length ----
case("cl-te-both", "Content-Length and Transfer-Encoding together (CL.TE)", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", splits="bytes")
case("cl-te-both-reversed", "Transfer-Encoding before Content-Length (TE.CL)", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n")
case("cl-duplicate-equal", "two equal Content-Length fields", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
case("cl-duplicate-differ", "two different Content-Length fields", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 5\r\nContent-Length: 30\r\n\r\nhelloGET /x HTTP/1.1\r\n" + H + "\r\n")
case("cl-list", "a Content-Length list \"5, 5\"", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 5, 5\r\n\r\nhello")
case("cl-negative", "a negative Content-Length", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: -5\r\n\r\nhello")
case("cl-hex", "a hexadecimal Content-Length", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 0x5\r\n\r\nhello")
case("cl-plus", "a signed Content-Length \"+5\"", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: +5\r\n\r\nhello")
case("cl-overflow", "a Content-Length beyond 2^64", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 184467440737095516160\r\n\r\nhello")
case("cl-overflow-wrap", "a Content-Length of exactly 2^64 (wraps to 0 in a naive parser)", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 18446744073709551616\r\n\r\nGET /x HTTP/1.1\r\n" + H + "\r\n")
case("cl-inner-space", "a Content-Length \"1 0\"", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 1 0\r\n\r\nhellohello")
case("cl-empty", "an empty Content-Length", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: \r\n\r\nhello")
case("cl-space-before-colon", "\"Content-Length :\" (whitespace between name and colon)", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Content-Length : 5\r\n\r\nhello", splits="bytes")
case("cl-leading-zeros", "Content-Length \"005\": a valid 1*DIGIT, forwarded as 5", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 005\r\n\r\nhello", origin_body=5)
case("cl-underscore", "\"Content_Length\": not a framing field, and never forwarded as a field an origin may read as one", "200 400", "one none",
     "GET /u HTTP/1.1\r\n" + H + "Content_Length: 0\r\n\r\n", origin_body=0, origin_lacks="content_length")
case("cl-short-eof", "Content-Length larger than the body sent, then EOF", "close", "incomplete",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 50\r\n\r\nhello", eof="yes")
SMUG = "GET /smuggled HTTP/1.1\r\nHost: app.example\r\n\r\n"
case("cl-body-hides-request", "a request inside a Content-Length body is body, not a request", "200", "one",
     "POST /outer HTTP/1.1\r\n" + H + "Content-Length: %d\r\n\r\n%s" % (len(SMUG), SMUG),
     origin_body=len(SMUG), origin_target="/outer", splits="bytes")
case("cl-get-with-body", "a GET with a Content-Length body: forwarded with that body", "200", "one",
     "GET /g HTTP/1.1\r\n" + H + "Content-Length: 5\r\n\r\nhello", origin_body=5)
case("cl-connection-named", "\"Connection: Content-Length\" cannot remove the framing", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhello", origin_body=5)

# ---- Transfer-Encoding ----
CHB = "5\r\nhello\r\n0\r\n\r\n"
case("te-trailing-space", "\"chunked \" (trailing OWS): chunked", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked \r\n\r\n" + CHB, origin_body=5)
case("te-xchunked", "\"xchunked\"", "501", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: xchunked\r\n\r\n" + CHB)
case("te-chunked-identity", "\"chunked, identity\": chunked not last", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, identity\r\n\r\n" + CHB)
case("te-identity-chunked", "\"identity, chunked\"", "501", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: identity, chunked\r\n\r\n" + CHB)
case("te-gzip-chunked", "\"gzip, chunked\": a coding the proxy does not decode", "501", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip, chunked\r\n\r\n" + CHB)
case("te-chunked-chunked", "\"chunked, chunked\"", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, chunked\r\n\r\n" + CHB)
case("te-second-header", "Transfer-Encoding in a second field (\"chunked\" then \"identity\")", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + CHB)
case("te-two-chunked-headers", "two \"Transfer-Encoding: chunked\" fields", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHB)
case("te-obs-fold", "Transfer-Encoding continued on an obs-fold line", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding:\r\n chunked\r\n\r\n" + CHB, splits="bytes")
case("te-uppercase", "\"TRANSFER-ENCODING: CHUNKED\": names and codings are case-insensitive", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "TRANSFER-ENCODING: CHUNKED\r\n\r\n" + CHB, origin_body=5)
case("te-tab-before-value", "Transfer-Encoding with HTAB as OWS", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding:\tchunked\r\n\r\n" + CHB, origin_body=5)
case("te-space-before-colon", "\"Transfer-Encoding :\"", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding : chunked\r\n\r\n" + CHB)
case("te-vtab", "a vertical tab before \"chunked\"", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: \x0bchunked\r\n\r\n" + CHB)
case("te-quoted", "\"\\\"chunked\\\"\" (quoted)", "501", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: \"chunked\"\r\n\r\n" + CHB)
case("te-nul", "a NUL after \"chunked\"", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\x00\r\n\r\n" + CHB)
case("te-http10", "Transfer-Encoding in an HTTP/1.0 request", "400", "none",
     "POST / HTTP/1.0\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n" + CHB)
case("te-empty-element", "\", chunked\" (an empty list element)", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: , chunked\r\n\r\n" + CHB, origin_body=5)
case("te-underscore", "\"Transfer_Encoding: chunked\": not framing, and never forwarded as a field an origin may read as such", "200 400", "one none",
     "GET /u HTTP/1.1\r\n" + H + "Transfer_Encoding: chunked\r\n\r\n", origin_body=0, origin_lacks="transfer_encoding")
case("te-connection-named", "\"Connection: Transfer-Encoding\" cannot remove the framing", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n" + CHB, origin_body=5)

# ---- chunked bodies ----
P = "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n"
case("chunk-size-overflow", "a chunk size beyond 64 bits", "400", "incomplete",
     P + "1FFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n")
case("chunk-size-huge", "a chunk size of 2^64-1, then EOF", "400 close", "incomplete",
     P + "FFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n", eof="yes")
case("chunk-size-negative", "a negative chunk size", "400", "incomplete",
     P + "-5\r\nhello\r\n0\r\n\r\n")
case("chunk-size-0x", "a chunk size \"0x5\"", "400", "incomplete",
     P + "0x5\r\nhello\r\n0\r\n\r\n")
case("chunk-size-leading-space", "a chunk size \" 5\"", "400", "incomplete",
     P + " 5\r\nhello\r\n0\r\n\r\n")
case("chunk-size-trailing-space", "a chunk size \"5 \" (BWS before nothing)", "400", "incomplete",
     P + "5 \r\nhello\r\n0\r\n\r\n", origin_body=5)
case("chunk-size-lf", "a chunk-size line ended by a bare LF", "400", "incomplete",
     P + "5\nhello\r\n0\r\n\r\n")
case("chunk-data-no-crlf", "chunk data longer than its size", "400", "incomplete",
     P + "5\r\nhelloXX\r\n0\r\n\r\n", splits="bytes")
case("chunk-data-lf", "chunk data ended by a bare LF", "400", "incomplete",
     P + "5\r\nhello\n0\r\n\r\n")
case("chunk-ext-empty", "an empty chunk extension \"5;\"", "400", "incomplete",
     P + "5;\r\nhello\r\n0\r\n\r\n")
case("chunk-ext-unterminated-quote", "a chunk extension with an unterminated quoted value", "400", "incomplete",
     P + "5;a=\"b\r\nhello\r\n0\r\n\r\n")
case("chunk-ext-lf-in-value", "a bare LF inside a chunk extension", "400", "incomplete",
     P + "5;a=b\nc\r\nhello\r\n0\r\n\r\n")
case("chunk-ext-huge", "5000 bytes of chunk extension", "400", "incomplete",
     P + "5;a=@@@\r\nhello\r\n0\r\n\r\n", fill="5000 b")
case("chunk-ext-valid", "a valid chunk extension: dropped, the payload forwarded", "200", "one",
     P + "5;name=value\r\nhello\r\n0\r\n\r\n", origin_body=5)
case("chunk-hides-request", "a request inside chunk data is data", "200", "one",
     P + "%x\r\n%s\r\n0\r\n\r\n" % (len(SMUG), SMUG), origin_body=len(SMUG), splits="bytes")
case("chunk-last-no-crlf-eof", "the last chunk without the final CRLF, then EOF", "close", "incomplete",
     P + "5\r\nhello\r\n0\r\n", eof="yes")
case("chunk-trailer-framing", "Content-Length and Transfer-Encoding as trailers: never forwarded", "400", "incomplete",
     P + "5\r\nhello\r\n0\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n", origin_body=5)
case("chunk-trailer-obs-fold", "an obs-fold line in the trailers", "400", "incomplete",
     P + "5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n")
case("chunk-many-zeros", "a chunk size with 40 leading zeros", "200", "one",
     P + "0000000000000000000000000000000000000005\r\nhello\r\n0\r\n\r\n", origin_body=5)

# ---- line endings, whitespace, control bytes ----
case("bare-lf-everywhere", "request and field lines ended by bare LF", "400", "none",
     "GET / HTTP/1.1\nHost: app.example\n\n", splits="bytes")
case("bare-lf-one-field", "one field line ended by a bare LF", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A: b\nX-B: c\r\n\r\n")
case("bare-lf-end-of-head", "the head ended by CRLF LF (RFC 9112 lets a recipient take LF for CRLF)", "200 400", "one none",
     "GET / HTTP/1.1\r\n" + H + "\n", origin_body=0, splits="bytes")
case("bare-cr-field", "a bare CR between two fields", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A: b\rX-B: c\r\n\r\n", splits="bytes")
case("bare-cr-request-line", "a bare CR ending the request line", "505", "none",
     "GET / HTTP/1.1\r" + H + "\r\n")
case("obs-fold", "a field continued on an obs-fold line", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A: b\r\n c\r\n\r\n")
case("obs-fold-tab", "a field continued on a line starting with HTAB", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A: b\r\n\tc\r\n\r\n")
case("ws-before-first-field", "whitespace before the first field line", "400", "none",
     "GET / HTTP/1.1\r\n " + H + "\r\n")
case("space-before-colon", "\"Host :\" (field name with trailing whitespace)", "400", "none",
     "GET / HTTP/1.1\r\nHost : app.example\r\n\r\n")
case("tab-before-colon", "\"X-A\\t:\"", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A\t: b\r\n\r\n")
case("nul-in-name", "a NUL in a field name", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-\x00A: b\r\n\r\n")
case("nul-in-value", "a NUL in a field value", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A: b\x00c\r\n\r\n")
case("ctl-in-value", "a control byte (0x01) in a field value", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A: b\x01c\r\n\r\n")
case("del-in-value", "DEL (0x7f) in a field value", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A: b\x7fc\r\n\r\n")
case("ctl-in-name", "a control byte (0x7f) in a field name", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-\x7fA: b\r\n\r\n")
case("empty-name", "an empty field name \": b\"", "400", "none",
     "GET / HTTP/1.1\r\n" + H + ": b\r\n\r\n")
case("slash-in-name", "a '/' in a field name", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X/A: b\r\n\r\n")
case("no-colon", "a field line without a colon", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "X-A b\r\n\r\n")
case("missing-final-crlf-eof", "a head without its empty line, then EOF", "close", "none",
     "GET / HTTP/1.1\r\n" + H, eof="yes")
case("leading-empty-lines", "empty lines before the request line (RFC 9112 allows ignoring them)", "200", "one",
     "\r\n\r\nGET /lead HTTP/1.1\r\n" + H + "\r\n", origin_body=0)

# ---- methods, versions, targets ----
case("method-lowercase", "\"get\"", "400", "none", "get / HTTP/1.1\r\n" + H + "\r\n")
case("method-unknown", "an unknown method \"FOO\"", "400", "none", "FOO / HTTP/1.1\r\n" + H + "\r\n")
case("method-connect", "CONNECT (no tunnels in a reverse proxy)", "501", "none",
     "CONNECT app.example:443 HTTP/1.1\r\n" + H + "\r\n")
case("method-double-space", "two spaces after the method", "505", "none", "GET  / HTTP/1.1\r\n" + H + "\r\n")
case("method-tab", "HTAB between method and target", "400", "none", "GET\t/ HTTP/1.1\r\n" + H + "\r\n")
case("method-ctl", "a control byte in the method", "400", "none", "G\x01T / HTTP/1.1\r\n" + H + "\r\n")
case("version-1.2", "HTTP/1.2", "505", "none", "GET / HTTP/1.2\r\n" + H + "\r\n")
case("version-0.9", "HTTP/0.9 as a version", "505", "none", "GET / HTTP/0.9\r\n" + H + "\r\n")
case("version-none", "an HTTP/0.9 simple request (no version)", "505", "none", "GET /\r\n" + H + "\r\n")
case("version-2.0", "HTTP/2.0 over HTTP/1.1", "505", "none", "GET / HTTP/2.0\r\n" + H + "\r\n")
case("version-h2-preface", "the HTTP/2 connection preface on an http/1.1 connection", "505", "none",
     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
case("version-lowercase", "\"http/1.1\"", "400", "none", "GET / http/1.1\r\n" + H + "\r\n")
case("version-rtsp", "RTSP/1.0", "505", "none", "GET / RTSP/1.0\r\n" + H + "\r\n")
case("version-leading-zero", "HTTP/01.1", "505", "none", "GET / HTTP/01.1\r\n" + H + "\r\n")
case("version-trailing-space", "\"HTTP/1.1 \" (a space after the version)", "505", "none",
     "GET / HTTP/1.1 \r\n" + H + "\r\n")
case("target-absolute-form", "absolute-form with another host than Host: never forwarded to the wrong host", "400", "none",
     "GET http://evil.example/admin HTTP/1.1\r\n" + H + "\r\n")
case("target-authority-form", "authority-form with GET", "400", "none",
     "GET app.example:443 HTTP/1.1\r\n" + H + "\r\n")
case("target-asterisk-get", "\"*\" with GET", "400", "none", "GET * HTTP/1.1\r\n" + H + "\r\n")
case("target-fragment", "a '#' in the target", "400", "none", "GET /a#b HTTP/1.1\r\n" + H + "\r\n")
case("target-ctl", "a control byte in the target", "400", "none", "GET /a\x01b HTTP/1.1\r\n" + H + "\r\n")
case("target-high-bytes", "raw bytes >= 0x80 in the target", "400", "none", "GET /a\xc3\xa9 HTTP/1.1\r\n" + H + "\r\n")
case("target-huge", "a 70000-byte target (over max_uri_bytes, 8 KiB, before the 64 KiB header limit)", "414", "none",
     "GET /@@@ HTTP/1.1\r\n" + H + "\r\n", fill="70000 a")
case("target-over-uri-limit", "an 8193-byte target: one byte over max_uri_bytes (8 KiB)", "414", "none",
     "GET /@@@ HTTP/1.1\r\n" + H + "\r\n", fill="8192 a")
case("target-absolute-form-https", "https absolute-form naming the Host: forwarded in origin-form", "200", "one",
     "GET https://app.example/y?q=1 HTTP/1.1\r\n" + H + "\r\n", origin_target="/y?q=1", origin_body=0)
case("target-absolute-form-empty-path", "absolute-form with an empty path and a query: forwarded as \"/?q\"", "200", "one",
     "GET http://app.example?q HTTP/1.1\r\n" + H + "\r\n", origin_target="/?q", origin_body=0)
case("target-absolute-form-case", "absolute-form in upper case (scheme and host compare without case)", "200", "one",
     "GET HTTP://APP.EXAMPLE/x HTTP/1.1\r\n" + H + "\r\n", origin_target="/x", origin_body=0)
case("target-absolute-form-port", "absolute-form with a port the Host does not have", "400", "none",
     "GET http://app.example:8080/x HTTP/1.1\r\n" + H + "\r\n")
case("target-absolute-form-userinfo", "absolute-form with userinfo (user@host)", "400", "none",
     "GET http://user@app.example/x HTTP/1.1\r\n" + H + "\r\n")
case("target-absolute-form-ftp", "absolute-form with a scheme other than http and https", "400", "none",
     "GET ftp://app.example/x HTTP/1.1\r\n" + H + "\r\n")
case("target-absolute-form-no-authority", "absolute-form with an empty authority", "400", "none",
     "GET http:///x HTTP/1.1\r\n" + H + "\r\n")
case("target-absolute-form-http10", "HTTP/1.0 absolute-form without Host: the authority becomes the Host", "200", "one",
     "GET http://app.example/z HTTP/1.0\r\n\r\n", origin_target="/z", origin_body=0)
case("target-relative", "a relative reference (no leading '/', no scheme)", "400", "none",
     "GET x/y HTTP/1.1\r\n" + H + "\r\n")
case("field-huge", "a 70000-byte field value", "431", "none",
     "GET / HTTP/1.1\r\n" + H + "X-Big: @@@\r\n\r\n", fill="70000 b")
case("too-many-fields", "101 fields (the default limit is 100)", "431", "none",
     "GET / HTTP/1.1\r\n" + H + "".join("X-F%d: v\r\n" % i for i in range(101)) + "\r\n")

# ---- Host ----
case("host-missing", "HTTP/1.1 without Host", "400", "none", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n")
case("host-duplicate-same", "two equal Host fields", "400", "none", "GET / HTTP/1.1\r\n" + H + H + "\r\n")
case("host-duplicate-differ", "two different Host fields", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "Host: evil.example\r\n\r\n")
case("host-userinfo", "Host with userinfo \"user@app.example\"", "400", "none",
     "GET / HTTP/1.1\r\nHost: user@app.example\r\n\r\n")
case("host-space", "Host \"app.example evil.example\"", "400", "none",
     "GET / HTTP/1.1\r\nHost: app.example evil.example\r\n\r\n")
case("host-slash", "Host with a path \"app.example/x\"", "400", "none",
     "GET / HTTP/1.1\r\nHost: app.example/x\r\n\r\n")
case("host-empty", "an empty Host", "400", "none", "GET / HTTP/1.1\r\nHost: \r\n\r\n")
case("host-http10-missing", "HTTP/1.0 without Host (and so without keep-alive)", "400", "none",
     "GET / HTTP/1.0\r\n\r\n")

# ---- Expect, Upgrade, Connection ----
case("expect-100-continue", "Expect: 100-continue with a body: 100, then the one request", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", origin_body=5)
case("expect-100-smuggle", "Expect: 100-continue, a body, and a second request hidden in it", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n%s" % (len(SMUG), SMUG),
     origin_body=len(SMUG), origin_target="/")
case("expect-unknown", "an unknown expectation \"100-continuex\"", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Expect: 100-continuex\r\nContent-Length: 5\r\n\r\nhello", origin_body=5)
case("upgrade-h2c", "an h2c upgrade request: never upgraded, Upgrade never forwarded", "200", "one",
     "GET /up HTTP/1.1\r\n" + H + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
     origin_body=0, origin_lacks="upgrade http2-settings")
case("upgrade-websocket", "a websocket upgrade: never upgraded, Upgrade never forwarded", "200", "one",
     "GET /ws HTTP/1.1\r\n" + H + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
     origin_body=0, origin_lacks="upgrade")
case("connection-close-then-request", "bytes of a second request after \"Connection: close\"", "200", "one",
     "GET /first HTTP/1.1\r\n" + H + "Connection: close\r\n\r\nGET /second HTTP/1.1\r\n" + H + "\r\n",
     origin_body=0, origin_target="/first")

# ---- more ----
case("cl-te-lowercase", "content-length and transfer-encoding in lower case, together", "400", "none",
     "POST / HTTP/1.1\r\n" + H + "content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n" + CHB)
case("cl-te-http10", "Content-Length and Transfer-Encoding in an HTTP/1.0 request", "400", "none",
     "POST / HTTP/1.0\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + CHB)
case("cl-trailing-space", "Content-Length \"5 \" (trailing OWS): 5", "200", "one",
     "POST / HTTP/1.1\r\n" + H + "Content-Length: 5 \r\n\r\nhello", origin_body=5)
case("te-chunked-params", "\"chunked;q=1\" (a parameter on chunked)", "400 501", "none",
     "POST / HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked;q=1\r\n\r\n" + CHB)
case("chunk-size-long-zeros", "a chunk-size line of 70000 zeros and a 5", "200 400", "one incomplete",
     P + "@@@5\r\nhello\r\n0\r\n\r\n", fill="70000 0", origin_body=5)
case("field-name-huge", "a 70000-byte field name", "431", "none",
     "GET / HTTP/1.1\r\n" + H + "X-@@@: b\r\n\r\n", fill="70000 n")
case("bare-cr-end-of-head", "the head ended by CRLF CR and another byte", "400", "none",
     "GET / HTTP/1.1\r\n" + H + "\rX")
case("nul-before-request", "a NUL before the request line", "400", "none",
     "\x00GET / HTTP/1.1\r\n" + H + "\r\n")
case("expect-100-no-body", "Expect: 100-continue on a GET without a body", "200", "one",
     "GET /e HTTP/1.1\r\n" + H + "Expect: 100-continue\r\n\r\n", origin_body=0)
case("target-absolute-form-same-host", "absolute-form naming the Host's own authority: forwarded in origin-form", "200", "one",
     "GET http://app.example/x HTTP/1.1\r\n" + H + "\r\n", origin_target="/x", origin_body=0)
case("target-absolute-form-close", "absolute-form with Connection: close: the connection closes after the answer", "400", "none",
     "GET http://evil.example/admin HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n")
case("host-missing-close", "no Host, Connection: close", "400", "none",
     "GET / HTTP/1.1\r\nConnection: close\r\n\r\n")

for name, about, status, origin, raw, kw in cases:
    data = raw.encode("latin-1")
    hdr = ["#! tbproxy smuggling case", "# about: " + about, "# status: " + status, "# origin: " + origin]
    for k in ("eof", "splits", "fill", "origin_body", "origin_method", "origin_target", "origin_lacks"):
        if k in kw:
            hdr.append("# %s: %s" % (k.replace("_", "-"), kw[k]))
    hdr.append("#--")
    with open(os.path.join(out, name + ".req"), "wb") as f:
        f.write(("\n".join(hdr) + "\n").encode() + data)
print(len(cases), "cases")
