# shellcheck shell=bash
# `start` and `stop`: etcd, kube-apiserver and optionally kube-controller-manager
# as background processes with all state, logs and pid files in DIR.
# Sourced by ../real-apiserver.sh.

readonly READY_TIMEOUT="${SCALEHUB_APISERVER_TIMEOUT:-120}"
# Seconds between TERM and KILL in `stop`.
readonly STOP_GRACE=5
# Processes in start order; `stop` goes through them backwards.
readonly PROCESSES=(etcd kube-apiserver kube-controller-manager)

# Ports are drawn at random from [20000, 32767]: below Linux's default
# ephemeral range (32768-60999), so outgoing connections do not grab them
# between the pick and the bind, and random so parallel clusters rarely collide.
# A port that is taken anyway makes the process fail to bind; the caller then
# retries with fresh ports.
port_in_use() {
  local hex tables=() table
  hex="$(printf '%04X' "$1")"
  # tcp6 is missing when IPv6 is disabled, and mawk stops at a missing file.
  for table in /proc/net/tcp /proc/net/tcp6; do
    [[ -r "${table}" ]] && tables+=("${table}")
  done
  awk -v port="${hex}" 'FNR > 1 { split($2, a, ":"); if (a[2] == port) found = 1 }
    END { exit !found }' "${tables[@]}"
}

