#!/usr/bin/env bash
# The dashboard in a real browser (registered with ctest as dashboard_browser).
# Usage: tests/dashboard_browser_test.sh path/to/virga OUT_DIR
#
# Starts `virga search` with two experiments on a small generated dataset and
# `virga dashboard` over the same registry, then tests/dashboard_browser/test.mjs
# drives Debian's chromium (playwright-core from npm): the table and curves
# fill and grow, a kill from a row ends that experiment and its worker
# processes, the job page shows workers and server tables, kill-all stops the
# rest. Screenshots land in OUT_DIR. Installs chromium (scripts/install-deps.sh
# browser) and playwright-core (npm ci in OUT_DIR/..) when missing.
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga OUT_DIR}
OUT=${2:?usage: $0 path/to/virga OUT_DIR}
SRC=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=$(dirname "$OUT")/node
TMP=$(mktemp -d /tmp/virga-dash-test-XXXXXX)
SEARCH_PID="" DASH_PID=""
cleanup() {
  for p in $DASH_PID $SEARCH_PID; do kill -TERM "$p" 2>/dev/null; done
  sleep 1
  for p in $DASH_PID $SEARCH_PID; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "dashboard_browser_test: FAIL: $*"
  for f in "$TMP"/*.log; do echo "--- $f"; tail -n 15 "$f"; done
  exit 1
}
start=$(date +%s)

# Tools: chromium from Debian, playwright-core from npm (no browser download).
"$SRC/scripts/install-deps.sh" browser || fail "cannot install chromium (scripts/install-deps.sh browser)"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium missing after install-deps"
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
   ! cmp -s "$SRC/tests/dashboard_browser/package-lock.json" "$NODE_DIR/package-lock.json"; then
  mkdir -p "$NODE_DIR"
  cp "$SRC/tests/dashboard_browser/package.json" "$SRC/tests/dashboard_browser/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci playwright-core"
fi
cp "$SRC/tests/dashboard_browser/test.mjs" "$NODE_DIR/test.mjs"
rm -rf "$OUT" && mkdir -p "$OUT"

# Two experiments that would run for minutes: the test stops them itself. Small
# rates and many epochs: neither may end on its own first (done, or stopped as
# diverged when 40,000 rows overfit: learning_rate 0.2 did within 7 s).
REG="$TMP/jobs"
"$VIRGA" datagen criteo --rows 40000 --seed 3 --out "$TMP/data.tsv" > "$TMP/gen.log" 2>&1 || fail "datagen"
"$VIRGA" ingest --format criteo --input "$TMP/data.tsv" --store "file://$TMP/store" --dataset d \
  --rows-per-partition 4096 > "$TMP/ingest.log" 2>&1 || fail "ingest"
"$VIRGA" search --store "file://$TMP/store" --dataset d --grid learning_rate=0.01,0.02 --workers 2 \
  --epochs 4000 --eval-interval 0.5 --max-concurrent 2 --registry "$REG" --quiet \
  > "$TMP/search.log" 2>&1 &
SEARCH_PID=$!
"$VIRGA" dashboard --port 0 --registry "$REG" > "$TMP/dashboard.log" 2>&1 &
DASH_PID=$!
URL=""
for _ in $(seq 100); do
  URL=$(grep -o 'http://[^ ]*token=[0-9a-f]*' "$TMP/dashboard.log" | head -1)
  [ -n "$URL" ] && break
  kill -0 "$DASH_PID" 2>/dev/null || fail "virga dashboard exited"
  sleep 0.1
done
[ -n "$URL" ] || fail "virga dashboard printed no URL"
echo "dashboard_browser_test: $URL"

# Prometheus text from the same server, with the token as a header.
TOKEN=${URL##*token=}
BASE=${URL%%/?token=*}

node "$NODE_DIR/test.mjs" "$URL" "$OUT" 2>&1 | tee "$TMP/browser.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "browser checks"

# An empty POST (no body, no Content-Length, as `curl -X POST` sends) is answered at once.
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 4 -X POST -H "Authorization: Bearer $TOKEN" \
  "$BASE/api/jobs/no-such-job/kill")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$code" = 404 ] && [ "$ms" -lt 2000 ] || fail "empty POST to the kill API: $code after $ms ms"
echo "ok   empty POST to the kill API: $code in $ms ms"

metrics=$(curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/metrics") || fail "GET /metrics"
echo "$metrics" | grep -q '^virga_jobs{state="killed"} 2$' || fail "/metrics: two killed jobs expected: $(echo "$metrics" | grep '^virga_jobs')"
echo "$metrics" | grep -q '^virga_job_test_logloss{job="' || fail "/metrics: no test logloss"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/metrics")" = 401 ] || fail "/metrics without token must be 401"

wait "$SEARCH_PID"; rc=$?
SEARCH_PID=""
[ "$rc" -eq 0 ] || fail "virga search exited $rc after kill-all"
ls "$OUT"/dashboard.png "$OUT"/job.png > /dev/null || fail "screenshots missing"
echo "dashboard_browser_test: passed in $(( $(date +%s) - start )) s; screenshots in $OUT"
