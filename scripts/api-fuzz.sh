#!/usr/bin/env bash
# Fuzzes the hub's HTTP API against its own OpenAPI document with Schemathesis (v4 CLI).
#   1. installs schemathesis with pip if it is missing,
#   2. starts `scalehub demo` (simulator + hub + dashboard) on a free loopback port,
#   3. waits for /healthz and for the demo's targets, reads the demo's write token,
#   4. runs `schemathesis run` on /api/v1/openapi.json (every operation but the SSE stream)
#      with the token as a Bearer header, a fixed seed and bounded examples per operation,
#   5. stops the demo and exits with schemathesis's status (0: no failure found).
# Usage: scripts/api-fuzz.sh [max-examples]      (default 25: about a minute, for CI;
#        100 for a long run, about 3.5 minutes on 2 cores)
# Environment:
#   SCALEHUB_BIN         the binary to run (default target/debug/scalehub; build it first)
#   API_FUZZ_SEED        Hypothesis seed (default 1; empty for a random one, printed at the end)
#   API_FUZZ_WORKERS     concurrent schemathesis workers (default 2)
#   API_FUZZ_CHECKS      checks to run (default: all but positive_data_acceptance, see below)
#   API_FUZZ_HOOK_RATE   request rate for the two hook-running operations (…/metrics and
#                        …/evaluation), under the hub's own budget of 5 a second so that they
#                        test the hook path and not the limiter (default 2/s; "off" to hammer)
#   API_FUZZ_REPORT_DIR  if set, JUnit and NDJSON reports go there (the token is filtered out)
#   API_FUZZ_TIMEOUT     hard limit in seconds for the schemathesis run (default 900)
# Checks: `all` minus positive_data_acceptance, which wants a 2xx for every schema-valid input:
# the document's plain strings cannot say what the hub rightly refuses (a duration such as `2h`,
# `namespace/kind/name` lists, an override that must narrow the target's own annotation bounds,
# a 422 for a target whose annotations are invalid), so its failures are noise, not bugs.
# Everything else (5xx, response schemas, status codes, content types, response headers,
# invalid input accepted, missing auth accepted, 405 + Allow) is something the hub controls;
# only the documented 500/503 of …/metrics and …/evaluation are not counted as server errors.
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples=${1:-25}
bin=${SCALEHUB_BIN:-target/debug/scalehub}
seed=${API_FUZZ_SEED-1}
workers=${API_FUZZ_WORKERS:-2}
hook_rate=${API_FUZZ_HOOK_RATE:-2/s}
run_timeout=${API_FUZZ_TIMEOUT:-900}

log() { printf '==> %s\n' "$*"; }

