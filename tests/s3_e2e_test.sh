#!/usr/bin/env bash
# The s3:// store end to end, against s3rver (a real S3 implementation that
# checks SigV4 signatures) and AWS's own client (Debian awscli).
# Registered with ctest as s3_e2e. Usage: tests/s3_e2e_test.sh path/to/virga [rows]
#
#  1. raw files uploaded with `aws s3 cp` ingest from s3://bucket/raw/*.tsv
#  2. interop: `aws s3` lists and downloads the dataset virga wrote, byte for byte the
#     same partitions as the same ingest into a file:// store
#  3. training from s3:// reaches the test loss of training from file:// (within 0.5%)
#  4. bad input: wrong credentials, an unknown bucket, a missing dataset, an unreachable
#     endpoint: each a one-line error naming what and where, within the retry bound,
#     and never the secret
#  5. a store that dies mid-ingest (a proxy that stops answering) leaves no manifest:
#     the dataset does not claim to exist
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga [rows]}
ROWS=${2:-40000}
BUILD=$(cd "$(dirname "$VIRGA")" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/virga-s3-e2e-XXXXXX)
PROXY_PID=""
cleanup() {
  [ -n "$PROXY_PID" ] && kill -KILL "$PROXY_PID" 2> /dev/null
  stop_s3rver
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "s3_e2e_test: FAIL: $*"; tail -n 20 "$TMP"/*.log 2> /dev/null; exit 1; }
PY=/usr/bin/python3
export VIRGA_HOME="$TMP/home"

. "$HERE/s3/s3rver_env.sh"
start_s3rver "$BUILD" "$TMP/s3" virga-e2e || fail "could not start s3rver"
AWS=(aws --endpoint-url "$S3_ENDPOINT")
B=s3://virga-e2e

echo "== 1. raw files uploaded by awscli ingest from $B/raw/*.tsv"
"$VIRGA" datagen criteo --rows "$ROWS" --seed 5 --out "$TMP/all.tsv" > "$TMP/gen.log" 2>&1 || fail datagen
head -n $((ROWS / 2)) "$TMP/all.tsv" > "$TMP/day0.tsv"
tail -n +$((ROWS / 2 + 1)) "$TMP/all.tsv" > "$TMP/day1.tsv"
"${AWS[@]}" s3 cp "$TMP/day0.tsv" "$B/raw/day0.tsv" > "$TMP/aws.log" 2>&1 || fail "aws s3 cp"
"${AWS[@]}" s3 cp "$TMP/day1.tsv" "$B/raw/day1.tsv" >> "$TMP/aws.log" 2>&1 || fail "aws s3 cp"
INGEST=(ingest --format criteo --hash-bits 16 --rows-per-partition 2048 --test-fraction 0.1)
"$VIRGA" "${INGEST[@]}" --dataset clicks --input "$B/raw/*.tsv" --store "$B/store" > "$TMP/ingest-s3.log" 2>&1 \
  || fail "ingest from s3:// into s3://"
"$VIRGA" "${INGEST[@]}" --dataset clicks --input "$TMP/day0.tsv" "$TMP/day1.tsv" --store "file://$TMP/store" \
  > "$TMP/ingest-file.log" 2>&1 || fail "ingest into file://"
grep -q "$ROWS rows" "$TMP/ingest-s3.log" || fail "ingest from s3 did not read $ROWS rows: $(cat "$TMP/ingest-s3.log")"

echo "== 2. awscli lists and downloads what virga wrote: the same bytes as the file:// ingest"
"${AWS[@]}" s3 ls --recursive "$B/store/datasets/clicks/" > "$TMP/ls.txt" 2> "$TMP/ls.log" || fail "aws s3 ls"
grep -q "datasets/clicks/manifest.json" "$TMP/ls.txt" || fail "no manifest listed: $(cat "$TMP/ls.txt")"
"${AWS[@]}" s3 cp --recursive "$B/store/datasets/clicks" "$TMP/down" > "$TMP/down.log" 2>&1 || fail "aws s3 cp --recursive"
parts=0
for f in "$TMP"/store/datasets/clicks/{train,test}/part-*; do
  rel=${f#"$TMP/store/datasets/clicks/"}
  cmp -s "$f" "$TMP/down/$rel" || fail "partition $rel differs between file:// and s3:// (via awscli)"
  parts=$((parts + 1))
done
[ "$parts" -gt 2 ] || fail "only $parts partitions compared"
[ "$(find "$TMP/down" -name 'part-*' | wc -l)" -eq "$parts" ] || fail "awscli downloaded a different number of partitions"
echo "   $parts partitions identical"

echo "== 3. training from s3:// reaches the test loss of training from file://"
# One worker: the same items in the same order from either store, so the losses match; two
# asynchronous workers end up to ~0.7% apart by timing alone.
TRAIN=(train --dataset clicks --model lr --workers 1 --epochs 2 --seed 7 --quiet)
"$VIRGA" "${TRAIN[@]}" --store "$B/store" --json-out "$TMP/s3.json" > "$TMP/train-s3.log" 2>&1 \
  || fail "train from s3://"
"$VIRGA" "${TRAIN[@]}" --store "file://$TMP/store" --json-out "$TMP/file.json" > "$TMP/train-file.log" 2>&1 \
  || fail "train from file://"
$PY - "$TMP/s3.json" "$TMP/file.json" << 'EOF' || fail "losses differ"
import json, sys
s3, f = (json.load(open(p)) for p in sys.argv[1:3])
a, b = s3["test_logloss"], f["test_logloss"]
print("   test logloss: s3:// %.5f, file:// %.5f (%.2f%% apart)" % (a, b, 100 * abs(a - b) / b))
assert s3["state"] == "done" and f["state"] == "done", (s3["state"], f["state"])
assert abs(a - b) <= 0.005 * b
EOF

echo "== 4. bad input: one-line errors naming what and where"
expect_error() {  # expect_error NAME PATTERN TIMEOUT_S -- command...
  local name=$1 pattern=$2 limit=$3
  shift 4
  local t0=$SECONDS
  timeout $((limit + 10)) "$@" > "$TMP/err.out" 2> "$TMP/err.log"
  local rc=$?
  local took=$((SECONDS - t0))
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$name: exit $rc (expected a failure, not success or a hang)"
  [ "$took" -le "$limit" ] || fail "$name: took ${took}s (bound ${limit}s)"
  grep -q -- "$pattern" "$TMP/err.log" || fail "$name: error does not match '$pattern': $(cat "$TMP/err.log")"
  grep -q "S3RVER\|Zq9wrong" "$TMP/err.log" && fail "$name: a secret is in the message"
  [ "$(wc -l < "$TMP/err.log")" -le 2 ] || fail "$name: more than one line: $(cat "$TMP/err.log")"
  echo "   $name (${took}s): $(head -c 300 "$TMP/err.log")"
}
expect_error "wrong credentials" "403.*SignatureDoesNotMatch" 20 -- \
  env AWS_SECRET_ACCESS_KEY=Zq9wrong "$VIRGA" inspect --store "$B/store" --dataset clicks
expect_error "unknown bucket" '"no-such-bucket" does not exist' 20 -- \
  "$VIRGA" inspect --store s3://no-such-bucket/store --dataset clicks
expect_error "missing dataset" "datasets/nope/manifest.json" 20 -- \
  "$VIRGA" inspect --store "$B/store" --dataset nope
expect_error "unreachable endpoint" "127.0.0.1:1" 20 -- \
  env AWS_ENDPOINT_URL_S3=http://127.0.0.1:1 VIRGA_S3_MAX_ATTEMPTS=3 "$VIRGA" inspect --store "$B/store" --dataset clicks
expect_error "missing input object" "raw/none-such" 20 -- \
  "$VIRGA" ingest --format criteo --dataset x --input "$B/raw/none-such*.tsv" --store "$B/store"

echo "== 5. a store that dies mid-ingest leaves no manifest"
"$PY" "$HERE/s3/fault_proxy.py" --upstream "127.0.0.1:$S3_PORT" --die-after 6 > "$TMP/proxy.out" 2>&1 &
PROXY_PID=$!
for _ in $(seq 100); do grep -q PORT "$TMP/proxy.out" && break; sleep 0.1; done
PP=$(sed -n 's/^PORT //p' "$TMP/proxy.out")
[ -n "$PP" ] || fail "fault proxy did not start"
AWS_ENDPOINT_URL_S3="http://127.0.0.1:$PP" VIRGA_S3_MAX_ATTEMPTS=2 timeout 60 "$VIRGA" "${INGEST[@]}" \
  --dataset cut --input "$TMP/all.tsv" --store "$B/store" > "$TMP/cut.log" 2>&1 \
  && fail "an ingest through a store that died succeeded"
grep -q "127.0.0.1:$PP.*gave up" "$TMP/cut.log" || fail "the failed ingest does not name the lost endpoint: $(cat "$TMP/cut.log")"
"${AWS[@]}" s3 ls --recursive "$B/store/datasets/cut/" > "$TMP/cut-ls.txt" 2>&1
grep -q manifest.json "$TMP/cut-ls.txt" && fail "a manifest exists for the cut ingest"
"$VIRGA" inspect --store "$B/store" --dataset cut > /dev/null 2>&1 && fail "the cut dataset opens"
echo "   ingest failed with: $(tail -n 1 "$TMP/cut.log" | head -c 200)"
echo "s3_e2e_test: OK"
