"""Issue 15's part of the comparison suite (run through bench/compare.sh; compare.py
imports this module): Vowpal Wabbit beside the others in Figure 2, and the sections
for communication-efficient training:
  - scaling: 1, 2, 4 workers (and the default count) to the target loss (time, samples/s, CPU of the whole job);
  - latency: 8 workers at 0 us and 500 us emulated round trip, and 500 us + a bandwidth cap;
  - traffic: bytes per sample and per iteration at the defaults, final test loss;
each configuration run in R interleaved rounds, medians reported. `s` is compare.py's
Suite: it runs and records every command."""
import math
import os
import subprocess
import sys
import time

# The issue's baseline on the 2M-row set at the defaults (4 workers, 5 epochs).
BASE_BYTES_PER_SAMPLE = 668.0
BASE_FINAL_LOSS = 0.45000
LOSS_TOLERANCE = 0.0005  # "equal loss": final test logloss <= baseline + this
TRAFFIC_FACTOR = 4.0
# virga's default worker count on the local backend: the CPUs this process may use, at most 4.
DEFAULT_WORKERS = min(len(os.sched_getaffinity(0)), 4)
SCALE_WORKERS = tuple(sorted({1, 2, 4, DEFAULT_WORKERS}))
LATENCY_WORKERS = 8
LATENCY_ROWS = (("0 us", 0, 0), ("500 us", 500, 0), ("500 us + 60 MB/s", 500, 60))


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def median(xs):
    """Median with None as +infinity (a run that did not reach the target); None if
    the median itself is such a run."""
    v = sorted(math.inf if x is None else x for x in xs)
    if not v:
        return None
    m = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    return None if math.isinf(m) else m


def history_points(j):
    return [(h["seconds"], h["test_logloss"], h.get("samples")) for h in (j or {}).get("history", [])
            if h.get("test_logloss") is not None and math.isfinite(h["test_logloss"])]


def reach(j, target):
    """(seconds, samples) of the first evaluation at or below target, else (None, None)."""
    if target is None:
        return None, None
    for t, loss, n in sorted(history_points(j)):
        if loss <= target:
            return t, n
    return None, None


def reach_interpolated(j, target):
    """When the loss crossed target, read off the straight line between the last evaluation
    above it and the first at or below it (seconds), else None. A loss curve that flattens
    lies below that chord, so this is still no earlier than the crossing; it is finer than the
    evaluation interval, which reach() rounds up to."""
    if target is None:
        return None
    prev = None
    for t, loss, _ in sorted(history_points(j)):
        if loss <= target:
            if prev is None or prev[1] <= loss:
                return t
            return prev[0] + (prev[1] - target) / (prev[1] - loss) * (t - prev[0])
        prev = (t, loss)
    return None


# --- Vowpal Wabbit -----------------------------------------------------------
def vw_probe(path):
    """(version, None) if `path` is a working vw, else (None, reason)."""
    if not path:
        return None, "not set (VW=/path/to/vw enables it; docs/benchmarks.md says how to build it)"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return None, f"VW={path} is not an executable file"
    try:
        p = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"`{path} --version` failed: {e}"
    v = (p.stdout.strip() or p.stderr.strip()).splitlines()
    if p.returncode != 0 or not v:
        return None, f"`{path} --version` exited {p.returncode}"
    return v[0].replace(" (git commit: )", ""), None


def svm_to_vw(s, src, dst):
    """LIBSVM text (virga dump: label 0/1, 1-based hashed indices) to VW text:
    `-1|1 |f idx:val ...` (label <= 0 -> -1). VW hashes an all-digit feature name
    to its value plus the namespace's seed, so with -b = the dataset's hash bits the
    features stay one-to-one. Returns the wall seconds (sed)."""
    cmd = ["sed", "-E", "-e", r"s/^(-[^ ]*|0|0\.0*)( |$)/-1 |f /", "-e", "t", "-e", r"s/^[^ ]+( |$)/1 |f /",
           src]
    s.cmds.append(s.show(cmd) + " > " + s.show([dst]))
    t0 = time.time()
    with open(dst, "w") as out:
        rc = subprocess.run(cmd, stdout=out).returncode
    if rc != 0:
        s.fail(f"sed {src} -> VW text: exit {rc}")
        return None
    return time.time() - t0


def vw_logloss(test_vw, preds):
    """Test logloss of `vw -t --link logistic -p` probabilities against the labels of test_vw."""
    n = loss = 0
    with open(test_vw) as t, open(preds) as p:
        for tl, pl in zip(t, p):
            y = float(tl.split(None, 1)[0]) > 0
            q = min(max(float(pl.split()[0]), 1e-15), 1 - 1e-15)
            loss -= math.log(q if y else 1 - q)
            n += 1
    return loss / n if n else None


