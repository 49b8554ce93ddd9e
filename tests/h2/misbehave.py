#!/usr/bin/python3
"""Frame-level HTTP/2 misbehaviour against tbproxy (issue 4).

    /usr/bin/python3 tests/h2/misbehave.py SCENARIO PORT
    /usr/bin/python3 tests/h2/misbehave.py list

Connects to 127.0.0.1:PORT over TLS (ALPN "h2", certificate not verified), plays one scenario
and prints one JSON line: {"scenario", "ok", "verdict", ...what was seen...}. Exit status 0 when
the proxy behaved as RFC 9113 (or the expected flood mitigation) requires, 1 when it did not,
2 on bad usage.

The control scenario (`healthz`) is a plain python3-h2 client (h2.connection.H2Connection). The
misbehaving ones write raw frames with hyperframe and hpack (the libraries under h2), because h2
itself refuses to send most of them; received frames are parsed the same way and every frame the
proxy sent is counted by type (and RST_STREAM / GOAWAY codes kept), so a failure says what came
back and when.

Every socket operation has a timeout and every scenario a deadline of a few seconds (at most
about 10; SIGALRM after 15 as a last resort), so a proxy that hangs fails the scenario instead of
hanging the caller. The floods never read what the proxy answers until the verdict is made: the
proxy closing is seen in the socket's TCP state (TCP_INFO: its FIN or RST), so reading cannot help
the proxy along; a GOAWAY queued behind the answers can only be seen afterwards and is reported. Only the
Debian packages python3-h2, python3-hyperframe and python3-hpack are used (run with
/usr/bin/python3).

Scenarios (see SCENARIOS at the bottom for the list and what passes):
  healthz                 control: GET /healthz with h2 -> 200 "ok"
  rapid_reset             HEADERS + RST_STREAM(CANCEL) x 5000 -> GOAWAY (not NO_ERROR) naming a
                          last stream before our last one, or a close, before the end
  rst_flood               up to 20000 malformed requests (500 per write), each to be answered
                          with RST_STREAM, nothing read -> the proxy closes within 8 s
  ping_flood              up to 600000 PINGs (10000 per write), nothing read -> the proxy closes
                          (after its GOAWAY, if it can send one) within 8 s of the first PING
  settings_flood          the same with SETTINGS frames
  settings_many_entries   one SETTINGS frame with 64 entries (limit 32) -> GOAWAY
  uppercase_header        "X-Upper: 1" -> RST_STREAM(PROTOCOL_ERROR) or 400, not forwarded
  transfer_encoding       "transfer-encoding: chunked" -> same
  crlf_value              CR LF, LF, CR, NUL in a value -> same (each on its own connection)
  pseudo_missing_path     no :path -> same
  pseudo_unknown          ":foo: bar" -> same
  pseudo_after_regular    :path after a regular field -> same
  pseudo_duplicate_method two :method -> same
  authority_host          :authority localhost, host evil.example (and a second host that
                          disagrees) -> same
  too_many_streams        101 open streams (SETTINGS_MAX_CONCURRENT_STREAMS 100)
                          -> the 101st RST_STREAM(REFUSED_STREAM or PROTOCOL_ERROR), the first
                          100 untouched, a new stream accepted once one finished
"""

import json
import select
import signal
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CONNECT_TIMEOUT = 3.0  # TCP connect + TLS handshake
IO_TIMEOUT = 2.0  # any single send or receive
HARD_LIMIT = 15  # SIGALRM: the scenario is stuck somewhere a timeout did not cover


def code_name(code):
    try:
        return ErrorCodes(code).name
    except ValueError:
        return "0x%x" % code


