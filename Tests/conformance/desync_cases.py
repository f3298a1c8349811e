#!/usr/bin/env python3
"""Turn the http-desync-guardian YAML corpus into raw HTTP/1.1 request bytes.

Usage: desync_cases.py [CORPUS_DIR] > desync_cases.json

Output: a JSON list of {"file", "name", "tier", "hex"} where `hex` is the whole
request (head and, when its framing implies one, a body) as lowercase hex.
Tiers: Compliant (must be forwarded), Acceptable, Ambiguous, Severe (must be
rejected). A `Host: example.com` header is added when the case has none, so
that a missing Host does not mask the defect under test. Body rule: if any
Transfer-Encoding value mentions "chunked", a one-chunk body "5\r\nhello\r\n0\r\n\r\n"
is appended; else if there is exactly one Content-Length whose
trimmed value is plain digits of at most 65536, that many 'x' bytes; else no
body (a huge or overflowing length is the defect under test, not a body to send).
YAML strings are encoded as Latin-1 where possible (so "\\xff" is byte 0xFF),
UTF-8 otherwise.
"""
import glob, json, os, sys
import yaml

def enc(s):
    s = str(s)
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")

def build(case):
    method = enc(case.get("method", "GET"))
    uri = enc(case.get("uri", "/"))
    version = enc(case.get("version", "HTTP/1.1") or "")
    line = method + b" " + uri + ((b" " + version) if version else b"") + b"\r\n"
    headers = case.get("headers") or []
    out = [line]
    has_host = False
    te_chunked = False
    cls = []
    for h in headers:
        name, value = enc(h.get("name", "")), enc(h.get("value", "") if h.get("value") is not None else "")
        lname = name.strip().lower()
        if lname == b"host":
            has_host = True
        if b"transfer-encoding" in lname and b"chunked" in value.lower():
            te_chunked = True
        if lname == b"content-length":
            cls.append(value.strip(b" \t"))
        out.append(name + b": " + value + b"\r\n")
    if not has_host:
        out.insert(1, b"Host: example.com\r\n")
    out.append(b"\r\n")
    body = b""
    if te_chunked:
        body = b"5\r\nhello\r\n0\r\n\r\n"
    elif len(cls) == 1 and cls[0].isdigit() and int(cls[0]) <= 65536:
        body = b"x" * int(cls[0])
    return b"".join(out) + body

def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/conformance/desync-guardian"
    cases = []
    for f in sorted(glob.glob(os.path.join(d, "*.yaml"))):
        for c in yaml.safe_load(open(f, encoding="utf-8")) or []:
            cases.append({"file": os.path.basename(f), "name": c["name"],
                          "tier": c["expected"]["tier"], "hex": build(c).hex()})
    json.dump(cases, sys.stdout, indent=1)
    sys.stdout.write("\n")

if __name__ == "__main__":
    main()