def vw_figure2(s, ds, target, vw, quick):
    """VW on the dataset of a Figure 2 section: the learning-rate grid (one pass from
    the cache), then at the best rate a curve over passes from the cache and runs from
    text (one pass; the passes the cache curve needed to reach the target if more).
    Every time is a vw run's wall time; the test loss comes from a separate
    `vw -t -i MODEL -p PREDS --link logistic` run."""
    r = {"available": False, "grid": [], "cache": [], "text": [], "best_l": None}
    r["version"], why = vw_probe(vw)
    if r["version"] is None:
        r["reason"] = why
        if vw:  # asked for and not usable
            s.fail(f"{ds['tag']}: VW: {why}")
        return r
    tag = ds["tag"]
    tr, te = os.path.join(s.tmp, tag + ".train.vw"), os.path.join(s.tmp, tag + ".test.vw")
    c1, c2 = svm_to_vw(s, ds["train_svm"], tr), svm_to_vw(s, ds["test_svm"], te)
    if None in (c1, c2):
        r["reason"] = "failed: the conversion to VW text"
        return r
    r["convert_seconds"] = c1 + c2
    cache, model, preds = (os.path.join(s.tmp, tag + x) for x in (".vw.cache", ".vw.model", ".vw.preds"))
    bits = ["-b", str(ds.get("hash_bits") or 20)]
    common = bits + ["--loss_function", "logistic", "--quiet"]

    def vw_run(args, what):
        rc, wall, _, err = s.run([vw] + args, f"{tag}-vw-{what}", 7200)
        if rc != 0:
            s.fail(f"{tag}: vw {what}: {s.reason(err)}")
            return None
        return wall

    def test_loss(what):
        cmd = [vw, "-t", "-i", model, "-d", te, "-p", preds, "--link", "logistic", "--quiet"]
        rc, _, _, err = s.run(cmd, f"{tag}-vw-{what}-predict", 3600, record=False)
        if rc != 0:
            s.fail(f"{tag}: vw {what} predict: {s.reason(err)}")
            return None
        return vw_logloss(te, preds)

    def trained(args, what, lr, passes):
        """Trains (args), then tests the model: the run's record, None if either failed."""
        wall = vw_run(args, what)
        cpu = s.last_cpu
        loss = test_loss(what) if wall is not None else None
        if loss is None:
            return None
        return {"l": lr, "passes": passes, "seconds": wall, "cpu": cpu, "test_logloss": loss}

    # Reading alone (--noop: no learning): the text, then writing and reading the cache.
    r["text_read_seconds"] = vw_run(bits + ["-d", tr, "--noop", "--quiet"], "read-text")
    r["cache_write_seconds"] = vw_run(bits + ["-d", tr, "--cache_file", cache, "-k", "--noop", "--quiet"],
                                      "write-cache")
    r["cache_read_seconds"] = vw_run(bits + ["--cache_file", cache, "--noop", "--quiet"], "read-cache")
    if None in (r["text_read_seconds"], r["cache_write_seconds"], r["cache_read_seconds"]):
        r["reason"] = "failed: reading the data"
        return r
    grid = [0.25, 0.5, 1.0] if quick else [0.0625, 0.125, 0.25, 0.5, 1.0, 2.0]
    for lr in grid:
        run = trained(common + ["--cache_file", cache, "-l", f"{lr:g}", "-f", model], f"cache-l{lr:g}", lr, 1)
        if run is None:
            r["reason"] = "failed: the learning-rate grid"
            return r
        r["grid"].append(run)
        log(f"{tag}: VW -l {lr:g}, 1 pass from the cache: {run['test_logloss']:.5f} ({run['seconds']:.2f} s)")
    best = min(r["grid"], key=lambda g: g["test_logloss"])
    r["best_l"] = best["l"]
    r["edge"] = best["l"] in (grid[0], grid[-1])
    rows = ds["rows_train"] if ds.get("rows_train") else None
    r["cache"].append(dict(best))
    for p in ([2] if quick else [2, 3, 5]):
        run = trained(common + ["--cache_file", cache, "-l", f"{best['l']:g}", "--passes", str(p),
                                "--holdout_off", "-f", model], f"cache-p{p}", best["l"], p)
        if run is None:
            break
        r["cache"].append(run)
        log(f"{tag}: VW -l {best['l']:g}, {p} passes from the cache: {run['test_logloss']:.5f} "
            f"({run['seconds']:.2f} s)")
    # From text: one pass with no cache; then, if the cache curve reached the target only
    # after more passes, that many passes from text (the first one writes the cache, -c -k).
    first = next((c for c in r["cache"] if target is not None and c["test_logloss"] <= target), None)
    text_passes = [1] + ([first["passes"]] if first and first["passes"] > 1 else [])
    for p in text_passes:
        args = common + ["-d", tr, "-l", f"{best['l']:g}", "-f", model]
        if p > 1:
            args += ["--cache_file", cache + ".text", "-k", "--passes", str(p), "--holdout_off"]
        run = trained(args, f"text-p{p}", best["l"], p)
        if run is None:
            break
        r["text"].append(run)
        log(f"{tag}: VW -l {best['l']:g}, {p} pass(es) from text: {run['test_logloss']:.5f} "
            f"({run['seconds']:.2f} s)")
    for f in (te, cache + ".text", model, preds):
        if os.path.exists(f):
            os.remove(f)
    # The text and the cache stay for the interleaved rounds of comm_sections (which
    # remove them); the best rate's one-pass runs there are the same computation.
    r["files"] = {"text": tr, "cache": cache, "model": model, "common": common}
    for k in ("cache", "text"):
        # The fewest passes that reach the target (VW's loss does not depend on timing, so
        # this choice does not either), then the quickest of those runs; its one-pass runs
        # are timed again in the interleaved rounds. By time alone, a 2-pass run that
        # happened to be quicker than a slowed 1-pass one was taken once (2026-12-07 21:15).
        hit = next((c for c in sorted(r[k], key=lambda c: (c["passes"], c["seconds"]))
                    if target is not None and c["test_logloss"] <= target), None)
        r["ttt_" + k] = hit["seconds"] if hit else None
        r["passes_" + k] = hit["passes"] if hit else None
        r["cpu_" + k] = hit.get("cpu") if hit else None
    r["examples_to_target"] = r["passes_cache"] * rows if (r["passes_cache"] and rows) else None
    r["points_cache"] = [(c["seconds"], c["test_logloss"]) for c in sorted(r["cache"], key=lambda c: c["seconds"])]
    r["points_text"] = [(c["seconds"], c["test_logloss"]) for c in sorted(r["text"], key=lambda c: c["seconds"])]
    r["available"] = True
    return r


