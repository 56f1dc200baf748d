#!/usr/bin/env bash
# Tier C test harness: a REAL kube-apiserver v1.20.2 (plus etcd and, optionally,
# kube-controller-manager) built from Debian's `kubernetes` source package.
#
#   scripts/real-apiserver.sh build
#       Installs the build tools with apt-get, fetches the Debian source through
#       an isolated deb-src list, builds kube-apiserver and kube-controller-manager
#       and caches them in ${SCALEHUB_CACHE:-$HOME/.cache/scalehub}/kubernetes-1.20.2/bin.
#       Idempotent: returns at once when both binaries are cached.
#   scripts/real-apiserver.sh start DIR [--controller-manager]
#       Starts etcd and kube-apiserver on free loopback ports with all state in DIR
#       (a fresh cluster every time), waits until it is ready and the `default`
#       namespace exists, writes DIR/kubeconfig and prints KUBECONFIG=DIR/kubeconfig
#       as its last line. Every write of a /scale subresource is audited, with
#       its User-Agent, in DIR/audit.log (JSON lines).
#   scripts/real-apiserver.sh stop DIR
#       Stops everything `start` launched for DIR (TERM, then KILL). Idempotent.
#
# Environment:
#   SCALEHUB_CACHE              cache root (default $HOME/.cache/scalehub)
#   SCALEHUB_APISERVER_TIMEOUT  seconds to wait for readiness (default 120)
#
# The admin token never leaves DIR (mode 0600 files); nothing here prints it.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

readonly K8S_VERSION=1.20.2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
# `~` falls back to the passwd entry when HOME is unset (as in some CI shells).
USER_HOME=~
readonly CACHE_ROOT="${SCALEHUB_CACHE:-${USER_HOME}/.cache/scalehub}"
readonly K8S_CACHE="${CACHE_ROOT}/kubernetes-${K8S_VERSION}"
readonly BIN_DIR="${K8S_CACHE}/bin"

# Progress goes to stderr so that stdout stays clean for callers; the final
# KUBECONFIG= line of `start` is the one thing printed on stdout.
log() { printf '[real-apiserver] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prints the last lines of a log file under a header, for failure reports.
show_tail() {
  local file="$1" lines="${2:-40}"
  [[ -f "${file}" ]] || return 0
  log "---- last ${lines} lines of ${file} ----"
  tail -n "${lines}" "${file}" >&2 || true
  log "---- end of ${file} ----"
}

# shellcheck source=real-apiserver/build.sh
source "${HERE}/real-apiserver/build.sh"
# shellcheck source=real-apiserver/pki.sh
source "${HERE}/real-apiserver/pki.sh"
# shellcheck source=real-apiserver/run.sh
source "${HERE}/real-apiserver/run.sh"

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  local cmd="${1:-}"
  shift || true
  case "${cmd}" in
    build) [[ $# -eq 0 ]] || usage; cmd_build ;;
    start) [[ $# -ge 1 ]] || usage; cmd_start "$@" ;;
    stop) [[ $# -eq 1 ]] || usage; cmd_stop "$1" ;;
    *) usage ;;
  esac
}

main "$@"
