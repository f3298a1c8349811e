#!/usr/bin/env python3
"""A plain-TCP-to-TLS relay, so tests that speak raw bytes over plain sockets can reach a TLS listener.

Usage: tls_relay.py UPSTREAM_PORT CA_FILE SERVER_NAME

Listens on 127.0.0.1 (a kernel-chosen port) and prints
`tls-relay listening on 127.0.0.1:PORT` on stdout first. For each accepted plain connection it opens a TLS
connection to 127.0.0.1:UPSTREAM_PORT (SNI and verification for SERVER_NAME, chain to CA_FILE) and pipes bytes
both ways, one thread per connection. Ends are passed on so the client sees what it would see on a plain
connection to the server:

- the server ends its side (close_notify, TCP FIN or reset, a fatal alert): whatever it sent is written to the
  client, then the client gets a FIN (a reset comes through as a FIN); anything the client sends later is dropped;
- the client half-closes (FIN): what it sent goes on, then close_notify and a TCP FIN go to the server, and its
  answer still reaches the client until the server ends its side;
- the client resets, or stops taking bytes: both connections are closed at once.

A failed TLS handshake is reported on stderr (`tls-relay: ...`) and the client's connection is reset.
Standard library only.
"""
import select
import socket
import ssl
import struct
import sys
import threading

CHUNK = 65536


def log(message):
    print(f"tls-relay: {message}", file=sys.stderr, flush=True)


def reset(sock):
    """Closes with a TCP reset (SO_LINGER 0) rather than a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Relay:
    def __init__(self, client, context, upstream_port, server_name):
        self.client = client
        self.upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
        self.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # TLS over memory BIOs: one thread drives both directions, and every end can be passed on exactly.
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)
        self.upstream_writable = True

    def flush(self):
        """Sends the ciphertext TLS has produced. A server that no longer reads is not an error here: its answer
        may still be waiting to be read."""
        data = self.outgoing.read()
        if data and self.upstream_writable:
            try:
                self.upstream.sendall(data)
            except OSError:
                self.upstream_writable = False

    def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                data = self.upstream.recv(CHUNK)
                if not data:
                    raise ConnectionError("the server closed during the handshake")
                self.incoming.write(data)
        self.flush()
        self.upstream.settimeout(None)

    def run(self):
        client_open = True  # the client may still send
        server_open = True  # the server may still send
        while client_open or server_open:
            readable, _, _ = select.select(
                [s for s, is_open in ((self.client, client_open), (self.upstream, server_open)) if is_open], [], [])
            if self.client in readable:
                try:
                    data = self.client.recv(CHUNK)
                except OSError:  # reset by the client: nothing more to deliver either way
                    return
                if not server_open:
                    if not data:
                        client_open = False  # the server already ended; drop what the client still sends
                elif data:
                    self.tls.write(data)
                    self.flush()
                else:
                    client_open = False
                    try:
                        self.tls.unwrap()  # queues close_notify; raises while the server's is still to come
                    except ssl.SSLError:
                        pass
                    self.flush()
                    try:
                        self.upstream.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            if server_open and self.upstream in readable:
                try:
                    data = self.upstream.recv(CHUNK)
                except OSError:  # e.g. ECONNRESET
                    data = b""
                if data:
                    self.incoming.write(data)
                else:
                    self.incoming.write_eof()
                ended = False
                while True:
                    try:
                        plain = self.tls.read(CHUNK)
                    except ssl.SSLWantReadError:
                        break
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        ended = True
                        break
                    except ssl.SSLError as error:
                        log(f"TLS error from the server: {error}")
                        ended = True
                        break
                    if not plain:
                        ended = True
                        break
                    try:
                        self.client.sendall(plain)
                    except OSError:  # the client is gone
                        return
                self.flush()  # e.g. a reply to a key update
                if ended or not data:
                    server_open = False
                    self.upstream.close()
                    try:
                        self.client.shutdown(socket.SHUT_WR)
                    except OSError:
                        return

    def close(self):
        self.upstream.close()
        self.client.close()


def serve(client, context, upstream_port, server_name):
    try:
        relay = Relay(client, context, upstream_port, server_name)
    except OSError as error:
        log(f"cannot connect to 127.0.0.1:{upstream_port}: {error}")
        reset(client)
        return
    try:
        relay.handshake()
    except (OSError, ssl.SSLError) as error:
        log(f"TLS handshake with 127.0.0.1:{upstream_port} failed: {error}")
        relay.upstream.close()
        reset(client)
        return
    try:
        relay.run()
    except Exception as error:  # report, never leave the client hanging
        log(f"relay failed: {error!r}")
    finally:
        relay.close()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    upstream_port, ca_file, server_name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.create_default_context(cafile=ca_file)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print(f"tls-relay listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, context, upstream_port, server_name), daemon=True).start()


if __name__ == "__main__":
    main()