# --- scaling, latency, traffic ------------------------------------------------
def _train(s, tag, args, timeout):
    j, wall, extra = s.train(tag, "server", args, timeout)
    row = {"json": None, "wall": wall, "reason": extra.get("reason")}
    if j is None:
        return row
    cpu = extra.get("cpu_seconds")
    row.update({"json": {k: j.get(k) for k in ("state", "test_logloss", "train_seconds", "samples",
                                                "samples_per_second", "epochs", "minibatch", "traffic",
                                                "iteration_us", "history")},
                "cpu_seconds": cpu, "cores": cpu / wall if cpu is not None and wall > 0 else None})
    return row


def _summary(rows, target):
    """Medians over the rounds of one configuration."""
    ok = [x for x in rows if x["json"]]
    hits = [reach(x["json"], target) for x in rows]
    interp = [reach_interpolated(x["json"], target) for x in rows]
    out = {"rounds": len(rows), "ok": len(ok),
           "ttt": median([h[0] for h in hits]), "ttt_all": [h[0] for h in hits],
           "ttt_interpolated": median(interp), "ttt_interpolated_all": interp,
           "samples_to_target": median([h[1] for h in hits]),
           "wall": median([x["wall"] for x in ok]),
           "samples_per_second": median([x["json"]["samples_per_second"] for x in ok]),
           "cores": median([x["cores"] for x in ok if x.get("cores") is not None]),
           "cpu_seconds": median([x["cpu_seconds"] for x in ok if x.get("cpu_seconds") is not None]),
           "final_loss": median([x["json"]["test_logloss"] for x in ok]),
           "train_seconds": median([x["json"]["train_seconds"] for x in ok]),
           "reasons": sorted({x["reason"] for x in rows if x.get("reason")})}
    tr = [x["json"].get("traffic") or {} for x in ok]
    out["bytes_per_sample"] = median([t.get("bytes_per_sample") for t in tr if t.get("bytes_per_sample")])
    out["bytes_per_iteration"] = median([t.get("bytes_per_iteration") for t in tr if t.get("bytes_per_iteration")])
    if ok and not any(t.get("bytes_per_sample") for t in tr):
        out["no_traffic"] = True
    return out


def _vw_rounds(s, vwr, rd):
    """One round of VW at its best rate, one pass from the cache and one from text (the
    runs of Figure 2 that reached the target, again: VW is deterministic, so their loss
    is the one measured there): {"cache": wall, "text": wall}, None where a run failed."""
    f = vwr["files"]
    out = {}
    for k, data in (("cache", ["--cache_file", f["cache"]]), ("text", ["-d", f["text"]])):
        if not vwr.get("ttt_" + k) or vwr.get("passes_" + k) != 1:
            out[k] = None  # one pass did not reach the target: nothing to time again
            continue
        cmd = [s.a.vw] + f["common"] + data + ["-l", f"{vwr['best_l']:g}", "-f", f["model"]]
        rc, wall, _, err = s.run(cmd, f"synth-vw-{k}-r{rd}", 3600)
        if rc != 0:
            s.fail(f"synth: vw {k} round {rd}: {s.reason(err)}")
            wall = None
        out[k] = wall
    return out


