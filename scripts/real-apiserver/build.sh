# shellcheck shell=bash
# `build`: kube-apiserver + kube-controller-manager v1.20.2 from Debian's source
# package, built the way debian/rules does it. Sourced by ../real-apiserver.sh.

# Everything the build and `start` need. golang-go is Go 1.19 on bookworm, which
# is what Debian itself builds this source with.
readonly BUILD_PACKAGES=(
  golang-go make rsync dpkg-dev patch xz-utils
  etcd-server openssl curl ca-certificates
  golang-github-modern-go-reflect2-dev
)
# The vendored reflect2 v1.0.1 crashes at run time under Go >= 1.18 (it reads
# runtime internals that moved); Debian's packaged 1.0.2 knows the new layout.
readonly REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
readonly REFLECT2_VENDOR=vendor/github.com/modern-go/reflect2
readonly K8S_BINARIES=(kube-apiserver kube-controller-manager)

APT_UPDATED=0

# Runs a command as root, through sudo when we are not root already.
as_root() {
  if [[ ${EUID} -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# `apt-get update` at most once per run, and only when something is missing.
apt_update_once() {
  ((APT_UPDATED)) && return 0
  log "apt-get update"
  as_root apt-get update -qq >&2
  APT_UPDATED=1
}

# Installs the packages of "$@" that are not installed yet.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("${pkg}")
  done
  ((${#missing[@]})) || return 0
  apt_update_once
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Writes deb-src entries mirroring the machine's Debian `deb` entries into
# $1/sources.list and $1/sources.list.d/, so that `apt-get source` works while
# the machine's own apt configuration is left untouched. Third-party repositories
# are skipped: they rarely publish sources and a failed index aborts the update.
write_deb_src_lists() {
  local apt_dir="$1" file
  rm -rf "${apt_dir}/sources.list.d"
  mkdir -p "${apt_dir}/sources.list.d"
  : >"${apt_dir}/sources.list"
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "${file}" ]] || continue
    sed -n -E 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' "${file}" \
      | { grep -E '://[^ ]*debian' || true; } >>"${apt_dir}/sources.list"
  done
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "${file}" ]] || continue
    # deb822: one stanza per paragraph; keep enabled Debian stanzas of type deb.
    awk '
      function flush(  i) {
        if (n && enabled && is_deb && is_debian) { for (i = 1; i <= n; i++) print buf[i]; print "" }
        n = 0; enabled = 1; is_deb = 0; is_debian = 0
      }
      BEGIN { flush() }
      /^[[:space:]]*$/ { flush(); next }
      {
        line = $0
        if (line ~ /^Types:/) { if (line ~ /[[:space:]]deb([[:space:]]|$)/) is_deb = 1; line = "Types: deb-src" }
        if (line ~ /^Enabled:[[:space:]]*(no|false)/) enabled = 0
        if (line ~ /^URIs:.*:\/\/[^ ]*debian/) is_debian = 1
        buf[++n] = line
      }
      END { flush() }
    ' "${file}" >"${apt_dir}/sources.list.d/$(basename "${file}")"
  done
  grep -rqE '^(deb-src|Types: deb-src)' "${apt_dir}/sources.list" "${apt_dir}/sources.list.d" \
    || die "no Debian deb entries found in /etc/apt/sources.list*"
}

# Downloads and unpacks Debian's kubernetes source (v1.20.2) into $1, with the
# reflect2 fix applied. Skipped when a previous run completed it.
fetch_source() {
  local tree="$1" apt_dir="${K8S_CACHE}/apt" dl_dir="${K8S_CACHE}/download"
  if [[ -f "${tree}/.scalehub-source-ready" ]]; then
    log "source: cached in ${tree}"
    return 0
  fi
  write_deb_src_lists "${apt_dir}"
  mkdir -p "${apt_dir}/lists/partial" "${apt_dir}/cache/archives/partial"
  local apt_opts=(
    -o "Dir::Etc::SourceList=${apt_dir}/sources.list"
    -o "Dir::Etc::SourceParts=${apt_dir}/sources.list.d"
    -o "Dir::State::Lists=${apt_dir}/lists"
    -o "Dir::Cache=${apt_dir}/cache"
    # As root apt drops to the _apt user, which cannot write into $HOME.
    -o "APT::Sandbox::User=root"
  )
  log "apt-get update (isolated deb-src lists in ${apt_dir})"
  apt-get "${apt_opts[@]}" update -qq >&2

  rm -rf "${dl_dir}" "${tree}"
  mkdir -p "${dl_dir}"
  log "apt-get source kubernetes"
  (cd "${dl_dir}" && apt-get "${apt_opts[@]}" source --download-only kubernetes >&2)
  local dsc
  dsc="$(find "${dl_dir}" -maxdepth 1 -name 'kubernetes_*.dsc' | head -n 1)"
  [[ -n "${dsc}" ]] || die "apt-get source kubernetes left no .dsc in ${dl_dir}"
  # Debian ships 1.20.2 as "1.20.5+really1.20.2-…"; anything else is not what
  # the wire reference was observed against.
  grep -qE "^Version: .*(^|[^0-9.])${K8S_VERSION//./\\.}([^0-9]|$)" "${dsc}" \
    || die "Debian's kubernetes source is not v${K8S_VERSION}: $(grep '^Version:' "${dsc}")"

  log "unpacking $(basename "${dsc}")"
  # apt verified the files against the signed archive index already.
  dpkg-source --no-check -x "${dsc}" "${tree}" >&2
  # dpkg-source leaves a copy of the upstream tarball beside the tree.
  rm -f "${K8S_CACHE}"/kubernetes_*.orig.tar.*

  log "replacing vendored reflect2 v1.0.1 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
  [[ -d "${REFLECT2_SRC}" ]] || die "${REFLECT2_SRC} is missing"
  # Keep vendor/modules.txt as is: Go only checks it against go.mod, and the
  # import path is unchanged. Bazel BUILD files are kept; go.mod must not land
  # in vendor/.
  rsync -a --delete --exclude BUILD --exclude go.mod --exclude '*_test.go' \
    "${REFLECT2_SRC}/" "${tree}/${REFLECT2_VENDOR}/"
  touch "${tree}/.scalehub-source-ready"
  rm -rf "${dl_dir}"
}

# Builds the binaries with `make WHAT=cmd/<name>` inside the GOPATH layout that
# debian/rules sets up; the whole output goes to $2.
make_binaries() {
  local tree="$1" build_log="$2" name started
  mkdir -p "${tree}/.go/src/k8s.io" "${K8S_CACHE}/home"
  [[ -L "${tree}/.go/src/k8s.io/kubernetes" ]] || ln -s ../../.. "${tree}/.go/src/k8s.io/kubernetes"
  for name in "${K8S_BINARIES[@]}"; do
    log "make WHAT=cmd/${name} (output in ${build_log})"
    started=${SECONDS}
    # GOPROXY=off: everything is vendored, nothing may be fetched. The Go build
    # cache ends up in _output/local/go/cache (hack/lib/golang.sh sets GOCACHE).
    if ! (cd "${tree}" && env \
      PATH="/usr/lib/go/bin:${PATH}" GOPATH="${tree}/.go" \
      GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 HOME="${K8S_CACHE}/home" \
      make WHAT="cmd/${name}") >>"${build_log}" 2>&1; then
      show_tail "${build_log}" 60
      die "building ${name} failed (full log: ${build_log})"
    fi
    log "built ${name} in $((SECONDS - started)) s"
  done
}

# Copies the built binaries into BIN_DIR atomically, so a half-copied binary is
# never mistaken for a cached one.
install_binaries() {
  local tree="$1" name
  mkdir -p "${BIN_DIR}"
  for name in "${K8S_BINARIES[@]}"; do
    install -m 0755 "${tree}/_output/bin/${name}" "${BIN_DIR}/.${name}.tmp"
    mv -f "${BIN_DIR}/.${name}.tmp" "${BIN_DIR}/${name}"
  done
  "${BIN_DIR}/kube-apiserver" --version >"${BIN_DIR}/VERSION"
}

binaries_cached() {
  local name
  for name in "${K8S_BINARIES[@]}"; do
    [[ -x "${BIN_DIR}/${name}" ]] || return 1
  done
}

cmd_build() {
  if binaries_cached; then
    log "cached: ${BIN_DIR} ($(cat "${BIN_DIR}/VERSION" 2>/dev/null || echo "version unknown"))"
    ensure_packages etcd-server openssl curl
    return 0
  fi
  local started=${SECONDS} tree="${K8S_CACHE}/src" build_log="${K8S_CACHE}/build.log"
  mkdir -p "${K8S_CACHE}"
  # Two concurrent builds would fight over the same tree; the second one waits.
  exec 9>"${K8S_CACHE}/.build.lock"
  flock 9
  if binaries_cached; then
    log "built meanwhile by another run: ${BIN_DIR}"
    return 0
  fi
  ensure_packages "${BUILD_PACKAGES[@]}"
  fetch_source "${tree}"
  : >"${build_log}"
  make_binaries "${tree}" "${build_log}"
  install_binaries "${tree}"
  log "done in $((SECONDS - started)) s: ${BIN_DIR} ($(cat "${BIN_DIR}/VERSION"))"
}
