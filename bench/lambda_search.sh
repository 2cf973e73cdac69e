#!/usr/bin/env bash
# A search of 8 experiments on the lambda backend (the local Lambda service, data in s3:// on
# s3rver) beside the same search on the local backend: the final test loss of each experiment,
# side by side. Usage: bench/lambda_search.sh path/to/virga [rows]
set -euo pipefail
VIRGA=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROWS=${2:-100000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(dirname "$VIRGA")
TMP=$(mktemp -d /tmp/virga-lambda-search-XXXXXX)
PY=/usr/bin/python3
. "$HERE/tests/s3/s3rver_env.sh"
SVC=""
cleanup() { [ -n "$SVC" ] && kill "$SVC" 2> /dev/null; stop_s3rver; rm -rf "$TMP"; }
trap cleanup EXIT
export VIRGA_HOME="$TMP/home"
start_s3rver "$BUILD" "$TMP/s3" search
"$PY" "$HERE/tests/lambda/lambda_service.py" --state-dir "$TMP/lambda" --access-key S3RVER \
  --secret-key S3RVER > "$TMP/svc.out" 2> "$TMP/svc.log" &
SVC=$!
for _ in $(seq 100); do grep -q '^PORT' "$TMP/svc.out" && break; sleep 0.1; done
export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$(sed -n 's/^PORT //p' "$TMP/svc.out")"
"$VIRGA" deploy lambda --create --function virga-worker --role arn:aws:iam::123456789012:role/v \
  --zip "$TMP/fn.zip" --env "AWS_ENDPOINT_URL_S3=$S3_ENDPOINT" > /dev/null
"$VIRGA" datagen criteo --rows "$ROWS" --seed 4 --out "$TMP/d.tsv" > /dev/null
"$VIRGA" ingest --format criteo --input "$TMP/d.tsv" --store s3://search/store --dataset d \
  --hash-bits 18 > /dev/null
SEARCH=(search --store s3://search/store --dataset d --grid learning_rate=0.05,0.1,0.2,0.4
  --grid l2=0,0.001 --workers 2 --epochs 2 --max-concurrent 2 --seed 3 --quiet)
"$VIRGA" "${SEARCH[@]}" --json-out "$TMP/local.json" > /dev/null
"$VIRGA" "${SEARCH[@]}" --backend lambda --lambda-function virga-worker --json-out "$TMP/lambda.json" > /dev/null
$PY - "$TMP/local.json" "$TMP/lambda.json" << 'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def runs(s):
    out = {}
    for r in s.get("runs", s.get("experiments", [])):
        key = json.dumps(r.get("params", r.get("config")), sort_keys=True)
        out[key] = r
    return out
ra, rb = runs(a), runs(b)
print("| experiment | local test logloss | lambda test logloss | apart |")
print("|---|---|---|---|")
worst = 0
for k in sorted(ra):
    la, lb = ra[k].get("test_logloss"), rb[k].get("test_logloss")
    d = abs(la - lb) / la * 100
    worst = max(worst, d)
    print("| %s | %.5f | %.5f | %.2f%% |" % (k, la, lb, d))
print("experiments: %d local, %d lambda; largest gap %.2f%%" % (len(ra), len(rb), worst))
PYEOF
