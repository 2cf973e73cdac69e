"""Hyper-parameter search: grid, random, and successive halving as an early-stopping policy.

Experiments are estimators fitted concurrently (at most max_concurrent at once) in one session,
so they share its parameter server and backend, each job with its own table. Every
experiment's test loss is visible while it runs (results, plot()); kill(i) / kill_all() stop
experiments at once, freeing their workers and tables. The engine itself stops runs whose loss
diverges (NaN or 1.5 x their first evaluation: state "diverged").

Every experiment's job writes its result to the session's store (jobs/<job-id>/result.json); at
its end the search writes its summary there, at searches/<search-id>/result.json (result_uri),
the same document as `virga search` writes (docs/object-layout.md).
"""
import itertools
import json
import math
import random
import threading
import time
import uuid

import numpy as np

from .job import ProgressLine, finite
from ._engine import _virga


class SuccessiveHalving:
    """Asynchronous successive halving (ASHA) as a stopping rule.

    Rungs sit at min_resource * eta^k (k = 0, 1, ...) below the experiments' full resource,
    measured in epochs (samples processed / training rows) or seconds (resource="time"). When an
    experiment reaches a rung, its current test loss is compared with the losses recorded there
    by experiments that reached the rung earlier: it continues if it is within the best 1/eta
    of them (loss <= their (100/eta)-th percentile; the first to arrive always continues), else
    it is stopped with job.kill(). The loss at a rung is interpolated between the evaluations
around it. So about 1/eta of the experiments pass each rung, and no
    experiment waits for another (the asynchronous rule of Li et al., "A System for Massively
    Parallel Hyperparameter Tuning", in its stop-or-continue form).

    min_resource None: the full resource / eta^2 (two rungs). For resource="time" the full
    resource is max_resource seconds (required).
    """

    def __init__(self, eta=3, min_resource=None, resource="epochs", max_resource=None):
        # The rule itself is the engine's (include/virga/successive_halving.h), shared with
        # `virga search --policy asha`; it validates the arguments (InvalidArgumentError, a
        # ValueError, naming the one at fault).
        self._impl = _virga.SuccessiveHalving(eta, float(min_resource or 0), resource,
                                              float(max_resource or 0))
        self.eta = eta
        self.min_resource = min_resource
        self.resource = resource
        self.max_resource = max_resource

    def rungs(self, full):
        """Rungs below the full resource (epochs; max_resource seconds for resource="time")."""
        return self._impl.rungs(float(full))

    def used(self, point, train_rows):
        """Resource spent at a progress or history point: epochs (samples / training rows)
        or seconds."""
        if self.resource == "time":
            return point.get("seconds", 0.0)
        return point.get("samples", 0) / max(1, train_rows)

    def loss_at(self, history, rung, train_rows):
        """Test logloss at exactly `rung`, interpolated linearly between the evaluations around
        it (evaluations are periodic, so a fast run may be evaluated well past a rung: judging it
        there would favour it). None until an evaluation at or past the rung exists."""
        return self._impl.loss_at(list(history), float(rung), float(train_rows))

    def decide(self, rung, loss):
        """Records `loss` at `rung`; True to continue, False to stop. Thread-safe."""
        return self._impl.decide(float(rung), float(loss) if loss is not None else math.nan)


class Experiment:
    def __init__(self, index, params, estimator):
        self.index = index
        self.params = params
        self.estimator = estimator
        self.job = None
        self.error = None
        self.cancelled = False
        self.stopped_at = None  # rung where successive halving stopped it
        self.passed = set()     # rungs already decided

    @property
    def state(self):
        if self.error is not None:
            return f"failed: {self.error}"
        if self.job is None:
            return "cancelled" if self.cancelled else "pending"
        s = self.job.status
        if self.stopped_at is not None and s == "killed":
            return "stopped"
        return s

    def row(self):
        p = self.job.progress if self.job else {}
        r = self.job.result if self.job else None
        metric = (r or p or {}).get("metric", "logloss")
        cur = _primary(r or p) if (r or p) else math.nan
        hist = self.job.history if self.job else []
        losses = [_primary(h) for h in hist if finite(_primary(h))]
        best = min(losses) if losses else math.nan
        return {
            "index": self.index,
            "params": dict(self.params),
            "state": self.state,
            "job_id": self.job.id if self.job else None,
            "metric": metric,            # the model's primary metric: logloss, rmse
            "test_metric": cur,
            "best_metric": best,
            "test_logloss": cur if metric == "logloss" else math.nan,
            "best_logloss": best if metric == "logloss" else math.nan,
            "epochs": (r or p).get("epochs", 0) if r else p.get("epoch", 0),
            "seconds": (r or {}).get("train_seconds", p.get("seconds", 0.0)),
            "cost_usd": r.get("cost_estimate", {}).get("total_usd", r.get("cost_total_usd"))
            if r else None,
            "stopped_at": self.stopped_at,
        } | {"test_" + metric: cur, "best_" + metric: best}