class Conn:
    """A TLS connection speaking raw HTTP/2 frames: what is sent is exactly what the caller
    builds; what arrives is parsed, counted, and the minimum is answered (SETTINGS and PING acks,
    unless auto_ack is off)."""

    def __init__(self, port, rcvbuf=None):
        self.t0 = time.monotonic()
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:  # before connect: it also fixes the window scale
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(CONNECT_TIMEOUT)
        raw.connect(("127.0.0.1", port))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.alpn = self.sock.selected_alpn_protocol()
        if self.alpn != "h2":
            raise RuntimeError("ALPN selected %r, not h2" % self.alpn)
        self.sock.settimeout(IO_TIMEOUT)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 65536
        self.rbuf = bytearray()
        self.auto_ack = True
        self.closed = None  # why, once the connection is gone
        self.closed_at = None
        self.send_broken = None  # a send that failed (the connection is unusable for sending)
        self.frames = {}  # type name -> count received
        self.goaway = None  # {"last_stream_id", "code", "debug", "t"}
        self.rst = {}  # stream id -> error code name
        self.status = {}  # stream id -> :status (int)
        self.resp_headers = {}  # stream id -> [(name, value)]
        self.body = {}  # stream id -> bytes received
        self.ended = set()  # streams the proxy ended (END_STREAM)
        self.server_settings = {}
        self.settings_acks = 0
        self.ping_acks = 0
        self.header_block = None  # (stream id, flags, bytearray) while CONTINUATIONs come
        self.unacked_data = 0

    def elapsed(self):
        return round(time.monotonic() - self.t0, 3)

    # --- sending -------------------------------------------------------------------------------

    def send(self, data, timeout=IO_TIMEOUT):
        """Sends all of data. Returns True, or False (and records why) when the connection was
        closed or the send timed out (the proxy stopped reading)."""
        if self.send_broken:
            return False
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
            return True
        except (socket.timeout, TimeoutError):
            self.send_broken = "send timed out after %.1fs (the proxy stopped reading)" % timeout
        except (ssl.SSLError, OSError) as e:
            # the proxy closed; what it sent before (a GOAWAY) is still read by read_some
            self.send_broken = "send failed: %s: %s" % (e.__class__.__name__, e)
        return False

    def handshake(self, settings=None):
        s = SettingsFrame(0)
        s.settings = {SettingCodes.ENABLE_PUSH: 0, SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}
        if settings:
            s.settings.update(settings)
        w = WindowUpdateFrame(0)
        w.window_increment = 1 << 24
        if not self.send(PREFACE + s.serialize() + w.serialize()):
            raise RuntimeError("sending the preface: %s" % self.send_broken)
        self.read_until(lambda: self.server_settings_seen, time.monotonic() + 3)
        if not self.server_settings_seen:
            raise RuntimeError("no SETTINGS from the proxy (closed: %s)" % self.closed)

    @property
    def server_settings_seen(self):
        return "SETTINGS" in self.frames

    def headers(self, stream_id, fields, end_stream=True):
        """A HEADERS frame (END_HEADERS) with fields encoded as given: names and values are
        bytes or str, kept exactly (no lower-casing, no validation, order kept)."""
        f = HeadersFrame(stream_id)
        f.data = self.enc.encode([(n, v) for n, v in fields])
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    def rst_stream(self, stream_id, code=ErrorCodes.CANCEL):
        f = RstStreamFrame(stream_id)
        f.error_code = code
        return f.serialize()

    def data(self, stream_id, payload, end_stream=False):
        f = DataFrame(stream_id)
        f.data = payload
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    # --- receiving -----------------------------------------------------------------------------

    def _close(self, why):
        if self.closed is None:
            self.closed = why
            self.closed_at = self.elapsed()

    def read_some(self, timeout):
        """Reads what arrives within timeout (0: only what is there now) and handles its frames.
        Returns False once the connection is closed."""
        if self.closed:
            return False
        try:
            if self.sock.pending() == 0:
                r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
                if not r:
                    return True
            self.sock.settimeout(IO_TIMEOUT)
            chunk = self.sock.recv(1 << 16)
        except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
            return True
        except ssl.SSLZeroReturnError:
            self._close("TLS close_notify")
            return False
        except (ssl.SSLError, OSError) as e:
            self._close("%s: %s" % (e.__class__.__name__, e))
            return False
        if not chunk:
            self._close("EOF")
            return False
        self.rbuf += chunk
        self._parse()
        return not self.closed

    def read_until(self, pred, deadline):
        while not pred() and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.read_some(min(left, 0.25))
        return pred()

    def drain(self, seconds):
        """Reads for up to `seconds` or until the connection closes."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            self.read_some(min(deadline - time.monotonic(), 0.25))

    def _parse(self):
        while len(self.rbuf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.rbuf[:9]))
            if len(self.rbuf) < 9 + length:
                return
            body = bytes(self.rbuf[9:9 + length])
            del self.rbuf[:9 + length]
            f.parse_body(memoryview(body))
            self._handle(f, length)

    def _handle(self, f, length):
        name = type(f).__name__.replace("Frame", "").upper()
        if name == "RSTSTREAM":
            name = "RST_STREAM"
        elif name == "GOAWAY":
            name = "GOAWAY"
        elif name == "WINDOWUPDATE":
            name = "WINDOW_UPDATE"
        self.frames[name] = self.frames.get(name, 0) + 1
        if isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acks += 1
            else:
                self.server_settings.update({int(k): v for k, v in f.settings.items()})
                if self.auto_ack:
                    self.send(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                self.ping_acks += 1
            elif self.auto_ack:
                self.send(PingFrame(0, flags=["ACK"], opaque_data=f.opaque_data).serialize())
        elif isinstance(f, HeadersFrame):
            self.header_block = (f.stream_id, set(f.flags), bytearray(f.data))
            if "END_HEADERS" in f.flags:
                self._header_block_done()
        elif isinstance(f, ContinuationFrame):
            if self.header_block is not None:
                self.header_block[2].extend(f.data)
                if "END_HEADERS" in f.flags:
                    self._header_block_done()
        elif isinstance(f, DataFrame):
            self.body[f.stream_id] = self.body.get(f.stream_id, b"") + bytes(f.data)
            if "END_STREAM" in f.flags:
                self.ended.add(f.stream_id)
            self.unacked_data += length
            if self.unacked_data > 256 * 1024 and self.auto_ack:
                w = WindowUpdateFrame(0)
                w.window_increment = self.unacked_data
                self.send(w.serialize())
                self.unacked_data = 0
        elif isinstance(f, RstStreamFrame):
            self.rst[f.stream_id] = code_name(f.error_code)
        elif isinstance(f, GoAwayFrame):
            self.goaway = {"last_stream_id": f.last_stream_id, "code": code_name(f.error_code),
                           "debug": bytes(f.additional_data).decode("latin-1")[:200],
                           "t": self.elapsed()}

    def _header_block_done(self):
        sid, flags, block = self.header_block
        self.header_block = None
        fields = self.dec.decode(bytes(block))
        self.resp_headers.setdefault(sid, []).extend(fields)
        for n, v in fields:
            if n == ":status" and sid not in self.status:
                self.status[sid] = int(v)
        if "END_STREAM" in flags:
            self.ended.add(sid)

    def stream_done(self, sid):
        return sid in self.rst or sid in self.ended

    def summary(self):
        s = {"frames": self.frames, "t": self.elapsed()}
        if self.goaway:
            s["goaway"] = self.goaway
        if self.closed:
            s["closed"] = self.closed
            s["closed_at"] = self.closed_at
        if self.send_broken:
            s["send"] = self.send_broken
        return s

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- helpers -------------------------------------------------------------------------------------

def request(path="/healthz", method="GET", extra=(), authority="localhost"):
    return [(":method", method), (":scheme", "https"), (":authority", authority),
            (":path", path)] + list(extra)


def healthz_on(c, sid, deadline):
    """GET /healthz on stream sid of c; returns (status, body) or (None, why)."""
    if not c.send(c.headers(sid, request())):
        return None, c.send_broken
    c.read_until(lambda: c.stream_done(sid), deadline)
    if sid in c.rst:
        return None, "RST_STREAM %s" % c.rst[sid]
    if sid not in c.ended:
        return None, "no complete response (closed: %s, goaway: %s)" % (c.closed, c.goaway)
    return c.status.get(sid), c.body.get(sid, b"").decode("latin-1")


def result(ok, verdict, **details):
    out = {"ok": bool(ok), "verdict": verdict}
    out.update(details)
    return out


# --- the control: a plain h2 client --------------------------------------------------------------

def sc_healthz(port):
    """GET /healthz with python3-h2's own client: 200 "ok"."""
    t0 = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    sock.settimeout(IO_TIMEOUT)
    if sock.selected_alpn_protocol() != "h2":
        return result(False, "ALPN selected %r" % sock.selected_alpn_protocol())
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, request(), end_stream=True)
    sock.sendall(conn.data_to_send())
    status, body, done, why = None, b"", False, None
    deadline = time.monotonic() + 5
    while not done and time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        if not data:
            why = "EOF before the response ended"
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
            elif isinstance(ev, h2.events.StreamReset):
                why = "RST_STREAM %s" % code_name(ev.error_code)
                done = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                why = "GOAWAY %s" % code_name(ev.error_code)
                done = True
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    conn.close_connection()
    try:
        sock.sendall(conn.data_to_send())
        sock.close()
    except OSError:
        pass
    ok = status == 200 and body.strip() == b"ok" and why is None
    return result(ok, "200 ok" if ok else "unexpected answer", status=status,
                  body=body.decode("latin-1")[:100], error=why,
                  t=round(time.monotonic() - t0, 3))