def comm_sections(s, ds, target, rounds, quick, vwr=None):
    """The scaling, latency and traffic sections on the synthetic set; R interleaved
    rounds of each section's configurations (and of VW's one-pass runs, when VW is
    there). Returns the medians and every run."""
    tag = "synth"
    ev = "0.2" if quick else "0.25"
    cap = 20 if quick else 120
    lo = 10 if quick else 30
    res = {"rounds": rounds, "eval": ev, "cap": cap, "lo": lo, "scaling": {}, "latency": {}, "traffic": {}}
    if target is None:
        res["reason"] = "no target (LIBLINEAR gave no loss)"
        return res
    tgt = ["--target-loss", f"{target:.6f}"]
    runs = {("scaling", w): [] for w in SCALE_WORKERS}
    runs.update({("latency", name): [] for name, _, _ in LATENCY_ROWS})
    runs[("traffic", "defaults")] = []
    for rd in range(1, rounds + 1):
        log(f"== issue 15 sections, round {rd} of {rounds}")
        for w in SCALE_WORKERS:
            args = ["--dataset", ds["train"], "--workers", str(w), "--eval-interval", ev,
                    "--time-limit", str(cap)] + tgt
            runs[("scaling", w)].append(_train(s, f"scale-w{w}-r{rd}", args, cap + 300))
        if vwr and vwr.get("available") and vwr.get("files"):
            res.setdefault("vw_rounds", []).append(_vw_rounds(s, vwr, rd))
        base = None
        for name, rtt, mbps in LATENCY_ROWS:
            # Capped at 4x this round's 0 us time (2x decides the target), within [lo, cap].
            lim = cap if base is None else min(max(4 * base, lo), cap)
            args = ["--dataset", ds["train"], "--workers", str(LATENCY_WORKERS), "--eval-interval", ev,
                    "--time-limit", f"{lim:.0f}"] + tgt
            if rtt:
                args += ["--emulate-rtt-us", str(rtt)]
            if mbps:
                args += ["--emulate-mbps", str(mbps)]
            row = _train(s, f"latency-{rtt}us-{mbps}mbps-r{rd}", args, lim + 300)
            row["limit"] = lim
            runs[("latency", name)].append(row)
            if base is None:
                base = reach(row["json"], target)[0] or (row["json"] or {}).get("train_seconds")
        args = ["--dataset", ds["train"], "--eval-interval", "3600"]  # the defaults (workers, 5 epochs)
        runs[("traffic", "defaults")].append(_train(s, f"traffic-defaults-r{rd}", args, 3600))
    for (sec, key), rows in runs.items():
        summ = _summary(rows, target)
        if sec == "latency":
            summ["limit"] = max((x.get("limit") or 0) for x in rows)
            summ["train_max"] = max((x["json"]["train_seconds"] for x in rows if x["json"]), default=None)
        res[sec][str(key)] = summ
        if summ.get("no_traffic"):
            s.fail(f"{sec} {key}: the result JSON has no traffic figures")
    for x in runs.values():  # keep the raw runs small: no history
        for row in x:
            if row["json"]:
                row["json"].pop("history", None)
    res["runs"] = {f"{sec}|{key}": rows for (sec, key), rows in runs.items()}
    for k in ("cache", "text"):
        walls = [r[k] for r in res.get("vw_rounds", []) if r.get(k) is not None]
        if walls:
            res["vw_" + k] = median(walls)
            res["vw_" + k + "_all"] = walls
    return res


def remove_vw_files(vwr):
    for f in ((vwr or {}).get("files") or {}).values():
        if isinstance(f, str) and os.path.exists(f):
            os.remove(f)


