#!/usr/bin/env bash
# Crash and restore of a parameter server (registered with ctest as ps_crash_restore).
# Usage: tests/ps_crash_test.sh path/to/virga [file|s3]
#   s3: checkpoints go to s3://virga-crash/store on s3rver (tests/s3/s3rver_env.sh), are
#   listed with awscli, and the restarted server restores from there
#  (registered as ps_crash_restore and ps_crash_restore_s3)
#
#  1. `virga server --checkpoint file://TMP/store --checkpoint-every 1 --name crash`
#  2. `virga bench ps-train-probe` trains table "t" for ~3 s; the server gets SIGKILL mid-training
#  3. the server restarts with --restore; `virga ping` must show table "t" with version > 0
#  4. the probe (--max-prior = pushes it had sent) checks every restored row sits at a push count
#     in [restored version, pushes sent] (the state of a committed checkpoint), trains on, and
#     checks each row then sits exactly that many pushes further (weights and optimizer state)
# Exits 0 only if every check passes; prints what failed otherwise.
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga [file|s3]}
KIND=${2:-file}
TMP=$(mktemp -d /tmp/virga-crash-test-XXXXXX)
SERVER_PID=""
PROBE_PID=""

cleanup() {
  for pid in $PROBE_PID $SERVER_PID; do
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  [ "$KIND" = s3 ] && stop_s3rver
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "ps_crash_test: interrupted"; exit 2' INT TERM

fail() {
  echo "ps_crash_test: FAIL: $*"
  for f in "$TMP"/*.log "$TMP"/*.out; do
    [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
  done
  exit 1
}

# Runs a command with a time limit (seconds).
bounded() { local t=$1; shift; timeout --kill-after=2 "$t" "$@"; }

STORE="file://$TMP/store"
if [ "$KIND" = s3 ]; then
  . "$(dirname "$0")/s3/s3rver_env.sh"
  start_s3rver "$(dirname "$VIRGA")" "$TMP/s3" virga-crash || fail "could not start s3rver"
  STORE=s3://virga-crash/store
fi
# The committed checkpoints (those with a MANIFEST.json), oldest first.
committed() {
  if [ "$KIND" = s3 ]; then
    aws --endpoint-url "$S3_ENDPOINT" s3 ls --recursive "$STORE/checkpoints/crash/" 2>/dev/null |
      sed -n 's|.*checkpoints/crash/\(ckpt-[^/]*\)/MANIFEST.json$|\1|p' | sort
  else
    ls -d "$TMP"/store/checkpoints/crash/ckpt-*/ 2>/dev/null | while read -r d; do
      [ -f "$d/MANIFEST.json" ] && basename "$d"; done | sort
  fi
}

head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/token"
chmod 600 "$TMP/token"

# Starts the server (extra args appended), sets SERVER_PID and PORT.
start_server() {
  local log=$1; shift
  "$VIRGA" server --port 0 --token-file "$TMP/token" --checkpoint "$STORE" \
    --checkpoint-every 1 --name crash "$@" > "$log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start ($log)"
    sleep 0.05
  done
  fail "server did not report its port within 5 s ($log)"
}

# --- 1-2: train, then SIGKILL the server mid-training ---
start_server "$TMP/server1.log"
echo "ps_crash_test: server on port $PORT (pid $SERVER_PID)"
"$VIRGA" bench ps-train-probe --servers "127.0.0.1:$PORT" --token-file "$TMP/token" --seconds 30 \
  > "$TMP/probe1.out" 2>&1 &
PROBE_PID=$!
sleep 3.2
kill -0 "$PROBE_PID" 2>/dev/null || fail "the probe ended before the crash"
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=""
for _ in $(seq 1 100); do kill -0 "$PROBE_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$PROBE_PID" 2>/dev/null && fail "the probe did not notice the dead server within 5 s"
wait "$PROBE_PID"
PROBE_RC=$?
PROBE_PID=""
[ "$PROBE_RC" -eq 3 ] || fail "probe 1 should fail with 3 (server gone), got $PROBE_RC"
grep -q '^before version=0 ' "$TMP/probe1.out" || fail "probe 1 did not start from an empty table"
SENT=$(sed -n 's/^pushes_sent=\([0-9]*\)$/\1/p' "$TMP/probe1.out" | tail -n 1)
[ -n "$SENT" ] && [ "$SENT" -gt 0 ] || fail "probe 1 reported no pushes sent"
echo "ps_crash_test: killed the server after $SENT pushes sent"

LATEST=$(committed | tail -n 1)
[ -n "$LATEST" ] || fail "no committed checkpoint (MANIFEST.json) under $STORE/checkpoints/crash"

# --- 3: restart with --restore; the restored table must exist with version > 0 ---
start_server "$TMP/server2.log" --restore
grep -q "restored checkpoint checkpoints/crash/$LATEST" "$TMP/server2.log" ||
  fail "the server did not restore the newest committed checkpoint $LATEST"
bounded 10 "$VIRGA" ping --servers "127.0.0.1:$PORT" --token-file "$TMP/token" > "$TMP/ping1.out" 2>&1 ||
  fail "virga ping failed after restore"
VERSION=$(awk '$1 == "table" && $2 == "t" { for (i = 3; i < NF; i++) if ($i == "version") print $(i + 1) }' \
  "$TMP/ping1.out")
[ -n "$VERSION" ] || fail "table t missing after restore"
[ "$VERSION" -gt 0 ] || fail "table t restored with version $VERSION"
[ "$VERSION" -le "$SENT" ] || fail "restored version $VERSION > pushes sent $SENT"
echo "ps_crash_test: restored $LATEST, table t at version $VERSION (<= $SENT sent)"

# --- 4: the restored rows are a checkpoint's state; training continues from it ---
bounded 15 "$VIRGA" bench ps-train-probe --servers "127.0.0.1:$PORT" --token-file "$TMP/token" \
  --seconds 2 --max-prior "$SENT" > "$TMP/probe2.out" 2>&1
PROBE_RC=$?
sed 's/^/  probe: /' "$TMP/probe2.out" | grep -v progress
[ "$PROBE_RC" -eq 0 ] || fail "probe 2 (restored state / continued training) exited $PROBE_RC"
grep -q "^before version=$VERSION " "$TMP/probe2.out" || fail "probe 2 saw another version than ping"
bounded 10 "$VIRGA" ping --servers "127.0.0.1:$PORT" --token-file "$TMP/token" > "$TMP/ping2.out" 2>&1 ||
  fail "virga ping failed after continued training"
VERSION2=$(awk '$1 == "table" && $2 == "t" { for (i = 3; i < NF; i++) if ($i == "version") print $(i + 1) }' \
  "$TMP/ping2.out")
[ -n "$VERSION2" ] && [ "$VERSION2" -gt "$VERSION" ] || fail "version did not advance: $VERSION -> $VERSION2"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=""
echo "ps_crash_test: PASS (pushes sent $SENT, restored version $VERSION, after training $VERSION2)"
