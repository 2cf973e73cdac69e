#!/usr/bin/env bash
# The demo: generate a synthetic click log with a known optimum, ingest it into
# a local object store, look at it, and stream it through the prefetching
# iterator as a worker function would.
set -euo pipefail
build=${1:-build}
rows=${DEMO_ROWS:-500000}
work="$build/demo"
rm -rf "$work"
mkdir -p "$work"
store="file://$(cd "$work" && pwd)/store"
v="$build/virga"

echo "== 1. generate $rows synthetic Criteo-format rows (planted logistic model)"
"$v" datagen criteo --rows "$rows" --seed 1 --out "$work/clicks.tsv.zst"
echo "== 2. ingest into $store (10% test split, hashed into 2^20 features)"
"$v" ingest --format criteo --input "$work/clicks.tsv.zst" --store "$store" --dataset clicks \
  --test-fraction 0.1 --hash-bits 20
echo "== 3. the dataset's manifest"
"$v" inspect --store "$store" --dataset clicks
echo "== 4. stream both splits through the prefetching iterator (minibatch 200)"
"$v" scan --store "$store" --dataset clicks --split train --minibatch 200
"$v" scan --store "$store" --dataset clicks --split test --minibatch 200
echo "== done: dataset 'clicks' is in $store"
