# shellcheck shell=bash
# `start`, part 1: the credentials of a throw-away cluster. Sourced by
# ../real-apiserver.sh. Everything lands in DIR/pki, secrets with mode 0600.

# rustls/webpki only trusts a chain whose root is a real CA certificate
# (basicConstraints CA:TRUE, keyCertSign) and whose leaf is NOT a CA, is v3, and
# names the host in subjectAltName (the CN is ignored). The server URL uses
# 127.0.0.1, hence the IP SAN; localhost is there for humans with curl.
write_openssl_config() {
  cat >"$1" <<'CNF'
[req]
distinguished_name = dn
prompt = no

[dn]
CN = scalehub-test-ca

[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
}

# Generates the CA, the serving certificate, the service-account key pair
# (v1.20 refuses to start without --service-account-signing-key-file) and the
# static admin token into $1 (DIR/pki).
write_pki() {
  local pki="$1"
  (
    umask 077
    mkdir -p "${pki}"
    cd "${pki}" || exit
    write_openssl_config openssl.cnf
    # P-256 keys: fast to generate, accepted by Go's TLS stack and by rustls.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -config openssl.cnf -extensions v3_ca \
      -days 3650 -set_serial "0x$(openssl rand -hex 16)" -out ca.crt
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
    openssl req -new -key server.key -subj /CN=kube-apiserver -out server.csr
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
      -extfile openssl.cnf -extensions v3_server \
      -days 365 -set_serial "0x$(openssl rand -hex 16)" -out server.crt 2>/dev/null
    rm -f server.csr
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
    # Static token file: token,user,uid,"groups". system:masters bypasses RBAC.
    printf '%s,scalehub-admin,scalehub-admin,"system:masters"\n' "$(openssl rand -hex 32)" >tokens.csv
    # A curl header file, so the token never shows up in a process listing.
    printf 'Authorization: Bearer %s\n' "$(cut -d, -f1 tokens.csv)" >admin-header
    chmod 0644 ca.crt server.crt sa.pub
  )
}

# Writes $1/kubeconfig for https://127.0.0.1:$2 with the admin token.
write_kubeconfig() {
  local dir="$1" port="$2" ca_data token
  ca_data="$(base64 -w0 <"${dir}/pki/ca.crt")"
  token="$(cut -d, -f1 "${dir}/pki/tokens.csv")"
  (
    umask 077
    cat >"${dir}/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: scalehub-real
  cluster:
    server: https://127.0.0.1:${port}
    certificate-authority-data: ${ca_data}
users:
- name: scalehub-admin
  user:
    token: ${token}
contexts:
- name: scalehub-real
  context:
    cluster: scalehub-real
    user: scalehub-admin
    namespace: default
current-context: scalehub-real
YAML
  )
}
