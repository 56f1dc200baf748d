#!/usr/bin/env python3
"""A fake hub for working on the dashboard without Rust: serves web-ui/ and a synthetic
/api/v1 in the shapes of the real API (fleet of N targets, decisions, overrides, SSE).

    python3 web-ui/dev/serve.py [--port 8099] [--targets 10000]

Writes need `Authorization: Bearer dev-token`. Nothing here is embedded in the binary.
"""
import argparse, base64, json, math, mimetypes, os, random, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import urlparse, parse_qs, unquote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = lambda: int(time.time() * 1000)
LOCK = threading.Lock()
TARGETS, DECISIONS, OVERRIDES, HISTORY, SUBSCRIBERS = {}, {}, {}, {}, []
NEXT_ID = [1]

def spec(mn, mx, mode="active"):
    return {"profile": "cpu", "minReplicas": mn, "maxReplicas": mx, "interval": "15s",
            "downscaleStabilization": "5m", "upscaleStabilization": "0s", "runMode": "per-resource",
            "mode": mode, "params": {}}

def reason(step, code, msg, frm, to, detail=None):
    r = {"step": step, "code": code, "message": msg, "from": frm, "to": to}
    if detail: r["detail"] = detail
    return r

def make_decision(t, at, cur, raw):
    s = t["spec"] if isinstance(t["spec"], dict) and "minReplicas" in t["spec"] else None
    reasons, final = [], raw
    if s:
        if raw < s["minReplicas"]:
            reasons.append(reason("clamp", "TooFewReplicas", f"raised to the minimum {s['minReplicas']}", raw, s["minReplicas"],
                                  {"kind": "bounds", "minReplicas": s["minReplicas"], "maxReplicas": s["maxReplicas"]}))
            final = s["minReplicas"]
        elif raw > s["maxReplicas"]:
            reasons.append(reason("clamp", "TooManyReplicas", f"lowered to the maximum {s['maxReplicas']}", raw, s["maxReplicas"],
                                  {"kind": "bounds", "minReplicas": s["minReplicas"], "maxReplicas": s["maxReplicas"]}))
            final = s["maxReplicas"]
    if final < cur and random.random() < 0.6:
        reasons.append(reason("stabilise", "ScaleDownStabilized",
                              f"held at {cur}: a recommendation of {cur} 2m ago is still in the 5m down-scale window",
                              final, cur, {"kind": "sample", "at": at - 120000, "replicas": cur, "windowMs": 300000, "expiresAt": at + 180000}))
        final = cur
    o = OVERRIDES.get(key(t))
    if o and o.get("replicas") is not None:
        reasons.append(reason("override", "OverridePinned", f"pinned at {o['replicas']} by {o['author']}: {o['reason']}", final, o["replicas"],
                              {"kind": "override", "setBy": o["author"], "reason": o["reason"], "until": o["until"]}))
        final = o["replicas"]
    err = None
    outcome = "scaled" if final != cur else "unchanged"
    hooks = [{"stage": "metric", "kind": "shell", "exitCode": 0, "durationMs": random.randint(3, 80), "queuedMs": 0, "timedOut": False},
             {"stage": "evaluate", "kind": "shell", "exitCode": 0, "durationMs": random.randint(2, 40), "queuedMs": 0, "timedOut": False}]
    if t["name"].startswith("search") and random.random() < 0.1:
        err = "evaluate hook exited with status 1"
        hooks[1].update(exitCode=1, stderr="Traceback (most recent call last):\n  File \"evaluate.py\", line 12\nKeyError: 'value'")
        outcome, final = "error", None
    if t["state"] == "shadow" and outcome == "scaled":
        outcome = "shadow"
    with LOCK:
        did = NEXT_ID[0]; NEXT_ID[0] += 1
    return {"id": did, "namespace": t["namespace"], "kind": t["kind"], "name": t["name"], "time": at, "runType": "scaler",
            "metrics": [{"resource": t["name"], "value": f"cpu: {raw * 300 + random.randint(0, 200)}m over {cur} ready pods"}],
            "rawEvaluation": None if err else raw, "evaluation": None if err else {"targetReplicas": raw},
            "reasons": [] if err else reasons, "finalReplicas": final, "currentReplicas": cur,
            "scaled": outcome == "scaled", "scaleResult": f"scaled from {cur} to {final}" if outcome == "scaled" else None,
            "error": err, "hooks": hooks, "outcome": outcome}

def key(t): return (t["namespace"], t["kind"], t["name"])

