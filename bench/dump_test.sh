#!/usr/bin/env bash
# dump_test.sh [path/to/virga]: `virga dump` end to end (registered with ctest
# as dump_roundtrip by bench/CMakeLists.txt; bench/quality.sh runs it too).
#   1. exact text: indices + 1, ascending, duplicates summed, binary rows as ":1",
#      labels as stored;
#   2. round trip: ingest -> dump --as-stored (.zst) -> ingest -> `virga inspect`
#      shows the same rows, nnz and features, and dumping the copy gives the same bytes;
#   3. the test split, stdout ("-"), .gz, and a missing dataset (non-zero exit).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
virga=$(realpath "${1:-$here/../build/virga}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
store="file://$tmp/store"
v() { "$virga" "$@" --store "$store"; }
fail() { echo "dump_test: FAIL: $*" >&2; exit 1; }
# `virga inspect` without the lines that name the dataset or its creation time.
shape() { v inspect --dataset "$1" | sed -e 1d -e '/created/d'; }

# 1. Exact text. The first block has a non-1 value, so values are stored.
printf '1 3:1 0:2.5 3:0.5\n0 1:1 2:-0.125\n1\n' >"$tmp/valued.svm"
printf -- '-1 7:1 1:1 7:1\n+1 2:1\n' >"$tmp/binary.svm"
v ingest --format libsvm --input "$tmp/valued.svm" --dataset valued --test-fraction 0 >/dev/null
v ingest --format libsvm --input "$tmp/binary.svm" --dataset binary --test-fraction 0 >/dev/null
v dump --dataset valued --out "$tmp/valued.out" >/dev/null
v dump --dataset binary --out "$tmp/binary.out" >/dev/null
diff <(printf '1 1:2.5 4:1.5\n0 2:1 3:-0.125\n1\n') "$tmp/valued.out" || fail "valued rows"
diff <(printf -- '-1 2:1 8:2\n1 3:1\n') "$tmp/binary.out" || fail "binary rows"
v dump --dataset binary --as-stored --out "$tmp/binary.raw" >/dev/null
diff <(printf -- '-1 7:1 1:1 7:1\n1 2:1\n') "$tmp/binary.raw" || fail "binary rows as stored"

# 2. Round trip over a few partitions of mixed rows (duplicate indices kept).
awk 'BEGIN { srand(7); for (r = 0; r < 10000; r++) {
       line = (rand() < 0.3) ? "1" : "0"
       n = int(rand() * 12)
       for (k = 0; k < n; k++) line = line " " int(rand() * 5000) ":" (rand() < 0.5 ? 1 : rand())
       print line } }' >"$tmp/mixed.svm"
v ingest --format libsvm --input "$tmp/mixed.svm" --dataset mixed --test-fraction 0 >/dev/null
v dump --dataset mixed --as-stored --out "$tmp/mixed.svm.zst" >/dev/null
v ingest --format libsvm --input "$tmp/mixed.svm.zst" --dataset mixed-rt --test-fraction 0 >/dev/null
diff <(shape mixed) <(shape mixed-rt) || fail "inspect differs after a round trip"
v dump --dataset mixed --as-stored --out "$tmp/mixed.dump" >/dev/null
v dump --dataset mixed-rt --as-stored --out "$tmp/mixed-rt.dump" >/dev/null
cmp -s "$tmp/mixed.dump" "$tmp/mixed-rt.dump" || fail "dump of the re-ingested copy differs"

# 3. Test split, stdout, .gz, errors.
v ingest --format libsvm --input "$tmp/mixed.svm" --dataset halves --test-fraction 0.5 >/dev/null
test_rows=$(v inspect --dataset halves | awk '$1 == "test:" { print $2 }')
got=$(v dump --dataset halves --split test --out - 2>/dev/null | wc -l)
[ "$got" -eq "$test_rows" ] || fail "test split: $got lines, manifest says $test_rows"
v dump --dataset halves --split test --out "$tmp/test.svm.gz" >/dev/null
[ "$(gzip -dc "$tmp/test.svm.gz" | wc -l)" -eq "$test_rows" ] || fail ".gz output"
if v dump --dataset nosuch --out "$tmp/x.svm" 2>/dev/null; then fail "missing dataset accepted"; fi
[ ! -e "$tmp/x.svm" ] || fail "a failed dump left a file"
echo "dump_test: ok"