if ! [[ $max_examples =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [max-examples]" >&2
  exit 2
fi
if [ ! -x "$bin" ]; then
  echo "$bin not found: build it first (cargo build) or set SCALEHUB_BIN" >&2
  exit 2
fi
if ! command -v schemathesis >/dev/null 2>&1; then
  log "installing schemathesis"
  # Pinned: the check names and the config file format change between versions.
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5" >/dev/null
fi
command -v schemathesis >/dev/null 2>&1 || { echo "schemathesis is not on PATH after pip install" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/scalehub-fuzz.XXXXXX")
demo_pid=
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    # SIGINT is the demo's Ctrl-C: it stops the simulator and removes its token file.
    kill -INT "$demo_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  if [ -f "$work/demo.log" ] && grep -q 'panicked' "$work/demo.log"; then
    echo "the hub panicked during the run:" >&2
    grep -A3 'panicked' "$work/demo.log" | head -40 >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "starting $bin demo on 127.0.0.1:$port"
RUST_LOG=warn "$bin" demo --listen "127.0.0.1:$port" >"$work/demo.log" 2>&1 &
demo_pid=$!

# The demo says where it listens (the next free port if ours was taken meanwhile) and where
# its token file is; wait for both lines, then for /healthz.
base= token_file=
for _ in $(seq 120); do
  kill -0 "$demo_pid" 2>/dev/null || { echo "the demo exited:" >&2; tail -20 "$work/demo.log" >&2; exit 1; }
  base=$(sed -n 's|^scalehub demo: dashboard and API on \(http://[^ ]*\).*$|\1|p' "$work/demo.log" | head -1)
  token_file=$(sed -n 's|^overrides need the token in \(.*\) (the part after.*$|\1|p' "$work/demo.log" | head -1)
  if [ -n "$base" ] && [ -n "$token_file" ] && curl -fsS -o /dev/null --max-time 2 "$base/healthz" 2>/dev/null; then
    break
  fi
  base=
  sleep 0.5
done
[ -n "$base" ] || { echo "the demo did not answer /healthz within 60 s:" >&2; tail -20 "$work/demo.log" >&2; exit 1; }
[ -r "$token_file" ] || { echo "the demo's token file is not readable" >&2; exit 1; }
SCALEHUB_API_TOKEN=$(sed -n 's/^demo://p' "$token_file" | head -1)
[ -n "$SCALEHUB_API_TOKEN" ] || { echo "no demo: token in the demo's token file" >&2; exit 1; }
export SCALEHUB_API_TOKEN
log "hub at $base; waiting for the demo's targets"
sleep 5
for _ in $(seq 30); do
  curl -fsS --max-time 5 "$base/api/v1/targets?includeRemoved=true&limit=1000" >"$work/targets.json" 2>/dev/null &&
    grep -q '"name"' "$work/targets.json" && break
  sleep 1
done
grep -q '"name"' "$work/targets.json" || { echo "the demo has no targets after 35 s" >&2; exit 1; }

# The configuration names the token only as ${SCALEHUB_API_TOKEN}: schemathesis reads it from
# the environment, so it is on no command line and in no file. Path parameters (and the
# `targets` list of /replicas) are drawn half of the time from the targets the demo has, so
# the fuzzer also gets past the 404s and 400s to the handlers' real work.
python3 - "$work/targets.json" "$hook_rate" >"$work/schemathesis.toml" <<'PY'
import json, sys

items = json.load(open(sys.argv[1]))["items"]
hook_rate = sys.argv[2]
def values(key):
    return sorted({t[key] for t in items}) or ["default"]
def toml_list(xs):
    return "[" + ", ".join(json.dumps(x) for x in xs) + "]"

print('headers = { Authorization = "Bearer ${SCALEHUB_API_TOKEN}" }')
print("[cache]\nenabled = false")  # no .schemathesis/ left in the work tree
keys = sorted(f"{t['namespace']}/{t['kind']}/{t['name']}" for t in items)
print("[dictionaries.target-lists]\nvalues = " + toml_list(keys + [",".join(keys)]))
print("[dictionaries.namespaces]\nvalues = " + toml_list(values("namespace")))
print("[dictionaries.kinds]\nvalues = " + toml_list(values("kind")))
print("[dictionaries.names]\nvalues = " + toml_list(values("name")))
print("[parameters]")
for p, d in (("namespace", "namespaces"), ("kind", "kinds"), ("name", "names")):
    print(f'"path.{p}" = {{ dictionary = "{d}", probability = 0.5 }}')
print('"query.targets" = { dictionary = "target-lists", probability = 0.5 }')
# The two hook-running operations (the CPA's routes): their documented 500 (a hook or the
# metrics source failed, e.g. while the demo's pods have no metrics yet; the CPA answers 500)
# and 503 (standby) are the target's state, not a hub error. One rate limiter per operation: two at the default stay under the budget.
print("[[operations]]")
print('include-path-regex = "^/api/v1/targets/.*/(metrics|evaluation)$"')
print('checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", 500, 503]')
if hook_rate != "off":
    print(f"rate-limit = {json.dumps(hook_rate)}")
PY

checks_args=(--checks all --exclude-checks positive_data_acceptance)
if [ -n "${API_FUZZ_CHECKS:-}" ]; then checks_args=(--checks "$API_FUZZ_CHECKS"); fi
seed_args=()
if [ -n "$seed" ]; then seed_args=(--seed "$seed"); fi
report_args=()
if [ -n "${API_FUZZ_REPORT_DIR:-}" ]; then
  mkdir -p "$API_FUZZ_REPORT_DIR"
  report_args=(--report junit,ndjson --report-dir "$API_FUZZ_REPORT_DIR")
fi

log "schemathesis $(schemathesis --version | sed 's/.*version //'): $max_examples examples per operation"
status=0
timeout --kill-after=10 "$run_timeout" \
  schemathesis --config-file "$work/schemathesis.toml" run "$base/api/v1/openapi.json" \
  --url "$base" \
  --exclude-path /api/v1/stream \
  "${checks_args[@]}" \
  --max-examples "$max_examples" \
  "${seed_args[@]}" \
  --workers "$workers" \
  --request-timeout 10 \
  --generation-database none \
  --output-sanitize true \
  --no-color \
  "${report_args[@]}" || status=$?
exit "$status"
