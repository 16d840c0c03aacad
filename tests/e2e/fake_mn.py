#!/usr/bin/env python3
"""A fake ZStack management node for tests/e2e/test_auth.sh (loopback only, ephemeral port).

Answers GET /zstack/v1/accounts/sessions/<session>/valid with {"valid":true} for the sessions
named on the command line and {"valid":false} for any other, as APIValidateSessionMsg does.
Control endpoints (not ZStack's): GET /count returns how many validations arrived; GET /silent
makes later validations hang without an answer (to provoke vipportd's timeout).
Prints "ready <port>" on stdout once listening.
"""
import http.server
import sys
import threading
import time

VALID = set(sys.argv[1:])
STATE = {"count": 0, "silent": False}
LOCK = threading.Lock()
PREFIX = "/zstack/v1/accounts/sessions/"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/count":
            with LOCK:
                return self.reply(str(STATE["count"]).encode())
        if self.path == "/silent":
            with LOCK:
                STATE["silent"] = True
            return self.reply(b"ok")
        if self.path.startswith(PREFIX) and self.path.endswith("/valid"):
            session = self.path[len(PREFIX):-len("/valid")]
            with LOCK:
                STATE["count"] += 1
                silent = STATE["silent"]
            if silent:
                time.sleep(60)  # the client gives up first; the test kills this process
                return None
            answer = b"true" if session in VALID else b"false"
            return self.reply(b'{"valid":' + answer + b"}")
        return self.reply(b"not found", 404)

    def log_message(self, *args) -> None:
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("ready", server.server_address[1], flush=True)
server.serve_forever()