# --- report -----------------------------------------------------------------------
def fmt(x, spec=".2f", none="—"):
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def targets_table(w, big, comm, vwr, e2e, full):
    """The 'Targets (issue 15)' table. big: Figure 2 of the synthetic set (or None)."""
    scope = "" if full else " (quick: not the 2M-row set)"
    w("| target | measured | verdict |")
    w("|---|---|---|")
    sc = (comm or {}).get("scaling", {})
    s1, s2 = sc.get("1", {}), sc.get("2", {})
    if s1.get("ttt") and s2.get("ttt"):
        x = s1["ttt"] / s2["ttt"]
        w(f"| 2 workers >= 1.6x sooner to the target than 1{scope} | 1 worker {s1['ttt']:.2f} s, 2 workers "
          f"{s2['ttt']:.2f} s: {x:.2f}x (medians){scaling_bound(s1, s2)} | {'met' if x >= 1.6 else '**not met**'} |")
    else:
        w(f"| 2 workers >= 1.6x sooner to the target than 1{scope} | {_why(s1, s2)} | **not met** |")
    c2 = s2.get("cores")
    w(f"| the 2-worker job uses > 1.7 of the 2 cores{scope} | {fmt(c2)} cores (median; user+sys of the whole "
      f"job over its wall time) | {'not measured' if c2 is None else ('met' if c2 > 1.7 else '**not met**')} |")
    lat = (comm or {}).get("latency", {})
    b = lat.get(LATENCY_ROWS[0][0], {})
    for name, rtt, mbps in LATENCY_ROWS[1:]:
        x = lat.get(name, {})
        what = f"8 workers at {name} round trip{' per connection' if mbps else ''} <= 2x the time at 0 us{scope}"
        if b.get("ttt") and x.get("ttt"):
            q = x["ttt"] / b["ttt"]
            w(f"| {what} | 0 us {b['ttt']:.2f} s, {name} {x['ttt']:.2f} s: {q:.2f}x | "
              f"{'met' if q <= 2 else '**not met**'} |")
        elif b.get("ttt") and x.get("ok"):
            w(f"| {what} | 0 us {b['ttt']:.2f} s, {name} did not reach it in {fmt(x.get('train_max'), '.1f')} s "
              f"(> {x['train_max'] / b['ttt']:.1f}x) | **not met** |")
        else:
            w(f"| {what} | {_why(b, x)} | **not met** |")
    t = (comm or {}).get("traffic", {}).get("defaults", {})
    bps, loss = t.get("bytes_per_sample"), t.get("final_loss")
    goal = BASE_BYTES_PER_SAMPLE / TRAFFIC_FACTOR
    if bps and loss is not None:
        ok = bps <= goal and loss <= BASE_FINAL_LOSS + LOSS_TOLERANCE
        w(f"| defaults: <= {goal:.0f} bytes/sample (4x fewer than the baseline {BASE_BYTES_PER_SAMPLE:.0f}) at the "
          f"baseline's final loss {BASE_FINAL_LOSS:.5f} (+{LOSS_TOLERANCE}){scope} | {bps:.0f} bytes/sample "
          f"({BASE_BYTES_PER_SAMPLE / bps:.2f}x fewer), final test logloss {loss:.5f} | {'met' if ok else '**not met**'} |")
    else:
        w(f"| defaults: 4x fewer bytes/sample at equal loss{scope} | {_why(t)} | **not met** |")
    base = big["server"]["ttt"] if big else None
    vc = vwr.get("ttt_cache") if vwr else None
    how = "Figure 2's runs"
    dw = sc.get(str(DEFAULT_WORKERS), {})
    if (comm or {}).get("vw_cache") and dw.get("ttt"):
        # Medians of the interleaved rounds: virga at its defaults (section 6's default
        # worker count) against VW's one pass from its cache at its best rate.
        base, vc = dw["ttt"], comm["vw_cache"]
        how = f"medians of {comm['rounds']} interleaved rounds"
    if not (vwr and vwr.get("available")):
        why = (vwr or {}).get("reason", "not run")
        w(f"| time to target <= 0.5 x VW from its cache{scope} | VW absent: {why} | not measured |")
        w(f"| end to end (ingest + train) sooner than VW from text{scope} | VW absent | not measured |")
        return
    if base and vc:
        w(f"| time to target <= 0.5 x VW from its cache{scope} | virga {base:.2f} s, VW {vc:.2f} s "
          f"({vwr['passes_cache']} pass(es), -l {vwr['best_l']:g}; {how}): virga takes {base / vc:.2f}x VW's time | "
          f"{'met' if base <= 0.5 * vc else '**not met**'} |")
    elif base:
        w(f"| time to target <= 0.5 x VW from its cache{scope} | virga {base:.2f} s; VW from its cache did not reach "
          f"it ({len(vwr['cache'])} runs up to {max(c['passes'] for c in vwr['cache'])} passes) | met |")
    else:
        w(f"| time to target <= 0.5 x VW from its cache{scope} | virga did not reach the target | **not met** |")
    if e2e and e2e.get("virga") and e2e.get("vw"):
        ok = e2e["virga"] < e2e["vw"]
        w(f"| end to end (ingest + train to target) sooner than VW from text{scope} | virga {e2e['virga']:.2f} s "
          f"(ingest {e2e['ingest']:.2f} + train {e2e['train']:.2f}), VW {e2e['vw']:.2f} s: virga takes "
          f"{e2e['virga'] / e2e['vw']:.2f}x VW's time "
          f"| {'met' if ok else '**not met**'} |")
    elif e2e and e2e.get("virga"):
        w(f"| end to end (ingest + train to target) sooner than VW from text{scope} | virga {e2e['virga']:.2f} s; "
          "VW from text did not reach the target | met |")
    else:
        w(f"| end to end (ingest + train to target) sooner than VW from text{scope} | "
          f"{(e2e or {}).get('reason', 'not measured')} | **not met** |")


