#!/usr/bin/env bash
# models_quality.sh [path/to/virga]: the quality figures of issue 18 (more
# models) with each model's defaults, written to bench/results/models.md.
#
# virga runs `virga train --model M` with no tuning flags (plus store, dataset,
# test and --workers). Targets:
#   mf, MovieLens-100k u1.base -> u1.test:            RMSE <= 0.930; 4 workers <= 1 worker + 0.005;
#                                                     train time < 5 s
#   mf, ml-latest-small (2016), 80/20 random split:   RMSE <= 0.880
#   softmax, scikit-learn's digits, 80/20 split:      accuracy >= 0.96, logloss <= 0.12
#   fm, `virga datagen criteo --rows 200000 --interactions 0.8`, 10% test:
#                                                     logloss <= lr's - 0.004
#   fm, Criteo sample (7,200 train / 800 test rows):  logloss <= lr's + 0.005
#   fm rank 8 rows/s on the planted interactions >= 1/3 of lr's: the same rows,
#     4 workers, 3 epochs each, one evaluation a run (--eval-interval 30); the
#     best of two interleaved runs of each, the machine being shared
# Reported without a target: mf on `virga datagen ratings` against its Bayes
# floor; samples/s and updates/s (minibatches pushed per second) of mf on
# ML-100k beside lr's on the same rows (label: rating >= 4) and workers; ffm on
# the planted interactions; and the gain of fm and ffm over LIBLINEAR (Debian's
# liblinear-tools, L2 logistic regression on the same rows as `virga dump`
# writes them, C the best of a grid on the test split: LIBLINEAR's best case)
# against the issue's anchor, libFM MCMC k=4 0.016 and FFM with early stopping
# 0.013 below LIBLINEAR (libFM is not packaged in Debian: it is not run).
# Data: $VIRGA_DATA, default ../shared/data beside the repository; digits come
# from Debian's python3-sklearn. A missing data set is reported LOUDLY and
# skipped. Exit 1 if a target is missed (the report is still written), 2 on a
# usage or setup error.
set -uo pipefail

virga=""
for arg in "$@"; do
  case "$arg" in
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) virga=$arg ;;
  esac
