"""Grid search vs successive halving (ASHA) on the same 9-point grid and budget.

    PYTHONPATH=build/python /usr/bin/python3 python/bench/search_compare.py [--rows 200000]

Generates a Criteo-format set (datagen), ingests it, then runs the 9 configurations
(learning_rate x minibatch) twice on one session (one embedded server, one backend), at most
--max-concurrent at once, every experiment with the same workers and epochs budget:
  grid: every run to its end;
  asha: successive halving (eta 3), the worse runs stopped at 1/9 and 1/3 of the epochs.
Prints each search's table, its best configuration and test loss, its wall time and the
function-seconds it used, and the comparison. Not part of `make test` (minutes of CPU).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import virga


def run(session, train, test, policy, args):
    grid = {"learning_rate": [float(x) for x in args.learning_rates.split(",")],
            "minibatch": [int(x) for x in args.minibatches.split(",")]}
    est = virga.LogisticRegression(optimizer=args.optimizer, workers=args.workers,
                                   epochs=args.epochs, eval_interval=args.eval_interval,
                                   session=session)
    search = virga.GridSearch(est, grid, session=session, max_concurrent=args.max_concurrent,
                              policy=policy)
    t0 = time.monotonic()
    search.fit(train, test=test, wait=True, progress=sys.stderr.isatty())
    wall = time.monotonic() - t0
    print(f"\n== policy {policy or 'grid'}: wall {wall:.1f} s")
    print(search.table())
    fn_seconds = sum(sum(f["wall_seconds"] for f in e.job.result["functions"])
                     for e in search.experiments if e.job and e.job.result)
    return {"policy": policy or "grid", "wall_seconds": wall, "best_params": search.best_params_,
            "best_loss": search.best_loss_, "function_seconds": fn_seconds,
            "results": search.results}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200000)
    ap.add_argument("--hash-bits", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--max-concurrent", type=int, default=3)
    ap.add_argument("--optimizer", default="adagrad")
    ap.add_argument("--learning-rates", default="0.01,0.1,1.0")
    ap.add_argument("--minibatches", default="20,100,500")
    ap.add_argument("--eval-interval", type=float, default=0.5)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="virga-search-bench-")
    data = os.path.join(tmp, "criteo.tsv")
    gen = virga.datagen_criteo(data, rows=args.rows, seed=11)
    print(f"data: {gen['rows']} rows, Bayes-optimal logloss {gen['bayes_logloss']:.4f}")
    with virga.connect(store=os.path.join(tmp, "store"), registry_dir="-") as s:
        train, test = s.load_criteo(data, test_fraction=0.1, hash_bits=args.hash_bits)
        out = [run(s, train, test, None, args), run(s, train, test, "asha", args)]
    g, a = out
    print("\n== comparison (same 9 configurations, same epochs and workers each)")
    for r in out:
        print(f"{r['policy']:>5}: best test logloss {r['best_loss']:.4f} with {r['best_params']}"
              f"  wall {r['wall_seconds']:.1f} s  function-seconds {r['function_seconds']:.0f}")
    print(f"asha/grid: wall x{a['wall_seconds'] / g['wall_seconds']:.2f}, function-seconds "
          f"x{a['function_seconds'] / max(1e-9, g['function_seconds']):.2f}, loss difference "
          f"{a['best_loss'] - g['best_loss']:+.4f} (<= 0: at least as good)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "runs": out}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
