#!/usr/bin/env bash
# Storage-channel training end to end (registered with ctest as channel_e2e).
# Usage: tests/channel_e2e_test.sh path/to/virga [rows]
#
#  1. generate and ingest a small Criteo-format set (hashed into 2^16 features)
#  2. a parameter-server job: the reference test logloss
#  3. --channel store with 3 workers: state done, every item of every epoch applied,
#     logloss within 3% of the reference
#  4. --channel redis against a redis-server started here on a free loopback port
#     (skipped with a notice when redis-server is not installed): the same checks
#  5. --channel store while one worker process is SIGKILLed mid-run: still done,
#     every item applied, the kill recorded, logloss within 3%
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga [rows]}
ROWS=${2:-40000}
TMP=$(mktemp -d /tmp/virga-channel-test-XXXXXX)
JOB_PID=""
REDIS_PID=""
cleanup() {
  [ -n "$JOB_PID" ] && kill -KILL "$JOB_PID" 2>/dev/null
  [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "channel_e2e_test: FAIL: $*"; tail -n 20 "$TMP"/*.log 2>/dev/null; exit 1; }
PY=/usr/bin/python3
export VIRGA_HOME="$TMP/home"

"$VIRGA" datagen criteo --rows "$ROWS" --seed 3 --out "$TMP/data.tsv" > "$TMP/gen.log" 2>&1 || fail "datagen"
"$VIRGA" ingest --format criteo --input "$TMP/data.tsv" --store "file://$TMP/store" --dataset d \
  --hash-bits 16 --rows-per-partition 4096 --test-fraction 0.1 > "$TMP/ingest.log" 2>&1 || fail "ingest"

COMMON=(train --store "file://$TMP/store" --dataset d --model lr --epochs 2 --quiet)

"$VIRGA" "${COMMON[@]}" --workers 2 --json-out "$TMP/ps.json" > "$TMP/ps.log" 2>&1 || fail "ps job"
"$VIRGA" "${COMMON[@]}" --workers 3 --channel store --json-out "$TMP/store.json" > "$TMP/store.log" 2>&1 \
  || fail "--channel store job"

RESULTS=("$TMP/store.json")
if command -v redis-server > /dev/null; then
  PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no > "$TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 50); do
    $PY -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && break
    sleep 0.1
  done
  "$VIRGA" "${COMMON[@]}" --workers 3 --channel redis --channel-uri "redis://127.0.0.1:$PORT" \
    --json-out "$TMP/redis.json" > "$TMP/redis-job.log" 2>&1 || fail "--channel redis job"
  RESULTS+=("$TMP/redis.json")
else
  echo "channel_e2e_test: redis-server not installed (scripts/install-deps.sh installs it): redis run skipped"
fi

# A worker SIGKILLed once the job has made some progress.
"$VIRGA" "${COMMON[@]}" --workers 3 --channel store --json-out "$TMP/kill.json" > "$TMP/kill.log" 2>&1 &
JOB_PID=$!
KILLS=0
# Polled, not a fixed sleep: on a quiet machine the whole job takes under 2 s.
# A worker is killed once workers have run for 0.3 s (some rounds are done).
seen=0
for _ in $(seq 200); do
  kill -0 "$JOB_PID" 2>/dev/null || break
  if [ -n "$(pgrep -P "$JOB_PID")" ]; then
    seen=$((seen + 1))
    if [ "$seen" -ge 6 ]; then
      victim=$(pgrep -P "$JOB_PID" | shuf -n 1)
      if [ -n "$victim" ]; then kill -KILL "$victim" 2>/dev/null && KILLS=1; fi
      break
    fi
  fi
  sleep 0.05
done
wait "$JOB_PID" || fail "job with a killed worker exited non-zero"
JOB_PID=""
[ "$KILLS" -ge 1 ] || fail "the job ended before a worker could be killed; use more rows"
RESULTS+=("$TMP/kill.json")

$PY - "$TMP/ps.json" "${RESULTS[@]}" <<'PYEOF' || fail "checks"
import json, sys
ps = json.load(open(sys.argv[1]))
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond
base = ps["test_logloss"]
print(f"     ps: logloss {base:.5f}, {ps['train_seconds']:.1f} s, iteration p50 {ps['iteration_us']['p50']:.0f} us")
for path in sys.argv[2:]:
    r = json.load(open(path))
    name = path.rsplit("/", 1)[1].replace(".json", "")
    check(r["state"] == "done", f"{name}: state {r['state']}")
    check(len(r["items_processed_per_epoch"]) == r["epochs_requested"] and
          all(i == r["items_per_epoch"] for i in r["items_processed_per_epoch"]),
          f"{name}: items per epoch {r['items_processed_per_epoch']} (of {r['items_per_epoch']})")
    check(all(p == r["partitions"] for p in r["partitions_processed_per_epoch"]),
          f"{name}: partitions per epoch {r['partitions_processed_per_epoch']} (of {r['partitions']})")
    rel = (r["test_logloss"] - base) / base
    check(rel <= 0.03, f"{name}: logloss {r['test_logloss']:.5f} vs ps {base:.5f} ({rel*100:+.2f}%)")
    it = r.get("iteration_us", {})
    check(it.get("iterations", 0) > 0, f"{name}: {it.get('iterations', 0)} iterations timed")
    print(f"     {name}: {r['train_seconds']:.1f} s, {r['updates']} rounds, {r['samples_per_second']:.0f} samples/s, "
          f"iteration p50 {it.get('p50', 0):.0f} us (data {it.get('data_wait', 0):.0f}, pull {it.get('pull', 0):.0f}, "
          f"compute {it.get('compute', 0):.0f}, push {it.get('push', 0):.0f}), "
          f"{r['workers_launched']} launched, {r['workers_killed']} killed, {r['workers_failed']} failed, "
          f"{r['items_reprocessed']} items reprocessed")
    if name == "kill":
        check(r["workers_launched"] > 3, f"kill: the killed worker was replaced ({r['workers_launched']} launched)")
sys.exit(0 if ok else 1)
PYEOF
echo "channel_e2e_test: ok"
