#!/usr/bin/env python3
"""HTTPS load for tests that change a TLS listener under traffic: keep-alive and new-connection clients, until told
to stop.

Usage: https_load.py PORT CA_FILE SERVER_NAME BACKEND_NAME STATUS_FILE [KEEP_ALIVE_CLIENTS [NEW_CONNECTION_CLIENTS]]

Connects to 127.0.0.1:PORT with SNI and certificate verification for SERVER_NAME (chain to CA_FILE), through
Python's http.client. Each keep-alive client sends GET /load/ka<N>/<i> over one connection, opening a new one only
when the server announces it closes (`Connection: close`). Each new-connection client makes a full handshake for
every request (no session reuse) and records the serial number of the certificate that handshake was served. An
answer counts as a success when it is a 200 whose body is the demo backend's `backend BACKEND_NAME path=PATH`;
anything else (another status or body, a reset, a failed handshake, a timeout) is a failure, recorded with its
client and path.

STATUS_FILE is rewritten (atomically, by rename) every 50 ms and once more at the end, as JSON:
  ok, keep_alive_ok, new_connection_ok   successful requests, all and by kind
  keep_alive_connections                 connections the keep-alive clients opened
  failures                               the first 100 failures as "CLIENT PATH: WHAT", failure_count all of them
  serials                                per new-connection client ("new0", ...), the serial (upper-case hex) of
                                         the certificate its latest handshake got
  serial_changes                         per new-connection client, the serials in the order it met them: one
                                         entry per change, so a client that went back to an old certificate
                                         shows that serial twice
  done                                   true in the final write
The clients stop when STATUS_FILE.stop exists; the script then writes the final status, prints `done` and exits 0.
Standard library only.
"""
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time

port = int(sys.argv[1])
ca_file, server_name, backend_name, status_file = sys.argv[2:6]
keep_alive_clients = int(sys.argv[6]) if len(sys.argv) > 6 else 3
new_connection_clients = int(sys.argv[7]) if len(sys.argv) > 7 else 3
stop_file = status_file + ".stop"

context = ssl.create_default_context(cafile=ca_file)
lock = threading.Lock()
state = {
    "ok": 0, "keep_alive_ok": 0, "new_connection_ok": 0, "keep_alive_connections": 0,
    "failures": [], "failure_count": 0, "serials": {}, "serial_changes": {}, "done": False,
}


class Connection(http.client.HTTPSConnection):
    """Connects to 127.0.0.1 whatever the host name, which stays the SNI, the name verified and the Host header."""

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def open_connection():
    return Connection(server_name, port, context=context, timeout=10)


def exchange(connection, path, headers):
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read().decode("utf-8", "replace")
    expected = f"backend {backend_name} path={path}\n"
    if response.status != 200 or body != expected:
        raise AssertionError(f"status {response.status}, body {body!r}, expected 200 {expected!r}")
    return response


def fail(client, path, error):
    with lock:
        state["failure_count"] += 1
        if len(state["failures"]) < 100:
            state["failures"].append(f"{client} {path}: {error!r}")


def keep_alive_client(n):
    name = f"ka{n}"
    connection = None
    i = 0
    while not os.path.exists(stop_file):
        path = f"/load/{name}/{i}"
        i += 1
        try:
            if connection is None:
                connection = open_connection()
                connection.connect()
                with lock:
                    state["keep_alive_connections"] += 1
            response = exchange(connection, path, {})
            with lock:
                state["ok"] += 1
                state["keep_alive_ok"] += 1
            if response.will_close:
                connection.close()
                connection = None
        except Exception as error:  # anything a client would see as a failed request
            fail(name, path, error)
            if connection is not None:
                connection.close()
            connection = None
    if connection is not None:
        connection.close()


def new_connection_client(n):
    name = f"new{n}"
    i = 0
    while not os.path.exists(stop_file):
        path = f"/load/{name}/{i}"
        i += 1
        connection = open_connection()
        try:
            connection.connect()
            serial = connection.sock.getpeercert()["serialNumber"]
            exchange(connection, path, {"Connection": "close"})
            with lock:
                state["ok"] += 1
                state["new_connection_ok"] += 1
                state["serials"][name] = serial
                changes = state["serial_changes"].setdefault(name, [])
                if not changes or changes[-1] != serial:
                    changes.append(serial)
        except Exception as error:
            fail(name, path, error)
        finally:
            connection.close()


def write_status():
    with lock:
        text = json.dumps(state)
    temporary = status_file + ".tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, status_file)


threads = [threading.Thread(target=keep_alive_client, args=(n,)) for n in range(keep_alive_clients)]
threads += [threading.Thread(target=new_connection_client, args=(n,)) for n in range(new_connection_clients)]
for thread in threads:
    thread.start()
while any(thread.is_alive() for thread in threads):
    write_status()
    time.sleep(0.05)
with lock:
    state["done"] = True
write_status()
print("done", flush=True)
