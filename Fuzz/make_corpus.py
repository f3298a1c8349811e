#!/usr/bin/env python3
"""Writes the seed corpus of the parser fuzzer into Fuzz/corpus/ (run from anywhere; rerun after edits).

Each file is: one mode byte (bit 0: response; bits 1-2: GET/HEAD/CONNECT/POST answered; bit 3: small
limits), one split byte, then the message stream (see Sources/ParserFuzz/ParserFuzz.swift).
"""
import hashlib, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
REQ, RESP = 0, 1
GET, HEAD, CONNECT, POST = 0, 2, 4, 6
SMALL = 8

requests = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;p=1\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET http://a.example/x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://a.example:8080 HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET  HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-A\r\nX-A: 1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    b"\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 3\r\n\r\n",
]
responses = [
    (GET, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    (GET, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    (GET, b"HTTP/1.1 200 OK\r\n\r\nuntil close"),
    (GET, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
    (HEAD, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
    (CONNECT, b"HTTP/1.1 200 Connection established\r\n\r\ntunnel bytes"),
    (GET, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nframes"),
    (POST, b"HTTP/1.0 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    (GET, b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
]

def write(mode, split, message):
    data = bytes([mode, split]) + message
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)

os.makedirs(OUT, exist_ok=True)
for old in os.listdir(OUT):
    os.remove(os.path.join(OUT, old))
for i, m in enumerate(requests):
    write(REQ | (SMALL if i % 5 == 4 else 0), (i * 37) % 256, m)
for i, (method, m) in enumerate(responses):
    write(RESP | method, (i * 53) % 256, m)
# Desync cases: every Compliant one and a spread of the others.
cases = json.load(open(os.path.join(HERE, "..", "Tests", "conformance", "desync_cases.json")))
for i, c in enumerate(cases):
    if c["tier"] == "Compliant" or i % 6 == 0:
        write(REQ, (i * 29) % 256, bytes.fromhex(c["hex"]))
