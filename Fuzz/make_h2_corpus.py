#!/usr/bin/python3
"""Writes the seed corpus of the HTTP/2 fuzzer into Fuzz/h2-corpus/ (run from anywhere; rerun after edits).

Needs the `hpack` package (Debian/Ubuntu: python3-hpack, pulled in by python3-h2), hence /usr/bin/python3.
Each file is: one config byte (bits 0-1: max concurrent streams 1/2/4/100; bit 2: small windows; bit 3: small
request limits; bit 4: small sends; bits 5-7: how many cut bytes follow), one seed byte (each stream's
behaviour; bit 7: drain after the second piece), the cut bytes, then the client's frames after the preface and
an empty SETTINGS frame, which the harness adds (see Sources/H2Fuzz/H2Fuzz.swift).
"""
import hashlib, os, struct
from hpack import Encoder

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "h2-corpus")

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(type_, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream) + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


SETTINGS_ACK = frame(SETTINGS, ACK, 0)


def request(method="GET", path="/", authority="example.com", extra=(), scheme="https"):
    fields = [(":method", method)]
    if scheme is not None:
        fields.append((":scheme", scheme))
    if path is not None:
        fields.append((":path", path))
    if authority is not None:
        fields.append((":authority", authority))
    return fields + list(extra)


class Client:
    """One connection's HPACK encoder: header blocks must be encoded in order, with one dynamic table."""

    def __init__(self):
        self.enc = Encoder()

    def headers(self, stream, fields, end_stream=True, flags=0):
        return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0) | flags, stream, self.enc.encode(fields))

    def block(self, fields):
        return self.enc.encode(fields)


def data(stream, payload, end_stream=False):
    return frame(DATA, END_STREAM if end_stream else 0, stream, payload)


seeds = []


def seed(config, behaviour, frames, cuts=b""):
    assert len(cuts) == config >> 5
    seeds.append(bytes([config, behaviour]) + cuts + frames)


def cuts(n, *positions):
    return n << 5, bytes(positions)


c = Client()
seed(0x03, 0x00, SETTINGS_ACK + c.headers(1, request()))

c = Client()
seed(0x03 | (2 << 5), 0x11, settings((4, 65535), (5, 16384)) + SETTINGS_ACK + c.headers(1, request())
     + frame(PING, 0, 0, b"12345678") + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)), b"\x20\xa0")

c = Client()
seed(0x03, 0x22, SETTINGS_ACK + c.headers(1, request("POST", "/p", extra=[("content-length", "5")]), False)
     + data(1, b"hello", True))

c = Client()
seed(0x07 | (3 << 5), 0x33, SETTINGS_ACK + c.headers(1, request("POST", "/up", extra=[("content-type", "text/plain")]),
     False) + data(1, b"a" * 1000) + data(1, b"b" * 1000) + c.headers(1, [("x-trailer", "1")], True), b"\x10\x60\xc0")

c = Client()
multi = SETTINGS_ACK
for sid in (1, 3, 5, 7):
    multi += c.headers(sid, request(path="/s%d" % sid, extra=[("user-agent", "fuzz"), ("accept", "*/*")]))
multi += frame(RST_STREAM, 0, 3, struct.pack(">I", 8))
seed(0x02, 0x44, multi)

c = Client()
block = c.block(request(path="/continued", extra=[("x-long", "v" * 200), ("cookie", "a=1"), ("cookie", "b=2")]))
seed(0x03 | (1 << 5), 0x55, SETTINGS_ACK + frame(HEADERS, END_STREAM, 1, block[:40])
     + frame(CONTINUATION, 0, 1, block[40:100]) + frame(CONTINUATION, END_HEADERS, 1, block[100:]), b"\x80")

c = Client()
block = c.block(request("POST", "/padded", extra=[("content-length", "3")]))
padded_headers = frame(HEADERS, END_HEADERS | PADDED | PRIO, 1,
                       bytes([4]) + struct.pack(">IB", 0, 15) + block + b"\0" * 4)
seed(0x03, 0x66, SETTINGS_ACK + padded_headers + frame(DATA, PADDED | END_STREAM, 1, bytes([2]) + b"abc" + b"\0\0")
     + frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 200)))

c = Client()
seed(0x03, 0x77, SETTINGS_ACK + c.headers(1, request(extra=[("connection", "keep-alive")]))
     + c.headers(3, request(extra=[("te", "trailers"), ("X-Upper", "1")]))
     + c.headers(5, request(extra=[("te", "gzip")])))

c = Client()
seed(0x03, 0x08, SETTINGS_ACK + c.headers(1, request("CONNECT", None, "a.example:443", scheme=None), False)
     + c.headers(3, request("OPTIONS", "*")) + c.headers(5, request("HEAD", "/h"))
     + c.headers(7, request(authority="a.example", extra=[("host", "b.example")])))

c = Client()
many = [("x-h%d" % i, "value-%d" % i) for i in range(10)]
seed(0x0b, 0x19, SETTINGS_ACK + c.headers(1, request(path="/" + "p" * 80, extra=many)))

c = Client()
seed(0x13 | (2 << 5), 0x2a, settings((4, 0), (5, 32768)) + c.headers(1, request("GET", "/big")) + SETTINGS_ACK
     + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 70000)) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 70000))
     + settings((4, 100000)), b"\x40\x90")

c = Client()
seed(0x03, 0x3b, SETTINGS_ACK + c.headers(1, request()) + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))

c = Client()
rapid = SETTINGS_ACK
for i in range(30):
    sid = 1 + 2 * i
    rapid += c.headers(sid, request(path="/r"), False) + frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
seed(0x01, 0x4c, rapid)

c = Client()
seed(0x03, 0x5d, SETTINGS_ACK + c.headers(1, request("PUT", "/cl", extra=[("content-length", "2")]), False)
     + data(1, b"abc", True) + c.headers(3, request("PUT", "/cl", extra=[("content-length", "4")]), False)
     + data(3, b"ab", True))

c = Client()
seed(0x03, 0x8e, SETTINGS_ACK + c.headers(1, request(path="/a")) + c.headers(3, request(path="/b"))
     + frame(PING, 0, 0, b"abcdefgh") + c.headers(5, request(path="/c")))

c = Client()
seed(0x07 | (7 << 5), 0x9f, SETTINGS_ACK + c.headers(1, request("POST", "/bytewise"), False) + data(1, b"xyz", True),
     b"\0" * 7)

os.makedirs(OUT, exist_ok=True)
for old in os.listdir(OUT):
    os.remove(os.path.join(OUT, old))
for s in seeds:
    with open(os.path.join(OUT, hashlib.sha1(s).hexdigest()[:16]), "wb") as f:
        f.write(s)
print("%d seeds in %s" % (len(seeds), OUT))
