#!/usr/bin/env bash
# The command line as a user meets it: --version, "did you mean" for mistyped flags and
# commands, the same validation as the Python API, inputs without rows refused.
# Registered with ctest as cli. Usage: tests/cli_test.sh path/to/virga
set -uo pipefail
VIRGA=${1:?usage: $0 path/to/virga}
TMP=$(mktemp -d /tmp/virga-cli-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "cli_test: FAIL: $*"; exit 1; }
# expect NAME EXIT_CODE PATTERN -- command...: the exit code is EXIT_CODE ("nonzero" for any
# failure) and stdout+stderr match PATTERN.
expect() {
  local name=$1 code=$2 pattern=$3
  shift 4
  "$@" > "$TMP/out" 2>&1
  local rc=$?
  if [ "$code" = nonzero ]; then [ "$rc" -ne 0 ] || fail "$name: exit 0"; else [ "$rc" -eq "$code" ] || fail "$name: exit $rc, expected $code: $(cat "$TMP/out")"; fi
  grep -q -- "$pattern" "$TMP/out" || fail "$name: output does not match '$pattern': $(cat "$TMP/out")"
  echo "   $name: $(head -n 1 "$TMP/out")"
}

expect version 0 '^virga [0-9]*\.[0-9]*\.[0-9]*' -- "$VIRGA" --version
expect "misspelt flag" nonzero 'unknown flag --fromat; did you mean --format?' -- \
  "$VIRGA" ingest --fromat libsvm --input x --dataset d
expect "misspelt command" nonzero 'unknown command trian; did you mean train?' -- \
  "$VIRGA" trian --dataset x
expect "misspelt flag of train" nonzero 'did you mean --learning-rate?' -- \
  "$VIRGA" train --dataset d --lerning-rate 0.1
: > "$TMP/empty.txt"
expect "empty input" 1 "no rows in the input ($TMP/empty.txt)" -- \
  "$VIRGA" ingest --format libsvm --input "$TMP/empty.txt" --store "file://$TMP/store" --dataset e
printf '1 1:1\n0 2:1\n1 1:1 2:1\n0 3:1\n' > "$TMP/a.txt"
"$VIRGA" ingest --format libsvm --input "$TMP/a.txt" --store "file://$TMP/store" --dataset a \
  --test-fraction 0 > /dev/null 2>&1 || fail "ingest"
# Labels that do not fit the declared task are errors of their line.
printf '1 1:1\n7 2:1\n' > "$TMP/bad-binary.txt"
expect "label 7 for a binary task" 1 "$TMP/bad-binary.txt:2: label 7 is not binary (0/1 or -1/+1; --task binary)" -- \
  "$VIRGA" ingest --format libsvm --task binary --input "$TMP/bad-binary.txt" --store "file://$TMP/store" --dataset bb
printf '1 1:1\n-1 2:1\n0 2:1\n' > "$TMP/mixed.txt"
expect "mixed binary conventions" 1 "$TMP/mixed.txt:3: label 0 mixes 0/1 with the -1/+1 labels of earlier lines" -- \
  "$VIRGA" ingest --format libsvm --task binary --input "$TMP/mixed.txt" --store "file://$TMP/store" --dataset bm
expect "a class beyond --classes" 1 "$TMP/bad-binary.txt:2: label 7 is not a class of 0..2 (--classes 3)" -- \
  "$VIRGA" ingest --format libsvm --classes 3 --input "$TMP/bad-binary.txt" --store "file://$TMP/store" --dataset bc
expect "--classes with --task binary" 1 "declares a multiclass task, not binary" -- \
  "$VIRGA" ingest --format libsvm --task binary --classes 3 --input "$TMP/a.txt" --store "file://$TMP/store" --dataset bx
expect "negative learning rate" 1 'optimizer.learning_rate: must be in (0, inf), got -0.5' -- \
  "$VIRGA" train --store "file://$TMP/store" --dataset a --workers 1 --learning-rate -0.5
expect "misspelt subcommand" nonzero 'unknown command lsit; did you mean list?' -- "$VIRGA" datasets lsit
expect "datasets list" 0 '^a  *libsvm  *4  *0' -- "$VIRGA" datasets list --store "file://$TMP/store"
expect "datasets rm" 0 'removed dataset a (2 objects)' -- "$VIRGA" datasets rm --store "file://$TMP/store" a
expect "datasets rm again" 1 "dataset 'a' not found" -- "$VIRGA" datasets rm --store "file://$TMP/store" a
"$VIRGA" datasets list --store "file://$TMP/store" | grep -q '^a ' && fail "a removed dataset is listed"