# --- malformed requests --------------------------------------------------------------------------

def bad_request(port, fields, end_stream=True):
    """Sends one malformed request (stream 1, to /echo so that a forwarded one would come back
    200 with the origin's JSON) and sees how it is answered. Passes when the stream is reset with
    PROTOCOL_ERROR, or answered 400, or (a stream error treated as a connection error, which
    RFC 9113 section 5.4 allows) the connection is ended with GOAWAY(PROTOCOL_ERROR) - and then,
    if the connection is still open, a valid request on stream 3 of the same connection gets 200.
    """
    c = Conn(port)
    try:
        c.handshake()
        deadline = time.monotonic() + 4
        c.send(c.headers(1, fields, end_stream=end_stream))
        c.read_until(lambda: c.stream_done(1) or c.goaway is not None, deadline)
        if 1 in c.status and 1 not in c.ended:  # a response head: read its body too
            c.read_until(lambda: c.stream_done(1), deadline)
        out = {"stream1": {"rst": c.rst.get(1), "status": c.status.get(1),
                           "body": c.body.get(1, b"").decode("latin-1")[:300]}}
        if c.rst.get(1) == "PROTOCOL_ERROR":
            how = "RST_STREAM PROTOCOL_ERROR"
        elif c.status.get(1) == 400:
            how = "400"
        elif c.goaway is not None and c.goaway["code"] == "PROTOCOL_ERROR" and 1 not in c.status:
            how = "GOAWAY PROTOCOL_ERROR"
        else:
            if c.status.get(1) == 200:
                why = "forwarded: the origin answered 200"
            elif 1 in c.status:
                why = "answered %d, not 400" % c.status[1]
            elif 1 in c.rst:
                why = "RST_STREAM %s, not PROTOCOL_ERROR" % c.rst[1]
            else:
                why = "no answer to the malformed request"
            return result(False, why, **out, **c.summary())
        if c.goaway is None and not c.closed:
            status, body = healthz_on(c, 3, time.monotonic() + 3)
            out["stream3_healthz"] = status if status is not None else body
            if status != 200:
                return result(False, how + ", but the connection then failed a valid request",
                              **out, **c.summary())
        return result(True, how, **out, **c.summary())
    finally:
        c.close()


