#!/usr/bin/env bash
# Runs every scalehub test on a fresh Debian machine, doing its own set-up:
#   1. installs the system packages the tests use (kubectl fallback, python3 for CPA example hooks),
#   2. builds (or reuses the cached) real kube-apiserver v1.20.2 and starts it with etcd, and
#      starts a throw-away PostgreSQL server for the store's PostgreSQL backend,
#   3. checks formatting (rustfmt.toml) and lints (clippy, warnings are errors), and the alert
#      rules with promtool,
#   4. runs the whole cargo test suite against the simulator and the real apiserver (the store
#      tests on SQLite and on PostgreSQL), then the e2e tests again with the hubs on PostgreSQL,
#   5. runs a small `scalehub bench` and checks that every due tick ran (never timings),
#   6. fuzzes the REST API against its OpenAPI document (Schemathesis, a bounded number of examples),
#   7. stops everything it started.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

need_apt=()
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Debian's headless browser and its WebDriver for the dashboard tests (tests/browser).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
# promtool, for the alert rules in deploy/prometheus.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# Debian's PostgreSQL server, for the store's PostgreSQL backend (scripts/postgres.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

log "checking formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log "checking the alert rules (promtool check rules, promtool test rules)"
promtool check rules deploy/prometheus/rules.yaml
(cd deploy/prometheus && promtool test rules rules.test.yaml)

log "building the real kube-apiserver (cached after the first time)"
scripts/real-apiserver.sh build

real_dir=$(mktemp -d "${TMPDIR:-/tmp}/scalehub-real.XXXXXX")
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/scalehub-pg.XXXXXX")
cleanup() {
  scripts/real-apiserver.sh stop "$real_dir" >/dev/null 2>&1 || true
  scripts/postgres.sh stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$real_dir" "$pg_dir"
}
trap cleanup EXIT INT TERM

log "starting etcd + kube-apiserver (+ controller-manager)"
scripts/real-apiserver.sh start "$real_dir" --controller-manager
export SCALEHUB_REAL_KUBECONFIG="$real_dir/kubeconfig"
export SCALEHUB_REAL_AUDIT_LOG="$real_dir/audit.log"

log "starting PostgreSQL on a free loopback port"
SCALEHUB_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir")
export SCALEHUB_TEST_POSTGRES_URL

log "running the test suite (simulator always, real kube-apiserver via SCALEHUB_REAL_KUBECONFIG)"
cargo test --workspace --locked "$@"

log "the e2e tests once more with every hub on PostgreSQL (simulator only)"
SCALEHUB_E2E_DATABASE=postgres env -u SCALEHUB_REAL_KUBECONFIG cargo test --locked --test e2e "$@"

log "a small scalehub bench: 500 targets for 20 s; every due tick must run"
bench_out=$(mktemp "${TMPDIR:-/tmp}/scalehub-bench.XXXXXX")
RUST_LOG=warn target/debug/scalehub bench --targets 500 --namespaces 5 --duration 20s --interval 5s >"$bench_out"
python3 scripts/check-bench.py <"$bench_out"
rm -f "$bench_out"

log "fuzzing the REST API against its OpenAPI document (Schemathesis)"
SCALEHUB_BIN=target/debug/scalehub scripts/api-fuzz.sh 25