def scaling_bound(s1, s2):
    """What the 2-vs-1 ratio can be on this machine's 2 cores: T1 = C1 / k1 and T2 >= C2 / 2
    (C: the job's CPU seconds, k1: the cores the 1-worker job keeps busy), so T1 / T2 <=
    (C1 / C2) * (2 / k1). A 1-worker job that already keeps k1 cores busy leaves 2 - k1 for
    a second worker to use."""
    c1, c2, k1 = s1.get("cpu_seconds"), s2.get("cpu_seconds"), s1.get("cores")
    if not (c1 and c2 and k1):
        return ""
    return (f"; the 1-worker job keeps {k1:.2f} cores busy and its CPU seconds are {c1 / c2:.2f}x the "
            f"2-worker job's, so 2 cores allow at most {(c1 / c2) * (2 / k1):.2f}x")


def _why(*xs):
    for x in xs:
        if not x:
            return "not run"
        if x.get("reasons"):
            return "; ".join(x["reasons"])[:200]
        if not x.get("ok"):
            return "no result"
        if x.get("ttt") is None and "ttt_all" in x:
            return "target not reached"
    return "not measured"


def end_to_end(big, comm, ingest_seconds):
    """virga: ingest of the raw TSV + the scaling run's wall time at the default worker count
    (start-up to the target, median); VW: the wall time of its first run from text that reached
    the target."""
    vwr = (big or {}).get("vw") or {}
    e = {}
    w4 = (comm or {}).get("scaling", {}).get(str(DEFAULT_WORKERS), {})
    if ingest_seconds is None or not w4.get("ttt"):
        e["reason"] = f"virga: no ingest time or the {DEFAULT_WORKERS}-worker run did not reach the target"
        return e
    e.update({"ingest": ingest_seconds, "train": w4["wall"], "virga": ingest_seconds + w4["wall"],
              "virga_train_cpu": w4.get("cpu_seconds")})
    if vwr.get("available"):
        e["vw"] = (comm or {}).get("vw_text") or vwr.get("ttt_text")
    return e


def rx(a, b):
    """a / b as '1.23x', or '—'."""
    return f"{a / b:.2f}x" if a and b else "—"


def _cpu(c):
    return f" ({c['cpu']:.2f} s CPU)" if c.get("cpu") is not None else ""


def vw_rows(w, r, base):
    """VW's rows in a Figure 2 table."""
    v = r.get("vw") or {}
    if not v.get("available"):
        w(f"| Vowpal Wabbit | — | — | — | — | absent: {v.get('reason', 'not run')} |")
        return
    ratio = lambda t: f"{t / base:.2f}x" if (t and base) else "—"
    last = v["cache"][-1]
    pts = ", ".join(f"{c['passes']}: {c['test_logloss']:.5f} in {c['seconds']:.2f} s{_cpu(c)}" for c in v["cache"])
    w(f"| VW from its cache, -l {v['best_l']:g} | {last['test_logloss']:.5f} | {last['seconds']:.2f} | "
      f"{fmt(v['ttt_cache'], '.2f', 'not reached')} | {ratio(v['ttt_cache'])} | `--loss_function logistic`, "
      f"runs at passes {pts} (wall of each run; reading the cache alone {v['cache_read_seconds']:.2f} s) |")
    pts = ", ".join(f"{c['passes']}: {c['test_logloss']:.5f} in {c['seconds']:.2f} s{_cpu(c)}" for c in v["text"])
    last = v["text"][-1] if v["text"] else None
    w(f"| VW from text, -l {v['best_l']:g} | {fmt(last and last['test_logloss'], '.5f')} | "
      f"{fmt(last and last['seconds'])} | {fmt(v['ttt_text'], '.2f', 'not reached')} | {ratio(v['ttt_text'])} | "
      f"runs at passes {pts} (more than 1: the first pass writes a cache, `-c -k`); parsing the text alone "
      f"{v['text_read_seconds']:.2f} s |")


def vw_note(w, r):
    v = r.get("vw") or {}
    if not v.get("available"):
        return
    w("")
    w(f"VW ({v['version']}): its text made from the same LIBSVM dump (`label |f index:value`, labels -1/1; "
      f"sed {v['convert_seconds']:.2f} s, not in any time), `-b` = the dataset's hash bits, `--loss_function "
      "logistic`; test loss from `vw -t -i MODEL -p PREDS --link logistic` on the test split, logloss in Python. "
      "Learning rates, one pass from the cache: " + ", ".join(
          f"-l {g['l']:g}: {g['test_logloss']:.5f} ({g['seconds']:.2f} s)" for g in v["grid"])
      + (" (best at the edge of the grid)" if v.get("edge") else "")
      + f". Reading alone (`--noop`): text {v['text_read_seconds']:.2f} s, writing the cache "
      f"{v['cache_write_seconds']:.2f} s, reading the cache {v['cache_read_seconds']:.2f} s."
      + (f" Examples to the target: VW {v['examples_to_target']:,} ({v['passes_cache']} pass(es))"
         + (f", virga {r['server_samples_to_target']:,}" if r.get("server_samples_to_target") else "") + "."
         if v.get("examples_to_target") else ""))