def several(port, cases):
    """Runs bad_request for each (label, fields) on its own connection; ok if all are."""
    results, ok = {}, True
    for label, fields in cases:
        r = bad_request(port, fields)
        results[label] = r
        ok = ok and r["ok"]
    bad = [k for k, v in results.items() if not v["ok"]]
    return result(ok, "all rejected" if ok else "not rejected: " + ", ".join(bad), cases=results)


def sc_uppercase_header(port):
    return bad_request(port, request("/echo", extra=[("X-Upper", "1")]))


def sc_transfer_encoding(port):
    return several(port, [
        ("te_chunked", request("/echo", extra=[("transfer-encoding", "chunked")])),
        ("te_chunked_post", request("/echo", method="POST",
                                    extra=[("transfer-encoding", "chunked")])),
    ])


def sc_crlf_value(port):
    return several(port, [
        ("crlf", request("/echo", extra=[("x-inject", b"a\r\nx-evil: 1")])),
        ("lf", request("/echo", extra=[("x-inject", b"a\nx-evil: 1")])),
        ("cr", request("/echo", extra=[("x-inject", b"a\rx-evil: 1")])),
        ("nul", request("/echo", extra=[("x-inject", b"a\x00b")])),
    ])


def sc_pseudo_missing_path(port):
    return bad_request(port, [(":method", "GET"), (":scheme", "https"),
                              (":authority", "localhost")])


def sc_pseudo_unknown(port):
    return bad_request(port, request("/echo") + [(":foo", "bar")])


def sc_pseudo_after_regular(port):
    return bad_request(port, [(":method", "GET"), (":scheme", "https"),
                              (":authority", "localhost"), ("x-regular", "1"),
                              (":path", "/echo")])


