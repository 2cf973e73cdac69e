#!/usr/bin/env bash
# The demo's pipeline against S3: s3rver (a real S3 implementation that checks
# SigV4 signatures) on 127.0.0.1, reached the way any S3 endpoint is, through
# AWS's conventions (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...). The raw click
# log is uploaded with AWS's own client (awscli); virga ingests it from
# s3://virga-demo/raw/, keeps the dataset, the model and the job's result in
# s3://virga-demo/store, trains with 4 worker functions and scores the test split.
# For a real bucket, skip the s3rver part: export your AWS settings and use your
# own s3://bucket/prefix.
set -euo pipefail
build=${1:-build}
rows=${DEMO_ROWS:-500000}
work="$build/demo-s3"
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
v="$build/virga"
. "$here/../tests/s3/s3rver_env.sh"
trap stop_s3rver EXIT
start_s3rver "$build" "$(cd "$work" && pwd)/s3rver-data" virga-demo
bucket=s3://virga-demo
aws=(aws --endpoint-url "$S3_ENDPOINT")

echo "== 0. s3rver listening at $S3_ENDPOINT (bucket virga-demo)"
echo "== 1. generate $rows synthetic Criteo-format rows and upload them with awscli"
"$v" datagen criteo --rows "$rows" --seed 1 --out "$work/clicks.tsv.zst"
"${aws[@]}" s3 cp --only-show-errors "$work/clicks.tsv.zst" "$bucket/raw/clicks.tsv.zst"
echo "== 2. ingest $bucket/raw/*.zst into $bucket/store"
"$v" ingest --format criteo --input "$bucket/raw/*.zst" --store "$bucket/store" --dataset clicks \
  --test-fraction 0.1 --hash-bits 20
echo "== 3. the dataset's manifest, read from S3"
"$v" inspect --store "$bucket/store" --dataset clicks
echo "== 4. train from S3: logistic regression, 4 worker functions, embedded parameter server"
"$v" train --store "$bucket/store" --dataset clicks --model lr --workers 4 \
  --json-out "$work/train.json" --model-out "$bucket/store/models/clicks.model"
echo "== 5. score the test split with the model kept in S3"
"$v" predict --model-file "$bucket/store/models/clicks.model" --store "$bucket/store" \
  --dataset clicks --split test --out "$work/predictions.tsv"
echo "== 6. what the bucket holds, as awscli lists it"
"${aws[@]}" s3 ls --recursive --summarize "$bucket/" | tail -n 6
echo "== done: dataset, model and results in $bucket/store; local copy of the result $work/train.json"