def sections(w, comm, vwr, e2e, full):
    """Sections 5 (VW, end to end), 6 (scaling), 7 (latency), 8 (traffic)."""
    w("")
    w("## 5. Vowpal Wabbit and end to end (issue 15)")
    w("")
    if not (vwr and vwr.get("available")):
        w(f"VW absent: {(vwr or {}).get('reason', 'not run')}. Its rows in Figure 2 say so; nothing is estimated.")
    else:
        w("On the synthetic set (its Figure 2 table has VW's rows). End to end: virga from the raw Criteo TSV "
          f"(`virga ingest`, then `virga train --target-loss` with the default {DEFAULT_WORKERS} workers: the wall time "
          "of the command, start-up included, median of the scaling section's runs) against VW from its text file "
          + ("(the median wall time of its one-pass runs from text in the same interleaved rounds)."
             if (comm or {}).get("vw_text") else "(the wall time of its first run from text that reached the target)."))
        w("")
        w("| | virga | VW | VW / virga |")
        w("|---|---|---|---|")
        v = vwr
        e = e2e or {}
        w(f"| end to end to the target, s | {fmt(e.get('virga'))} (ingest {fmt(e.get('ingest'))} + train "
          f"{fmt(e.get('train'))}) | {fmt(e.get('vw'), '.2f', 'not reached')} from text | {rx(e.get('vw'), e.get('virga'))} |")
        w(f"| training time to the target, s | {fmt(v.get('virga_ttt'))} (Figure 2 run) | "
          f"{fmt(v.get('ttt_cache'), '.2f', 'not reached')} from its cache | {rx(v.get('ttt_cache'), v.get('virga_ttt'))} |")
        dw = comm.get("scaling", {}).get(str(DEFAULT_WORKERS), {}) if comm else {}
        if comm and comm.get("vw_cache") and dw.get("ttt"):
            each = lambda xs: ", ".join(f"{x:.2f}" for x in xs)
            w(f"| training time to the target, s, medians of {comm['rounds']} interleaved rounds | {dw['ttt']:.2f} "
              f"({each(t for t in dw.get('ttt_all', []) if t)}; section 6, {DEFAULT_WORKERS} workers) | "
              f"{comm['vw_cache']:.2f} ({each(comm['vw_cache_all'])}) from its cache"
              + (f"; {comm['vw_text']:.2f} ({each(comm['vw_text_all'])}) from text" if comm.get("vw_text") else "")
              + f" | {rx(comm['vw_cache'], dw['ttt'])} |")
        w(f"| CPU seconds (user+sys) to the target | {fmt(e.get('virga_train_cpu'))} (the whole train job, {DEFAULT_WORKERS} workers, "
          f"start-up included; median of section 6) | {fmt(v.get('cpu_cache'))} from its cache, "
          f"{fmt(v.get('cpu_text'))} from text | {rx(v.get('cpu_cache'), e.get('virga_train_cpu'))} (cache) |")
        w(f"| examples to the target | {fmt(v.get('virga_samples'), ',')} | {fmt(v.get('examples_to_target'), ',')} | "
          f"{rx(v.get('examples_to_target'), v.get('virga_samples'))} |")
    if not comm or comm.get("reason"):
        w("")
        w(f"Sections 6-8 not run: {(comm or {}).get('reason', 'the synthetic set failed')}.")
        return
    R = comm["rounds"]
    sc = comm["scaling"]
    w("")
    w("## 6. Scaling with workers (issue 15)")
    w("")
    w(f"`virga train --workers N --target-loss T --eval-interval {comm['eval']}` on the synthetic set, embedded "
      f"server, {R} interleaved round(s), medians. CPU: user+sys seconds of the whole job (driver, embedded "
      "server, every worker function: getrusage of the reaped process tree) over its wall time. Time to target: "
      "the first evaluation at or below it (the target's verdict); interpolated: on the line between the "
      "evaluations before and after the crossing (finer than the evaluation interval; information only).")
    w("")
    w("| workers | time to target, s (each round) | speed-up over 1 worker | interpolated, s | its speed-up | "
      "samples/s | CPU, cores | wall, s |")
    w("|---|---|---|---|---|---|---|---|")
    b1 = sc.get("1", {}).get("ttt")
    i1 = sc.get("1", {}).get("ttt_interpolated")
    for wk in SCALE_WORKERS:
        x = sc.get(str(wk), {})
        each = ", ".join(fmt(t, ".2f", "not reached") for t in x.get("ttt_all", []))
        xi = x.get("ttt_interpolated")
        w(f"| {wk} | {fmt(x.get('ttt'), '.2f', 'not reached')} ({each}) | "
          f"{fmt(b1 / x['ttt'] if b1 and x.get('ttt') else None)}x | {fmt(xi, '.2f', 'not reached')} | "
          f"{fmt(i1 / xi if i1 and xi else None)}x | {fmt(x.get('samples_per_second'), '.0f')} | "
          f"{fmt(x.get('cores'))} | {fmt(x.get('wall'))} |")
    lat = comm["latency"]
    w("")
    w("## 7. Emulated cloud latency (issue 15)")
    w("")
    w(f"{LATENCY_WORKERS} workers, `--emulate-rtt-us` (a TCP shim adding the round trip between the workers and "
      "the server) and `--emulate-mbps` (a bandwidth cap per worker connection), `--target-loss T`, "
      f"{R} interleaved round(s), medians. A run stops at 4x its round's 0 us time (within "
      f"{comm.get('lo', 30)}..{comm['cap']} s; the 0 us run at {comm['cap']} s): "
      "2x decides the target.")
    w("")
    w("| round trip | time to target, s (each round) | ratio to 0 us | samples/s | bytes/sample | CPU, cores |")
    w("|---|---|---|---|---|---|")
    b0 = lat.get(LATENCY_ROWS[0][0], {}).get("ttt")
    for name, _, _ in LATENCY_ROWS:
        x = lat.get(name, {})
        each = ", ".join(fmt(t, ".2f", "not reached") for t in x.get("ttt_all", []))
        w(f"| {name} | {fmt(x.get('ttt'), '.2f', 'not reached')} ({each}) | "
          f"{fmt(x['ttt'] / b0 if b0 and x.get('ttt') else None)}x | {fmt(x.get('samples_per_second'), '.0f')} | "
          f"{fmt(x.get('bytes_per_sample'), '.0f')} | {fmt(x.get('cores'))} |")
    t = comm["traffic"].get("defaults", {})
    w("")
    w("## 8. Traffic per sample (issue 15)")
    w("")
    w(f"`virga train` at its defaults ({DEFAULT_WORKERS} workers here, 5 epochs, minibatch auto), {R} round(s), medians: the result "
      "JSON's `traffic` (bytes sent + received by the workers on their training connections, per sample and per "
      f"iteration) and the final test logloss. The issue's baseline: {BASE_BYTES_PER_SAMPLE:.0f} bytes/sample, "
      f"final loss {BASE_FINAL_LOSS:.5f} on the 2M-row set.")
    w("")
    w("| bytes/sample | bytes/iteration | final test logloss | ratio to the baseline's bytes | train s | samples/s |")
    w("|---|---|---|---|---|---|")
    bps = t.get("bytes_per_sample")
    w(f"| {fmt(bps, '.1f')} | {fmt(t.get('bytes_per_iteration'), '.0f')} | {fmt(t.get('final_loss'), '.5f')} | "
      f"{fmt(bps / BASE_BYTES_PER_SAMPLE if bps else None, '.3f')}x | {fmt(t.get('train_seconds'))} | "
      f"{fmt(t.get('samples_per_second'), '.0f')} |")


