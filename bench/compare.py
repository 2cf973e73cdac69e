"""The comparison suite of issues 7 and 15; run it through bench/compare.sh (its
header says what is measured). Every command it runs is listed in the report.
Issue 15's parts (Vowpal Wabbit, scaling, latency, traffic) are in compare_issue15.py."""
import argparse
import datetime
import json
import math
import os
import re
import resource
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import compare_issue15 as i15

HERE = os.path.dirname(os.path.abspath(__file__))
CHANNELS = ("store", "redis")
MODES = ("server",) + CHANNELS
MODE_LABEL = {"server": "virga, parameter server", "store": "virga --channel store",
              "redis": "virga --channel redis", "liblinear": "LIBLINEAR", "sklearn": "scikit-learn SGD"}


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def fmt(x, spec=".2f", none="—"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, spec)


def ratio(x, base, spec=".2f"):
    if x is None or base is None or base == 0:
        return "—"
    return format(x / base, spec) + "x"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Suite:
    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.virga = a.virga
        self.tmp = tempfile.mkdtemp(prefix="virga-compare-")
        self.store = "file://" + os.path.join(self.tmp, "store")
        self.failures = []
        self.cmds = []
        self.token = os.path.join(self.tmp, "token")
        with open(self.token, "w") as f:
            f.write(secrets.token_hex(16) + "\n")
        os.chmod(self.token, 0o600)
        # None: usable; else the reason it is not available.
        self.channel_na = {c: None for c in CHANNELS}
        try:
            h = subprocess.run([self.virga, "train", "--help"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            h = ""
        if "--channel" not in h:
            for c in CHANNELS:
                self.channel_na[c] = "this virga binary has no `train --channel` option"
        self.procs = []

    # --- running commands -------------------------------------------------
    def show(self, cmd):
        s = " ".join(cmd)
        subs = [(self.tmp, "$TMP"), (self.virga, "virga"), (self.a.data, "$DATA")]
        if self.a.vw:
            subs.append((self.a.vw, "$VW"))
        for k, v in subs:
            s = s.replace(k, v)
        return s

    def run(self, cmd, tag, timeout, record=True):
        """Runs cmd; returns (rc, wall seconds, stdout, stderr). self.last_cpu: the
        user+sys seconds of cmd and every descendant it reaped (getrusage of the
        children; the suite reaps no other process meanwhile)."""
        if record:
            self.cmds.append(self.show(cmd))
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = -1, e.stdout or "", (e.stderr or "") + f"\n(timed out after {timeout} s)"
            out = out.decode() if isinstance(out, bytes) else out
            err = err.decode() if isinstance(err, bytes) else err
        wall = time.time() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        with open(os.path.join(self.tmp, tag + ".log"), "w") as f:
            f.write(out + "\n--- stderr\n" + err)
        return rc, wall, out, err

    def fail(self, what):
        log("FAILED: " + what)
        self.failures.append(what)

    @staticmethod
    def reason(err):
        lines = [l.strip() for l in err.splitlines()
                 if l.strip() and not l.startswith("Run with --help")]
        return lines[-1][:300] if lines else "no output"

    # --- processes the suite owns -----------------------------------------
    def start_redis(self):
        port = free_port()
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", self.tmp, "--loglevel", "warning"]
        self.cmds.append(self.show(cmd) + " &")
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return p, port
            except OSError:
                pass
            if p.poll() is not None:
                break
            time.sleep(0.05)
        stop(p)
        return None, f"redis-server did not answer PING on 127.0.0.1:{port}"

    def start_server(self):
        cmd = [self.virga, "server", "--port", "0", "--bind", "127.0.0.1", "--token-file", self.token]
        self.cmds.append(self.show(cmd) + " &")
        err = open(os.path.join(self.tmp, "server.err"), "ab")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        self.procs.append(p)
        # Raw reads: a buffered readline could hold the line select() waits for.
        deadline, buf, m = time.time() + 15, b"", None
        while m is None and time.time() < deadline:
            r, _, _ = select.select([p.stdout], [], [], max(deadline - time.time(), 0))
            chunk = os.read(p.stdout.fileno(), 4096) if r else b""
            if not chunk:
                break
            buf += chunk
            m = re.search(rb"listening on ([0-9.]+):(\d+)", buf)
        line = buf.decode(errors="replace").strip().splitlines()[-1] if buf.strip() else ""
        if not m:
            stop(p)
            return None, f"virga server did not start: {line or 'no output'}"
        # Drain its later output (connection logs) so a full pipe never blocks it.
        threading.Thread(target=shutil.copyfileobj, args=(p.stdout, err), daemon=True).start()
        return p, f"{m.group(1).decode()}:{m.group(2).decode()}"

    # --- virga train ---------------------------------------------------------
    def train(self, tag, mode, args, timeout, servers=None):
        """One `virga train` run. Returns (json or None, wall, extra); extra has
        'reason' on failure and 'server_hwm' (bytes) for an external server or redis."""
        extra = {}
        if mode in CHANNELS and self.channel_na[mode]:
            extra["reason"] = "not available: " + self.channel_na[mode]
            return None, 0, extra
        cmd = [self.virga, "train", "--store", self.store, "--model", "lr", "--quiet"] + args
        redis = None
        if mode in CHANNELS:
            cmd += ["--channel", mode]
        if mode == "redis":
            redis, port = self.start_redis()
            if redis is None:
                self.fail(f"{tag}: {port}")
                extra["reason"] = "failed: " + port
                return None, 0, extra
            cmd += ["--channel-uri", f"redis://127.0.0.1:{port}"]
        if servers:
            cmd += ["--servers", servers, "--token-file", self.token]
        out = os.path.join(self.tmp, tag + ".json")
        cmd += ["--json-out", out]
        rc, wall, _, err = self.run(cmd, tag, timeout)
        extra["cpu_seconds"] = self.last_cpu
        if redis is not None:
            extra["server_hwm"] = vm_hwm(redis.pid)
            stop(redis)
        j = None
        if rc == 0 and os.path.exists(out):
            try:
                j = json.load(open(out))
            except ValueError as e:
                err += f"\nbad result JSON: {e}"
        if j is None:
            why = self.reason(err)
            if mode in CHANNELS and "not implemented" in err:
                self.channel_na[mode] = f"`virga train --channel {mode}` says: {why}"
                extra["reason"] = "not available: " + self.channel_na[mode]
                log(f"{tag}: channel {mode} not available ({why})")
            else:
                extra["reason"] = f"failed (exit {rc}): {why}"
                self.fail(f"{tag}: virga train exit {rc}: {why}")
            return None, wall, extra
        log(f"{tag}: {j['state']}, test logloss {j['test_logloss']:.5f}, "
            f"{j['train_seconds']:.2f} s, {j['samples_per_second']:.0f} samples/s")
        if str(j.get("state", "")).startswith("failed"):
            self.fail(f"{tag}: job state {j['state']}")
        return j, wall, extra

    # --- data ------------------------------------------------------------------
    def ingest(self, name, inputs, test_fraction=None):
        cmd = [self.virga, "ingest", "--format", "criteo", "--store", self.store, "--dataset", name]
        for i in inputs:
            cmd += ["--input", i]
        if test_fraction is not None:
            cmd += ["--test-fraction", str(test_fraction)]
        rc, wall, _, err = self.run(cmd, "ingest-" + name, 1800)
        if rc != 0:
            self.fail(f"ingest {name}: {self.reason(err)}")
            return None
        return wall

    def inspect(self, name):
        """The dataset's manifest (`virga inspect --json`): hash_bits, train_rows, ..."""
        rc, _, out, err = self.run([self.virga, "inspect", "--store", self.store, "--dataset", name, "--json"],
                                   "inspect-" + name, 300, record=False)
        try:
            return json.loads(out) if rc == 0 else {}
        except ValueError:
            return {}

    def dump(self, name, split, path):
        cmd = [self.virga, "dump", "--store", self.store, "--dataset", name, "--out", path]
        if split != "train":
            cmd += ["--split", split]
        rc, wall, _, err = self.run(cmd, f"dump-{name}-{split}", 1800)
        if rc != 0:
            self.fail(f"dump {name} {split}: {self.reason(err)}")
            return None
        return wall


def ll_logloss(test, pred):
    """LIBLINEAR -b 1 output: 'labels A B' header, then 'label pA pB' per row."""
    with open(test) as t, open(pred) as p:
        labels = p.readline().split()[1:]
        pos = max(range(len(labels)), key=lambda i: float(labels[i]))
        n = loss = 0
        for tl, pl in zip(t, p):
            y = float(tl.split(None, 1)[0]) > 0
            q = min(max(float(pl.split()[1 + pos]), 1e-15), 1 - 1e-15)
            loss -= math.log(q if y else 1 - q)
            n += 1
    return loss / n


def liblinear(s, tag, train, test, grid, eps_list):
    """Best C at the default tolerance over `grid` (exponents of 2), then a
    curve at that C over tolerances. Times are liblinear-train's wall time minus
    its load time (a run with a tolerance so large that it stops before the
    first Newton step: reading the file plus one gradient)."""
    r = {"grid": [], "curve": [], "best": None, "best_c": None, "load_seconds": None}
    model, pred = os.path.join(s.tmp, tag + ".model"), os.path.join(s.tmp, tag + ".pred")

    def one(c, eps, what):
        cmd = ["liblinear-train", "-q", "-s", "0", "-c", f"{c:.10g}", "-B", "1"]
        if eps is not None:
            cmd += ["-e", f"{eps:g}"]
        rc, wall, _, err = s.run(cmd + [train, model], f"{tag}-ll-{what}", 7200)
        if rc != 0:
            s.fail(f"{tag}: liblinear-train -c {c:g} -e {eps}: {s.reason(err)}")
            return None, None
        rc2, _, _, err = s.run(["liblinear-predict", "-q", "-b", "1", test, model, pred],
                               f"{tag}-llp-{what}", 3600, record=False)
        if rc2 != 0:
            s.fail(f"{tag}: liblinear-predict: {s.reason(err)}")
            return None, None
        return wall, ll_logloss(test, pred)

    for e in grid:
        wall, loss = one(2.0 ** e, None, f"c{e}")
        if loss is None:
            return r
        r["grid"].append({"c_exp": e, "wall": wall, "test_logloss": loss})
        log(f"{tag}: LIBLINEAR C=2^{e}: {loss:.5f} ({wall:.1f} s)")
    best = min(r["grid"], key=lambda g: g["test_logloss"])
    r["best"], r["best_c"] = best["test_logloss"], best["c_exp"]
    r["edge"] = best["c_exp"] in (grid[0], grid[-1]) and len(grid) > 1
    c = 2.0 ** best["c_exp"]
    load_wall, _ = one(c, 1e9, "load")
    if load_wall is None:
        return r
    r["load_seconds"] = load_wall
    for eps in eps_list:
        if eps == 0.01:  # the default: the grid's run
            wall, loss = best["wall"], best["test_logloss"]
        else:
            wall, loss = one(c, eps, f"e{eps:g}")
            if loss is None:
                return r
        r["curve"].append({"eps": eps, "seconds": max(wall - load_wall, 0.0), "wall": wall,
                           "test_logloss": loss})
        log(f"{tag}: LIBLINEAR C=2^{best['c_exp']} -e {eps:g}: {loss:.5f} ({wall - load_wall:.1f} s)")
    r["curve"].sort(key=lambda p: p["seconds"])
    return r


def sklearn(s, tag, train, test, epochs, c_values):
    out = os.path.join(s.tmp, tag + ".sk.json")
    cmd = [sys.executable, os.path.join(HERE, "compare_sklearn.py"), train, test, str(epochs), out]
    cmd += [f"{c:.10g}" for c in c_values]
    rc, wall, _, err = s.run(cmd, tag + "-sklearn", 7200)
    try:
        j = json.load(open(out))
    except (OSError, ValueError):
        j = {"ok": False, "error": s.reason(err)}
    if not j.get("ok"):
        s.fail(f"{tag}: scikit-learn: {j.get('error')}")
    return j


def history_points(j):
    return [(h["seconds"], h["test_logloss"]) for h in (j or {}).get("history", [])
            if h.get("test_logloss") is not None and math.isfinite(h["test_logloss"])]


def first_reach(points, target):
    if target is None:
        return None
    for t, l in sorted(points):
        if l <= target:
            return t
    return None


def figure2(s, ds):
    """Test loss against training time on one data set, every system."""
    q = s.quick
    tag = ds["tag"]
    r = {"ds": ds, "systems": {}}
    log(f"{tag}: LIBLINEAR")
    r["liblinear"] = liblinear(s, tag, ds["train_svm"], ds["test_svm"], ds["grid"],
                               ds["eps"])
    log(f"{tag}: scikit-learn")
    bc = r["liblinear"].get("best_c")
    r["sklearn"] = sklearn(s, tag, ds["train_svm"], ds["test_svm"], ds["sk_epochs"],
                           [2.0 ** bc] if bc is not None else [])
    best = r["liblinear"].get("best")
    r["target"] = 1.01 * best if best else None
    base = ["--dataset", ds["train"], "--eval-interval", str(ds["eval"])]  # default workers
    if ds.get("test"):
        base += ["--test", ds["test"]]
    j, wall, extra = s.train(f"{tag}-fig2-server", "server", base, 3600)
    r["server"] = {"json": j, "wall": wall, **extra}
    ttt = first_reach(history_points(j), r["target"])
    ref = ttt or (j or {}).get("train_seconds") or 1.0
    lo, hi = ds["channel_limits"]
    limit = min(max(10.5 * ref, lo), hi)  # past 10x the server's time decides the 10x target
    r["channel_limit"] = limit
    for ch in CHANNELS:
        args = base + ["--time-limit", f"{limit:.1f}"]
        if r["target"]:
            args += ["--target-loss", f"{r['target']:.6f}"]
        j, wall, extra = s.train(f"{tag}-fig2-{ch}", ch, args, limit + 300)
        r[ch] = {"json": j, "wall": wall, **extra}
    # Time to target for each system.
    t = r["target"]
    for m in MODES:
        j = r[m]["json"]
        r[m]["points"] = history_points(j)
        r[m]["ttt"] = first_reach(r[m]["points"], t)
        if j and not r[m]["points"]:
            s.fail(f"{tag}: {m}: no evaluation in the history")
    ll = r["liblinear"]
    ll["points"] = [(p["seconds"], p["test_logloss"]) for p in ll["curve"]]
    ll["ttt"] = first_reach(ll["points"], t)
    sk = r["sklearn"]
    for run in sk.get("runs", []):
        run["pts"] = [(p["seconds"], p["test_logloss"]) for p in run["points"]]
        run["ttt"] = first_reach(run["pts"], t)
    reached = [run["ttt"] for run in sk.get("runs", []) if run["ttt"] is not None]
    sk["ttt"] = min(reached) if reached else None  # the sooner of its configurations
    r["server_samples_to_target"] = i15.reach(r["server"]["json"], t)[1]
    log(f"{tag}: Vowpal Wabbit")
    r["vw"] = i15.vw_figure2(s, ds, t, s.a.vw, q)
    if r["vw"].get("available"):
        r["vw"]["virga_ttt"] = r["server"]["ttt"]
        r["vw"]["virga_samples"] = r["server_samples_to_target"]
    return r


def breakdown(s, ds, seconds):
    """Per-iteration breakdown for minibatch 20 and 200, 4 workers, same data."""
    rows = {}
    for mb in (20, 200):
        for m in MODES:
            args = ["--dataset", ds["train"], "--workers", "4", "--minibatch", str(mb),
                    "--epochs", "100", "--time-limit", str(seconds), "--eval-interval", "3600"]
            j, wall, extra = s.train(f"fig3-{m}-mb{mb}", m, args, seconds + 300)
            rows[(m, mb)] = {"json": j, **extra}
            if j and not j["iteration_us"].get("iterations"):
                s.fail(f"fig3 {m} minibatch {mb}: no iterations measured")
    return rows


def bench_train(s, rows, seconds):
    out = os.path.join(s.tmp, "bench-train.json")
    cmd = [s.virga, "bench", "train", "--rows", str(rows), "--seconds", str(seconds), "--workers", "4",
           "--minibatch", "20", "200", "--placement", "default", "--json-out", out]
    rc, _, _, err = s.run(cmd, "bench-train", 1800)
    if rc != 0:
        s.fail(f"virga bench train: {s.reason(err)}")
        return {}
    j = json.load(open(out))
    return {r["minibatch"]: r for r in j["runs"]}


def throughput(s, ds, seconds):
    rows = {}
    for w in (1, 2, 4):
        for m in MODES:
            args = ["--dataset", ds["train"], "--workers", str(w), "--epochs", "100",
                    "--time-limit", str(seconds), "--eval-interval", "3600"]
            srv, servers = (None, None)
            if m == "server":
                srv, servers = s.start_server()
                if srv is None:
                    s.fail(f"throughput {w} workers: {servers}")
                    rows[(m, w)] = {"json": None, "reason": "failed: " + servers}
                    continue
            j, wall, extra = s.train(f"tput-{m}-w{w}", m, args, seconds + 300, servers=servers)
            if srv is not None:
                extra["server_hwm"] = vm_hwm(srv.pid)
                stop(srv)
            rss = [f["peak_rss_bytes"] for f in (j or {}).get("functions", []) if f.get("peak_rss_bytes")]
            extra["worker_rss_max"] = max(rss) if rss else None
            extra["worker_rss_mean"] = sum(rss) / len(rss) if rss else None
            rows[(m, w)] = {"json": j, **extra}
            if j:
                if not j.get("samples_per_second"):
                    s.fail(f"throughput {m} {w} workers: no samples/s")
                if not rss:
                    s.fail(f"throughput {m} {w} workers: no peak_rss_bytes in functions[]")
                if m != "store" and not extra.get("server_hwm"):
                    s.fail(f"throughput {m} {w} workers: no VmHWM of the server process")
    return rows


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return cpu, mem


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def versions(s):
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
        except OSError:
            return "?"
    v = {}
    v["liblinear"] = sh(["dpkg-query", "-W", "-f=${Version}", "liblinear-tools"]) or "?"
    v["redis"] = (re.search(r"v=(\S+)", sh(["redis-server", "--version"])) or [None, "?"])[1]
    v["sklearn"] = sh([sys.executable, "-c", "import sklearn; print(sklearn.__version__)"]) or "?"
    v["matplotlib"] = sh([sys.executable, "-c", "import matplotlib; print(matplotlib.__version__)"]) or "?"
    v["python"] = sys.version.split()[0]
    v["vw"] = i15.vw_probe(s.a.vw)[0] or "absent"
    rev = sh(["git", "-C", s.a.repo, "rev-parse", "--short", "HEAD"]) or "?"
    dirty = subprocess.run(["git", "-C", s.a.repo, "diff", "--quiet", "HEAD", "--", "src", "include", "tools"]).returncode
    built = datetime.datetime.fromtimestamp(os.path.getmtime(s.virga), datetime.timezone.utc)
    v["virga"] = (rev + (" + uncommitted changes in src/include/tools" if dirty else "")
                  + f"; binary {os.path.relpath(s.virga, s.a.repo)} built {built:%Y-%m-%d %H:%M} UTC")
    return v


# --- plots ------------------------------------------------------------------
COLORS = {"server": "tab:blue", "store": "tab:orange", "redis": "tab:red",
          "liblinear": "tab:green", "sklearn": "tab:purple"}
PARTS = (("data_wait", "data wait"), ("pull", "pull"), ("compute", "compute"), ("push", "push"))


def plots(s, figs, fig3, bt, tput, comm, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    for r in figs:
        tag = r["ds"]["tag"]
        fig, ax = plt.subplots(figsize=(8, 5))
        series = [(m, r[m]["points"]) for m in MODES]
        series += [("liblinear", r["liblinear"].get("points", []))]
        series += [("sklearn", run["pts"]) for run in r["sklearn"].get("runs", [])]
        for k, (name, pts) in enumerate(series):
            pts = [(max(t, 1e-3), l) for t, l in pts]
            label = MODE_LABEL[name]
            if name == "sklearn":
                run = r["sklearn"]["runs"][k - len(MODES) - 1]
                label += " (defaults)" if run["default"] else f" (alpha {run['alpha']:.2g} = 1/(C n))"
            elif name == "liblinear":
                label += " (best C; runs at growing tolerance)"
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=COLORS[name], label=label,
                        ls=":" if name == "sklearn" and run["default"] else "-")
        v = r.get("vw") or {}
        if v.get("available"):
            for key, label, ls in (("points_cache", f"VW from its cache (-l {v['best_l']:g}; runs at 1..n passes)", "-"),
                                   ("points_text", "VW from text", ":")):
                pts = [(max(t, 1e-3), l) for t, l in v.get(key, [])]
                if pts:
                    ax.plot(*zip(*pts), marker="s", ms=4, color="tab:brown", ls=ls, label=label)
                    series.append(("vw", pts))
        if r["target"]:
            ax.axhline(r["target"], color="gray", ls="--", lw=1, label=f"target {r['target']:.4f}")
        ax.set_xscale("log")
        ax.set_xlabel("training wall time, s (data already ingested / loaded; log scale)")
        ax.set_ylabel("test logloss")
        ax.set_title(f"Test loss against training time: {r['ds']['short']}")
        lo = min([l for _, pts in series for _, l in pts] or [0])
        if r["target"]:
            ax.set_ylim(lo - 0.005, max(r["target"] * 1.15, lo + 0.02))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        p = os.path.join(out, f"compare_fig2_{tag}.png")
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    if fig3:
        # Top: absolute mean time per iteration (linear, as the paper's Figure 3);
        # bottom: each part's share, readable when the totals differ by orders of magnitude.
        fig, axes = plt.subplots(2, 2, figsize=(11, 8), gridspec_kw={"height_ratios": [3, 2]})
        for col, mb in enumerate((20, 200)):
            names, vals = [], []
            if bt.get(mb):
                names.append("server\n(bench train)")
                b = bt[mb]
                vals.append([b["data_wait_us"], b["pull_us"], b["compute_us"], b["push_us"]])
            for m in MODES:
                j = fig3[(m, mb)]["json"]
                if j:
                    it = j["iteration_us"]
                    names.append(m if m != "server" else "server\n(train)")
                    vals.append([it[k] for k, _ in PARTS])
            totals = [sum(max(x, 0.0) for x in v) for v in vals]
            for row, share in ((0, False), (1, True)):
                ax = axes[row][col]
                bottom = [0.0] * len(names)
                for i, (_, label) in enumerate(PARTS):
                    h = [max(v[i], 0.0) for v in vals]
                    if share:
                        h = [100 * x / t if t > 0 else 0 for x, t in zip(h, totals)]
                    ax.bar(names, h, bottom=bottom, label=label)
                    bottom = [b + x for b, x in zip(bottom, h)]
                if share:
                    ax.set_ylabel("share of the iteration, %")
                else:
                    ax.set_title(f"minibatch {mb}, 4 workers")
                    ax.set_ylabel("mean time per iteration, us")
                    for x, tot in enumerate(totals):
                        ax.annotate(f"{tot:.0f} us", (x, tot), ha="center", va="bottom", fontsize=8)
        axes[0][0].legend(fontsize=8)
        fig.suptitle("Per-iteration breakdown: data wait, pull, compute, push")
        p = os.path.join(out, "compare_fig3_breakdown.png")
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    if tput:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5))
        width = 0.27
        for i, m in enumerate(MODES):
            xs, ys, mem = [], [], []
            for k, w in enumerate((1, 2, 4)):
                j = tput[(m, w)]["json"]
                if j:
                    xs.append(k + (i - 1) * width)
                    ys.append(j["samples_per_second"])
                    mem.append((tput[(m, w)].get("worker_rss_max") or 0) / 2**20)
            if xs:
                a1.bar(xs, ys, width, color=COLORS[m], label=MODE_LABEL[m])
                a2.bar(xs, mem, width, color=COLORS[m], label=MODE_LABEL[m] + ": worker")
        for k, w in enumerate((1, 2, 4)):
            for i, m in enumerate(("server", "redis")):
                hwm = tput[(m, w)].get("server_hwm")
                if hwm:
                    a2.scatter([k + (-1 if m == "server" else 1) * width], [hwm / 2**20], marker="*",
                               s=90, color="black" if m == "server" else "darkred", zorder=3,
                               label=("virga server process" if m == "server" else "redis-server") if k == 0 else None)
        for ax in (a1, a2):
            ax.set_xticks([0, 1, 2], ["1 worker", "2 workers", "4 workers"])
            ax.legend(fontsize=7)
        sps = [tput[k]["json"]["samples_per_second"] for k in tput if tput[k]["json"]]
        if sps and min(sps) > 0 and max(sps) / min(sps) > 20:
            a1.set_yscale("log")
            a1.set_ylabel("samples/s (log)")
        else:
            a1.set_ylabel("samples/s")
        a1.set_title("Throughput")
        a2.set_ylabel("peak RSS, MiB")
        a2.set_title("Peak memory: largest worker (bars), server (stars)")
        p = os.path.join(out, "compare_throughput.png")
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    # Ratios to virga with the server.
    bars = []  # (label, ratio, color, lower bound only)
    for r in figs:
        base = r["server"]["ttt"]
        for name in ("store", "redis", "liblinear", "sklearn"):
            t = r[name]["ttt"]
            if base and t:
                bars.append((f"{r['ds']['tag']}\ntime to target\n{name}", t / base, COLORS[name], False))
            elif base and name in CHANNELS and r[name]["json"]:  # stopped before the target
                bars.append((f"{r['ds']['tag']}\ntime to target\n{name}",
                             r[name]["json"]["train_seconds"] / base, COLORS[name], True))
    for mb in (20, 200):
        b = fig3.get(("server", mb), {}).get("json") if fig3 else None
        for m in CHANNELS:
            j = fig3.get((m, mb), {}).get("json") if fig3 else None
            if b and j:
                tb = sum(b["iteration_us"][k] for k, _ in PARTS)
                tj = sum(j["iteration_us"][k] for k, _ in PARTS)
                if tb > 0:
                    bars.append((f"iteration\nmb {mb}\n{m}", tj / tb, COLORS[m], False))
    if tput:
        b = tput[("server", 4)]["json"]
        for m in CHANNELS:
            j = tput[(m, 4)]["json"]
            if b and j and j["samples_per_second"]:
                bars.append((f"1/throughput\n4 workers\n{m}", b["samples_per_second"] / j["samples_per_second"],
                             COLORS[m], False))
    for r in figs:
        base, v = r["server"]["ttt"], r.get("vw") or {}
        for key in ("cache", "text"):
            if base and v.get("ttt_" + key):
                bars.append((f"{r['ds']['tag']}\ntime to target\nVW {key}", v["ttt_" + key] / base, "tab:brown", False))
    if bars:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(bars)), 4.5))
        ax.bar(range(len(bars)), [b[1] for b in bars], color=[b[2] for b in bars],
               hatch=[("//" if b[3] else "") for b in bars])
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
        ax.axhline(1, color="black", lw=1)
        ax.axhline(10, color="gray", ls="--", lw=1, label="10x (issue 7 target for the channels)")
        ax.set_yscale("log")
        ax.set_ylabel("ratio to virga with the server (>1: slower)")
        for x, b in enumerate(bars):
            ax.annotate(f"{'> ' if b[3] else ''}{b[1]:.3g}x", (x, b[1]), ha="center", va="bottom", fontsize=7)
        ax.set_ylim(top=max(max(b[1] for b in bars), 10) * 6)  # room for the legend
        ax.legend(fontsize=8)
        ax.set_title("Ratios to virga with the parameter server, same run (hatched: lower bound, target not reached)")
        p = os.path.join(out, "compare_ratios.png")
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    p = i15.plot(plt, comm, out)
    if p:
        written.append(p)
    return written


