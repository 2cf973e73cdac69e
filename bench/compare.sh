#!/usr/bin/env bash
# [VW=path/to/vw] compare.sh [--quick] [--out DIR] [path/to/virga]: the
# side-by-side comparison suite of issues 7 and 15 (`make bench-compare`). On this
# machine, in one run, on the same data (the Criteo sample from $VIRGA_DATA,
# default ../shared/data, when present; a synthetic Criteo-format set from
# `virga datagen`, 2,000,000 rows):
#   1. test logloss against training wall time (the paper's Figure 2) for virga
#      with the parameter server, virga --channel store, virga --channel redis
#      (a redis-server started here on a free loopback port), LIBLINEAR,
#      scikit-learn SGDClassifier and, when $VW names a vw binary, Vowpal Wabbit
#      (from its cache and from text), with time to a target loss;
#   2. the per-iteration breakdown (data wait, pull, compute, push) for
#      minibatch 20 and 200 (the paper's Figure 3);
#   3. throughput with 1, 2 and 4 workers, peak memory per worker and of the
#      server (a separate `virga server` process: its VmHWM);
#   4. every figure as a ratio to virga with the server in the same run;
#   5. VW and end to end (virga ingest + train against VW from text);
#   6-8. issue 15: 1/2/4 workers to the target (time, samples/s, CPU of the job),
#      8 workers at 0 and 500 us emulated round trip (and a 60 MB/s cap), bytes
#      per sample at the defaults; medians of 3 interleaved rounds (1 in --quick).
# Writes bench/results/compare.md and bench/results/compare_*.png.
# --quick (CI): 100,000 synthetic rows, short runs, results in a scratch dir
# (printed; --out DIR to choose it), never over the committed results.
# Exit 1 if a step fails or a row lacks data it should have (the report is
# still written), 2 on a usage or setup error. A storage channel that the
# binary does not implement yet is reported "not available: <reason>"; VW unset
# is reported absent (not a failure); VW set to something that does not run fails.
# The work is done by bench/compare.py (/usr/bin/python3).
set -uo pipefail

quick=0
out=""
virga=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) virga=$1 ;;
  esac
  shift
done
repo=$(cd "$(dirname "$0")/.." && pwd)
virga=$(realpath "${virga:-$repo/build/virga}")
[ -x "$virga" ] || { echo "compare: no virga binary at $virga (build it, or pass its path)" >&2; exit 2; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3

missing=()
command -v liblinear-train >/dev/null || missing+=(liblinear-tools)
command -v redis-server >/dev/null || missing+=(redis-server)
"$py" -c 'import sklearn' 2>/dev/null || missing+=(python3-sklearn)
"$py" -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
if [ ${#missing[@]} -gt 0 ]; then
  echo "compare: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || { echo "compare: ${missing[*]} missing and could not be installed" >&2; exit 2; }
fi

if [ -z "$out" ]; then
  if [ $quick -eq 1 ]; then
    out=$(mktemp -d /tmp/virga-compare-quick-XXXXXX)
  else
    out="$repo/bench/results"
  fi
fi
mkdir -p "$out"
args=(--virga "$virga" --out "$out" --repo "$repo"
  --data "${VIRGA_DATA:-$(dirname "$repo")/shared/data}")
[ $quick -eq 1 ] && args+=(--quick)
[ -n "${VW:-}" ] && args+=(--vw "$(realpath "$VW" 2>/dev/null || echo "$VW")")
exec "$py" "$repo/bench/compare.py" "${args[@]}"