done
repo=$(cd "$(dirname "$0")/.." && pwd)
virga=$(realpath "${virga:-$repo/build/virga}")
data=${VIRGA_DATA:-$(dirname "$repo")/shared/data}
out_md="$repo/bench/results/models.md"
[ -x "$virga" ] || { echo "models_quality: no virga binary at $virga" >&2; exit 2; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
store="file://$tmp/store"
export VIRGA_HOME="$tmp/home"
rows="$tmp/rows.md"
: >"$rows"
missed=()

le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
skip() {
  echo "models_quality: SKIPPED: $1" >&2
  echo "| $2 | **skipped: $1** | | |" >>"$rows"
}
# train NAME ARGS...: trains, leaves the result JSON in $tmp/NAME.json.
train() {
  local name=$1; shift
  "$virga" train --store "$store" --quiet --json-out "$tmp/$name.json" "$@" >/dev/null \
    || { echo "models_quality: train $name failed" >&2; return 1; }
}
field() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$tmp/$1.json" "$2"; }
# check LABEL VALUE OP TARGET: records a row, and a miss.
check() {
  local ok=yes
  if [ "$3" = "<=" ]; then le "$2" "$4" || ok=no; else le "$4" "$2" || ok=no; fi
  [ $ok = yes ] || missed+=("$1")
  printf '| %s | %.4f | %s %s | %s |\n' "$1" "$2" "$3" "$4" "$ok" >>"$rows"
}

ml100k="$data/movielens-100k"
if [ -f "$ml100k/u1.base" ] && [ -f "$ml100k/u1.test" ]; then
  "$virga" ingest --format ratings --input "$ml100k/u1.base" --store "$store" --dataset u1base \
    --test-fraction 0 >/dev/null
  "$virga" ingest --format ratings --input "$ml100k/u1.test" --store "$store" --dataset u1test \
    --test-fraction 0 >/dev/null
  for w in 1 4; do train "ml100k_w$w" --dataset u1base --test u1test --model mf --workers $w; done
  # lr on the same rows and workers (label: rating >= 4), for the throughput beside mf's.
  awk -F'\t' -v OFS='\t' '{ $3 = ($3 >= 4) ? 1 : 0; print }' "$ml100k/u1.base" >"$tmp/u1bin.tsv"
  "$virga" ingest --format ratings --input "$tmp/u1bin.tsv" --store "$store" --dataset u1bin \
    --test-fraction 0.1 >/dev/null
  for w in 1 4; do train "ml100k_lr_w$w" --dataset u1bin --model lr --workers $w; done
  r1=$(field ml100k_w1 test_rmse); r4=$(field ml100k_w4 test_rmse)
  check "mf ML-100k u1 RMSE, 1 worker" "$r1" "<=" 0.930
  check "mf ML-100k u1 RMSE, 4 workers" "$r4" "<=" "$(awk -v a="$r1" 'BEGIN { print a + 0.005 }')"
  check "mf ML-100k train seconds, 1 worker" "$(field ml100k_w1 train_seconds)" "<=" 5
else
  skip "MovieLens-100k absent ($ml100k)" "mf ML-100k"
fi

mls="$data/movielens-latest-small-2016/ratings.csv"
if [ -f "$mls" ]; then
  "$virga" ingest --format ratings --input "$mls" --store "$store" --dataset mls \
    --test-fraction 0.2 >/dev/null
  train mls --dataset mls --model mf --workers 1
  check "mf ml-latest-small 80/20 RMSE" "$(field mls test_rmse)" "<=" 0.880
else
  skip "ml-latest-small absent ($mls)" "mf ml-latest-small"
fi

if "$py" -c "import sklearn" 2>/dev/null; then
  "$py" - "$tmp/digits.libsvm" <<'EOF'
import sys
from sklearn.datasets import load_digits
d = load_digits()
with open(sys.argv[1], "w") as f:
    for x, y in zip(d.data, d.target):
        f.write(str(int(y)) + " " + " ".join("%d:%g" % (i, v / 16) for i, v in enumerate(x) if v) + "\n")
EOF
  "$virga" ingest --format libsvm --classes 10 --input "$tmp/digits.libsvm" --store "$store" \
    --dataset digits --test-fraction 0.2 >/dev/null
  train digits --dataset digits --model softmax --workers 1
  check "softmax digits accuracy" "$(field digits test_accuracy)" ">=" 0.96
  check "softmax digits logloss" "$(field digits test_logloss)" "<=" 0.12
else
  skip "scikit-learn absent (apt-get install python3-sklearn)" "softmax digits"
fi

floor=$("$virga" datagen ratings --rows 200000 --users 2000 --items 1000 --out "$tmp/syn.tsv" |
  sed -n 's/.*Bayes floor RMSE \([0-9.]*\).*/\1/p')
"$virga" ingest --format ratings --input "$tmp/syn.tsv" --store "$store" --dataset syn \
  --test-fraction 0.2 >/dev/null
train syn --dataset syn --model mf --workers 4
printf '| mf datagen ratings (200k, rank 8) RMSE | %.4f | Bayes floor %s | report |\n' \
  "$(field syn test_rmse)" "$floor" >>"$rows"

criteo="$data/criteo-kaggle-sample"
if [ -f "$criteo/criteo_train_7200.tsv" ]; then
  "$virga" ingest --format criteo --input "$criteo/criteo_train_7200.tsv" --store "$store" \
    --dataset ctr --test-fraction 0 >/dev/null
  "$virga" ingest --format criteo --input "$criteo/criteo_dev_409.tsv" "$criteo/criteo_test_391.tsv" \
    --store "$store" --dataset cte --test-fraction 0 >/dev/null
  for m in lr fm; do train "criteo_$m" --dataset ctr --test cte --model $m --workers 4; done
  lr_c=$(printf '%.4f' "$(field criteo_lr test_logloss)")
  check "fm Criteo sample logloss (lr $lr_c)" "$(field criteo_fm test_logloss)" "<=" \
    "$(awk -v a="$lr_c" 'BEGIN { print a + 0.005 }')"
else
  skip "Criteo sample absent ($criteo)" "fm Criteo sample"
fi

bayes=$("$virga" datagen criteo --rows 200000 --seed 1 --interactions 0.8 --out "$tmp/pairs.tsv" |
  sed -n 's/.*Bayes-optimal logloss \([0-9.]*\).*/\1/p')
"$virga" ingest --format criteo --input "$tmp/pairs.tsv" --store "$store" --dataset pairs \
  --test-fraction 0.1 >/dev/null
for m in lr fm; do train "pairs_$m" --dataset pairs --model $m --workers 4; done
lr_loss=$(printf '%.4f' "$(field pairs_lr test_logloss)")
fm_loss=$(field pairs_fm test_logloss)
check "fm planted interactions logloss (lr $lr_loss, Bayes $bayes)" "$fm_loss" \
  "<=" "$(awk -v a="$lr_loss" 'BEGIN { print a - 0.004 }')"
best_rate=(0 0)
for round in 1 2; do
  i=0
  for m in lr fm; do
    train "speed_$m$round" --dataset pairs --model $m --workers 4 --epochs 3 --eval-interval 30
    r=$(field "speed_$m$round" samples_per_second)
    le "$r" "${best_rate[$i]}" || { best_rate[$i]=$r; cp "$tmp/speed_$m$round.json" "$tmp/speed_$m.json"; }
    i=$((i + 1))
  done
done
compute_us() { "$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['iteration_us']['compute'])" "$tmp/$1.json"; }
for m in lr fm; do
  printf '| %s rows/s, planted interactions (4 workers, 3 epochs, best of 2) | %.0f | compute %.1f us per minibatch | report |\n' \
    "$m" "$(field speed_$m samples_per_second)" "$(compute_us speed_$m)" >>"$rows"
done
check "fm / lr rows/s, planted interactions (4 workers, 3 epochs)" \
  "$(awk -v a="${best_rate[1]}" -v b="${best_rate[0]}" 'BEGIN { print a / b }')" ">=" 0.3333
# updates/s: minibatches pushed per second of training (result JSON updates / train_seconds).
rate() { awk -v u="$(field "$1" updates)" -v t="$(field "$1" train_seconds)" 'BEGIN { print u / t }'; }
for run in ml100k_w1:"mf ML-100k, 1 worker" ml100k_lr_w1:"lr ML-100k (rating >= 4), 1 worker" \
           ml100k_w4:"mf ML-100k, 4 workers" ml100k_lr_w4:"lr ML-100k (rating >= 4), 4 workers" \
           pairs_lr:"lr planted interactions, 4 workers" pairs_fm:"fm planted interactions, 4 workers"; do
  name=${run%%:*}
  [ -f "$tmp/$name.json" ] || continue
  printf '| %s: samples/s; updates/s | %.0f | %.0f updates/s | report |\n' "${run#*:}" \
    "$(field "$name" samples_per_second)" "$(rate "$name")" >>"$rows"
done

# ffm, and LIBLINEAR on the same rows: the gains against the issue's libFM / FFM anchor.
train pairs_ffm --dataset pairs --model ffm --workers 4
ffm_loss=$(field pairs_ffm test_logloss)
printf '| ffm planted interactions logloss (4 workers) | %.4f | %.0f rows/s | report |\n' \
  "$ffm_loss" "$(field pairs_ffm samples_per_second)" >>"$rows"
if command -v liblinear-train >/dev/null && command -v liblinear-predict >/dev/null; then
  "$virga" dump --store "$store" --dataset pairs --split train --out "$tmp/pairs.train.svm" >/dev/null
  "$virga" dump --store "$store" --dataset pairs --split test --out "$tmp/pairs.test.svm" >/dev/null
  ll_best=""
  ll_c=""
  for c in 0.01 0.03 0.1 0.3 1; do
    liblinear-train -q -s 0 -B 1 -c $c "$tmp/pairs.train.svm" "$tmp/ll.model" >/dev/null
    liblinear-predict -b 1 "$tmp/pairs.test.svm" "$tmp/ll.model" "$tmp/ll.out" >/dev/null
    ll=$("$py" "$repo/bench/logloss.py" "$tmp/pairs.test.svm" "$tmp/ll.out")
    if [ -z "$ll_best" ] || le "$ll" "$ll_best"; then ll_best=$ll; ll_c=$c; fi
  done
  printf '| LIBLINEAR -s 0 planted interactions logloss (C %s, best of 0.01..1) | %.4f | | report |\n' \
    "$ll_c" "$ll_best" >>"$rows"
  gain() { awk -v a="$ll_best" -v b="$1" 'BEGIN { print a - b }'; }
  printf '| fm gain over LIBLINEAR (anchor: libFM MCMC k=4 0.016; libFM not run) | %.4f | | report |\n' \
    "$(gain "$fm_loss")" >>"$rows"
  printf '| ffm gain over LIBLINEAR (anchor: FFM with early stopping 0.013) | %.4f | | report |\n' \
    "$(gain "$ffm_loss")" >>"$rows"
  printf '| lr gain over LIBLINEAR | %.4f | | report |\n' "$(gain "$lr_loss")" >>"$rows"
else
  skip "LIBLINEAR absent (apt-get install liblinear-tools)" "LIBLINEAR planted interactions"
fi

mkdir -p "$(dirname "$out_md")"
{
  echo "# Model quality with defaults (bench/models_quality.sh)"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores; every run \`virga train --model M\` without tuning flags."
  echo
  echo "| measure | value | target | met |"
  echo "|---|---|---|---|"
  cat "$rows"
} >"$out_md"
cat "$out_md"
if [ ${#missed[@]} -gt 0 ]; then
  printf 'models_quality: MISSED: %s\n' "${missed[@]}" >&2
  exit 1
fi
