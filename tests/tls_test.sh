#!/usr/bin/env bash
# TLS between functions and servers (registered with ctest as tls), with certificates made
# here by the openssl CLI (a CA, a server certificate for IP 127.0.0.1 signed by it, and an
# unrelated CA):
#   - `virga train --tls-cert --tls-key` trains over TLS on the embedded server (the driver and
#     every worker verify it against the self-signed certificate) and on a server process;
#   - `virga server --tls-cert/--tls-key` + `virga train --servers --tls-ca CA` trains, and
#     `virga ping --tls-ca CA` answers;
#   - a client with the wrong CA fails clearly, naming the endpoint and the reason; so does a
#     certificate for another address, and a plain-TCP client of a TLS server;
#   - no private key and no key path reaches a worker's payload or argv.
# Usage: tests/tls_test.sh path/to/virga
set -uo pipefail

VIRGA=$(realpath "${1:?usage: $0 path/to/virga}")
TMP=$(mktemp -d /tmp/virga-tls-test-XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "tls_test: FAIL: $*"; tail -n 15 "$TMP"/*.log 2>/dev/null; exit 1; }
export VIRGA_HOME="$TMP/home"
cd "$TMP" || exit 1

# Certificates: ca (CA), server (127.0.0.1, signed by ca), other-ca, wrong-ip (127.0.0.2).
ossl() { openssl "$@" >>"$TMP/openssl.log" 2>&1 || fail "openssl $*"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=virga-test-ca -keyout ca.key -out ca.pem
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other-ca.pem
for name in server:127.0.0.1 wrong-ip:127.0.0.2; do
  n=${name%%:*} ip=${name#*:}
  printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\n' "$ip" >"$n.ext"
  ossl req -newkey rsa:2048 -nodes -subj "/CN=$ip" -keyout "$n.key" -out "$n.csr"
  ossl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$n.ext" -out "$n.pem"
done
# A self-signed server certificate (its own CA) for the embedded server.
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout self.key -out self.pem

"$VIRGA" datagen criteo --rows 20000 --seed 5 --out data.tsv >gen.log 2>&1 || fail "datagen"
"$VIRGA" ingest --format criteo --input data.tsv --store "file://$TMP/store" --dataset d \
  --rows-per-partition 4096 >ingest.log 2>&1 || fail "ingest"
TRAIN=(train --store "file://$TMP/store" --dataset d --workers 2 --epochs 5 --seed 3 --quiet
       --local-worker-binary "$VIRGA" --local-work-dir "$TMP/fns")

# 1. The embedded server over TLS (self-signed), in process and as a server process.
# Its functions' payloads and command lines are copied while it runs (they go at the end).
"$VIRGA" "${TRAIN[@]}" --job-id tls-embedded --tls-cert self.pem --tls-key self.key \
  --json-out embedded.json >embedded.log 2>&1 &
JOB=$!
mkdir -p seen
while kill -0 "$JOB" 2>/dev/null; do
  cp "$TMP"/fns/*.json seen/ 2>/dev/null
  for p in $(pgrep -f -- "$TMP/fns/fn-"); do tr '\0' ' ' <"/proc/$p/cmdline" >>seen/argv 2>/dev/null; done
  sleep 0.02
done
wait "$JOB" || fail "training over TLS (embedded server)"
"$VIRGA" "${TRAIN[@]}" --job-id tls-process --server-process --tls-cert self.pem --tls-key self.key \
  --json-out process.json >process.log 2>&1 || fail "training over TLS (server process)"
for f in embedded process; do
  /usr/bin/python3 - "$f.json" <<'PYEOF' || fail "$f: result"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["state"] == "done" and r["epochs"] == 5, r["state"]
assert all(n == r["items_per_epoch"] for n in r["items_processed_per_epoch"])
assert r["workers_failed"] == 0, r["workers_failed"]
print(f"tls_test: {sys.argv[1]}: done over TLS, logloss {r['test_logloss']:.4f}")
PYEOF
done
# The functions got the certificate, never the key or its path (payloads, argv).
grep -q "BEGIN CERTIFICATE" seen/*.json 2>/dev/null || fail "no CA certificate in the workers' payloads"
[ -s seen/argv ] || fail "no worker command line seen"
if grep -l -e "PRIVATE KEY" -e "self.key" -e "BEGIN" seen/argv seen/*.json | grep -v '\.json$' ||
   grep -l -e "PRIVATE KEY" -e "self.key" seen/*.json; then
  fail "a private key (or its path, or a certificate in argv) reached a worker"
fi

# 2. A TLS server, clients verifying it against the CA.
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "test-token" >token && chmod 600 token
"$VIRGA" server --port "$PORT" --token-file token --tls-cert server.pem --tls-key server.key \
  >server.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  "$VIRGA" ping --servers "127.0.0.1:$PORT" --token-file token --tls-ca ca.pem >ping.log 2>&1 && break
  sleep 0.1
done
grep -q ": ok" ping.log || fail "ping over TLS"
"$VIRGA" "${TRAIN[@]}" --job-id tls-remote --servers "127.0.0.1:$PORT" --token-file token \
  --tls-ca ca.pem --json-out remote.json >remote.log 2>&1 || fail "training against a TLS server"

# 3. Clear failures. Wrong CA: names the endpoint and the verification error.
"$VIRGA" ping --servers "127.0.0.1:$PORT" --token-file token --tls-ca other-ca.pem >wrongca.log 2>&1 \
  && fail "a client trusting another CA connected"
grep -q "127.0.0.1:$PORT: TLS: the server's certificate failed verification" wrongca.log \
  || fail "the wrong-CA error does not name the endpoint and reason: $(cat wrongca.log)"
echo "tls_test: wrong CA: $(head -c 300 wrongca.log)"
# Training with the wrong CA fails at once, saying why.
timeout 60 "$VIRGA" "${TRAIN[@]}" --job-id tls-wrongca --servers "127.0.0.1:$PORT" --token-file token \
  --tls-ca other-ca.pem >train-wrongca.log 2>&1 && fail "training trusting another CA succeeded"
grep -q "failed verification" train-wrongca.log || fail "train with the wrong CA: $(cat train-wrongca.log)"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""

# A certificate for another address (127.0.0.2) served on 127.0.0.1: refused.
"$VIRGA" server --port "$PORT" --token-file token --tls-cert wrong-ip.pem --tls-key wrong-ip.key \
  >server2.log 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  "$VIRGA" ping --servers "127.0.0.1:$PORT" --token-file token --tls-ca ca.pem >wrongip.log 2>&1
  grep -q "verification" wrongip.log && break
  sleep 0.1
done
grep -q "127.0.0.1:$PORT: TLS: the server's certificate failed verification" wrongip.log \
  || fail "a certificate for 127.0.0.2 was accepted for 127.0.0.1: $(cat wrongip.log)"
# A plain-TCP client of a TLS server: no connection, and no hang.
timeout 30 "$VIRGA" ping --servers "127.0.0.1:$PORT" --token-file token >plain.log 2>&1 \
  && fail "a plain-TCP client talked to a TLS server"
echo "tls_test: plain client: $(head -c 200 plain.log)"
echo "tls_test: ok"
