"""A forwarding HTTP proxy in front of Yoke that records every request and can refuse chosen ones (503), to see
what a client sends and to cut a push off at a chosen step. It runs as its own process: Oxen's client holds
Python's GIL while it waits on the network, so a proxy thread in the test's process would never answer.

Usage: python recording_proxy.py UPSTREAM_HOST:PORT   (prints the port it listens on, then serves)
Control, on the proxy itself: GET /__proxy/requests → [[method, path, body bytes], …]; DELETE /__proxy/requests;
PUT /__proxy/refuse with {"method": …, "suffix": …} refuses matching requests from then on ({} refuses none).
"""

import http.client
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = sys.argv[1]
requests: list = []
refuse: dict = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _control(self, body: bytes):
        global refuse
        if self.path == "/__proxy/requests" and self.command == "GET":
            return self._reply(200, json.dumps(requests).encode(), [("Content-Type", "application/json")])
        if self.path == "/__proxy/requests" and self.command == "DELETE":
            requests.clear()
            return self._reply(200, b"{}")
        if self.path == "/__proxy/refuse" and self.command == "PUT":
            refuse = json.loads(body or b"{}")
            return self._reply(200, b"{}")
        return self._reply(404, b"{}")

    def _forward(self):
        body = self._body()
        if self.path.startswith("/__proxy/"):
            return self._control(body)
        requests.append([self.command, self.path, len(body)])
        if refuse and self.command == refuse.get("method") and self.path.split("?")[0].endswith(refuse.get("suffix", "")):
            reply = b'{"status":"error","status_message":"unavailable","status_description":"refused by the test proxy"}'
            return self._reply(503, reply, [("Content-Type", "application/json")])
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection", "content-length", "host")}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(UPSTREAM, timeout=600)
        conn.request(self.command, self.path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        conn.close()
        kept = [(k, v) for k, v in res.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive")]
        self._reply(res.status, data, kept)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_QUERY = _forward


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
