#!/usr/bin/env bash
# The demo: generate a synthetic click log with a known optimum, ingest it into
# a local object store, and train a logistic regression on it with 4 worker
# functions (local processes) and the embedded parameter server, then score
# the test split with the exported model.
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
echo "== 4. train: logistic regression, 4 worker functions, embedded parameter server, defaults"
"$v" train --store "$store" --dataset clicks --model lr --workers 4 \
  --json-out "$work/train.json" --model-out "$work/clicks.model"
echo "== 5. score the test split with the exported model"
"$v" predict --model-file "$work/clicks.model" --store "$store" --dataset clicks --split test \
  --out "$work/predictions.tsv"
echo "== done: dataset 'clicks' in $store; result $work/train.json; model $work/clicks.model"
echo "   (the generator's Bayes-optimal logloss is printed in step 1: the floor any model can reach)"
