#!/usr/bin/env bash
# Chaos (registered with ctest as chaos): a 4-worker job whose server runs as a process of its
# own (--server-process, a checkpoint every second) while this script
#   - SIGKILLs a random worker every second,
#   - SIGKILLs the server twice,
#   - SIGSTOPs one worker (it must be found hung and replaced),
#   - makes the checkpoint directory unwritable for 2 s (checkpoints fail, are reported),
# then checks the job ended "done" by itself with every item of every epoch counted, the loss
# within 1% of a fault-free run, two server restarts, a hung worker replaced and the failed
# checkpoints in its result. Bounded: the job has 90 s, the test well under 2 minutes.
# Usage: tests/chaos_test.sh path/to/virga [rows] [epochs]
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga [rows] [epochs]}
ROWS=${2:-100000}
EPOCHS=${3:-200}  # a job of 14-25 s: every fault, and the hung worker's replacement (5 s), fits
TMP=$(mktemp -d /tmp/virga-chaos-test-XXXXXX)
JOB_PID=""
STOPPED=""
cleanup() {
  [ -n "$STOPPED" ] && kill -KILL "$STOPPED" 2>/dev/null
  [ -n "$JOB_PID" ] && kill -KILL "$JOB_PID" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "chaos_test: FAIL: $*"; tail -n 20 "$TMP"/*.log 2>/dev/null; exit 1; }
PY=/usr/bin/python3
export VIRGA_HOME="$TMP/home"

"$VIRGA" datagen criteo --rows "$ROWS" --seed 9 --out "$TMP/data.tsv" > "$TMP/gen.log" 2>&1 || fail "datagen"
"$VIRGA" ingest --format criteo --input "$TMP/data.tsv" --store "file://$TMP/store" --dataset d \
  --rows-per-partition 8192 > "$TMP/ingest.log" 2>&1 || fail "ingest"

COMMON=(train --store "file://$TMP/store" --dataset d --workers 4 --epochs "$EPOCHS" --seed 3 --quiet
        --server-process --checkpoint-interval 1 --local-worker-binary "$VIRGA" --time-limit 90)

"$VIRGA" "${COMMON[@]}" --job-id clean --json-out "$TMP/clean.json" > "$TMP/clean.log" 2>&1 \
  || fail "fault-free job"

FNS="$TMP/fns"
"$VIRGA" "${COMMON[@]}" --job-id chaos --local-work-dir "$FNS" --json-out "$TMP/chaos.json" \
  > "$TMP/chaos.log" 2>&1 &
JOB_PID=$!
server() { pgrep -f -- "--name chaos" | head -n 1; }
workers() { pgrep -f -- "$FNS/fn-" | grep -vx "${STOPPED:-none}"; }
# The faults follow the job's own events, not a clock, so they never overlap however fast or
# slow the machine: the first server kill once workers run (the setup checkpoint is committed),
# the disk fault once the restarted server is up, the second kill after the disk is back.
KILLS=0 SERVER_KILLS=0 TICK=0 PHASE=0 SINCE=0 KILLED_SERVER=""
while kill -0 "$JOB_PID" 2>/dev/null; do
  sleep 0.25
  TICK=$((TICK + 1))
  if [ $((TICK % 4)) -eq 0 ]; then  # a worker every second
    victim=$(workers | shuf -n 1)
    if [ -n "$victim" ]; then kill -KILL "$victim" 2>/dev/null && KILLS=$((KILLS + 1)); fi
  fi
  if [ -z "$STOPPED" ]; then  # one worker hangs, as early as possible
    STOPPED=$(workers | head -n 1); [ -n "$STOPPED" ] && kill -STOP "$STOPPED"
  fi
  s=$(server)
  case $PHASE in
    0)  # the server, once workers have run for a second
      if [ "$TICK" -ge 8 ] && [ -n "$s" ] && [ -n "$(workers)" ]; then
        kill -KILL "$s" && SERVER_KILLS=1 KILLED_SERVER=$s PHASE=1
      fi ;;
    1)  # its replacement serves (restored: the driver said so): the checkpoint "disk" fails (a
        # file where the job's directory is). Not as soon as its process exists: a restore
        # that cannot read its checkpoint exits, and no checkpoint would fail.
      if [ -n "$s" ] && [ "$s" != "$KILLED_SERVER" ] &&
         grep -q "restarted from its last checkpoint" "$TMP/chaos.log"; then
        mv "$TMP/store/checkpoints/chaos" "$TMP/ckpt.saved" && echo full > "$TMP/store/checkpoints/chaos"
        PHASE=2 SINCE=$TICK
      fi ;;
    2)  # 2.5 s of failing checkpoints (one a second), then the disk recovers
      if [ $((TICK - SINCE)) -ge 10 ]; then
        rm -f "$TMP/store/checkpoints/chaos" && mv "$TMP/ckpt.saved" "$TMP/store/checkpoints/chaos"
        PHASE=3 SINCE=$TICK
      fi ;;
    3)  # a good checkpoint later, the server again
      if [ $((TICK - SINCE)) -ge 6 ] && [ -n "$s" ]; then
        kill -KILL "$s" && SERVER_KILLS=2 PHASE=4
      fi ;;
  esac
done
wait "$JOB_PID" || fail "the chaos job exited non-zero"
JOB_PID=""
echo "chaos_test: killed $KILLS workers and the server $SERVER_KILLS times, stopped worker $STOPPED"
[ "$PHASE" -eq 4 ] || fail "the job ended after $((TICK / 4)) s, before every fault was injected (phase $PHASE); use more rows or epochs"

$PY - "$TMP/clean.json" "$TMP/chaos.json" "$SERVER_KILLS" <<'PYEOF' || fail "checks"
import json, sys
clean, chaos = (json.load(open(p)) for p in sys.argv[1:3])
server_kills = int(sys.argv[3])
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond
for name, r in (("fault-free", clean), ("chaos", chaos)):
    check(r["state"] == "done", f"{name}: state {r['state']}")
    check(len(r["items_processed_per_epoch"]) == r["epochs_requested"] and
          all(i == r["items_per_epoch"] for i in r["items_processed_per_epoch"]),
          f"{name}: items per epoch {r['items_processed_per_epoch']} (of {r['items_per_epoch']})")
    print(f"     {name}: logloss {r['test_logloss']:.5f}, {r['train_seconds']:.1f} s, "
          f"{r['workers_launched']} launched, {r['workers_failed']} failed, {r['workers_hung']} hung, "
          f"{r['server_restarts']} server restarts, {r['checkpoints_written']} checkpoints "
          f"({r['checkpoints_failed']} failed), {r['items_reprocessed']} items reprocessed")
base = clean["test_logloss"]
rel = abs(chaos["test_logloss"] - base) / base
check(rel <= 0.01, f"chaos: logloss {chaos['test_logloss']:.5f} vs {base:.5f} ({rel*100:.2f}% apart)")
check(chaos["server_restarts"] == server_kills == 2, f"chaos: {chaos['server_restarts']} server restarts")
check(chaos["workers_hung"] >= 1, f"chaos: {chaos['workers_hung']} hung workers replaced")
check(chaos["checkpoints_failed"] >= 1, f"chaos: {chaos['checkpoints_failed']} failed checkpoints reported")
check(chaos.get("checkpoint_error", "").startswith("IO error: "),
      f"chaos: the failure's text in the result: {chaos.get('checkpoint_error')!r}")
sys.exit(0 if ok else 1)
PYEOF
echo "chaos_test: ok"