# --- report -----------------------------------------------------------------
def mib(b):
    return f"{b / 2**20:.0f} MiB" if b else "—"


def row_state(x):
    """The reason a system has no figures, for a table cell."""
    return x.get("reason") or "no result"


def report(s, meta, figs, fig3, bt, tput, comm, e2e, pngs, out):
    q = s.quick
    L = []
    w = L.append
    w("# Side-by-side comparison: virga with its parameter server, its storage channels, LIBLINEAR, "
      "scikit-learn, Vowpal Wabbit")
    w("")
    w(f"Written by `bench/compare.sh{' --quick' if q else ''}` (`make bench-compare{' QUICK=1' if q else ''}`); "
      f"started {meta['started']}, took {meta['took']:.0f} s. Issue 7: the figures of the Cirrus paper "
      "(Figure 2: loss against time; Figure 3: per-iteration breakdown) redone on this machine, in one run, on the "
      "same data; issue 15: Vowpal Wabbit beside them, scaling with workers, emulated cloud latency, traffic per sample.")
    w("")
    w(f"- machine: {meta['nproc']} CPUs (nproc), {meta['cpu']}, {meta['mem']} RAM, kernel {meta['kernel']}; "
      f"load average {meta['load_start']} at the start, {meta['load_end']} at the end. "
      "Other jobs share these CPUs: times are indicative, ratios within the run are the figures to read.")
    v = meta["versions"]
    w(f"- versions: virga {v['virga']}; LIBLINEAR (liblinear-tools) {v['liblinear']}; scikit-learn {v['sklearn']}; "
      f"redis-server {v['redis']}; Vowpal Wabbit {v.get('vw', 'absent')}; Python {v['python']}; "
      f"matplotlib {v['matplotlib']}")
    w(f"- data: {meta['data_note']}")
    w("- every command, as run, is listed under [Commands](#commands) ($TMP: a scratch directory removed at the end; "
      "$DATA: the shared data directory)")
    w("- training time starts when the job starts, with the data already ingested (virga) or loaded (LIBLINEAR, "
      "scikit-learn); ingest and load times are in the data tables, apart")
    if s.failures:
        w("")
        w("**Failed steps:**")
        w("")
        for f in s.failures:
            w(f"- {f}")
    na = [f"`--channel {c}`: {s.channel_na[c]}" for c in CHANNELS if s.channel_na[c]]
    if na:
        w("")
        w("**Not available in this build:** " + "; ".join(na) + ". Their rows say so; nothing is estimated in their place.")

    # Targets.
    big = next((r for r in figs if r["ds"]["tag"] == "synth"), None)
    w("")
    w("## Targets (issue 15)")
    w("")
    i15.targets_table(w, big, comm, (big or {}).get("vw"), e2e, bool(big) and big["ds"]["rows"] >= 2_000_000)
    w("")
    if (comm or {}).get("vw_cache"):
        w(f"Virga's time to target against VW: virga at its defaults ({i15.DEFAULT_WORKERS} workers here; section 6) "
          f"and VW's one pass at its best rate, in {comm['rounds']} interleaved rounds, medians; the end to end "
          "row takes VW's runs from text in the same rounds. Sections 5-8 give the details.")
    else:
        w(f"Virga's time to target against VW: the Figure 2 run (defaults: {i15.DEFAULT_WORKERS} workers here); "
          "sections 5-8 give the details.")
    w("")
    w("## Targets (issue 7)")
    w("")
    big = next((r for r in figs if r["ds"]["tag"] == "synth"), None)
    w("| target | measured | verdict |")
    w("|---|---|---|")
    if big is None:
        w("| all | the synthetic set did not run | **not measured** |")
    else:
        scope = "" if big["ds"]["rows"] >= 2_000_000 else f" (quick: {big['ds']['rows']:,} rows, not the 2M-row set)"
        base = big["server"]["ttt"]
        for c in CHANNELS:
            t = big[c]["ttt"]
            j = big[c]["json"]
            if base is None:
                w(f"| server >= 10x sooner than `--channel {c}`{scope} | server did not reach the target | **not met** |")
            elif j is None:
                w(f"| server >= 10x sooner than `--channel {c}`{scope} | {row_state(big[c])} | not measured |")
            elif t is None:
                lim = j["train_seconds"]
                verdict = "met" if lim / base >= 10 else "not decided (run stopped before 10x)"
                w(f"| server >= 10x sooner than `--channel {c}`{scope} | server {base:.2f} s; {c} did not reach it "
                  f"in {lim:.1f} s (> {lim / base:.1f}x) | {verdict} |")
            else:
                verdict = "met" if t / base >= 10 else "**not met**"
                w(f"| server >= 10x sooner than `--channel {c}`{scope} | server {base:.2f} s, {c} {t:.2f} s: "
                  f"{t / base:.1f}x | {verdict} |")
        for name in ("liblinear", "sklearn"):
            t = big[name]["ttt"]
            if base is None:
                w(f"| server no later than {MODE_LABEL[name]}{scope} | server did not reach the target | **not met** |")
            elif t is None:
                w(f"| server no later than {MODE_LABEL[name]}{scope} | server {base:.2f} s; {MODE_LABEL[name]} "
                  "never reached the target | met |")
            else:
                verdict = "met" if base <= t else "**not met**"
                w(f"| server no later than {MODE_LABEL[name]}{scope} | server {base:.2f} s, {MODE_LABEL[name]} "
                  f"{t:.2f} s ({t / base:.2f}x) | {verdict} |")

    # Figure 2.
    w("")
    w("## 1. Test loss against training time (Figure 2)")
    for r in figs:
        ds = r["ds"]
        ll, sk = r["liblinear"], r["sklearn"]
        w("")
        w(f"### {ds['label']}")
        w("")
        w(f"Data preparation (not in any training time): {ds['prep_note']}; LIBLINEAR load "
          f"{fmt(ll.get('load_seconds'))} s (a run at its best C with `-e 1e9`: reading the file and one "
          f"gradient); scikit-learn `load_svmlight_files` {fmt(sk.get('load_seconds'))} s.")
        w("")
        if r["target"]:
            w(f"Target: test logloss <= **{r['target']:.5f}**, 1.01 x LIBLINEAR's best ({ll['best']:.5f} at C = "
              f"2^{ll['best_c']}, `-s 0 -B 1`, C over 2^{{{ds['grid'][0]}..{ds['grid'][-1]}}}"
              + (", best at the edge of the grid" if ll.get("edge") else "") + "). "
              f"virga evaluates every {ds['eval']} s (time to target is the first evaluation at or below it); "
              f"the storage channels stop at the target or after {r['channel_limit']:.0f} s "
              "(10.5 x the server's time to target, clamped: not reaching it by then means >= 10x).")
        else:
            w("Target: none (LIBLINEAR gave no loss).")
        w("")
        w(f"![Figure 2, {ds['label']}](compare_fig2_{ds['tag']}.png)")
        w("")
        w("| system | test logloss at the end | training s (to the end) | time to target, s | ratio to server | notes |")
        w("|---|---|---|---|---|---|")
        base = r["server"]["ttt"]
        for m in MODES:
            j = r[m]["json"]
            if j is None:
                w(f"| {MODE_LABEL[m]} | — | — | — | — | {row_state(r[m])} |")
                continue
            it = j["iteration_us"]
            note = (f"state {j['state']}, {j['epochs']} epochs, minibatch {j['minibatch']}, "
                    f"{j['samples_per_second']:.0f} samples/s, wall with start-up {r[m]['wall']:.2f} s")
            w(f"| {MODE_LABEL[m]} | {j['test_logloss']:.5f} | {j['train_seconds']:.2f} | "
              f"{fmt(r[m]['ttt'], '.2f', 'not reached')} | {ratio(r[m]['ttt'], base) if m != 'server' else '1x'} | {note} |")
        if ll.get("curve"):
            last = ll["curve"][-1]
            pts = ", ".join(f"-e {p['eps']:g}: {p['test_logloss']:.5f} in {p['seconds']:.2f} s" for p in ll["curve"])
            w(f"| LIBLINEAR, C = 2^{ll['best_c']} | {last['test_logloss']:.5f} | {last['seconds']:.2f} | "
              f"{fmt(ll['ttt'], '.2f', 'not reached')} | {ratio(ll['ttt'], base)} | one thread; runs at tolerances {pts} |")
        else:
            w("| LIBLINEAR | — | — | — | — | failed |")
        for run in sk.get("runs", []):
            last = run["points"][-1]
            cfg = "defaults (alpha 1e-4)" if run["default"] else f"alpha = 1/(C n) = {run['alpha']:.3g} (LIBLINEAR's best C)"
            w(f"| scikit-learn SGDClassifier, {cfg} | {last['test_logloss']:.5f} | {last['seconds']:.2f} | "
              f"{fmt(run['ttt'], '.2f', 'not reached')} | {ratio(run['ttt'], base)} | one thread; "
              f"`loss='log_loss'`, {len(run['points'])} epochs of partial_fit, "
              f"best {min(p['test_logloss'] for p in run['points']):.5f}, {run['samples_per_second']:.0f} samples/s |")
        if not sk.get("runs"):
            w(f"| scikit-learn SGDClassifier | — | — | — | — | failed: {sk.get('error')} |")
        i15.vw_rows(w, r, base)
        if ll.get("grid"):
            w("")
            w("LIBLINEAR's C grid (default tolerance; wall time includes the load): " + ", ".join(
                f"2^{g['c_exp']}: {g['test_logloss']:.5f} ({g['wall']:.1f} s)" for g in ll["grid"]))
        i15.vw_note(w, r)

    # Figure 3.
    w("")
    w("## 2. Per-iteration breakdown (Figure 3)")
    w("")
    if not fig3:
        w("Not run (the synthetic set failed).")
    else:
        w(f"4 workers on the synthetic set, each run {meta['fig3_seconds']} s (`--time-limit`, no evaluation inside), "
          "mean microseconds per iteration (one minibatch) merged over the workers (`iteration_us` of the result "
          "JSON). For the storage channels, pull = reading the model, push = writing the gradient and the reduce, "
          "as their implementation measures them. `server (bench train)`: `virga bench train --placement default` "
          f"on its own {meta['bt_rows']:,}-row generated set, for reference; ratios are to `server (train)` on the same data.")
        w("")
        w("![Figure 3](compare_fig3_breakdown.png)")
        w("")
        w("| minibatch | system | data wait | pull | compute | push | total | p50 | p99 | iterations | samples/s | total / server |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for mb in (20, 200):
            b = bt.get(mb)
            if b:
                tot = b["data_wait_us"] + b["pull_us"] + b["compute_us"] + b["push_us"]
                w(f"| {mb} | server (bench train) | {b['data_wait_us']:.1f} | {b['pull_us']:.1f} | {b['compute_us']:.1f} | "
                  f"{b['push_us']:.1f} | {tot:.1f} | {b['p50_us']:.1f} | {b['p99_us']:.1f} | {b['iterations']} | "
                  f"{b['samples_per_s']:.0f} | — |")
            bj = fig3[("server", mb)]["json"]
            btot = sum(bj["iteration_us"][k] for k, _ in PARTS) if bj else None
            for m in MODES:
                j = fig3[(m, mb)]["json"]
                name = "server (train)" if m == "server" else m
                if j is None:
                    w(f"| {mb} | {name} | | | | | | | | | | {row_state(fig3[(m, mb)])} |")
                    continue
                it = j["iteration_us"]
                tot = sum(it[k] for k, _ in PARTS)
                w(f"| {mb} | {name} | {it['data_wait']:.1f} | {it['pull']:.1f} | {it['compute']:.1f} | {it['push']:.1f} | "
                  f"{tot:.1f} | {it['p50']:.1f} | {it['p99']:.1f} | {it['iterations']} | {j['samples_per_second']:.0f} | "
                  f"{ratio(tot, btot)} |")

    # Throughput and memory.
    w("")
    w("## 3. Throughput and peak memory")
    w("")
    if not tput:
        w("Not run (the synthetic set failed).")
    else:
        w(f"Synthetic set, default minibatch, each run {meta['tput_seconds']} s. virga with the server: a separate "
          "`virga server` process (fresh for each run, `--servers` given to train), its peak RSS is VmHWM from "
          "/proc/<pid>/status at the end of the run; Redis: the redis-server started for the run, likewise. "
          "Workers: `functions[].peak_rss_bytes` of the result (largest and mean over the functions).")
        w("")
        w("![Throughput and memory](compare_throughput.png)")
        w("")
        w("| workers | system | samples/s | ratio to server | worker peak RSS, max / mean | server peak RSS | per-worker memory ratio |")
        w("|---|---|---|---|---|---|---|")
        for wk in (1, 2, 4):
            b = tput[("server", wk)]
            bs = b["json"]["samples_per_second"] if b["json"] else None
            for m in MODES:
                x = tput[(m, wk)]
                j = x["json"]
                if j is None:
                    w(f"| {wk} | {MODE_LABEL[m]} | — | — | — | — | {row_state(x)} |")
                    continue
                srv = mib(x.get("server_hwm")) if m != "store" else "none (object store)"
                w(f"| {wk} | {MODE_LABEL[m]} | {j['samples_per_second']:.0f} | "
                  f"{ratio(j['samples_per_second'], bs) if m != 'server' else '1x'} | "
                  f"{mib(x.get('worker_rss_max'))} / {mib(x.get('worker_rss_mean'))} | {srv} | "
                  f"{ratio(x.get('worker_rss_max'), b.get('worker_rss_max')) if m != 'server' else '1x'} |")
    if any(p.endswith("compare_ratios.png") for p in pngs):
        w("")
        w("## 4. Ratios to virga with the server")
        w("")
        w("Every ratio of the tables above in one plot (time to target, time per iteration, and the inverse of "
          "throughput at 4 workers; above 1: slower than virga with the server).")
        w("")
        w("![Ratios](compare_ratios.png)")
    i15.sections(w, comm, (big or {}).get("vw"), e2e, bool(big) and big["ds"]["rows"] >= 2_000_000)
    if any(p.endswith("compare_issue15.png") for p in pngs):
        w("")
        w("![Scaling and latency](compare_issue15.png)")
    w("")
    w("## Commands")
    w("")
    w("In order, as run (each `liblinear-train` is followed by `liblinear-predict -q -b 1 TEST.svm MODEL PRED`, "
      "and each `$VW ... -f MODEL` by `$VW -t -i MODEL -d TEST.vw -p PREDS --link logistic --quiet`, "
      "whose probabilities give the test logloss; `&`: a process the suite starts and stops around one run).")
    w("")
    w("```")
    repo = meta.get("repo", "")
    for c in s.cmds:
        c = c.replace("--save  ", "--save '' ")
        L.append(c.replace(repo + "/", "") if repo else c)
    w("```")
    with open(os.path.join(out, "compare.md"), "w") as f:
        f.write("\n".join(L) + "\n")


# --- raw figures: compare.json beside the report, and --replot from it ---------
def save_state(s, meta, figs, fig3, bt, tput, comm, e2e, out):
    state = {"meta": meta, "quick": s.quick, "failures": s.failures, "cmds": s.cmds,
             "channel_na": s.channel_na, "figs": figs, "comm": comm, "e2e": e2e,
             "fig3": {f"{m}|{mb}": v for (m, mb), v in fig3.items()},
             "bt": {str(k): v for k, v in bt.items()},
             "tput": {f"{m}|{w}": v for (m, w), v in tput.items()}}
    with open(os.path.join(out, "compare.json"), "w") as f:
        json.dump(state, f, indent=1)


def replot(out):
    st = json.load(open(os.path.join(out, "compare.json")))
    s = argparse.Namespace(quick=st["quick"], failures=st["failures"], cmds=st["cmds"],
                           channel_na=st["channel_na"])
    fig3 = {(k.split("|")[0], int(k.split("|")[1])): v for k, v in st["fig3"].items()}
    tput = {(k.split("|")[0], int(k.split("|")[1])): v for k, v in st["tput"].items()}
    bt = {int(k): v for k, v in st["bt"].items()}
    comm, e2e = st.get("comm") or {}, st.get("e2e") or {}
    pngs = plots(s, st["figs"], fig3, bt, tput, comm, out)
    report(s, st["meta"], st["figs"], fig3, bt, tput, comm, e2e, pngs, out)
    log(f"rewrote {os.path.join(out, 'compare.md')} and {len(pngs)} plots from compare.json")
    return 0


# --- main -------------------------------------------------------------------
def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--replot":
        return replot(sys.argv[2])
    ap = argparse.ArgumentParser()
    ap.add_argument("--virga", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--vw", default="", help="path to Vowpal Wabbit's vw (else VW's rows say absent)")
    a = ap.parse_args()
    s = Suite(a)
    q = a.quick
    t_start = time.time()
    meta = {"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "load_start": loadavg(), "nproc": os.cpu_count(), "kernel": os.uname().release,
            "repo": a.repo}
    meta["cpu"], meta["mem"] = machine()
    meta["versions"] = versions(s)
    meta["fig3_seconds"] = 2 if q else 6
    meta["tput_seconds"] = 2 if q else 6
    meta["bt_rows"] = 30000 if q else 200000
    figs, fig3, bt, tput, comm, e2e = [], {}, {}, {}, {}, {}
    try:
        datasets = []
        crit = os.path.join(a.data, "criteo-kaggle-sample")
        if os.path.exists(os.path.join(crit, "criteo_train_7200.tsv")):
            tr = s.ingest("criteo-train", [os.path.join(crit, "criteo_train_7200.tsv")], 0)
            te = s.ingest("criteo-test", [os.path.join(crit, "criteo_dev_409.tsv"),
                                          os.path.join(crit, "criteo_test_391.tsv")], 0)
            ds = {"tag": "criteo", "label": "Criteo sample (7,200 train rows; test: dev 409 + test 391)",
                  "train": "criteo-train", "test": "criteo-test", "rows": 7200, "short": "Criteo sample",
                  "train_svm": os.path.join(s.tmp, "criteo.train.svm"),
                  "test_svm": os.path.join(s.tmp, "criteo.test.svm"),
                  "grid": [-7, -5, -3] if q else [-8, -7, -6, -5, -4, -3, -2, -1, 0], "eval": 0.05,
                  "eps": [1, 0.1, 0.01] if q else [1, 0.3, 0.1, 0.03, 0.01, 0.003], "sk_epochs": 5 if q else 10,
                  "channel_limits": (3, 8) if q else (10, 60)}
            d1 = s.dump("criteo-train", "train", ds["train_svm"])
            d2 = s.dump("criteo-test", "train", ds["test_svm"])
            m = s.inspect("criteo-train")
            ds["hash_bits"], ds["rows_train"] = m.get("hash_bits"), m.get("train_rows")
            if None not in (tr, te, d1, d2):
                ds["prep_note"] = (f"virga ingest {tr:.2f} s (train) + {te:.2f} s (test); "
                                   f"`virga dump` to LIBSVM for the peers {d1 + d2:.2f} s")
                datasets.append(ds)
            meta["data_note"] = (f"Criteo sample present ({crit.replace(a.data, '$DATA')}); ")
        else:
            meta["data_note"] = (f"**the Criteo sample is absent** ({crit.replace(a.data, '$DATA')}/criteo_train_7200.tsv): "
                                 "its section is skipped; ")
        rows = 100_000 if q else 2_000_000
        tsv = os.path.join(s.tmp, "synth.tsv")
        rc, gen, _, err = s.run([a.virga, "datagen", "criteo", "--rows", str(rows), "--seed", "1", "--out", tsv],
                                "datagen", 1800)
        if rc != 0:
            s.fail("datagen: " + s.reason(err))
        else:
            ing = s.ingest("synth", [tsv])
            os.remove(tsv)
            ds = {"tag": "synth", "label": f"synthetic, `virga datagen criteo --rows {rows} --seed 1` (10% test)",
                  "train": "synth", "rows": rows, "short": f"synthetic Criteo-format, {rows:,} rows",
                  "train_svm": os.path.join(s.tmp, "synth.train.svm"),
                  "test_svm": os.path.join(s.tmp, "synth.test.svm"),
                  "grid": [-6, -4, -2] if q else [-6, -5, -4], "eval": 0.2 if q else 0.25,
                  "eps": [1, 0.1, 0.01] if q else [1, 0.1, 0.03, 0.01], "sk_epochs": 5 if q else 6,
                  "channel_limits": (5, 12) if q else (30, 300)}
            d1 = s.dump("synth", "train", ds["train_svm"])
            d2 = s.dump("synth", "test", ds["test_svm"])
            m = s.inspect("synth")
            ds["hash_bits"], ds["rows_train"], ds["ingest_seconds"] = m.get("hash_bits"), m.get("train_rows"), ing
            if None not in (ing, d1, d2):
                ds["prep_note"] = (f"`virga datagen` {gen:.1f} s; virga ingest {ing:.2f} s; "
                                   f"`virga dump` of both splits to LIBSVM for the peers {d1 + d2:.2f} s")
                datasets.append(ds)
        meta["data_note"] += f"synthetic Criteo-format set of {rows:,} rows (`virga datagen criteo --seed 1`)"
        for ds in datasets:
            log(f"== Figure 2: {ds['label']}")
            figs.append(figure2(s, ds))
            for p in (ds["train_svm"], ds["test_svm"]):
                if os.path.exists(p):
                    os.remove(p)
        synth = next((d for d in datasets if d["tag"] == "synth"), None)
        if synth:
            log("== Figure 3: per-iteration breakdown")
            fig3 = breakdown(s, synth, meta["fig3_seconds"])
            bt = bench_train(s, meta["bt_rows"], 1 if q else 3)
            log("== throughput and memory")
            tput = throughput(s, synth, meta["tput_seconds"])
            big = next((r for r in figs if r["ds"]["tag"] == "synth"), None)
            comm = i15.comm_sections(s, synth, big["target"] if big else None, 1 if q else 3, q,
                                     vwr=(big or {}).get("vw"))
            e2e = i15.end_to_end(big, comm, synth.get("ingest_seconds"))
        else:
            s.fail("the synthetic set was not prepared: no Figure 3, no throughput")
        for r in figs:
            i15.remove_vw_files(r.get("vw"))
    except Exception as e:  # a bug here still writes the report and fails the run
        import traceback
        traceback.print_exc()
        s.fail(f"compare.py: {type(e).__name__}: {e}")
    finally:
        for p in s.procs:
            stop(p)
    pngs = []
    meta["load_end"] = loadavg()  # before the plots, so a replot shows the same
    try:
        pngs = plots(s, figs, fig3, bt, tput, comm, a.out)
    except Exception as e:
        import traceback
        traceback.print_exc()
        s.fail(f"plots: {type(e).__name__}: {e}")
    meta["took"] = time.time() - t_start
    report(s, meta, figs, fig3, bt, tput, comm, e2e, pngs, a.out)
    save_state(s, meta, figs, fig3, bt, tput, comm, e2e, a.out)
    if os.environ.get("VIRGA_COMPARE_KEEP"):
        log(f"kept {s.tmp}")
    else:
        shutil.rmtree(s.tmp, ignore_errors=True)
    log(f"wrote {os.path.join(a.out, 'compare.md')} and {len(pngs)} plots ({meta['took']:.0f} s)")
    if s.failures:
        for f in s.failures:
            log("FAILED: " + f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
