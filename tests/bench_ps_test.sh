#!/usr/bin/env bash
# `virga bench ps` end to end, small (registered with ctest as bench_ps).
# Usage: tests/bench_ps_test.sh path/to/virga
#
# One cell (K=64, 1 client, same_cpu, width-4 adam rows) in 2 rounds against
# virga and Redis, plus the scaling section once; then checks the JSON: the
# cell's settings, figures that are there and consistent (the median p50
# inside its range, the ratio = virga / Redis keys/s, client CPU measured),
# and six scaling rows with the first at 1.0x. Without redis-server the test
# reports Skipped (exit 77): `scripts/install-deps.sh build` installs it.
set -uo pipefail

VIRGA=${1:?usage: $0 path/to/virga}
command -v redis-server >/dev/null || { echo "bench_ps_test: SKIPPED: no redis-server"; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TMP=$(mktemp -d /tmp/virga-bench-ps-test-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

"$VIRGA" bench ps --keys 64 --clients 1 --placements same_cpu --seconds 0.2 --rounds 2 \
  --width 4 --optimizer adam --servers-count 2 --scaling-rounds 1 --json-out "$TMP/out.json" \
  > "$TMP/out.txt" 2>&1
rc=$?
cat "$TMP/out.txt"
[ "$rc" -eq 0 ] || { echo "bench_ps_test: FAIL: virga bench ps exited $rc"; exit 1; }

"$PY" - "$TMP/out.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
def check(ok, what):
    if not ok:
        bad.append(what)
rows = d["rows"]
check(len(rows) == 1, f"{len(rows)} matrix rows, expected 1")
r = rows[0]
check((r["keys"], r["clients"], r["placement"], r["width"], r["optimizer"], r["rounds"]) ==
      (64, 1, "same_cpu", 4, "adam", 2), f"cell settings {r}")
check(r["ok"] and r["error"] == "" and r["redis_error"] == "", f"errors: {r['error']} {r['redis_error']}")
check(r["keys_per_s"] > 0 and r["redis_keys_per_s"] > 0, "keys/s missing")
check(r["keys_per_s_min"] <= r["keys_per_s"] <= r["keys_per_s_max"], "keys/s outside its range")
check(0 < r["p50_us_min"] <= r["p50_us"] <= r["p50_us_max"], "p50 outside its range")
check(r["p50_us"] <= r["p99_us"], "p50 above p99")
check(abs(r["ratio_vs_redis"] - r["keys_per_s"] / r["redis_keys_per_s"]) < 1e-6 * r["ratio_vs_redis"],
      "ratio is not virga / Redis keys/s")
check(r["client_cpu_fraction"] > 0, "client CPU not measured")
check(r["server_cpu_fraction"] > 0, "server CPU not measured")
s = d.get("scaling", [])
check(len(s) == 6, f"{len(s)} scaling rows, expected 6")
shapes = [(x["width"], x["optimizer"], x["servers"], x["server_threads"]) for x in s]
check(shapes == [(1, "adagrad", 1, 1), (1, "adagrad", 2, 1), (1, "adagrad", 1, 2),
                 (16, "adam", 1, 1), (16, "adam", 2, 1), (16, "adam", 1, 2)], f"scaling rows {shapes}")
for x in s:
    check(x["ok"] and x["keys_per_s"] > 0 and x["client_cpu_fraction"] > 0, f"scaling row {x}")
if len(s) == 6:
    check(s[0]["speedup_vs_one_server"] == 1.0 and s[3]["speedup_vs_one_server"] == 1.0,
          "the 1 x 1 rows are not 1.0x")
    check(abs(s[1]["speedup_vs_one_server"] - s[1]["keys_per_s"] / s[0]["keys_per_s"]) < 1e-9,
          "speedup is not 2 servers / 1 server")
if bad:
    print("bench_ps_test: FAIL:\n  " + "\n  ".join(bad))
    sys.exit(1)
print("bench_ps_test: ok")
EOF
