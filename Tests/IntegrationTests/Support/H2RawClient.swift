import Foundation

/// A raw HTTP/2 client in Python (standard library only), for what curl, nghttp and h2load will not send or do:
/// malformed requests, a stream whose window is never reopened, a burst of HEADERS + RST_STREAM pairs. Header
/// blocks are HPACK literals without indexing or Huffman, so any name or value (uppercase, duplicated, misplaced)
/// goes out as written. Each scenario prints one line per outcome, which the tests compare.
enum H2RawClient {
    /// Runs `scenario` against 127.0.0.1:`port` with `arguments`; returns the exit status, stdout and stderr.
    static func run(
        python: String, scenario: String, port: Int, _ arguments: [String] = [], timeout: TimeInterval = 30
    ) -> (status: Int32, stdout: String, stderr: String) {
        let result = ManagedProcess.run(
            python, ["-c", script, scenario, String(port)] + arguments, timeout: timeout)
        return (result.status, String(decoding: result.stdout, as: UTF8.self), result.stderr)
    }

    static let script = #"""
import json, os, signal, socket, struct, sys, time, urllib.request

def frame(t, f, sid, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([t, f]) + struct.pack('>I', sid) + payload

def integer(n, prefix, first=0):
    limit = (1 << prefix) - 1
    if n < limit:
        return bytes([first | n])
    out = [first | limit]
    n -= limit
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)

def block(headers):
    out = b''
    for n, v in headers:
        n, v = n.encode('latin-1'), v.encode('latin-1')
        out += b'\x00' + integer(len(n), 7) + n + integer(len(v), 7) + v
    return out

STATUS = {0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500}

class Conn:
    def __init__(self, port, window=None):
        self.s = socket.create_connection(('127.0.0.1', port))
        self.s.settimeout(15)
        self.buf = b''
        settings = b'' if window is None else struct.pack('>HI', 4, window)
        self.s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + frame(4, 0, 0, settings))

    def get(self, sid, path, extra=(), end=True):
        hs = [(':method', 'GET'), (':scheme', 'http'), (':path', path), (':authority', 'lb.test')] + list(extra)
        return frame(1, 0x4 | (1 if end else 0), sid, block(hs))

    def read(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def next(self):
        """The next frame (type, flags, stream, payload), acking SETTINGS and PING; None at EOF."""
        while True:
            head = self.read(9)
            if head is None:
                return None
            length = struct.unpack('>I', b'\0' + head[:3])[0]
            t, f, sid = head[3], head[4], struct.unpack('>I', head[5:9])[0] & 0x7fffffff
            payload = self.read(length) if length else b''
            if t == 4 and not f & 1:
                self.s.sendall(frame(4, 1, 0))
                continue
            if t == 6 and not f & 1:
                self.s.sendall(frame(6, 1, 0, payload))
                continue
            return t, f, sid, payload

    def outcome(self, sid):
        """'status=N' (with the body's length) or 'rst=CODE' for stream sid; other streams' frames are skipped."""
        status, body = None, 0
        while True:
            fr = self.next()
            if fr is None:
                return 'eof'
            t, f, s, p = fr
            if t == 7:
                return 'goaway=%d' % struct.unpack('>I', p[4:8])[0]
            if s != sid:
                continue
            if t == 3:
                return 'rst=%d' % struct.unpack('>I', p)[0]
            if t == 1:
                status = STATUS.get(p[0], '?')
            if t == 0:
                body += len(p)
                if p:
                    self.s.sendall(frame(8, 0, 0, struct.pack('>I', len(p))) + frame(8, 0, sid, struct.pack('>I', len(p))))
            if f & 1:
                return 'status=%s' % status

def validate(port):
    base = [(':method', 'GET'), (':scheme', 'http'), (':path', '/ok'), (':authority', 'lb.test')]
    def without(name):
        return [h for h in base if h[0] != name]
    def replaced(name, value):
        return [(n, value if n == name else v) for n, v in base]
    cases = [
        ('valid', base + [('cookie', 'a=1'), ('cookie', 'b=2')], True),
        ('uppercase-name', base + [('X-Upper', 'v')], True),
        ('connection-field', base + [('connection', 'keep-alive')], True),
        ('transfer-encoding', base + [('transfer-encoding', 'chunked')], True),
        ('te-gzip', base + [('te', 'gzip')], True),
        ('te-trailers', base + [('te', 'trailers')], True),
        ('missing-path', without(':path'), True),
        ('missing-method', without(':method'), True),
        ('two-methods', [(':method', 'GET')] + base, True),
        ('scheme-ftp', replaced(':scheme', 'ftp'), True),
        ('relative-path', replaced(':path', 'ok'), True),
        ('asterisk-get', replaced(':path', '*'), True),
        ('pseudo-after-regular', base[:3] + [('accept', '*/*'), (':authority', 'lb.test')], True),
        ('userinfo-authority', replaced(':authority', 'user@lb.test'), True),
        ('host-mismatch', base + [('host', 'other.test')], True),
        ('no-authority-no-host', without(':authority'), True),
        ('host-only', without(':authority') + [('host', 'lb.test')], True),
        ('method-not-token', replaced(':method', 'G(T'), True),
        ('content-length-short', [(':method', 'POST')] + base[1:] + [('content-length', '5')], False),
    ]
    c = Conn(port)
    sid = 1
    for name, hs, end in cases:
        c.s.sendall(frame(1, 0x4 | (1 if end else 0), sid, block(hs)))
        if not end:
            c.s.sendall(frame(0, 1, sid, b'abc'))
        print(name, c.outcome(sid), flush=True)
        sid += 2

def slowreader(port, big):
    # Streams start with a 65535-byte window that this client never reopens for stream 1; the connection's
    # window is reopened for every byte received.
    c = Conn(port)
    c.s.sendall(frame(8, 0, 0, struct.pack('>I', 1 << 30)))
    c.s.sendall(c.get(1, '/bytes?size=%d' % big))
    got = {1: bytearray(), 3: bytearray()}
    done = set()
    c.s.sendall(c.get(3, '/fast'))
    while 3 not in done:
        fr = c.next()
        if fr is None:
            print('eof'); return
        t, f, s, p = fr
        if t == 0:
            got[s] += p
            if p:
                c.s.sendall(frame(8, 0, 0, struct.pack('>I', len(p))))
                if s == 3:
                    c.s.sendall(frame(8, 0, 3, struct.pack('>I', len(p))))
        if f & 1 and t in (0, 1):
            done.add(s)
        if t == 3:
            print('rst', s); return
    print('fast stream done:', bytes(got[3]).decode().strip(), flush=True)
    print('slow stream held to its window:', len(got[1]) <= 65535, flush=True)
    c.s.sendall(frame(8, 0, 1, struct.pack('>I', (1 << 31) - 1 - 65535)))
    while 1 not in done:
        fr = c.next()
        if fr is None:
            print('eof'); return
        t, f, s, p = fr
        if t == 0 and s == 1:
            got[1] += p
            if p:
                c.s.sendall(frame(8, 0, 0, struct.pack('>I', len(p))))
            if f & 1:
                done.add(1)
    data = bytes(got[1])
    expected = bytes(i % 251 for i in range(big))
    print('slow stream complete:', len(data), data == expected, flush=True)

def rapidreset(port, n):
    c = Conn(port)
    burst = b''.join(c.get(2 * i + 1, '/rr/%d' % i) + frame(3, 0, 2 * i + 1, struct.pack('>I', 8)) for i in range(n))
    try:
        c.s.sendall(burst)
    except OSError:
        pass
    goaway = None
    try:
        while True:
            fr = c.next()
            if fr is None:
                break
            if fr[0] == 7:
                goaway = struct.unpack('>I', fr[3][4:8])[0]
    except OSError:
        pass
    print('goaway', goaway, 'closed', flush=True)

def drain(port, admin, pid):
    c = Conn(port)
    c.s.sendall(c.get(1, '/drain'))
    deadline = time.time() + 10
    while time.time() < deadline:
        stats = json.load(urllib.request.urlopen('http://127.0.0.1:%d/api/stats' % admin))
        if stats['requests']['in_flight'] >= 1:
            break
        time.sleep(0.02)
    os.kill(pid, signal.SIGTERM)
    events = []
    while True:
        fr = c.next()
        if fr is None:
            events.append('closed'); break
        t, f, s, p = fr
        if t == 7:
            events.append('goaway last=%d error=%d' % (struct.unpack('>I', p[:4])[0] & 0x7fffffff, struct.unpack('>I', p[4:8])[0]))
        elif t == 1 and s == 1:
            events.append('stream 1 status=%s' % STATUS.get(p[0], '?'))
        elif t == 0 and s == 1 and f & 1:
            events.append('stream 1 end')
    print('\n'.join(events), flush=True)

scenario, port = sys.argv[1], int(sys.argv[2])
if scenario == 'validate':
    validate(port)
elif scenario == 'slowreader':
    slowreader(port, int(sys.argv[3]))
elif scenario == 'rapidreset':
    rapidreset(port, int(sys.argv[3]))
elif scenario == 'drain':
    drain(port, int(sys.argv[3]), int(sys.argv[4]))
"""#
}
