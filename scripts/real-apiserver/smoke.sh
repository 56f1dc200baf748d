#!/usr/bin/env bash
# End-to-end check of the real-apiserver tier with curl only (kubectl is not on
# every machine): start a cluster with the controller manager in a temp dir,
# exercise the calls scalehub relies on, stop it and check nothing is left.
#   scripts/real-apiserver/smoke.sh        (run `../real-apiserver.sh build` first)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly TOOL="${HERE}/../real-apiserver.sh"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/scalehub-real-apiserver.XXXXXX")"
readonly DIR
PASSED=0
FAILED=0

cleanup() { "${TOOL}" stop "${DIR}" 2>/dev/null || true; rm -rf "${DIR}"; }
trap cleanup EXIT

check() {
  local name="$1"
  shift
  if "$@"; then
    PASSED=$((PASSED + 1)); echo "ok   ${name}"
  else
    FAILED=$((FAILED + 1)); echo "FAIL ${name}"
  fi
}

"${TOOL}" start "${DIR}" --controller-manager >"${DIR}/start.out"
LAST_LINE="$(tail -n 1 "${DIR}/start.out")"
rm -f "${DIR}/start.out"
SERVER="$(sed -n 's/^ *server: //p' "${DIR}/kubeconfig")"

# Prints the HTTP status of a request; the body goes to ${DIR}/body.
api() {
  local method="$1" path="$2" type="${3:-application/json}" data="${4:-}"
  local args=(-sS -o "${DIR}/body" -w '%{http_code}' --cacert "${DIR}/pki/ca.crt"
    -H "@${DIR}/pki/admin-header" -X "${method}" -H "Content-Type: ${type}")
  [[ -z "${data}" ]] || args+=(--data "${data}")
  curl "${args[@]}" "${SERVER}${path}"
}
body_has() { grep -q -- "$1" "${DIR}/body"; }
status_is() { [[ "$(api "${@:2}")" == "$1" ]]; }

DEPLOYMENT='{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"smoke"},
 "spec":{"replicas":2,"selector":{"matchLabels":{"app":"smoke"}},
 "template":{"metadata":{"labels":{"app":"smoke"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}'
LEASE='{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"smoke"},
 "spec":{"holderIdentity":"smoke","leaseDurationSeconds":15}}'
DEPLOYMENTS=/apis/apps/v1/namespaces/default/deployments
LEASES=/apis/coordination.k8s.io/v1/namespaces/default/leases

# Counts the smoke Deployment's pods (they stay Pending: no scheduler, no kubelet).
smoke_pods() { api GET '/api/v1/namespaces/default/pods?labelSelector=app%3Dsmoke' >/dev/null
  # The apiserver pretty-prints JSON for curl's user agent, hence the optional space.
  grep -oE '"generateName": ?"smoke-' "${DIR}/body" | wc -l; }
pods_become() {
  local want="$1" tick
  for ((tick = 0; tick < 120; tick++)); do
    [[ "$(smoke_pods)" == "${want}" ]] && return 0
    sleep 0.25
  done
  return 1
}

check "start prints KUBECONFIG last" [ "${LAST_LINE}" = "KUBECONFIG=${DIR}/kubeconfig" ]
check "version is v1.20.2" eval 'status_is 200 GET /version && body_has "\"gitVersion\": \"v1.20.2\""'
check "namespace default exists" status_is 200 GET /api/v1/namespaces/default
anonymous_refused() {
  [[ "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "${DIR}/pki/ca.crt" "${SERVER}/api/v1/namespaces")" == 403 ]]
}
check "anonymous requests are refused" anonymous_refused
check "deployment is created" status_is 201 POST "${DEPLOYMENTS}" application/json "${DEPLOYMENT}"
check "apps/v1 discovery lists deployments/scale" eval 'status_is 200 GET /apis/apps/v1 && body_has "deployments/scale"'
check "controller manager makes 2 pods" pods_become 2
check "scale subresource patch is accepted" status_is 200 PATCH "${DEPLOYMENTS}/smoke/scale" \
  application/merge-patch+json '{"spec":{"replicas":3}}'
check "controller manager follows to 3 pods" pods_become 3
check "lease is created" status_is 201 POST "${LEASES}" application/json "${LEASE}"
check "second lease create is a conflict" status_is 409 POST "${LEASES}" application/json "${LEASE}"
check "autoscaling/v2 is absent on v1.20" status_is 404 GET /apis/autoscaling/v2

PIDS="$(cat "${DIR}"/run/*.pid)"
"${TOOL}" stop "${DIR}"
alive_left() { local pid; for pid in ${PIDS}; do
  [[ "$(awk '{ print $3 }' "/proc/${pid}/stat" 2>/dev/null || echo Z)" == Z ]] || return 1; done; }
check "stop leaves no process" alive_left

echo "${PASSED} passed, ${FAILED} failed"
((FAILED == 0))
