#!/usr/bin/env python3
"""An HTTPS/1.1 backend for the upstream TLS tests: it says, in each answer, what the TLS layer saw.

Usage: tls_backend.py CERT KEY [--client-ca CA_FILE] [--close]

Listens on 127.0.0.1 (a kernel-chosen port) and prints `tls-backend listening on 127.0.0.1:PORT` on stdout
first. Every request is answered 200 with a body of one line:

    sni=NAME resumed=yes|no client=CN|none conn=N version=TLSv1.3 path=PATH

where NAME is the server name the client sent (or `none`), `resumed` says whether the handshake resumed a
session, `client` is the common name of the client certificate (with --client-ca, which makes one required,
verified against CA_FILE), and N numbers the TLS connections in the order they were accepted. Connections are
kept alive unless --close is given (then each answer carries `Connection: close`). Each request is logged on stderr
as `tls-backend: request conn=N resumed=yes|no path=PATH`, and failed handshakes as `tls-backend: ...`.
Standard library only.
"""
import socket
import ssl
import sys
import threading


def log(message):
    print(f"tls-backend: {message}", file=sys.stderr, flush=True)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    cert, key = args[0], args[1]
    client_ca = None
    close_each = False
    rest = args[2:]
    while rest:
        option = rest.pop(0)
        if option == "--client-ca":
            client_ca = rest.pop(0)
        elif option == "--close":
            close_each = True
        else:
            sys.exit(f"unknown option {option}")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    names = {}

    def remember_name(tls_socket, name, _context):
        names[id(tls_socket)] = name

    context.sni_callback = remember_name

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print(f"tls-backend listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)

    counter = [0]
    lock = threading.Lock()

    def serve(raw):
        try:
            tls = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log(f"handshake failed: {error}")
            raw.close()
            return
        with lock:
            counter[0] += 1
            number = counter[0]
        sni = names.pop(id(tls), None) or "none"
        peer = tls.getpeercert()
        client = "none"
        if peer:
            for rdn in peer.get("subject", ()):
                for field, value in rdn:
                    if field == "commonName":
                        client = value
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = tls.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].decode() if len(lines[0].split(b" ")) > 1 else "?"
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    data = tls.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
                log(f"request conn={number} resumed={'yes' if tls.session_reused else 'no'} path={path}")
                body = (
                    f"sni={sni} resumed={'yes' if tls.session_reused else 'no'} client={client} "
                    f"conn={number} version={tls.version()} path={path}\n"
                ).encode()
                headers = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                if close_each:
                    headers += "Connection: close\r\n"
                tls.sendall(headers.encode() + b"\r\n" + body)
                if close_each:
                    tls.unwrap()
                    return
        except (ssl.SSLError, OSError) as error:
            log(f"connection {number}: {error}")
        finally:
            try:
                tls.close()
            except OSError:
                pass

    while True:
        raw, _ = listener.accept()
        threading.Thread(target=serve, args=(raw,), daemon=True).start()


if __name__ == "__main__":
    main()