def sc_pseudo_duplicate_method(port):
    return bad_request(port, [(":method", "GET"), (":method", "POST"), (":scheme", "https"),
                              (":authority", "localhost"), (":path", "/echo")])


def sc_authority_host(port):
    return several(port, [
        ("host_differs", request("/echo", extra=[("host", "evil.example")])),
        ("second_host_differs", request("/echo", extra=[("host", "localhost"),
                                                        ("host", "evil.example")])),
        ("host_port_differs", request("/echo", extra=[("host", "localhost:8443")])),
    ])


# --- floods --------------------------------------------------------------------------------------

FLOOD_BOUND = 8.0  # seconds from the first flood byte until the proxy must have closed
TCP_STATES = {1: "ESTABLISHED", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 11: "CLOSING"}


def tcp_state(c):
    """The kernel's TCP state of our socket (TCP_INFO), without reading anything: the proxy
    closing shows as CLOSE_WAIT (its FIN) or CLOSE (its RST)."""
    try:
        st = c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return "CLOSE"
    return TCP_STATES.get(st, str(st))


def flood(port, make_batch, per_batch, batches, label):
    """A flood whose answers are never read: batches of per_batch frames (make_batch(c, i) gives
    batch i) are written until the proxy stops reading (a write blocked for 1 s), fails, or all
    are out; then nothing is read until FLOOD_BOUND seconds from the first batch, while the TCP
    state is watched. Passes when the proxy closed the connection within the bound (GOAWAY and
    close, or close). Whatever was queued for us is then read for up to a second, for the report
    (its GOAWAY, how many answers came). A small SO_RCVBUF makes the answers back up on the
    proxy's side quickly."""
    c = Conn(port, rcvbuf=4096)
    try:
        c.handshake()
        c.auto_ack = False
        t_start = time.monotonic()
        sent = attempted = 0
        for i in range(batches):
            if time.monotonic() - t_start > FLOOD_BOUND / 2:
                break
            attempted += per_batch
            if not c.send(make_batch(c, i), timeout=1.0):
                break
            sent += per_batch
        t_sent = round(time.monotonic() - t_start, 3)
        state, t_closed = tcp_state(c), None
        while state == "ESTABLISHED" and time.monotonic() < t_start + FLOOD_BOUND:
            time.sleep(0.05)
            state = tcp_state(c)
        if state != "ESTABLISHED":
            t_closed = round(time.monotonic() - t_start, 3)
        # what was queued for us (a bigger buffer reads faster)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        c.drain(1.0)
        details = {label + "_sent": sent, label + "_attempted": attempted, "flood_send_s": t_sent,
                   "tcp_state": state, "proxy_closed_s": t_closed, "answers_read": {
                       "settings_acks": c.settings_acks, "ping_acks": c.ping_acks,
                       "rst_stream": len(c.rst)}}
        how = ("GOAWAY %s (%s), then " % (c.goaway["code"], c.goaway["debug"] or "no debug data")
               if c.goaway else "")
        if t_closed is not None:
            return result(True, "%sclosed %.2fs after the flood began (%d %s attempted)"
                          % (how, t_closed, attempted, label), **details, **c.summary())
        return result(False, "%sstill open %.0fs after the flood began, unread (%d %s written, "
                      "then the proxy stopped reading)" % (how, FLOOD_BOUND, sent, label)
                      if c.send_broken and "timed out" in c.send_broken else
                      "%sstill open %.0fs after the flood began (%d %s written)"
                      % (how, FLOOD_BOUND, sent, label), **details, **c.summary())
    finally:
        c.close()


def sc_ping_flood(port):
    """CVE-2019-9512: up to 600000 PINGs (10000 per write), the PING ACKs never read."""
    unit = PingFrame(0, opaque_data=b"flood!!!").serialize() * 10000
    return flood(port, lambda c, i: unit, 10000, 60, "pings")


def sc_settings_flood(port):
    """CVE-2019-9515: up to 600000 SETTINGS frames (10000 per write), the ACKs never read."""
    s = SettingsFrame(0)
    s.settings = {SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20}
    unit = s.serialize() * 10000
    return flood(port, lambda c, i: unit, 10000, 60, "settings")