# Prints a free loopback port that is none of "$@".
pick_port() {
  local port attempt taken
  for ((attempt = 0; attempt < 200; attempt++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    for taken in "$@"; do [[ "${port}" == "${taken}" ]] && continue 2; done
    port_in_use "${port}" || { echo "${port}"; return 0; }
  done
  die "no free port found in [20000, 32767]"
}

pid_file() { echo "$1/run/$2.pid"; }
log_file() { echo "$1/logs/$2.log"; }

# True when the pid in DIR's pid file for $2 is a live (non-zombie) process
# running that binary, so a recycled pid is never signalled.
process_alive() {
  local file pid state exe
  file="$(pid_file "$1" "$2")"
  [[ -f "${file}" ]] || return 1
  pid="$(cat "${file}")"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
  state="$(awk '{ print $3 }' "/proc/${pid}/stat" 2>/dev/null)" || return 1
  [[ -n "${state}" && "${state}" != Z ]] || return 1
  exe="$(readlink "/proc/${pid}/exe" 2>/dev/null)" || return 1
  [[ "$(basename "${exe}")" == "$2" ]]
}

# Launches "${@:3}" in the background as process $2 of DIR $1. Its output goes
# to its log file and stdin is /dev/null, so it never holds a caller's pipe open.
launch() {
  local dir="$1" name="$2"
  shift 2
  "$@" >"$(log_file "${dir}" "${name}")" 2>&1 </dev/null &
  echo "$!" >"$(pid_file "${dir}" "${name}")"
  # Not our job any more: `stop` may run in another shell, and bash should not
  # report a KILLed server as a failed job.
  disown "$!"
}

# Polls "${@:4}" every 0.25 s until it succeeds; fails after $3 seconds or as
# soon as process $2 of DIR $1 has died.
wait_for() {
  local dir="$1" name="$2" timeout="$3"
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    process_alive "${dir}" "${name}" || return 2
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

# Reports why process $2 failed to come up ($3 is wait_for's status) and
# exits, unless it merely lost a port race: then it returns and the caller
# retries with fresh ports.
startup_failed() {
  local dir="$1" name="$2" status="$3" log
  log="$(log_file "${dir}" "${name}")"
  if ((status == 2)) && grep -q 'address already in use' "${log}"; then
    log "${name}: port taken meanwhile, retrying with other ports"
    return 0
  fi
  show_tail "${log}"
  if ((status == 2)); then die "${name} exited during startup (log: ${log})"; fi
  die "${name} not ready after ${READY_TIMEOUT} s (log: ${log})"
}

start_etcd() {
  local dir="$1" client peer status
  client="$(pick_port)"
  peer="$(pick_port "${client}")"
  rm -rf "${dir}/etcd-data"
  log "starting etcd on 127.0.0.1:${client} (peer ${peer})"
  launch "${dir}" etcd etcd --name scalehub --data-dir "${dir}/etcd-data" \
    --listen-client-urls "http://127.0.0.1:${client}" \
    --advertise-client-urls "http://127.0.0.1:${client}" \
    --listen-peer-urls "http://127.0.0.1:${peer}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${peer}" \
    --initial-cluster "scalehub=http://127.0.0.1:${peer}" \
    --initial-cluster-state new --logger zap --log-outputs stderr
  status=0
  wait_for "${dir}" etcd "${READY_TIMEOUT}" \
    curl -fsS "http://127.0.0.1:${client}/health" || status=$?
  if ((status)); then startup_failed "${dir}" etcd "${status}" && return 75; fi
  ETCD_PORT="${client}"
}

# The audit policy: one Metadata event per write of a /scale subresource (who wrote it is
# its userAgent), nothing else. The sharding test reads DIR/audit.log to check that each
# target is scaled by one hub only, as it reads the simulator's own accounting there.
write_audit_policy() {
  cat >"$1" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [patch, update]
    resources:
      - group: apps
        resources: [deployments/scale, statefulsets/scale, replicasets/scale]
  - level: None
POLICY
}

start_apiserver() {
  local dir="$1" port status
  port="$(pick_port)"
  write_audit_policy "${dir}/audit-policy.yaml"
  log "starting kube-apiserver on 127.0.0.1:${port}"
  # --insecure-port=0: v1.20 still opens an unauthenticated :8080 by default.
  # --endpoint-reconciler-type=none: the `kubernetes` Endpoints object may not
  # hold a loopback address, so the reconciler would only log errors.
  # --etcd-compaction-interval=10s: compact etcd often (default 5 min) so a watch from an
  # old resourceVersion gets 410 Expired quickly, as the conformance suite checks.
  launch "${dir}" kube-apiserver "${BIN_DIR}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --etcd-compaction-interval 10s \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --secure-port "${port}" --insecure-port 0 \
    --tls-cert-file "${dir}/pki/server.crt" --tls-private-key-file "${dir}/pki/server.key" \
    --client-ca-file "${dir}/pki/ca.crt" \
    --token-auth-file "${dir}/pki/tokens.csv" \
    --authorization-mode RBAC \
    --disable-admission-plugins ServiceAccount \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "${dir}/pki/sa.pub" \
    --service-account-signing-key-file "${dir}/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --endpoint-reconciler-type none \
    --audit-policy-file "${dir}/audit-policy.yaml" \
    --audit-log-path "${dir}/audit.log" --audit-log-format json --audit-log-mode blocking \
    --profiling=false
  status=0
  wait_for "${dir}" kube-apiserver "${READY_TIMEOUT}" \
    api_get "${dir}" "${port}" /readyz || status=$?
  if ((status)); then startup_failed "${dir}" kube-apiserver "${status}" && return 75; fi
  APISERVER_PORT="${port}"
}

# GET $3 from the apiserver on port $2 as the admin; the token is read from a
# header file so it never appears in a process listing.
api_get() {
  curl -fsS --cacert "$1/pki/ca.crt" -H "@$1/pki/admin-header" "https://127.0.0.1:$2$3"
}

# True once the controller-manager log $1 shows all our controllers started.
controllers_started() {
  local controller
  for controller in deployment replicaset statefulset garbagecollector; do
    grep -q "Started \"${controller}\"" "$1" || return 1
  done
}

start_controller_manager() {
  local dir="$1" status=0
  log "starting kube-controller-manager (deployment, replicaset, statefulset, garbagecollector)"
  # No serving ports at all (--port=0 --secure-port=0), so nothing to collide.
  launch "${dir}" kube-controller-manager "${BIN_DIR}/kube-controller-manager" \
    --kubeconfig "${dir}/kubeconfig" \
    --controllers deployment,replicaset,statefulset,garbagecollector \
    --leader-elect=false --use-service-account-credentials=false \
    --secure-port 0 --port 0
  # It has no health endpoint without ports; its log says when each
  # controller runs.
  wait_for "${dir}" kube-controller-manager "${READY_TIMEOUT}" \
    controllers_started "$(log_file "${dir}" kube-controller-manager)" || status=$?
  if ((status)); then
    startup_failed "${dir}" kube-controller-manager "${status}"
    die "kube-controller-manager could not bind a port it should not open"
  fi
}

# Runs start step "$1" up to three times while it reports a lost port race
# (status 75); any other failure has exited already through die.
with_port_retries() {
  local attempt status
  for attempt in 1 2 3; do
    status=0
    "$@" || status=$?
    ((status == 75)) || return "${status}"
  done
  die "$1: ports kept being taken"
}

cmd_start() {
  local dir="$1" controller_manager=0 name
  shift
  while (($#)); do
    case "$1" in
      --controller-manager) controller_manager=1 ;;
      *) usage ;;
    esac
    shift
  done
  binaries_cached || die "binaries missing in ${BIN_DIR}: run '$0 build' first"
  ensure_packages etcd-server openssl curl
  mkdir -p "${dir}"
  dir="$(cd "${dir}" && pwd -P)"
  for name in "${PROCESSES[@]}"; do
    process_alive "${dir}" "${name}" && die "${name} already runs for ${dir}: run '$0 stop ${dir}' first"
  done
  # A fresh cluster each time; only our own files in DIR are replaced.
  rm -rf "${dir}/pki" "${dir}/run" "${dir}/logs" "${dir}/etcd-data" "${dir}/kubeconfig" "${dir}/audit.log"
  mkdir -p "${dir}/run" "${dir}/logs"
  # Whatever fails from here on, nothing started may be left behind.
  trap 'stop_all "'"${dir}"'"' EXIT

  log "writing CA, serving certificate, service-account keys and admin token to ${dir}/pki"
  write_pki "${dir}/pki"
  with_port_retries start_etcd "${dir}"
  with_port_retries start_apiserver "${dir}"
  write_kubeconfig "${dir}" "${APISERVER_PORT}"
  log "waiting for namespace default"
  wait_for "${dir}" kube-apiserver "${READY_TIMEOUT}" \
    api_get "${dir}" "${APISERVER_PORT}" /api/v1/namespaces/default \
    || { show_tail "$(log_file "${dir}" kube-apiserver)"; die "namespace default never appeared"; }
  if ((controller_manager)); then start_controller_manager "${dir}"; fi
  printf 'ETCD_PORT=%s\nAPISERVER_PORT=%s\n' "${ETCD_PORT}" "${APISERVER_PORT}" >"${dir}/run/ports"
  trap - EXIT
  log "ready: https://127.0.0.1:${APISERVER_PORT} (logs in ${dir}/logs)"
  echo "KUBECONFIG=${dir}/kubeconfig"
}

# Stops process $2 of DIR $1: TERM, then KILL after STOP_GRACE seconds.
stop_process() {
  local dir="$1" name="$2" file pid tick
  file="$(pid_file "${dir}" "${name}")"
  [[ -f "${file}" ]] || return 0
  if process_alive "${dir}" "${name}"; then
    pid="$(cat "${file}")"
    log "stopping ${name} (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true
    for ((tick = 0; tick < STOP_GRACE * 10; tick++)); do
      process_alive "${dir}" "${name}" || break
      sleep 0.1
    done
    if process_alive "${dir}" "${name}"; then
      log "${name} ignored TERM, sending KILL"
      kill -KILL "${pid}" 2>/dev/null || true
      for ((tick = 0; tick < 50; tick++)); do
        process_alive "${dir}" "${name}" || break
        sleep 0.1
      done
    fi
  fi
  rm -f "${file}"
}

stop_all() {
  local dir="$1" i
  for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do
    stop_process "${dir}" "${PROCESSES[i]}"
  done
}

cmd_stop() {
  local dir="$1"
  [[ -d "${dir}" ]] || { log "nothing to stop: ${dir} does not exist"; return 0; }
  dir="$(cd "${dir}" && pwd -P)"
  stop_all "${dir}"
  log "stopped everything for ${dir}"
}
