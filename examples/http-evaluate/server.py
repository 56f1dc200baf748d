"""A tiny HTTP hook service for scalehub (and the CPA): scales queue workers on queue length.

Endpoints (JSON in, JSON or text out; the autoscaler POSTs its payload as the body):
  POST /metric              -> the queue length of the workload in the payload, as text
  POST /evaluate            -> {"targetReplicas": ceil(queue length / per-replica capacity)}
  PUT  /queue/<ns>/<name>   -> sets the queue length of a workload (stands in for a real queue)
  GET  /queue/<ns>/<name>   -> reads it back
  GET  /healthz             -> "ok"
Per-replica capacity: the workload's scalehub.io/param.perReplica (scalehub's `params`),
else the PER_REPLICA environment variable, else 10. Bad input is a 400, which is not in
the profile's successCodes, so the hub records an error and holds the replicas.

Usage: python3 server.py [--host 0.0.0.0] [--port 8000]   (port 0 picks a free port)
It prints "listening on HOST:PORT" once it accepts connections.
"""

import argparse
import json
import math
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_PER_REPLICA = 10
MAX_BODY = 1 << 20

queues = {}
queues_lock = threading.Lock()


class BadRequest(Exception):
    """The request cannot be answered; becomes a 400."""


def workload_key(payload):
    """namespace/name of the workload a payload is about."""
    metadata = (payload.get("resource") or {}).get("metadata") or {}
    if "name" not in metadata:
        raise BadRequest("payload has no resource.metadata.name")
    return f"{metadata.get('namespace', 'default')}/{metadata['name']}"


def metric(payload):
    """The current queue length of the payload's workload (0 when never set)."""
    key = workload_key(payload)
    with queues_lock:
        return str(queues.get(key, 0))


def evaluate(payload):
    """Replicas needed to drain the queue at the per-replica capacity."""
    metrics = payload.get("metrics") or []
    if len(metrics) != 1:
        raise BadRequest(f"expected exactly one metric, got {len(metrics)}")
    try:
        length = int(metrics[0]["value"])
        per_replica = int((payload.get("params") or {}).get("perReplica")
                          or os.environ.get("PER_REPLICA", DEFAULT_PER_REPLICA))
    except (KeyError, TypeError, ValueError) as err:
        raise BadRequest(f"invalid metric or parameter: {err}") from err
    if length < 0 or per_replica <= 0:
        raise BadRequest("queue length must be >= 0 and perReplica > 0")
    return {"targetReplicas": math.ceil(length / per_replica)}


class Handler(BaseHTTPRequestHandler):
    """Routes the hook calls; every failure is a 4xx with a one-line reason."""

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BadRequest("body too large")
        return self.rfile.read(length)

    def _json_body(self):
        try:
            payload = json.loads(self._body() or b"null")
        except ValueError as err:
            raise BadRequest(f"body is not JSON: {err}") from err
        if not isinstance(payload, dict):
            raise BadRequest("body is not a JSON object")
        return payload

    def _send(self, code, text, content_type="text/plain"):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _queue_key(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "queue" or not parts[1] or not parts[2]:
            return None
        return f"{parts[1]}/{parts[2]}"

    def _handle(self, action):
        try:
            action()
        except BadRequest as err:
            self._send(400, json.dumps({"error": str(err)}), "application/json")

    def do_GET(self):
        def action():
            if self.path == "/healthz":
                return self._send(200, "ok")
            key = self._queue_key()
            if key is None:
                return self._send(404, json.dumps({"error": "not found"}), "application/json")
            with queues_lock:
                self._send(200, str(queues.get(key, 0)))
        self._handle(action)

    def do_POST(self):
        def action():
            if self.path == "/metric":
                return self._send(200, metric(self._json_body()))
            if self.path == "/evaluate":
                return self._send(200, json.dumps(evaluate(self._json_body())), "application/json")
            self._send(404, json.dumps({"error": "not found"}), "application/json")
        self._handle(action)

    def do_PUT(self):
        def action():
            key = self._queue_key()
            if key is None:
                return self._send(404, json.dumps({"error": "not found"}), "application/json")
            try:
                length = int(self._body().decode().strip())
            except ValueError as err:
                raise BadRequest(f"queue length is not an integer: {err}") from err
            if length < 0:
                raise BadRequest("queue length must be >= 0")
            with queues_lock:
                queues[key] = length
            self.send_response(204)
            self.end_headers()
        self._handle(action)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
