#!/usr/bin/env python3
"""HTTP/2 conformance scenarios for lb, driven with the sans-I/O `h2` library (Debian python3-h2).

Usage: h2_conformance.py SCENARIO PORT [--tls CA_FILE] [--arg KEY=VALUE]...

Connects to 127.0.0.1:PORT with prior knowledge (h2c), or with `--tls` over TLS offering ALPN `h2` only
(server name `localhost`, verified against CA_FILE). `h2` does the framing and HPACK and keeps the protocol's
state, so requests and frames the scenario wants to be hostile (malformed header blocks, resets, a flood of
CONTINUATION frames) are scripted exactly: outbound header validation and normalisation are off, inbound
validation stays on, so a response that breaks HTTP/2 rules (a connection-specific field, an uppercase name)
fails the scenario.

Each scenario prints one JSON object on stdout, for the XCTest in HTTP2ConformanceTests.swift to assert on.
"""
import argparse
import hashlib
import json
import os
import select
import signal
import socket
import ssl
import struct
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []
        self.informational = []
        self.trailers = None
        self.body = bytearray()
        self.ended = False
        self.reset = None

    def done(self):
        return self.ended or self.reset is not None

    def outcome(self):
        if self.reset is not None:
            return 'rst=%d' % self.reset
        return 'status=%s' % self.status if self.ended else 'open'

    def summary(self):
        return {
            'status': self.status, 'reset': self.reset, 'ended': self.ended,
            'body': self.body.decode('latin-1') if len(self.body) <= 4096 else '<%d bytes>' % len(self.body),
            'headers': [[n, v] for n, v in self.headers],
            'trailers': None if self.trailers is None else [[n, v] for n, v in self.trailers],
            'informational': self.informational,
        }


