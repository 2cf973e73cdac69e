#!/usr/bin/python3
"""A fault-injecting HTTP proxy in front of an S3 server, for virga's s3:// tests.

Usage: fault_proxy.py --upstream 127.0.0.1:PORT [--every N] [--faults 500,503,slowdown,reset]
                      [--die-after K]
Listens on 127.0.0.1 on a free port and prints "PORT <n>" once ready. Every request is
forwarded unchanged (headers verbatim, Host included, so SigV4 signatures stay valid),
except that every N-th request (N = --every, 0 = never) gets the next fault of the list,
in turn, instead of reaching the upstream:
  500       HTTP 500 InternalError
  503       HTTP 503 ServiceUnavailable
  slowdown  HTTP 503 SlowDown (S3's throttling answer)
  reset     the connection is closed without an answer
With --die-after K the proxy answers K requests, then exits (a store that disappears
mid-upload). GET /__proxy_stats (never forwarded) returns "requests faults" as text.
Standard library only.
"""
import argparse
import http.client
import http.server
import os
import socket
import sys
import threading

ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--every", type=int, default=0)
    ap.add_argument("--faults", default="500,503,slowdown,reset")
    ap.add_argument("--die-after", type=int, default=0)
    args = ap.parse_args()
    up_host, up_port = args.upstream.rsplit(":", 1)
    faults = [f for f in args.faults.split(",") if f]
    for f in faults:
        if f not in ERRORS and f != "reset":
            sys.exit("fault_proxy: unknown fault " + f)
    lock = threading.Lock()
    state = {"requests": 0, "faults": 0, "next_fault": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/__proxy_stats":
                text = ("%d %d" % (state["requests"], state["faults"])).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
                return
            with lock:
                state["requests"] += 1
                n = state["requests"]
                fault = None
                if args.every and n % args.every == 0 and faults:
                    fault = faults[state["next_fault"] % len(faults)]
                    state["next_fault"] += 1
                    state["faults"] += 1
            if args.die_after and n > args.die_after:
                os._exit(0)
            if fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                self.connection.close()
                return
            if fault is not None:
                status, code, msg = ERRORS[fault]
                text = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                        "<Message>%s</Message></Error>" % (code, msg)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(text)
                return
            conn = http.client.HTTPConnection(up_host, int(up_port), timeout=60)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                conn.putheader(k, v)
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            head_length = None
            for k, v in resp.getheaders():
                if k.lower() == "content-length" and self.command == "HEAD":
                    head_length = v  # a HEAD answer announces the object's size
                if k.lower() in ("transfer-encoding", "connection", "content-length", "date",
                                 "server"):
                    continue
                self.send_header(k, v)
            self.send_header("Content-Length", head_length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