# A job stopped from outside exits non-zero and says so: 128 + N for signal N, 3 for a kill
# request (virga kill, the dashboard).
export VIRGA_HOME=$TMP/home
# Progress lines of long commands (VIRGA_PROGRESS_SECONDS=0: every update, off a terminal).
expect "datagen progress" 0 '^virga datagen: [0-9.k]*/20k rows ([0-9]*%)  [0-9]* MB  [0-9]* MB/s  ETA' -- \
  env VIRGA_PROGRESS_SECONDS=0 "$VIRGA" datagen criteo --rows 20000 --seed 3 --out "$TMP/c.tsv"
"$VIRGA" ingest --format criteo --input "$TMP/c.tsv" --store "file://$TMP/store" --dataset c \
  --hash-bits 14 > /dev/null 2>&1 || fail "ingest c"
# train_bg JOB [FLAGS...]: a long job in the background (pid in BG), once it is running.
train_bg() {
  local job=$1
  shift
  "$VIRGA" train --store "file://$TMP/store" --dataset c --workers 1 --epochs 1000 --time-limit 60 \
    --eval-interval 0.3 --job-id "$job" "$@" > "$TMP/$job.out" 2>&1 &
  BG=$!
  for _ in $(seq 300); do
    grep -q '"state":"running"' "$VIRGA_HOME/jobs/$job/status.json" 2>/dev/null && return
    sleep 0.1
  done
  fail "$job did not start: $(cat "$TMP/$job.out")"
}
# stopped JOB CODE PATTERN: the background job exits with CODE within 20 s, saying PATTERN.
stopped() {
  local rc
  for _ in $(seq 200); do kill -0 "$BG" 2> /dev/null || break; sleep 0.1; done
  kill -0 "$BG" 2> /dev/null && { kill -9 "$BG"; fail "$1: still running 20 s after its kill"; }
  wait "$BG"
  rc=$?
  [ "$rc" -eq "$2" ] || fail "$1: exit $rc, expected $2: $(cat "$TMP/$1.out")"
  grep -q -- "$3" "$TMP/$1.out" || fail "$1: output does not match '$3': $(cat "$TMP/$1.out")"
  echo "   $1: exit $rc: $(grep -- "$3" "$TMP/$1.out" | head -n 1)"
}
train_bg sigint
kill -INT "$BG"
stopped sigint 130 'job sigint was killed by SIGINT'
train_bg sigterm
kill -TERM "$BG"
stopped sigterm 143 'job sigterm was killed by SIGTERM'
train_bg killreq
"$VIRGA" kill killreq > /dev/null || fail "virga kill"
stopped killreq 3 'job killreq was killed on request'

# The model outlives the job: export and predict read the copy it kept in the store.
S="file://$TMP/store"
expect "train keeps its model" 0 "model in $S/jobs/short/model.vmdl" -- \
  "$VIRGA" train --store "$S" --dataset c --workers 1 --epochs 1 --job-id short
# Its live lines fit an 80-column terminal.
grep -q ' epoch [0-9]*/1 ' "$TMP/out" || fail "no live line: $(cat "$TMP/out")"
awk '/ epoch [0-9]+\/1 / && length > 79 { print; bad = 1 } END { exit bad }' "$TMP/out" ||
  fail "a live line is wider than 79 columns"
expect "export after the job" 0 'exported the model of job short (its servers are gone' -- \
  env VIRGA_TOKEN=t "$VIRGA" export --servers 127.0.0.1:9 --table short.model --store "$S" \
  --out "$TMP/short.vmdl"
expect "export --job" 0 'exported the model of job short' -- \
  "$VIRGA" export --job short --store "$S" --out "$TMP/short2.vmdl"