class Client:
    """One HTTP/2 connection: an `h2` state machine over a blocking socket, read with `select`."""

    def __init__(self, port, ca=None):
        sock = socket.create_connection(('127.0.0.1', port), timeout=15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ca:
            context = ssl.create_default_context(cafile=ca)
            context.set_alpn_protocols(['h2'])
            sock = context.wrap_socket(sock, server_hostname='localhost')
            if sock.selected_alpn_protocol() != 'h2':
                raise SystemExit('ALPN chose %r, not h2' % sock.selected_alpn_protocol())
        self.sock = sock
        config = h2.config.H2Configuration(
            client_side=True, header_encoding='latin-1', validate_outbound_headers=False,
            normalize_outbound_headers=False, validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.streams = {}
        self.inbuf = b''
        self.goaway = None
        self.closed = False
        self.settings = None
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def send_raw(self, data):
        self.sock.sendall(data)

    def request(self, headers, body=None, end=True):
        """Opens a stream with `headers` (name, value pairs, pseudo-headers included, sent as given)."""
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream(sid)
        self.conn.send_headers(sid, headers, end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        return self.streams[sid]

    def pump(self, timeout):
        """Reads what arrives within `timeout` seconds (0: only what is there), feeds `h2`, answers it.
        False once the connection is closed."""
        if self.closed:
            return False
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not pending:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return True
        try:
            data = self.sock.recv(1 << 18)
        except ssl.SSLWantReadError:
            return True
        except (ConnectionError, socket.timeout, OSError):
            data = b''
        if not data:
            self.closed = True
            return False
        for event in self.conn.receive_data(self.without_goaway(data)):
            self.handle(event)
        self.flush()
        return True

    def without_goaway(self, data):
        """`data` with GOAWAY frames taken out and recorded. h2 4.1 closes its state machine on GOAWAY and then
        refuses the frames lb still sends for streams up to the last-stream-id (RFC 9113 §6.8 lets them finish)."""
        self.inbuf += data
        out, pos = b'', 0
        while pos + 9 <= len(self.inbuf):
            length = struct.unpack('>I', b'\0' + self.inbuf[pos:pos + 3])[0]
            end = pos + 9 + length
            if end > len(self.inbuf):
                break
            if self.inbuf[pos + 3] == 7:
                payload = self.inbuf[pos + 9:end]
                self.goaway = {'last_stream': struct.unpack('>I', payload[:4])[0] & 0x7fffffff,
                               'error': struct.unpack('>I', payload[4:8])[0]}
            else:
                out += self.inbuf[pos:end]
            pos = end
        self.inbuf = self.inbuf[pos:]
        return out

    def handle(self, event):
        sid = getattr(event, 'stream_id', None)
        s = self.streams.setdefault(sid, Stream(sid)) if sid else None
        if isinstance(event, h2.events.ResponseReceived):
            s.headers = list(event.headers)
            s.status = int(dict(event.headers)[':status'])
        elif isinstance(event, h2.events.InformationalResponseReceived):
            s.informational.append(int(dict(event.headers)[':status']))
        elif isinstance(event, h2.events.TrailersReceived):
            s.trailers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            s.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            s.ended = True
        elif isinstance(event, h2.events.StreamReset):
            if s is not None:
                s.reset = event.error_code
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings = {int(k): v.new_value for k, v in event.changed_settings.items()}

    def wait(self, condition, timeout=15):
        deadline = time.time() + timeout
        while not condition():
            if time.time() > deadline:
                raise SystemExit('timed out waiting (goaway=%s closed=%s)' % (self.goaway, self.closed))
            if not self.pump(0.5) and not condition():
                return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def get(path, authority='lb.test', method='GET', extra=()):
    return [(':method', method), (':scheme', 'http'), (':path', path), (':authority', authority)] + list(extra)


def frame(kind, flags, sid, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([kind, flags]) + struct.pack('>I', sid) + payload


def literal(name, value):
    """An HPACK literal field without indexing, no Huffman: any bytes go out as written."""
    def integer(n):
        if n < 127:
            return bytes([n])
        out, n = [127], n - 127
        while n >= 128:
            out.append((n & 127) | 128)
            n >>= 7
        return bytes(out + [n])
    return b'\x00' + integer(len(name)) + name + integer(len(value)) + value


# --- scenarios ---------------------------------------------------------------------------------------------

def concurrent(args, opts):
    """`count` streams opened before any response is read; each answer is checked against its request. With
    `early=1` they are opened before lb's SETTINGS are read, so `h2` does not hold them to its stream limit."""
    c = Client(args.port, args.tls)
    if opts.get('early') != '1':
        c.wait(lambda: c.settings is not None)
    count = int(opts['count'])
    streams = [c.request(get('/c/%d' % i)) for i in range(count)]
    max_open = c.conn.open_outbound_streams
    c.wait(lambda: all(s.done() for s in streams), timeout=60)
    print(json.dumps({
        'max_open': max_open, 'goaway': c.goaway,
        'results': [{'path': '/c/%d' % i, 'status': s.status, 'reset': s.reset, 'body': s.body.decode('latin-1')}
                    for i, s in enumerate(streams)],
    }))


def upload(args, opts):
    """One stream uploads `size` bytes to /digest while `small` GETs run one after another on other streams;
    each records how much of the upload had been sent when it completed."""
    c = Client(args.port, args.tls)
    c.wait(lambda: c.settings is not None)
    size, small, start_after = int(opts['size']), int(opts['small']), int(opts['start_after'])
    block = bytes(range(256)) * 64
    digest = hashlib.sha256()
    big = c.request(get('/digest', method='POST', extra=[('content-length', str(size))]), end=False)
    sent, current, completions = 0, None, []
    started = time.time()
    while not big.done():
        if time.time() - started > 60:
            raise SystemExit('upload timed out at %d bytes' % sent)
        if big.reset is not None or c.closed:
            break
        allowed = 0
        if sent < size:
            allowed = min(c.conn.local_flow_control_window(big.sid), c.conn.max_outbound_frame_size, size - sent)
        if allowed > 0:
            offset = sent % len(block)
            chunk = (block[offset:] + block)[:allowed]
            digest.update(chunk)
            sent += allowed
            c.conn.send_data(big.sid, chunk, end_stream=sent == size)
            c.flush()
        if current is not None and current.done():
            completions.append({'status': current.status, 'body': current.body.decode('latin-1'),
                                'upload_sent': sent, 'upload_done': big.done()})
            current = None
        if current is None and len(completions) < small and sent >= start_after:
            current = c.request(get('/small/%d' % len(completions)))
        # Block for input only when nothing can be sent now.
        c.pump(0 if allowed > 0 else 1)
    c.wait(lambda: current is None or current.done())
    print(json.dumps({
        'sent': sent, 'size': size, 'status': big.status, 'reset': big.reset, 'body': big.body.decode('latin-1'),
        'sha256': digest.hexdigest(), 'small': completions, 'goaway': c.goaway,
    }))


TRANSLATION_CASES = [
    # name, headers, body (None: END_STREAM on HEADERS), extra DATA beyond the body
    ('missing-method', [(':scheme', 'http'), (':path', '/t'), (':authority', 'lb.test')], None),
    ('missing-scheme', [(':method', 'GET'), (':path', '/t'), (':authority', 'lb.test')], None),
    ('missing-path', [(':method', 'GET'), (':scheme', 'http'), (':authority', 'lb.test')], None),
    ('two-paths', get('/t') + [(':path', '/u')], None),
    ('two-methods', [(':method', 'GET')] + get('/t'), None),
    ('unknown-pseudo', get('/t') + [(':foo', 'bar')], None),
    ('protocol-pseudo', get('/t') + [(':protocol', 'websocket')], None),
    ('pseudo-after-regular', get('/t')[:3] + [('accept', '*/*'), (':authority', 'lb.test')], None),
    ('scheme-ftp', [(':method', 'GET'), (':scheme', 'ftp'), (':path', '/t'), (':authority', 'lb.test')], None),
    ('path-relative', get('t'), None),
    ('path-absolute-form', get('http://lb.test/t'), None),
    ('path-empty', get(''), None),
    ('path-asterisk-get', get('*'), None),
    ('method-not-token', get('/t', method='GE T'), None),
    ('uppercase-name', get('/t', extra=[('X-Upper', 'v')]), None),
    ('connection', get('/t', extra=[('connection', 'close')]), None),
    ('keep-alive', get('/t', extra=[('keep-alive', 'timeout=5')]), None),
    ('proxy-connection', get('/t', extra=[('proxy-connection', 'keep-alive')]), None),
    ('transfer-encoding', get('/t', method='POST', extra=[('transfer-encoding', 'chunked')]), b'abc'),
    ('upgrade', get('/t', extra=[('upgrade', 'websocket')]), None),
    ('te-gzip', get('/t', extra=[('te', 'gzip')]), None),
    ('value-cr', get('/t', extra=[('x-v', 'a\rb')]), None),
    ('value-lf', get('/t', extra=[('x-v', 'a\nX-Injected: 1')]), None),
    ('value-crlf', get('/t', extra=[('x-v', 'a\r\nX-Injected: 1')]), None),
    ('value-nul', get('/t', extra=[('x-v', 'a\x00b')]), None),
    ('value-leading-space', get('/t', extra=[('x-v', ' a')]), None),
    ('value-trailing-tab', get('/t', extra=[('x-v', 'a\t')]), None),
    ('name-space', get('/t', extra=[('x v', '1')]), None),
    ('cl-short', get('/t', method='POST', extra=[('content-length', '10')]), b'abc'),
    ('cl-long', get('/t', method='POST', extra=[('content-length', '2')]), b'abc'),
    ('cl-without-body', get('/t', extra=[('content-length', '5')]), None),
    ('cl-not-digits', get('/t', method='POST', extra=[('content-length', '3x')]), b'abc'),
    ('authority-userinfo', get('/t', authority='user@lb.test'), None),
    ('authority-bad-char', get('/t', authority='lb.test/x'), None),
    ('host-disagrees', get('/t', extra=[('host', 'other.test')]), None),
    ('no-authority-no-host', get('/t')[:3], None),
    ('authority-empty', get('/t', authority=''), None),
    ('host-empty', get('/t')[:3] + [('host', '')], None),
    # Forwarded: the backend's view of each is asserted by the test, found by its path.
    ('ok-cookies', get('/t/cookies', extra=[('cookie', 'a=1'), ('accept', '*/*'), ('cookie', 'b=2'),
                                            ('cookie', 'c=3')]), None),
    ('ok-te-trailers', get('/t/te', extra=[('te', 'trailers')]), None),
    ('ok-options-asterisk', get('*', method='OPTIONS'), None),
    ('ok-body-with-cl', get('/t/cl', method='POST', extra=[('content-length', '5')]), b'hello'),
    ('ok-body-without-cl', get('/t/chunked', method='POST'), b'hello'),
    ('ok-host-from-authority', get('/t/authority', authority='lb.test:8443'), None),
    ('ok-host-field-only', get('/t/host')[:3] + [('host', 'h.test')], None),
    ('ok-https-scheme', [(':method', 'GET'), (':scheme', 'https'), (':path', '/t/https'), (':authority', 'lb.test')],
     None),
    ('ok-expect', get('/t/expect', method='POST', extra=[('content-length', '2'), ('expect', '100-continue')]), b'hi'),
    # Request trailers (fields, END_STREAM), written raw after the body: lb drops them, but they must end the
    # stream and hold no pseudo-header or field HTTP/2 forbids (RFC 9113 §8.1, §8.2).
    ('ok-trailers', get('/t/trailers', method='POST'), b'hello', ([('x-checksum', 'abc')], True)),
    ('trailer-pseudo', get('/t', method='POST'), b'hello', ([(':path', '/x')], True)),
    ('trailer-uppercase', get('/t', method='POST'), b'hello', ([('X-T', '1')], True)),
    ('trailer-connection', get('/t', method='POST'), b'hello', ([('connection', 'close')], True)),
    ('trailer-value-crlf', get('/t', method='POST'), b'hello', ([('x-t', 'a\r\nX-Injected: 1')], True)),
    ('trailer-without-end-stream', get('/t', method='POST'), b'hello', ([('x-t', '1')], False)),
]


def translation(args, opts):
    """Each case on its own stream, one after another; a new connection if lb ends one."""
    results = {}
    c = None
    for name, headers, body, *trailers in TRANSLATION_CASES:
        if c is None or c.closed or c.goaway is not None:
            if c is not None:
                c.close()
            c = Client(args.port, args.tls)
        s = c.request(headers, body, end=not trailers)
        if trailers:
            fields, end = trailers[0]
            block = b''.join(literal(n.encode(), v.encode()) for n, v in fields)
            c.send_raw(frame(1, 0x4 | (1 if end else 0), s.sid, block))
            if not end:
                c.send_raw(frame(0, 1, s.sid, b'more'))
        if not c.wait(s.done, timeout=10):
            results[name] = 'closed' if c.goaway is None else 'goaway=%d' % c.goaway['error']
            continue
        results[name] = s.outcome()
    print(json.dumps({'results': results}))


def responses(args, opts):
    """One stream per path given as `paths` (comma-separated), one after another; each response as received:
    status, fields, body, trailers, informational statuses."""
    c = Client(args.port, args.tls)
    out = {}
    for path in opts['paths'].split(','):
        s = c.request(get(path, extra=[('te', 'trailers')]))
        c.wait(s.done)
        out[path] = s.summary()
    print(json.dumps(out))


def expect(args, opts):
    """`expect: 100-continue` before a body held back until the 100 (or 5 s); then the same without a body."""
    c = Client(args.port, args.tls)
    out = {}
    s = c.request(get('/continue', method='POST', extra=[('content-length', '4'), ('expect', '100-continue')]),
                  end=False)
    started = time.time()
    c.wait(lambda: s.informational or s.done() or time.time() - started > 5, timeout=10)
    waited = time.time() - started
    if not s.done():
        c.conn.send_data(s.sid, b'body', end_stream=True)
        c.flush()
    c.wait(s.done)
    out['with-body'] = dict(s.summary(), waited=round(waited, 3))
    s = c.request(get('/continue-no-body', extra=[('expect', '100-continue')]))
    c.wait(s.done)
    out['without-body'] = s.summary()
    print(json.dumps(out))


def rapidreset(args, opts):
    """`count` HEADERS + RST_STREAM(CANCEL) pairs, written as fast as the socket takes them while whatever lb
    answers is read."""
    c = Client(args.port, args.tls)
    c.wait(lambda: c.settings is not None)
    count = int(opts['count'])
    for i in range(count):
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, get('/rr/%d' % i), end_stream=True)
        c.conn.reset_stream(sid, error_code=8)
    burst = c.conn.data_to_send()
    started = time.time()
    written, error = 0, None
    c.sock.settimeout(5)
    while written < len(burst) and not c.closed:
        try:
            written += c.sock.send(burst[written:written + 16384])
        except OSError as e:
            error = type(e).__name__
            break
        try:
            while select.select([c.sock], [], [], 0)[0]:
                if not c.pump(0):
                    break
        except h2.exceptions.ProtocolError:
            break
    while not c.closed and time.time() - started < 15:
        try:
            c.pump(1)
        except h2.exceptions.ProtocolError:
            pass
    print(json.dumps({
        'bytes': len(burst), 'written': written, 'write_error': error, 'goaway': c.goaway, 'closed': c.closed,
        'seconds': round(time.time() - started, 3),
    }))


def continuation(args, opts):
    """HEADERS without END_HEADERS, then up to `count` CONTINUATION frames of `size` header bytes each, never
    ending the block, written in batches until lb cuts the connection: how far it lets it go."""
    c = Client(args.port, args.tls)
    c.wait(lambda: c.settings is not None)
    count, size = int(opts['count']), int(opts['size'])
    first = b''.join(literal(n.encode(), v.encode()) for n, v in get('/flood'))
    batch = 64
    frames = frame(9, 0, 1, literal(b'x-pad', b'a' * size) if size else b'') * batch
    started = time.time()
    frames_sent, error = 0, None
    c.sock.settimeout(5)
    try:
        c.send_raw(frame(1, 0, 1, first))
        while frames_sent < count and not select.select([c.sock], [], [], 0)[0]:
            c.send_raw(frames)
            frames_sent += batch
    except OSError as e:
        error = type(e).__name__
    # Read the rest raw: h2 would refuse lb's frames in the middle of a header block it never saw begin.
    closed, buf = False, b''
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            data = c.sock.recv(65536)
        except (OSError, ssl.SSLError):
            data = b''
        if not data:
            closed = True
            break
        buf += data
    c.without_goaway(buf)
    print(json.dumps({'frames_sent': frames_sent, 'bytes_offered': frames_sent * len(frames) // batch,
                      'write_error': error, 'goaway': c.goaway, 'closed': closed,
                      'seconds': round(time.time() - started, 3)}))


def sigterm(args, opts):
    """`count` requests to a slow backend; once lb reports them all in flight it gets SIGTERM. Records what
    arrives, in order, and whether a stream opened after the GOAWAY is refused."""
    c = Client(args.port, args.tls)
    count = int(opts['count'])
    streams = [c.request(get('/slow/%d' % i)) for i in range(count)]
    admin = 'http://127.0.0.1:%s/api/stats' % opts['admin']
    deadline = time.time() + 10
    while time.time() < deadline:
        if json.load(urllib.request.urlopen(admin))['requests']['in_flight'] >= count:
            break
        c.pump(0.02)
    os.kill(int(opts['pid']), signal.SIGTERM)
    signalled = time.time()
    c.wait(lambda: c.goaway is not None)
    goaway_at = time.time() - signalled
    done_before_goaway = sum(1 for s in streams if s.done())
    c.wait(lambda: all(s.done() for s in streams), timeout=30)
    completed_at = time.time() - signalled
    while c.pump(1):
        pass
    print(json.dumps({
        'goaway': c.goaway, 'goaway_after': round(goaway_at, 3), 'done_before_goaway': done_before_goaway,
        'completed_after': round(completed_at, 3), 'closed_after': round(time.time() - signalled, 3),
        'results': [s.outcome() + ' ' + s.body.decode('latin-1') for s in streams],
    }))


SCENARIOS = {f.__name__: f for f in [
    concurrent, upload, translation, responses, expect, rapidreset, continuation, sigterm]}

if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('scenario', choices=sorted(SCENARIOS))
    parser.add_argument('port', type=int)
    parser.add_argument('--tls', metavar='CA_FILE')
    parser.add_argument('--arg', action='append', default=[])
    parsed = parser.parse_args()
    SCENARIOS[parsed.scenario](parsed, dict(a.split('=', 1) for a in parsed.arg))