def _primary(d):
    """The model's primary metric (lower is better) in a result, progress or history dict:
    test_metric, else test_<metric>, else test_logloss (older jobs)."""
    if d.get("test_metric") is not None:
        return d["test_metric"]
    v = d.get("test_" + d.get("metric", "logloss"), d.get("test_logloss"))
    return math.nan if v is None else v


def _make_policy(policy):
    if policy in (None, "grid", "random", "none"):
        return None
    if policy == "asha":
        return SuccessiveHalving()
    if isinstance(policy, SuccessiveHalving):
        return policy
    raise ValueError(f"policy: None, 'grid', 'asha' or a SuccessiveHalving, got {policy!r}")


class _Search:
    def __init__(self, estimator, candidates, session=None, max_concurrent=3, policy=None,
                 poll_interval=0.2):
        self.estimator = estimator
        self.candidates = list(candidates)
        self.session = session
        self.max_concurrent = max(1, int(max_concurrent))
        self.policy = _make_policy(policy)
        self.poll_interval = poll_interval
        self.experiments = []
        self._lock = threading.Lock()
        self._thread = None
        self._t0 = None
        self._t1 = None
        self.search_id = None   # "search-<utc time>-<random>", set by fit()
        self.result_uri = None  # where its summary goes in the session's store
        self._save_error = None

    def _new_estimator(self, params, session):
        est = self.estimator
        if isinstance(est, type):
            base = est(session=session)
        else:
            base = type(est)(**est.get_params())
            if base.session is None:
                base.set_params(session=session)
        return base.set_params(**params)

    # ---- running ---------------------------------------------------------------------------
    def fit(self, train, test=None, wait=True, progress=None, **job_options):
        """Runs every candidate; returns self. wait=False returns at once (results, plot(),
        kill() meanwhile; wait() to block)."""
        if self._thread is not None:
            raise RuntimeError("search: fit() was already called")
        session = self.session or train.session
        self.session = session
        self.search_id = (f"search-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-"
                          f"{uuid.uuid4().hex[:6]}")
        self.result_uri = session.object_uri(_virga.search_result_key(self.search_id))
        self.experiments = [Experiment(i, p, self._new_estimator(p, session))
                            for i, p in enumerate(self.candidates)]
        self._train, self._test, self._job_options = train, test, job_options
        self._train_rows = train.rows
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="virga-search", daemon=True)
        self._thread.start()
        if wait:
            self.wait(progress=progress)
        return self

    def _start(self, e):
        try:
            e.job = e.estimator.fit(self._train, test=self._test, wait=False,
                                    **self._job_options).job_
        except Exception as exc:  # bad parameters: the experiment fails, the search goes on
            e.error = exc

    def _apply_policy(self, e):
        pol = self.policy
        if pol is None or e.job.done() or e.stopped_at is not None:
            return
        full = e.job.options["epochs"]
        history = e.job.history
        for rung in pol.rungs(full):
            if rung in e.passed:
                continue
            loss = pol.loss_at(history, rung, self._train_rows)
            if loss is None:
                break
            e.passed.add(rung)
            if not pol.decide(rung, loss):
                e.stopped_at = rung
                e.job.kill()
                return

    def _loop(self):
        while True:
            with self._lock:
                running = [e for e in self.experiments if e.job is not None and not e.job.done()]
                pending = [e for e in self.experiments
                           if e.job is None and e.error is None and not e.cancelled]
                for e in pending[:max(0, self.max_concurrent - len(running))]:
                    self._start(e)
                for e in running:
                    self._apply_policy(e)
                if not running and not pending:
                    break
            time.sleep(self.poll_interval)
        self._t1 = time.monotonic()
        try:
            _virga.store_put(self.session.store, _virga.search_result_key(self.search_id),
                             json.dumps(self.summary_json(), indent=1).encode() + b"\n")
        except Exception as e:  # re-raised by wait()
            self._save_error = e

    def summary_json(self):
        """The search's summary document (as `virga search` writes it): search_id, policy,
        backend, wall_seconds, experiments (the results rows), best_index."""
        def clean(x):  # JSON has no NaN: null instead
            if hasattr(x, "item") and not isinstance(x, (dict, list, tuple)):
                x = x.item()  # numpy scalars
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            return x if isinstance(x, (str, int, float, bool, type(None))) else str(x)
        best = self._best()
        policy = "grid" if self.policy is None else "asha"
        return clean({"search_id": self.search_id, "policy": policy,
                      "backend": self.session.backend_name, "wall_seconds": self.seconds,
                      "experiments": self.results,
                      "best_index": best.index if best else None})

    def wait(self, timeout=None, progress=None):
        """Blocks until every experiment has ended; progress line on stderr if progress (None:
        when stderr is a terminal)."""
        import sys
        if progress is None:
            progress = sys.stderr.isatty()
        line = ProgressLine() if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
                if line:
                    line.show(self.summary())
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:  # Ctrl-C / Jupyter interrupt: stop every experiment
            self.kill_all()
            self._thread.join(30)
            raise
        if line:
            line.show(self.summary(), final=True)
        if self.done() and self._save_error is not None:
            raise self._save_error
        return self

    def done(self):
        return self._thread is not None and not self._thread.is_alive()

    @property
    def seconds(self):
        """Wall time of the search so far (to the end of its last experiment once done)."""
        if self._t0 is None:
            return 0.0
        return (self._t1 or time.monotonic()) - self._t0

    # ---- control ---------------------------------------------------------------------------
    def kill(self, i):
        """Stops experiment i now (or cancels it if it has not started)."""
        with self._lock:
            e = self.experiments[i]
            if e.job is None:
                e.cancelled = True
            else:
                e.job.kill()

    def kill_all(self):
        for i in range(len(self.experiments)):
            self.kill(i)

    # ---- results ---------------------------------------------------------------------------
    @property
    def results(self):
        """One dict per experiment: index, params, state, job_id, test_logloss (current or
        final), best_logloss (over its evaluations), epochs, seconds, cost_usd (once ended),
        stopped_at (the rung where successive halving stopped it)."""
        with self._lock:
            return [e.row() for e in self.experiments]

    def _best(self):
        best = None
        for e in self.experiments:
            r = e.job.result if e.job and e.job.done() else None
            if not r or r["state"].startswith("failed") or r["state"] == "diverged":
                continue
            if finite(_primary(r)) and (best is None or
                                        _primary(r) < _primary(best.job.result)):
                best = e
        return best

    @property
    def best_index_(self):
        b = self._best()
        if b is None:
            raise AttributeError("no experiment has finished with a finite test loss yet")
        return b.index

    @property
    def best_params_(self):
        return dict(self.experiments[self.best_index_].params)

    @property
    def best_estimator_(self):
        return self.experiments[self.best_index_].estimator

    @property
    def best_loss_(self):
        return _primary(self.experiments[self.best_index_].job.result)

    def summary(self):
        rows = self.results
        count = {}
        for r in rows:
            key = r["state"].split(":")[0]
            count[key] = count.get(key, 0) + 1
        fin = [r for r in rows if finite(r["test_metric"]) and r["state"] in
               ("running", "done", "target_reached", "time_limit", "stopped", "killed")]
        best = min(fin, key=lambda r: r["test_metric"]) if fin else None
        states = ", ".join(f"{n} {k}" for k, n in sorted(count.items()))
        b = (f"best {best['metric']} {best['test_metric']:.4f} (#{best['index']})" if best
             else "best -")
        return f"search: {states} | {b} | {self.seconds:.1f}s"

    def table(self):
        """The results as a text table."""
        out = [f"{'#':>3} {'state':<14} {'loss':>8} {'best':>8} {'epochs':>6} {'sec':>7}  params"]
        for r in self.results:
            out.append(f"{r['index']:>3} {r['state'][:14]:<14} {r['test_metric']:>8.4f} "
                       f"{r['best_metric']:>8.4f} {r['epochs']:>6} {r['seconds']:>7.1f}  "
                       f"{r['params']}")
        return "\n".join(out)

    def _repr_html_(self):
        """Jupyter's view: one row per experiment, best first marked."""
        from . import progress as progress_mod
        best = None
        try:
            best = self.best_index_
        except Exception:
            pass
        rows = []
        for r in self.results:
            mark = "*" if r["index"] == best else ""
            rows.append([f"{mark}{r['index']}", r["state"], f"{r['test_logloss']:.4f}",
                         f"{r['best_logloss']:.4f}", r["epochs"], f"{r['seconds']:.1f}",
                         ", ".join(f"{k}={v}" for k, v in r["params"].items())])
        table = progress_mod.html_table(
            rows, ["#", "state", "loss", "best", "epochs", "seconds", "params"])
        import html
        return f"<div><b>virga search</b> {html.escape(self.summary())}{table}</div>"

    def plot(self, ax=None, live=None):
        """Test loss against time of every experiment (matplotlib); in Jupyter redrawn every
        second while experiments run."""
        from . import plotting

        def runs():
            with self._lock:
                return [(f"#{e.index} {e.params}", e.job) for e in self.experiments]
        return plotting.plot_runs(runs, ax=ax, live=live)


