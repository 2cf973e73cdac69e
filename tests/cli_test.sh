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
expect "negative learning rate" 1 'optimizer.learning_rate: must be in (0, inf), got -0.5' -- \
  "$VIRGA" train --store "file://$TMP/store" --dataset a --workers 1 --learning-rate -0.5
expect "misspelt subcommand" nonzero 'unknown command lsit; did you mean list?' -- "$VIRGA" datasets lsit
expect "datasets list" 0 '^a  *libsvm  *4  *0' -- "$VIRGA" datasets list --store "file://$TMP/store"
expect "datasets rm" 0 'removed dataset a (2 objects)' -- "$VIRGA" datasets rm --store "file://$TMP/store" a
expect "datasets rm again" 1 "dataset 'a' not found" -- "$VIRGA" datasets rm --store "file://$TMP/store" a
"$VIRGA" datasets list --store "file://$TMP/store" | grep -q '^a ' && fail "a removed dataset is listed"
echo "cli_test: OK"
