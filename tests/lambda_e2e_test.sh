#!/usr/bin/env bash
# Training on Lambda end to end, offline: the real package (`virga deploy lambda --zip`),
# created with `virga deploy lambda --create` on the local Lambda service
# (tests/lambda/lambda_service.py, which behaves like AWS: SigV4, Event invocations,
# the Runtime API served to the unpacked bootstrap), data in s3:// on s3rver.
# Registered with ctest as lambda_e2e. Usage: tests/lambda_e2e_test.sh path/to/virga [rows]
#
#  1. package and create the function; a package without bootstrap is refused by name
#  2. generate, ingest into s3://, train with --backend local: the reference loss
#  3. train with --backend lambda: done, every item of every epoch, loss within 1% of local;
#     export the model to s3:// and predict from it
#  4. again under faults: 30% of Invoke calls throttled (429), 20% duplicate deliveries,
#     30% of invocations killed at random, a 3 s function timeout (every deadline reached):
#     done, every item counted, duplicates counted and harmless, loss within 1%
#  3b. every stage on Lambda: the raw file (uploaded with `aws s3 cp`) ingested by functions
#     in byte ranges (the same rows as in process), normalized, scored (the same metrics as
#     in process), trained on; and ingested again under the faults of step 4
#  5. a function that never starts: declared lost within the start timeout, the job says so
#  6. bad input: a missing function, wrong credentials, an unreachable endpoint, a storage
#     channel job or a local input file on lambda: one line each
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga [rows]}
ROWS=${2:-300000}
BUILD=$(cd "$(dirname "$VIRGA")" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/virga-lambda-e2e-XXXXXX)
PY=/usr/bin/python3
SVC_PID=""
cleanup() {
  [ -n "$SVC_PID" ] && { kill -TERM "$SVC_PID" 2> /dev/null; wait "$SVC_PID" 2> /dev/null; }
  stop_s3rver
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "lambda_e2e_test: FAIL: $*"; tail -n 30 "$TMP"/*.log 2> /dev/null; exit 1; }
export VIRGA_HOME="$TMP/home"

. "$HERE/s3/s3rver_env.sh"
start_s3rver "$BUILD" "$TMP/s3" lambda-e2e || fail "could not start s3rver"
# One key pair for both services (s3rver's), so the functions' own credentials reach S3.
"$PY" "$HERE/lambda/lambda_service.py" --state-dir "$TMP/lambda" --access-key S3RVER \
  --secret-key S3RVER --retry-delays 0.5,1 > "$TMP/svc.out" 2> "$TMP/svc.log" &
SVC_PID=$!
for _ in $(seq 100); do grep -q '^PORT' "$TMP/svc.out" && break; sleep 0.1; done
LPORT=$(sed -n 's/^PORT //p' "$TMP/svc.out")
[ -n "$LPORT" ] || fail "the Lambda service did not start"
export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$LPORT"
ADMIN="http://127.0.0.1:$LPORT/__admin"
faults() { curl -sf -X POST -H 'Content-Type: application/json' -d "$1" "$ADMIN/faults" > /dev/null || fail "faults $1"; }
B=s3://lambda-e2e

echo "== 1. the package and the function"
"$VIRGA" deploy lambda --zip "$TMP/fn.zip" > "$TMP/zip.log" 2>&1 || fail "deploy --zip"
"$VIRGA" deploy lambda --create --function virga-worker --role arn:aws:iam::123456789012:role/virga \
  --memory 1769 --timeout 60 --zip "$TMP/fn.zip" --env "AWS_ENDPOINT_URL_S3=$S3_ENDPOINT" \
  > "$TMP/create.log" 2>&1 || fail "deploy --create"
"$VIRGA" deploy lambda --create --function virga-short --role arn:aws:iam::123456789012:role/virga \
  --memory 1769 --timeout 3 --zip "$TMP/fn.zip" --env "AWS_ENDPOINT_URL_S3=$S3_ENDPOINT" \
  > "$TMP/create3.log" 2>&1 || fail "deploy --create (3 s timeout)"
"$VIRGA" deploy lambda --create --function virga-stuck --role arn:aws:iam::123456789012:role/virga \
  --timeout 60 --zip "$TMP/fn.zip" > "$TMP/create2.log" 2>&1 || fail "deploy --create (stuck)"
(cd "$TMP" && mkdir nob && echo x > nob/readme && cd nob && $PY -c "import zipfile; z=zipfile.ZipFile('../nob.zip','w'); z.write('readme')")
"$VIRGA" deploy lambda --create --function virga-nob --role arn:aws:iam::123456789012:role/virga \
  --zip "$TMP/nob.zip" > "$TMP/nob.log" 2>&1 && fail "a package without bootstrap was accepted"
grep -q "bootstrap" "$TMP/nob.log" || fail "the refusal does not name bootstrap: $(cat "$TMP/nob.log")"

echo "== 2. data in S3, the local backend's reference"
"$VIRGA" datagen criteo --rows "$ROWS" --seed 9 --out "$TMP/d.tsv" > "$TMP/gen.log" 2>&1 || fail datagen
"$VIRGA" ingest --format criteo --input "$TMP/d.tsv" --store "$B/store" --dataset d --hash-bits 16 \
  --rows-per-partition 2048 --test-fraction 0.1 > "$TMP/ingest.log" 2>&1 || fail ingest
TRAIN=(train --store "$B/store" --dataset d --model lr --workers 2 --epochs 3 --seed 5 --quiet)
"$VIRGA" "${TRAIN[@]}" --json-out "$TMP/local.json" > "$TMP/local.log" 2>&1 || fail "local training"

check() {  # check NAME RESULT.json [LOCAL.json]: done, every item of every epoch, loss within 1% of local
  $PY - "$1" "$2" "${3:-$TMP/local.json}" << 'EOF' || fail "$1: $(tail -n 3 "$TMP/$1.log" 2> /dev/null)"
import json, sys
name, path, ref = sys.argv[1:4]
r, l = json.load(open(path)), json.load(open(ref))
a, b = r["test_logloss"], l["test_logloss"]
print("   %s: state %s, logloss %.5f vs local %.5f (%.2f%%), items/epoch %s of %d, functions %d "
      "(failed %d, killed %d), duplicates %d, reprocessed %d, %.1f s"
      % (name, r["state"], a, b, 100 * abs(a - b) / b, r["items_processed_per_epoch"],
         r["items_per_epoch"], r["workers_launched"], r["workers_failed"], r["workers_killed"],
         r.get("duplicate_deliveries", 0), r["items_reprocessed"], r["train_seconds"]))
assert r["state"] == "done", r["state"]
assert r["epochs"] == r["epochs_requested"]
assert all(n == r["items_per_epoch"] for n in r["items_processed_per_epoch"])
assert abs(a - b) <= 0.01 * b
EOF
}

echo "== 3. training on Lambda"
LAMBDA=(--backend lambda --lambda-function virga-worker)
"$VIRGA" "${TRAIN[@]}" "${LAMBDA[@]}" --json-out "$TMP/lambda.json" \
  --model-out "$B/store/models/lambda.model" > "$TMP/lambda.log" 2>&1 || fail "lambda training"
check lambda "$TMP/lambda.json"
"$VIRGA" predict --model-file "$B/store/models/lambda.model" --store "$B/store" --dataset d \
  --split test --out "$TMP/pred.tsv" > "$TMP/predict.log" 2>&1 || fail "predict from the model in S3"
[ "$(wc -l < "$TMP/pred.tsv")" -gt 100 ] || fail "no predictions"

echo "== 3b. every stage on Lambda: ingest in byte ranges, normalize, predict"
aws --endpoint-url "$S3_ENDPOINT" s3 cp --quiet "$TMP/d.tsv" "$B/raw/d.tsv" || fail "aws s3 cp"
rows_of() { sed -n 's/^ingested [^:]*: \([0-9]*\) rows.*/\1/p' "$1"; }
STAGE=(--store "$B/store" --backend lambda --lambda-function virga-worker)
"$VIRGA" ingest --format criteo --input "$B/raw/d.tsv" --dataset dfn --hash-bits 16 \
  --rows-per-partition 2048 --part-mb 4 "${STAGE[@]}" > "$TMP/ingest_fn.log" 2>&1 \
  || fail "ingest on lambda: $(tail -n 3 "$TMP/ingest_fn.log")"
[ "$(rows_of "$TMP/ingest_fn.log")" = "$(rows_of "$TMP/ingest.log")" ] \
  || fail "ingest on lambda: $(rows_of "$TMP/ingest_fn.log") rows, in process $(rows_of "$TMP/ingest.log")"
grep -q "tasks" "$TMP/ingest_fn.log" || fail "ingest on lambda: no stage line"
echo "   $(grep tasks "$TMP/ingest_fn.log" | tail -n 1)"
"$VIRGA" normalize --dataset dfn --out dfn_std --method standard "${STAGE[@]}" \
  > "$TMP/norm_fn.log" 2>&1 || fail "normalize on lambda: $(tail -n 3 "$TMP/norm_fn.log")"
grep -q "^normalized dfn -> dfn_std" "$TMP/norm_fn.log" || fail "normalize on lambda: $(cat "$TMP/norm_fn.log")"
"$VIRGA" predict --model-file "$B/store/models/lambda.model" --dataset d --split test \
  "${STAGE[@]}" > "$TMP/predict_fn.log" 2>&1 || fail "predict on lambda: $(tail -n 3 "$TMP/predict_fn.log")"
[ "$(grep '^logloss' "$TMP/predict_fn.log")" = "$(grep '^logloss' "$TMP/predict.log")" ] \
  || fail "predict on lambda: '$(grep '^logloss' "$TMP/predict_fn.log")' vs in process '$(grep '^logloss' "$TMP/predict.log")'"
echo "   predict on lambda: $(grep '^logloss' "$TMP/predict_fn.log") (the same as in process)"
"$VIRGA" train --store "$B/store" --dataset dfn_std --model lr --workers 2 --epochs 1 --seed 5 \
  "${LAMBDA[@]}" --json-out "$TMP/dfn.json" > "$TMP/dfn.log" 2>&1 \
  || fail "training on the dataset made on lambda: $(tail -n 3 "$TMP/dfn.log")"

echo "== 4. under faults: throttling, duplicate deliveries, kills, deadlines"
# A job of several function lifetimes (3 s each, virga-short), whatever the machine's speed:
# every slot reaches its deadline at least once and is replaced, besides the injected kills.
TRAIN12=("${TRAIN[@]/#3/12}")  # the same options, --epochs 12
[[ " ${TRAIN12[*]} " == *" --epochs 12 "* ]] || fail "TRAIN12: ${TRAIN12[*]}"
"$VIRGA" "${TRAIN12[@]}" --json-out "$TMP/local12.json" > "$TMP/local12.log" 2>&1 \
  || fail "local training, 12 epochs"
faults '{"throttle_rate": 0.3, "duplicate_rate": 0.2, "kill_rate": 0.3, "kill_window_ms": 1500, "seed": 7}'
"$VIRGA" "${TRAIN12[@]}" --backend lambda --lambda-function virga-short \
  --lambda-heartbeat-timeout 3 --json-out "$TMP/faults.json" > "$TMP/faults.log" 2>&1 \
  || fail "training under faults"
check faults "$TMP/faults.json" "$TMP/local12.json"
"$VIRGA" ingest --format criteo --input "$B/raw/d.tsv" --dataset dfault --hash-bits 16 \
  --rows-per-partition 2048 --part-mb 2 --store "$B/store" --backend lambda \
  --lambda-function virga-short --lambda-heartbeat-timeout 3 > "$TMP/ingest_faults.log" 2>&1 \
  || fail "ingest on lambda under faults: $(tail -n 3 "$TMP/ingest_faults.log")"
[ "$(rows_of "$TMP/ingest_faults.log")" = "$(rows_of "$TMP/ingest.log")" ] \
  || fail "ingest under faults: $(rows_of "$TMP/ingest_faults.log") rows, in process $(rows_of "$TMP/ingest.log")"
echo "   ingest under faults: $(grep tasks "$TMP/ingest_faults.log" | tail -n 1)"
curl -sf "$ADMIN/stats" > "$TMP/stats.json" || fail "stats"
$PY - "$TMP/stats.json" "$TMP/faults.json" << 'EOF' || fail "the faults did not happen"
import json, sys
s, r = (json.load(open(p)) for p in sys.argv[1:3])
print("   service: %s" % json.dumps(s)[:400])
assert r["workers_launched"] > 3, "no function was replaced"
assert s["throttled"] > 0 and s["duplicates_delivered"] > 0 and s["kills"] > 0, "faults not injected"
assert r["duplicate_deliveries"] > 0, "no duplicate delivery was counted by the job"
EOF
faults '{"throttle_rate": 0, "duplicate_rate": 0, "kill_rate": 0}'

echo "== 5. a function that never starts"
faults '{"never_start": ["virga-stuck"]}'
timeout 60 "$VIRGA" "${TRAIN[@]}" --backend lambda --lambda-function virga-stuck \
  --lambda-start-timeout 3 --time-limit 12 --json-out "$TMP/stuck.json" > "$TMP/stuck.log" 2>&1
[ -f "$TMP/stuck.json" ] || fail "no result for the stuck job"
$PY - "$TMP/stuck.json" << 'EOF' || fail "the stuck functions were not declared lost"
import json, sys
r = json.load(open(sys.argv[1]))
reasons = {f["reason"] for f in r["functions"]}
print("   stuck job: state %s, functions %d, reasons %s" % (r["state"], r["workers_launched"], sorted(reasons)[:3]))
assert r["state"] != "done"
assert any("did not start" in x for x in reasons), reasons
EOF

echo "== 6. bad input (a local store, so that only Lambda's answers are in play)"
"$VIRGA" ingest --format criteo --input "$TMP/d.tsv" --store "file://$TMP/store" --dataset d \
  --hash-bits 16 > "$TMP/ingest2.log" 2>&1 || fail "local ingest"
TRAIN=(train --store "file://$TMP/store" --dataset d --model lr --workers 1 --epochs 1 --quiet)
expect_error() {  # NAME PATTERN -- command...
  local name=$1 pattern=$2
  shift 3
  timeout 60 "$@" > "$TMP/err.out" 2> "$TMP/err.log" && fail "$name: succeeded"
  grep -q -- "$pattern" "$TMP/err.log" || fail "$name: error does not match '$pattern': $(cat "$TMP/err.log")"
  grep -q "S3RVER" "$TMP/err.log" && fail "$name: a secret in the message"
  echo "   $name: $(head -c 250 "$TMP/err.log")"
}
expect_error "missing function" "ResourceNotFoundException" -- \
  "$VIRGA" "${TRAIN[@]}" --backend lambda --lambda-function nope
expect_error "wrong credentials" "InvalidSignatureException" -- \
  env AWS_SECRET_ACCESS_KEY=wrong "$VIRGA" "${TRAIN[@]}" "${LAMBDA[@]}"
expect_error "storage channel on lambda" "runs on the local backend only" -- \
  "$VIRGA" "${TRAIN[@]}" --channel store "${LAMBDA[@]}"
expect_error "local input for functions on lambda" "is on this machine" -- \
  "$VIRGA" ingest --format criteo --input "$TMP/d.tsv" --store "$B/store" --dataset dx "${LAMBDA[@]}"
expect_error "unreachable endpoint" "127.0.0.1:1" -- \
  env AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:1 "$VIRGA" "${TRAIN[@]}" "${LAMBDA[@]}"
echo "lambda_e2e_test: OK"
