#!/usr/bin/env bash
# Training survives worker faults (registered with ctest as train_faults).
# Usage: tests/train_faults_test.sh path/to/virga [rows] [epochs]
#
#  1. generate and ingest a Criteo-format set (default 300k rows)
#  2. a fault-free 4-worker job: reference test logloss
#  3. the same job while a random worker process gets SIGKILL every 2 s
#  4. the same job with a function lifetime of 1.5 s (every worker is stopped and replaced)
# Each faulty job must finish every epoch ("state": "done"), process every partition of
# every epoch, and reach a test logloss within 1% of the fault-free run.
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga [rows]}
ROWS=${2:-300000}
EPOCHS=${3:-12}  # long enough (>= 3 s here) for several kills and several 1.5 s lifetimes
TMP=$(mktemp -d /tmp/virga-faults-test-XXXXXX)
JOB_PID=""
cleanup() {
  [ -n "$JOB_PID" ] && kill -KILL "$JOB_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "train_faults_test: FAIL: $*"; tail -n 20 "$TMP"/*.log 2>/dev/null; exit 1; }
PY=/usr/bin/python3

"$VIRGA" datagen criteo --rows "$ROWS" --seed 7 --out "$TMP/data.tsv" > "$TMP/gen.log" 2>&1 || fail "datagen"
"$VIRGA" ingest --format criteo --input "$TMP/data.tsv" --store "file://$TMP/store" --dataset d \
  --rows-per-partition 8192 > "$TMP/ingest.log" 2>&1 || fail "ingest"

COMMON=(train --store "file://$TMP/store" --dataset d --model lr --workers 4 --epochs "$EPOCHS" --quiet)

"$VIRGA" "${COMMON[@]}" --json-out "$TMP/clean.json" > "$TMP/clean.log" 2>&1 || fail "fault-free job"

# Kill a random worker (a child process of the job) every 2 seconds.
"$VIRGA" "${COMMON[@]}" --json-out "$TMP/kill.json" > "$TMP/kill.log" 2>&1 &
JOB_PID=$!
KILLS=0
while kill -0 "$JOB_PID" 2>/dev/null; do
  sleep 1
  victim=$(pgrep -P "$JOB_PID" | shuf -n 1)
  if [ -n "$victim" ]; then kill -KILL "$victim" 2>/dev/null && KILLS=$((KILLS + 1)); fi
done
wait "$JOB_PID" || fail "job with killed workers exited non-zero"
JOB_PID=""
echo "train_faults_test: killed $KILLS workers"
[ "$KILLS" -ge 2 ] || fail "the job ended before two workers could be killed; use more rows or epochs"

"$VIRGA" "${COMMON[@]}" --function-timeout 1.5 --json-out "$TMP/lifetime.json" > "$TMP/lifetime.log" 2>&1 \
  || fail "job with 1.5 s function lifetime"

$PY - "$TMP/clean.json" "$TMP/kill.json" "$TMP/lifetime.json" "$KILLS" <<'PYEOF' || fail "checks"
import json, sys
clean, kill, life = (json.load(open(p)) for p in sys.argv[1:4])
kills = int(sys.argv[4])
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond
for name, r in (("fault-free", clean), ("killed", kill), ("lifetime 1.5 s", life)):
    check(r["state"] == "done", f"{name}: state {r['state']}")
    want = r["partitions"]
    check(all(p == want for p in r["partitions_processed_per_epoch"]) and
          len(r["partitions_processed_per_epoch"]) == r["epochs_requested"],
          f"{name}: partitions per epoch {r['partitions_processed_per_epoch']} (of {want})")
    check(all(i == r["items_per_epoch"] for i in r["items_processed_per_epoch"]),
          f"{name}: items per epoch {r['items_processed_per_epoch']} (of {r['items_per_epoch']})")
    print(f"     {name}: logloss {r['test_logloss']:.5f}, {r['train_seconds']:.1f} s, "
          f"{r['workers_launched']} launched, {r['workers_killed']} killed by the job, "
          f"{r['workers_timed_out']} timed out, {r['workers_failed']} failed, "
          f"{r['items_reprocessed']} items reprocessed")
base = clean["test_logloss"]
for name, r in (("killed", kill), ("lifetime 1.5 s", life)):
    rel = abs(r["test_logloss"] - base) / base
    check(rel <= 0.01, f"{name}: logloss {r['test_logloss']:.5f} vs {base:.5f} ({rel*100:.2f}% apart)")
check(kill["workers_failed"] + kill["workers_killed"] >= 1 or kills == 0,
      f"killed run: {kill['workers_failed']} failures recorded for {kills} kills")
check(life["train_seconds"] > 1.5 and life["workers_launched"] > 4,
      f"lifetime run: {life['workers_launched']} workers launched in {life['train_seconds']:.1f} s "
      "(each replaced at its 1.5 s lifetime)")
sys.exit(0 if ok else 1)
PYEOF
echo "train_faults_test: PASS"
