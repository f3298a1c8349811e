#!/usr/bin/env python3
"""A DNS server for lb's DNS source tests, on loopback UDP and TCP (the same port, picked free).

Its zone is a JSON file read again at every query, so a test changes the answers by rewriting the file:

    {"names": {"NAME": [{"type": "A", "value": "127.0.0.2", "ttl": 1},
                        {"type": "AAAA", "value": "::1", "ttl": 1},
                        {"type": "SRV", "priority": 10, "weight": 5, "port": 8080, "target": "b1.test", "ttl": 1}]},
     "servfail": ["NAME", ...],     # answered SERVFAIL
     "drop": ["NAME", ...],         # never answered (the client times out)
     "no_additional": ["NAME", ...]}  # SRV answers without the targets' addresses in the additional section

A name in "names" answers its records of the type asked (NOERROR with none when it has none of that type); any
other name is NXDOMAIN. SRV answers carry the targets' A/AAAA records in the additional section unless the name is
in "no_additional". Every query is appended to the log file as one JSON line: {"t": unix time, "name", "type"}.

Usage: dns_server.py ZONE_FILE LOG_FILE; prints "dns_server listening on 127.0.0.1:PORT" once both sockets are bound.
"""
import json
import socket
import struct
import sys
import threading
import time

from dnslib import AAAA, QTYPE, RCODE, RR, SRV, A, DNSRecord

zone_path, log_path = sys.argv[1], sys.argv[2]
log_lock = threading.Lock()


def load_zone():
    try:
        with open(zone_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def rdata(record):
    kind = record["type"]
    if kind == "A":
        return QTYPE.A, A(record["value"])
    if kind == "AAAA":
        return QTYPE.AAAA, AAAA(record["value"])
    if kind == "SRV":
        return QTYPE.SRV, SRV(record["priority"], record["weight"], record["port"], record["target"])
    raise ValueError(kind)


def norm(name):
    return str(name).rstrip(".").lower()


def answer(data):
    """The reply's bytes, or None to stay silent."""
    request = DNSRecord.parse(data)
    qname = norm(request.q.qname)
    qtype = QTYPE[request.q.qtype]
    with log_lock, open(log_path, "a") as log:
        log.write(json.dumps({"t": time.time(), "name": qname, "type": qtype}) + "\n")
    zone = load_zone()
    names = {norm(k): v for k, v in zone.get("names", {}).items()}
    if qname in map(norm, zone.get("drop", [])):
        return None
    reply = request.reply()
    if qname in map(norm, zone.get("servfail", [])):
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()
    if qname not in names:
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()
    targets = []
    for record in names[qname]:
        if record["type"] != qtype:
            continue
        rtype, rd = rdata(record)
        reply.add_answer(RR(qname, rtype, rdata=rd, ttl=record.get("ttl", 1)))
        if rtype == QTYPE.SRV:
            targets.append(norm(record["target"]))
    if qname not in map(norm, zone.get("no_additional", [])):
        for target in targets:
            for record in names.get(target, []):
                if record["type"] in ("A", "AAAA"):
                    rtype, rd = rdata(record)
                    reply.add_ar(RR(target, rtype, rdata=rd, ttl=record.get("ttl", 1)))
    return reply.pack()


def serve_udp(sock):
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            out = answer(data)
        except Exception as e:  # a malformed query: no answer
            print("error:", e, file=sys.stderr, flush=True)
            continue
        if out is not None:
            sock.sendto(out, peer)


def serve_tcp_client(conn):
    with conn:
        while True:
            head = conn.recv(2)
            if len(head) < 2:
                return
            (size,) = struct.unpack("!H", head)
            data = b""
            while len(data) < size:
                chunk = conn.recv(size - len(data))
                if not chunk:
                    return
                data += chunk
            out = answer(data)
            if out is not None:
                conn.sendall(struct.pack("!H", len(out)) + out)


def serve_tcp(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_client, args=(conn,), daemon=True).start()


for _ in range(50):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        tcp.bind(("127.0.0.1", port))
    except OSError:
        udp.close()
        tcp.close()
        continue
    tcp.listen(16)
    break
else:
    sys.exit("no port free for both UDP and TCP")

threading.Thread(target=serve_tcp, args=(tcp,), daemon=True).start()
print(f"dns_server listening on 127.0.0.1:{port}", flush=True)
serve_udp(udp)