def add_target(ns, kind, name, state, mn=1, mx=10, error=None, history=True):
    now = NOW()
    t = {"namespace": ns, "kind": kind, "name": name, "uid": f"uid-{ns}-{name}", "state": state,
         "spec": spec(mn, mx, "shadow" if state == "shadow" else "active") if state not in ("invalid",) else
                 {"scalehub.io/enabled": "true", "scalehub.io/min-replicas": "five"},
         "error": error, "currentReplicas": mn + 1, "desiredReplicas": mn + 1, "firstSeen": now - 86400000,
         "lastSeen": now, "removedAt": None, "updatedAt": now - random.randint(0, 600000)}
    TARGETS[key(t)] = t
    DECISIONS[key(t)] = []
    if history and state not in ("invalid", "conflict"):
        cur = t["currentReplicas"]
        phase = random.random() * 6
        for i in range(120 if ns in ("shop", "batch") else 12):
            at = now - (120 - i) * 15000
            raw = max(0, round((mn + mx) / 2 + (mx - mn) / 2 * 1.2 * math.sin(phase + i / 12)))
            d = make_decision(t, at, cur, raw)
            DECISIONS[key(t)].append(d)
            if d["finalReplicas"] is not None and t["state"] != "shadow":
                cur = d["finalReplicas"]
        t["currentReplicas"] = cur
        t["desiredReplicas"] = DECISIONS[key(t)][-1]["finalReplicas"]
        if DECISIONS[key(t)][-1]["outcome"] == "error":
            t["state"] = "error"

def seed(n):
    random.seed(7)
    add_target("shop", "Deployment", "web", "active", 2, 12)
    add_target("shop", "Deployment", "checkout", "active", 1, 8)
    add_target("batch", "StatefulSet", "queue-workers", "shadow", 1, 6)
    add_target("shop", "Deployment", "search", "active", 1, 10)
    add_target("shop", "Deployment", "typo", "invalid", error='annotation scalehub.io/min-replicas="five": not a whole number')
    add_target("shop", "Deployment", "legacy-api", "conflict", error="HorizontalPodAutoscaler shop/legacy-api already scales this workload; scalehub leaves it alone")
    namespaces = ["payments", "ledger", "catalog", "ml-inference", "edge", "search-index", "notifications", "identity"]
    kinds = ["Deployment", "Deployment", "Deployment", "StatefulSet", "ReplicaSet"]
    for i in range(n):
        ns = namespaces[i % len(namespaces)]
        state = "shadow" if i % 17 == 0 else "active"
        add_target(ns, kinds[i % len(kinds)], f"svc-{i:05d}", state, 1 + i % 3, 6 + i % 20)

def decision_view(d):
    return d

def target_view(t, full=False):
    ds = DECISIONS.get(key(t), [])
    v = dict(t, lastDecision=ds[-1] if ds else None, override=active_override(t))
    if full:
        now = NOW()
        v["stabilisation"] = {"recommendations": [{"at": d["time"], "replicas": d["rawEvaluation"]} for d in ds[-20:] if d["rawEvaluation"] is not None],
                              "scaleUpEvents": [], "scaleDownEvents": [], "upscaleWindowMs": 0, "downscaleWindowMs": 300000}
        v["overrideHistory"] = HISTORY.get(key(t), [])
    return v

def active_override(t):
    o = OVERRIDES.get(key(t))
    if o and o["until"] and o["until"] <= NOW():
        o["endedAt"], o["endedBy"] = o["until"], "expired"
        del OVERRIDES[key(t)]
        return None
    return o

SORTS = {"key": lambda t: key(t), "name": lambda t: (t["name"], t["namespace"], t["kind"]),
         "state": lambda t: (t["state"],) + key(t), "updated": lambda t: (-t["updatedAt"],) + key(t)}

def list_targets(q):
    items = list(TARGETS.values())
    counts = {}
    for t in items:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    ns, st, text = q.get("namespace"), q.get("state"), (q.get("q") or "").lower()
    if ns: items = [t for t in items if t["namespace"] == ns]
    if st: items = [t for t in items if t["state"] == st]
    if text: items = [t for t in items if text in t["name"].lower() or text in t["namespace"].lower()]
    sort = q.get("sort") or "key"
    if sort not in SORTS: return 400, {"error": f"unknown sort {sort!r}", "code": 400}
    items.sort(key=SORTS[sort])
    start = int(base64.urlsafe_b64decode(q["cursor"] + "==").decode()) if q.get("cursor") else 0
    limit = min(int(q.get("limit") or 100), 1000)
    page = items[start:start + limit]
    nxt = base64.urlsafe_b64encode(str(start + limit).encode()).decode().rstrip("=") if start + limit < len(items) else None
    time.sleep(0.05)  # a little latency, like a real server
    return 200, {"items": [target_view(t) for t in page], "nextCursor": nxt, "counts": counts}

def broadcast(event, data):
    msg = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
    for q in list(SUBSCRIBERS):
        q.append(msg)