cmp -s "$TMP/short.vmdl" "$TMP/short2.vmdl" || fail "export --job and export --table differ"
expect "predict --job" 0 'logloss 0\.[0-9]*  auc' -- "$VIRGA" predict --job short --store "$S" --dataset c
expect "predict progress" 0 '^virga predict: [0-9k]*/18k rows ([0-9]*%)  [0-9]* MB  [0-9]* MB/s  ETA' -- \
  env VIRGA_PROGRESS_SECONDS=0 "$VIRGA" predict --job short --store "$S" --dataset c --split train
expect "export of an unknown job" 1 "job 'nojob' kept no model" -- \
  "$VIRGA" export --job nojob --store "$S" --out "$TMP/x.vmdl"
[ -s "$TMP/store/jobs/sigint/model.vmdl" ] || fail "the killed job kept no model"

# One step: text in, a temporary dataset, the progressive loss VW-style, the dataset removed.
head -n 4000 "$TMP/c.tsv" > "$TMP/c-test.tsv"
expect "train --input" 0 '^average    since  *example  *test logloss' -- \
  "$VIRGA" train --store "$S" --input "$TMP/c.tsv" --test-input "$TMP/c-test.tsv" --format criteo \
  --hash-bits 14 --workers 1 --epochs 4 --eval-interval 0.1 --job-id onestep
grep -Eq '^0\.[0-9]{6} +0\.[0-9]{6} +[0-9]+ +0\.[0-9]{4} +[0-9]+/4 ' "$TMP/out" ||
  fail "no progressive loss row: $(cat "$TMP/out")"
grep -q 'ingested tmp-train-.*-test: 4000 rows (0 train, 4000 test)' "$TMP/out" || fail "test input: $(cat "$TMP/out")"
"$VIRGA" datasets list --store "$S" | grep -q '^tmp-train-' && fail "the temporary dataset remains"
expect "train --input --keep-dataset" 0 'kept dataset tmp-train-' -- \
  "$VIRGA" train --store "$S" --input "$TMP/c-test.tsv" --format criteo --hash-bits 14 --workers 1 \
  --epochs 1 --keep-dataset
"$VIRGA" datasets list --store "$S" | grep -q '^tmp-train-' || fail "--keep-dataset did not keep it"
expect "train --input with --dataset" 1 'give --dataset (ingested) or --input (text), not both' -- \
  "$VIRGA" train --store "$S" --input "$TMP/a.txt" --dataset c --workers 1
expect "train --input, bad label" 1 "bad-binary.txt:2: label 7 is not binary" -- \
  "$VIRGA" train --store "$S" --input "$TMP/bad-binary.txt" --task binary --workers 1
"$VIRGA" datasets list --store "$S" | grep -c '^tmp-train-' | grep -qx 1 || fail "a failed ingest left a dataset"

# virga jobs prune: ended jobs leave the registry and the store; dry run first.
expect "prune: dry run" 0 'dry run: would remove 2 jobs and [1-9][0-9]* objects; kept 1 (--keep)' -- \
  "$VIRGA" jobs prune --state killed --keep 1 --dry-run
[ -s "$TMP/store/jobs/sigint/model.vmdl" ] || fail "a dry run removed objects"
expect "prune: bad duration" 1 "--older-than '3x': expected a duration" -- "$VIRGA" jobs prune --older-than 3x
expect "prune: nothing that old" 0 '^pruned 0 jobs and 0 objects' -- "$VIRGA" jobs prune --older-than 1h
expect "prune: killed, keep the newest" 0 '^removed sigint (killed, [1-9][0-9]* objects in file://' -- \
  "$VIRGA" jobs prune --state killed --keep 1
grep -q '^removed sigterm ' "$TMP/out" || fail "sigterm not pruned: $(cat "$TMP/out")"
grep -q 'killreq' "$TMP/out" && fail "the newest killed job was not kept: $(cat "$TMP/out")"
[ -e "$TMP/store/jobs/sigint" ] && [ -n "$(ls "$TMP/store/jobs/sigint")" ] && fail "sigint's objects remain"
"$VIRGA" jobs | grep -q '^sigint ' && fail "sigint is still listed"
"$VIRGA" jobs | grep -q '^killreq ' || fail "killreq was pruned"
expect "prune: model gone" 1 "job 'sigint' kept no model" -- "$VIRGA" export --job sigint --store "$S" --out "$TMP/x.vmdl"
expect "prune: done jobs" 0 '^removed short (done,' -- "$VIRGA" jobs prune --state done
echo "cli_test: OK"