def plot(plt, comm, out):
    """compare_issue15.png: time to target against workers (with the CPU used), and
    against the emulated round trip. None if the sections did not run."""
    if not comm or comm.get("reason") or not comm.get("scaling"):
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    sc = comm["scaling"]
    xs = [w for w in SCALE_WORKERS if sc.get(str(w), {}).get("ttt")]
    if xs:
        a1.plot(xs, [sc[str(w)]["ttt"] for w in xs], marker="o", color="tab:blue", label="time to target (median)")
        b1 = sc.get("1", {}).get("ttt")
        if b1:
            a1.plot(SCALE_WORKERS, [b1 / w for w in SCALE_WORKERS], ls="--", color="gray", label="linear speed-up")
        for w in xs:
            c = sc[str(w)].get("cores")
            if c is not None:
                a1.annotate(f"{c:.2f} cores", (w, sc[str(w)]["ttt"]), textcoords="offset points", xytext=(4, 6),
                            fontsize=8)
    a1.set_xticks(list(SCALE_WORKERS))
    a1.set_xlabel("workers")
    a1.set_ylabel("time to target, s")
    a1.set_title("Scaling (annotated: CPU of the whole job)")
    a1.legend(fontsize=8)
    lat = comm["latency"]
    names = [n for n, _, _ in LATENCY_ROWS]
    vals = [lat.get(n, {}).get("ttt") or 0 for n in names]
    a2.bar(names, vals, color=["tab:blue", "tab:orange", "tab:red"])
    if vals[0]:
        a2.axhline(2 * vals[0], color="gray", ls="--", lw=1, label="2x the 0 us time (target)")
        a2.legend(fontsize=8, loc="upper left")
        a2.set_ylim(top=max(max(vals), 2 * vals[0]) * 1.25)
    for x, v in enumerate(vals):
        a2.annotate(f"{v:.2f} s" if v else "not reached", (x, v), ha="center", va="bottom", fontsize=8)
    a2.set_ylabel("time to target, s")
    a2.set_title(f"{LATENCY_WORKERS} workers, emulated round trip")
    p = os.path.join(out, "compare_issue15.png")
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