def sc_settings_many_entries(port):
    """One SETTINGS frame with 64 entries (the proxy accepts 32 per frame: CVE-2020-11080)."""
    c = Conn(port)
    try:
        c.handshake()
        payload = b"".join(
            int(SettingCodes.INITIAL_WINDOW_SIZE).to_bytes(2, "big") + (65535 + i).to_bytes(4, "big")
            for i in range(64))
        frame = len(payload).to_bytes(3, "big") + b"\x04\x00" + b"\x00\x00\x00\x00" + payload
        t = time.monotonic()
        c.send(frame)
        c.read_until(lambda: c.goaway is not None, t + 4)
        c.drain(1.0)
        ok = c.goaway is not None and c.goaway["code"] in ("ENHANCE_YOUR_CALM", "PROTOCOL_ERROR")
        verdict = ("GOAWAY %s" % c.goaway["code"]) if c.goaway else "no GOAWAY"
        return result(ok, verdict, **c.summary())
    finally:
        c.close()


def sc_rst_flood(port):
    """CVE-2019-9514: up to 20000 requests (500 per write) that each make the proxy answer with
    RST_STREAM (an uppercase field name is malformed), the RST_STREAMs never read."""
    per = 500

    def batch(c, i):
        return b"".join(c.headers(1 + 2 * (i * per + k), request("/healthz", extra=[("X-Bad", "1")]))
                        for k in range(per))

    return flood(port, batch, per, 40, "requests")


def sc_rapid_reset(port):
    """CVE-2023-44487: HEADERS then RST_STREAM(CANCEL) at once, 5000 times. The proxy must stop
    it (GOAWAY, or close) before it has taken all of them."""
    c = Conn(port)
    try:
        c.handshake()
        t_start = time.monotonic()
        n, per, sid, sent = 5000, 100, 1, 0
        while sent < n and not c.closed and c.goaway is None:
            batch = bytearray()
            for _ in range(per):
                batch += c.headers(sid, request("/healthz"))
                batch += c.rst_stream(sid)
                sid += 2
            if not c.send(bytes(batch), timeout=1.0):
                break
            sent += per
            c.read_some(0)
            if time.monotonic() - t_start > FLOOD_BOUND:
                break
        last_sent = sid - 2
        t_sent = round(time.monotonic() - t_start, 3)
        c.read_until(lambda: c.goaway is not None, t_start + FLOOD_BOUND)
        if c.goaway is not None:
            c.drain(max(0.0, min(2.0, t_start + FLOOD_BOUND + 2 - time.monotonic())))
        details = {"streams_sent": sent, "last_stream_sent": last_sent, "send_s": t_sent,
                   "responses": len(c.status)}
        if c.goaway is not None:
            g = c.goaway
            ok = g["code"] != "NO_ERROR" and g["last_stream_id"] < last_sent
            verdict = "GOAWAY %s, last_stream_id %d of %d sent, after %.2fs" % (
                g["code"], g["last_stream_id"], last_sent, g["t"] - (t_start - c.t0))
            if g["code"] == "NO_ERROR":
                verdict += " (NO_ERROR: not a flood verdict)"
            if g["last_stream_id"] >= last_sent:
                verdict += " (all streams taken)"
            return result(ok, verdict, **details, **c.summary())
        if c.closed is not None and sent < n:
            return result(True, "connection closed after %d streams (%s)" % (sent, c.closed),
                          **details, **c.summary())
        return result(False, "all %d HEADERS+RST_STREAM taken without GOAWAY or close" % sent,
                      **details, **c.summary())
    finally:
        c.close()


# --- concurrency limit ---------------------------------------------------------------------------

