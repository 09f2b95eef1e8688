#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A loopback HTTP server of disk images for host/tests/flash/flash-url.sh, with the faults
a download meets: no range support, a connection dropped mid-stream, a stall, a 404.

    image_server.py DIR PORT_FILE

listens on 127.0.0.1:0 (a free port, written to PORT_FILE) and serves the files of DIR:

    /plain/NAME          200 with Content-Length, Accept-Ranges, ETag, Last-Modified;
                         answers "Range: bytes=N-" with 206
    /noranges/NAME       200 only, no Accept-Ranges, a Range header is ignored
    /drop-once/NAME      like plain, but the first request for NAME closes the connection
                         after DROP bytes (the query ?drop=N, default 1 MiB)
    /drop-always/NAME    like plain, but every response closes after DROP bytes
    /drop-noranges/NAME  like noranges, every response closes after DROP bytes
    /changed/NAME        like drop-once, but a resumed request sees another ETag
    /stall/NAME          sends the headers and DROP bytes, then nothing (up to 120 s)
    /auth/NAME           like plain, but only with HTTP basic auth user:secret (else 401)
    /redirect/NAME       302 to /plain/NAME
    /status/CODE         that status with a short body (404, 403, 500, ...)

Each request is logged to stderr as one line: method, path, Range header, status.
"""
import base64
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = sys.argv[1]
lock = threading.Lock()
seen = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, status):
        sys.stderr.write("%s %s range=%s -> %d\n" % (self.command, self.path,
                                                     self.headers.get("Range"), status))
        sys.stderr.flush()

    def plain_status(self, code):
        body = b"status %d\n" % code
        self.note(code)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        drop = int(query.get("drop", [str(1 << 20)])[0])
        parts = url.path.strip("/").split("/", 1)
        mode, name = parts[0], parts[1] if len(parts) > 1 else ""
        if mode == "status":
            return self.plain_status(int(name))
        if mode == "redirect":
            self.note(302)
            self.send_response(302)
            self.send_header("Location", "/plain/" + name)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "auth":
            want = "Basic " + base64.b64encode(b"user:secret").decode()
            if self.headers.get("Authorization") != want:
                return self.plain_status(401)
        path = os.path.join(ROOT, os.path.basename(name))
        if not name or not os.path.isfile(path):
            return self.plain_status(404)
        data = open(path, "rb").read()
        ranges = mode not in ("noranges", "drop-noranges")
        with lock:
            nth = seen.get((mode, name), 0)
            seen[(mode, name)] = nth + 1
        start = 0
        rng = self.headers.get("Range")
        status = 200
        if ranges and rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            status = 206
        etag = '"v1"' if not (mode == "changed" and nth > 0) else '"v2"'
        body = data[start:]
        self.note(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1,
                                                                  len(data)))
        self.end_headers()
        cut = None
        if mode in ("drop-always", "drop-noranges", "stall") or \
           (mode in ("drop-once", "changed") and nth == 0):
            cut = drop
        try:
            if cut is None or cut >= len(body):
                self.wfile.write(body)
                return
            self.wfile.write(body[:cut])
            self.wfile.flush()
            if mode == "stall":
                # hold the connection open, sending nothing, until the client gives up
                for _ in range(1200):
                    time.sleep(0.1)
                    try:
                        if self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                            break
                    except BlockingIOError:
                        pass
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass    # a connection dropped on purpose is no error


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, sys.argv[2])
    srv.serve_forever()


if __name__ == "__main__":
    main()