class GridSearch(_Search):
    """Every combination of a parameter grid, run as concurrent jobs of one session.

    Parameters
    ----------
    estimator : class or estimator
        ``virga.LogisticRegression`` / ``virga.LinearSVM``, or an instance whose other
        parameters are kept.
    param_grid : dict of lists, or list of such dicts
        Parameter values to combine (any estimator parameter, system ones included).
    session : Session, optional
        Default: the training Dataset's session.
    max_concurrent : int, default 3
        Experiments running at once.
    policy : None, "grid", "asha" or SuccessiveHalving
        None / "grid" run every experiment to its end; "asha" or a ``SuccessiveHalving``
        stop the worse ones early.
    **kw
        ``poll_interval`` (seconds between policy decisions, default 0.2).
    """

    def __init__(self, estimator, param_grid, session=None, max_concurrent=3, policy=None,
                 **kw):
        grids = param_grid if isinstance(param_grid, list) else [param_grid]
        cands = []
        for g in grids:
            keys = sorted(g)
            for values in itertools.product(*(g[k] for k in keys)):
                cands.append(dict(zip(keys, values)))
        super().__init__(estimator, cands, session=session, max_concurrent=max_concurrent,
                         policy=policy, **kw)
        self.param_grid = param_grid


class RandomSearch(_Search):
    """Randomly drawn candidates, run as concurrent jobs of one session.

    Parameters
    ----------
    estimator : class or estimator
        As for ``GridSearch``.
    param_distributions : dict
        Per parameter: a list (uniform choice), a scipy.stats distribution (anything with
        ``.rvs``) or a callable taking a ``random.Random``.
    n_iter : int, default 10
        Candidates drawn.
    seed : int, optional
        Seed of the draws.
    session, max_concurrent, policy, **kw
        As for ``GridSearch``.
    """

    def __init__(self, estimator, param_distributions, n_iter=10, seed=None, session=None,
                 max_concurrent=3, policy=None, **kw):
        rng = random.Random(seed)
        np_rng = np.random.RandomState(seed)
        cands = []
        for _ in range(n_iter):
            c = {}
            for k in sorted(param_distributions):
                d = param_distributions[k]
                if hasattr(d, "rvs"):
                    v = d.rvs(random_state=np_rng)
                    c[k] = v.item() if hasattr(v, "item") else v
                elif callable(d):
                    c[k] = d(rng)
                else:
                    c[k] = rng.choice(list(d))
            cands.append(c)
        super().__init__(estimator, cands, session=session, max_concurrent=max_concurrent,
                         policy=policy, **kw)
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.seed = seed