def sc_too_many_streams(port):
    """101 open streams (POST without END_STREAM, so none finishes) against
    SETTINGS_MAX_CONCURRENT_STREAMS 100: the 101st is refused (RST_STREAM REFUSED_STREAM, or
    PROTOCOL_ERROR: RFC 9113 section 5.1.2), none of the first 100 is reset, the connection stays
    up, and once stream 1 finished a new stream is served; or, as section 5.4.1 allows, the
    stream error is a connection error: GOAWAY PROTOCOL_ERROR that did not take the stream."""
    c = Conn(port)
    try:
        c.handshake()
        limit = c.server_settings.get(int(SettingCodes.MAX_CONCURRENT_STREAMS))
        if limit is None or limit > 1000:
            return result(False, "SETTINGS_MAX_CONCURRENT_STREAMS is %r" % limit, **c.summary())
        # our SETTINGS ACK went before these HEADERS, so the limit is in force for them
        batch = bytearray()
        for k in range(limit + 1):
            batch += c.headers(1 + 2 * k, request("/echo", method="POST"), end_stream=False)
        over = 1 + 2 * limit
        c.send(bytes(batch))
        deadline = time.monotonic() + 4
        c.read_until(lambda: over in c.rst or c.goaway is not None, deadline)
        c.drain(0.5)  # anything else that comes (resets of the others would show here)
        early = sorted(s for s in c.rst if s < over)
        out = {"limit": limit, "over_stream": over, "over_rst": c.rst.get(over),
               "others_reset": early[:10], "others_answered": sorted(c.status)[:10]}
        if c.goaway is not None:
            # RFC 9113 section 5.4.1: an endpoint MAY treat a stream error as a connection
            # error. nghttp2 (and so nghttpx) does that for streams over an acknowledged limit:
            # accepted when it is a PROTOCOL_ERROR that never took the excess stream.
            g = c.goaway
            ok = g["code"] == "PROTOCOL_ERROR" and g["last_stream_id"] < over
            return result(ok, "GOAWAY %s, last_stream_id %d (stream %d over the limit not taken)"
                          % (g["code"], g["last_stream_id"], over), **out, **c.summary())
        if c.rst.get(over) not in ("REFUSED_STREAM", "PROTOCOL_ERROR"):
            return result(False, "stream %d over the limit not refused (%s)"
                          % (over, c.rst.get(over)), **out, **c.summary())
        if early:
            return result(False, "streams within the limit were reset", **out, **c.summary())
        # finish stream 1 (an empty body), wait for its answer, then a new stream must work
        c.send(c.data(1, b"", end_stream=True))
        c.read_until(lambda: c.stream_done(1), time.monotonic() + 3)
        out["stream1"] = c.status.get(1) if 1 in c.status else c.rst.get(1)
        if c.status.get(1) != 200 or 1 not in c.ended:
            return result(False, "stream 1 did not complete after its END_STREAM", **out,
                          **c.summary())
        status, body = healthz_on(c, over + 2, time.monotonic() + 3)
        out["after"] = status if status is not None else body
        if status != 200:
            return result(False, "a new stream after one finished was not served", **out,
                          **c.summary())
        return result(True, "stream %d %s; %d others open; a new stream served after one ended"
                      % (over, c.rst[over], limit), **out, **c.summary())
    finally:
        c.close()


SCENARIOS = {
    "healthz": sc_healthz,
    "rapid_reset": sc_rapid_reset,
    "rst_flood": sc_rst_flood,
    "ping_flood": sc_ping_flood,
    "settings_flood": sc_settings_flood,
    "settings_many_entries": sc_settings_many_entries,
    "uppercase_header": sc_uppercase_header,
    "transfer_encoding": sc_transfer_encoding,
    "crlf_value": sc_crlf_value,
    "pseudo_missing_path": sc_pseudo_missing_path,
    "pseudo_unknown": sc_pseudo_unknown,
    "pseudo_after_regular": sc_pseudo_after_regular,
    "pseudo_duplicate_method": sc_pseudo_duplicate_method,
    "authority_host": sc_authority_host,
    "too_many_streams": sc_too_many_streams,
}


class HardLimit(Exception):
    pass


def on_alarm(signum, frame):
    raise HardLimit()


def main(argv):
    if len(argv) == 2 and argv[1] == "list":
        print("\n".join(SCENARIOS))
        return 0
    if len(argv) != 3 or argv[1] not in SCENARIOS or not argv[2].isdigit():
        sys.stderr.write("usage: misbehave.py SCENARIO PORT | list\nscenarios: %s\n"
                         % " ".join(SCENARIOS))
        return 2
    name, port = argv[1], int(argv[2])
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HARD_LIMIT)
    t0 = time.monotonic()
    try:
        out = SCENARIOS[name](port)
    except HardLimit:
        out = result(False, "scenario still running after %ds (hard limit)" % HARD_LIMIT)
    except Exception as e:  # a failure to connect, a parse error: the scenario failed
        out = result(False, "error: %s: %s" % (e.__class__.__name__, e))
    signal.alarm(0)
    out = dict({"scenario": name}, **out)
    out["wall_s"] = round(time.monotonic() - t0, 3)
    print(json.dumps(out, sort_keys=False, default=str))
    sys.stdout.flush()
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
