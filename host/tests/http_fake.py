#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A loopback HTTP server for host/tests/http.sh: canned responses for rigor.http and a
fake of the handful of balena API endpoints the balena client uses.

    http_fake.py PORT_FILE [CERT KEY]
        listens on 127.0.0.1:0 and writes the port to PORT_FILE; with CERT and KEY (PEM)
        also serves the same routes over TLS, port in PORT_FILE.tls

Balena fake: user API key "USERKEY-0123456789abcdef"; fleet "testorg/testfleet" (id 42);
/download-config mints provisioning keys; /device/register with one creates a device;
a device goes online after `online_after` polls of GET /v7/device (POST /_test/online
{"uuid":..., "after": N}; default never). Tokens it rejects are echoed in the error body,
so the tests can check that the client redacts them.
"""
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER_KEY = "USERKEY-0123456789abcdef"
FLEET = {"id": 42, "uuid": "f" * 32, "app_name": "testfleet", "slug": "testorg/testfleet",
         "is_for__device_type": {"__id": 58}}
lock = threading.Lock()
state = {"flaky": {}, "prov_keys": set(), "devices": {}, "next_id": 1000, "polls": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="application/json", extra=None):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or []):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def token(self):
        a = self.headers.get("Authorization") or ""
        return a[7:] if a.startswith("Bearer ") else None

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        raw = self.body()
        p = u.path
        # ---- generic ----
        if p == "/json":
            return self.send(200, {"ok": True, "list": [1, 2], "empty": [], "nothing": None})
        if p == "/text":
            return self.send(200, "plain", "text/plain", [("X-Dup", "a"), ("X-Dup", "b")])
        if p.startswith("/status/"):
            return self.send(int(p[8:]), "status " + p[8:], "text/plain")
        if p == "/echo":
            return self.send(200, {"method": self.command, "body": raw.decode(),
                                   "ctype": self.headers.get("Content-Type"),
                                   "accept": self.headers.get("Accept"),
                                   "x": self.headers.get("X-Rigor"), "query": u.query})
        if p == "/flaky":
            key = q.get("id", [""])[0]
            with lock:
                n = state["flaky"].get(key, int(q.get("n", ["2"])[0]))
                state["flaky"][key] = n - 1
            if n > 0:
                return self.send(503, "busy", "text/plain")
            return self.send(200, {"ok": True, "after": int(q.get("n", ["2"])[0])})
        if p == "/slow":
            time.sleep(float(q.get("s", ["3"])[0]))
            return self.send(200, "slow", "text/plain")
        if p == "/badjson":
            return self.send(200, "{not json", "application/json")
        # ---- balena fake ----
        tok = self.token()
        if p == "/_test/online":
            d = json.loads(raw)
            with lock:
                state["devices"][d["uuid"]]["online_after"] = d["after"]
            return self.send(200, {})
        if p == "/device/register" and self.command == "POST":
            d = json.loads(raw)
            with lock:
                if tok not in state["prov_keys"]:
                    return self.send(401, "bad provisioning key " + str(tok), "text/plain")
                if d["uuid"] in state["devices"]:
                    return self.send(409, '"uuid" must be unique.', "text/plain")
                state["next_id"] += 1
                dev = {"id": state["next_id"], "uuid": d["uuid"], "device_type": d["device_type"],
                       "api_key": d.get("api_key") or "DEVKEY-" + d["uuid"][:16]}
                state["devices"][d["uuid"]] = {"row": dev, "polls": 0, "online_after": None}
            return self.send(201, {"id": dev["id"], "uuid": dev["uuid"], "api_key": dev["api_key"]})
        if tok != USER_KEY:
            return self.send(401, "Unauthorized: unknown token " + str(tok), "text/plain")
        if p == "/actor/v1/whoami":
            return self.send(200, {"id": 7, "actorType": "user", "actorTypeId": 3,
                                   "username": "tester", "email": "tester@example.com"})
        if p == "/v7/application":
            f = q.get("$filter", [""])[0]
            sel = q.get("$select", [""])[0].split(",")
            rows = [FLEET] if f in ("slug eq 'testorg/testfleet'", "uuid eq '%s'" % FLEET["uuid"]) else []
            return self.send(200, {"d": [{k: r[k] for k in sel if k in r} for r in rows]})
        if p == "/v7/application(42)":
            sel = q.get("$select", [""])[0].split(",")
            return self.send(200, {"d": [{k: FLEET[k] for k in sel if k in FLEET}]})
        if p == "/download-config" and self.command == "POST":
            d = json.loads(raw)
            if d.get("appId") != 42 or not d.get("version") or not d.get("deviceType"):
                return self.send(400, "appId, version and deviceType are required", "text/plain")
            with lock:
                key = "PROVKEY-%d-abcdef" % len(state["prov_keys"])
                state["prov_keys"].add(key)
            return self.send(200, {"applicationId": 42, "deviceType": d["deviceType"],
                                   "apiEndpoint": "http://%s:%d" % self.server.server_address,
                                   "apiKey": key, "appUpdatePollInterval": 600000,
                                   "listenPort": 48484, "vpnPort": 443,
                                   "developmentMode": bool(d.get("developmentMode"))})
        if p == "/v7/device":
            f = q.get("$filter", [""])[0]
            sel = q.get("$select", [""])[0].split(",")
            rows = []
            with lock:
                for uuid, dev in state["devices"].items():
                    if f == "uuid eq '%s'" % uuid:
                        dev["polls"] += 1
                        on = dev["online_after"] is not None and dev["polls"] > dev["online_after"]
                        row = dict(dev["row"], is_online=on,
                                   api_heartbeat_state="online" if on else "unknown",
                                   os_version="balenaOS 5.3.10" if on else None,
                                   supervisor_version="16.1.0" if on else None,
                                   status="Idle" if on else "Inactive")
                        rows.append({k: row[k] for k in sel if k in row})
            return self.send(200, {"d": rows})
        return self.send(404, "no route " + p, "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    if len(sys.argv) > 3:
        # the same routes over TLS with CERT KEY, port in PORT_FILE.tls
        tls = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
        with open(sys.argv[1] + ".tls", "w") as f:
            f.write(str(tls.server_address[1]))
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