def ticker():
    while True:
        time.sleep(2)
        for k in random.sample([k for k in TARGETS if k[0] in ("shop", "batch")], 2):
            t = TARGETS[k]
            if t["state"] in ("invalid", "conflict"): continue
            cur = t["currentReplicas"]
            raw = max(0, cur + random.choice([-2, -1, 0, 0, 1, 2]))
            d = make_decision(t, NOW(), cur, raw)
            DECISIONS[k].append(d)
            if d["finalReplicas"] is not None and t["state"] != "shadow":
                t["currentReplicas"] = d["finalReplicas"]
            t["desiredReplicas"] = d["finalReplicas"]
            t["updatedAt"] = NOW()
            broadcast("decision", d)
            broadcast("target", target_view(t))

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a): pass

    def send_json(self, code, data):
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def target_from(self, parts):
        if len(parts) < 3: return None
        kind = {"deployment": "Deployment", "deployments": "Deployment", "statefulset": "StatefulSet",
                "replicaset": "ReplicaSet"}.get(parts[1].lower(), parts[1])
        return TARGETS.get((parts[0], kind, parts[2]))

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path)
        if path == "/api/v1/hub":
            counts = {}
            for t in TARGETS.values(): counts[t["state"]] = counts.get(t["state"], 0) + 1
            return self.send_json(200, {"version": "0.1.0-dev", "leader": True, "identity": "dev-fixture", "targets": counts, "startedAt": NOW() - 3600000})
        if path == "/api/v1/targets":
            return self.send_json(*list_targets(q))
        if path == "/api/v1/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            queue = []
            SUBSCRIBERS.append(queue)
            try:
                while True:
                    while queue: self.wfile.write(queue.pop(0))
                    self.wfile.write(b": keep-alive\n\n"); self.wfile.flush()
                    time.sleep(0.5)
            except (BrokenPipeError, ConnectionResetError):
                SUBSCRIBERS.remove(queue)
            return
        if path.startswith("/api/v1/targets/"):
            parts = path[len("/api/v1/targets/"):].split("/")
            t = self.target_from(parts)
            if not t: return self.send_json(404, {"error": "no such target", "code": 404})
            if len(parts) == 3: return self.send_json(200, target_view(t, True))
            if parts[3] == "decisions":
                ds = DECISIONS[key(t)]
                before = int(q.get("before") or 1 << 62)
                limit = min(int(q.get("limit") or 50), 500)
                page = [d for d in reversed(ds) if d["id"] < before][:limit]
                nxt = page[-1]["id"] if len(page) == limit else None
                return self.send_json(200, {"items": page, "nextBefore": nxt})
            return self.send_json(404, {"error": "not found", "code": 404})
        if path.startswith("/api/"):
            return self.send_json(404, {"error": "not found", "code": 404})
        file = os.path.join(ROOT, path.lstrip("/"))
        if not os.path.isfile(file) or ".." in path:
            file = os.path.join(ROOT, "index.html")
        with open(file, "rb") as f: body = f.read()
        self.send_response(200)
        ctype = mimetypes.guess_type(file)[0] or "application/octet-stream"
        self.send_header("Content-Type", "text/javascript" if file.endswith(".js") else ctype)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def write_override(self, delete):
        if self.headers.get("Authorization") != "Bearer dev-token":
            return self.send_json(401, {"error": "a valid bearer token is required", "code": 401})
        parts = unquote(urlparse(self.path).path)[len("/api/v1/targets/"):].split("/")
        t = self.target_from(parts)
        if not t or len(parts) != 4 or parts[3] != "override":
            return self.send_json(404, {"error": "no such target", "code": 404})
        now = NOW()
        if delete:
            o = OVERRIDES.pop(key(t), None)
            if o: o["endedAt"], o["endedBy"] = now, "dev"
            return self.send_json(200 if o else 404, o or {"error": "no active override", "code": 404})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not body.get("reason"): return self.send_json(422, {"error": "reason is required", "code": 422})
        dur = {"15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}.get(body.get("duration"), 3600) * 1000
        until = body.get("until")
        if isinstance(until, str):
            from datetime import datetime
            until = int(datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp() * 1000)
        o = {"id": now, "namespace": t["namespace"], "kind": "pin" if "replicas" in body else "bounds" if "minReplicas" in body else "pause",
             "replicas": body.get("replicas"), "minReplicas": body.get("minReplicas"), "maxReplicas": body.get("maxReplicas"),
             "pauseDirection": body.get("paused"), "until": until or now + dur, "reason": body["reason"], "author": "dev",
             "createdAt": now, "endedAt": None, "endedBy": None, "name": t["name"]}
        OVERRIDES[key(t)] = o
        HISTORY.setdefault(key(t), []).insert(0, o)
        broadcast("target", target_view(t))
        return self.send_json(200, o)

    def do_PUT(self): self.write_override(False)
    def do_DELETE(self): self.write_override(True)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--targets", type=int, default=10000)
    a = ap.parse_args()
    seed(a.targets)
    threading.Thread(target=ticker, daemon=True).start()
    print(f"dashboard on http://127.0.0.1:{a.port}/ ({len(TARGETS)} targets)", flush=True)
    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()
