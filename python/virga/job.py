"""Job: one training job of the engine (a TrainJob) running on a Python thread.

The engine's Run() releases the GIL, so many jobs run at once in one process; kill(),
status, progress and history may be used from any thread while it runs. When the job ends the
engine writes its result to the session's store (jobs/<job-id>/result.json, result_uri), its
model is written there too (jobs/<job-id>/model.vmdl, model_path; so the estimator stays
usable) and the job is closed, which frees its workers and its table on the shared server.
"""
import json
import math
import threading
import time

from ._engine import _virga, worker_binary

TERMINAL_OK = ("done", "target_reached", "time_limit")


class Job:
    """One training job of the engine, running on its own Python thread.

    Made by an estimator's ``fit`` (``est.job_``) or a search; rarely built directly.

    Parameters
    ----------
    session : Session
        Where it runs: its store, servers and backend.
    options : dict
        Engine ``TrainOptions`` (``dataset``, ``model``, ``workers``, ...), over the session's.
    on_end : callable, optional
        Called with the job once it has ended and its model is saved, before ``wait`` returns.

    Attributes
    ----------
    id : str
        The job id (``virga jobs``, the dashboard, ``virga kill``).
    options : dict
        The options as the engine resolved them (``epochs``, ``minibatch``, ...).
    model_path, result_uri : str
        Object URIs of its model file and result JSON in the session's store.
    """

    def __init__(self, session, options, on_end=None):
        self.session = session
        base, backend = session._train_options()
        base.update(options)
        if base.get("resume") or base.get("checkpoint_interval") or base.get("server_process"):
            # A checkpointed job runs a server of its own (checkpoints/<job-id>/ in the store),
            # the one a resume restores; the session's shared server has no checkpoints.
            if session.servers:
                raise _virga.InvalidArgumentError(
                    "checkpoints and resume need the job's own server; this session uses the "
                    "servers " + ",".join(session.servers))
            base.pop("servers", None)
            base.pop("token", None)
            base.setdefault("server_binary", worker_binary())
        if base.get("channel") not in (None, "", "ps"):
            # Storage channels (docs/channel.md) run with no parameter server at all.
            base.pop("servers", None)
            base.pop("token", None)
        self._job = _virga.TrainJob(base, backend)  # validates: raises on bad options or data
        self.options = self._job.options()
        self.id = self.options["job_id"]
        self.model_path = session._model_path(self.id)  # an object URI in the session's store
        self.result_uri = session.object_uri(_virga.job_result_key(self.id))
        self._lock = threading.Lock()   # guards _job (closed by the runner thread) and the snapshots
        self._done = threading.Event()
        self._result = None
        self._error = None
        self._save_error = None
        self._history = []
        self._progress = None
        self._on_end = on_end
        self._killed_at = None
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"virga-{self.id}", daemon=True)
        session._add_job(self)
        self._thread.start()

    def _run(self):
        job = self._job
        try:
            self._result = json.loads(job.run())
        except Exception as e:  # the engine's error, re-raised by wait()
            self._error = e
        state = self._result["state"] if self._result else "failed"
        # The engine keeps the model at model_path (result["model_file"]); an older result without it
        # is saved here.
        if self._result and not state.startswith("failed") and not self._result.get("model_file"):
            try:
                job.save_model(self.model_path)
            except Exception as e:
                self._save_error = e
        with self._lock:
            self._history = job.history()
            self._progress = job.progress()
            self._job = None
        job.close()
        if self._on_end:  # before done: wait() returns once it has run
            try:
                self._on_end(self)
            except Exception:
                pass
        self._done.set()

    @classmethod
    def resume(cls, job_id, session=None, on_end=None):
        """Continues job `job_id` from its last checkpoint, as ``virga train --resume``.

        The job must have checkpointed (``checkpoint_interval`` or ``server_process`` when it was
        started, from Python or ``virga train``) into the session's store; its dataset, model and
        plan come from there, and items acked after the checkpoint are processed again. Its
        driver must have ended (killed, crashed): its workers have, within seconds.

        Returns the running Job (``wait()``, ``status``, ``kill()``, as any job).

        Raises
        ------
        virga.NotFoundError
            No checkpointed job of that id in the store (the message says which can be resumed).
        """
        if session is None:
            from .session import default_session
            session = default_session()
        return cls(session, {"job_id": job_id, "resume": True}, on_end=on_end)

    # ---- state ---------------------------------------------------------------------------
    def done(self):
        return self._done.is_set()

    @property
    def status(self):
        """'starting', 'running', then the engine's final state ('done', 'killed', 'diverged',
        'target_reached', 'time_limit', 'failed: ...')."""
        if self._done.is_set():
            return self._result["state"] if self._result else f"failed: {self._error}"
        return self.progress.get("state", "running")

    @property
    def progress(self):
        """The engine's live view: seconds, epoch/epochs, samples, test_logloss, best_logloss,
        test_auc, workers_alive, ... (a dict)."""
        with self._lock:
            if self._job is not None:
                return self._job.progress()
            return dict(self._progress or {})

    @property
    def history(self):
        """Evaluations so far: a list of dicts (seconds, updates, samples, test_logloss,
        test_auc, test_accuracy)."""
        with self._lock:
            if self._job is not None:
                return self._job.history()
            return list(self._history)

    @property
    def result(self):
        """The engine's result (docs/training.md, "Result JSON") once the job has ended."""
        return self._result

    @property
    def seconds(self):
        return self.progress.get("seconds", 0.0)

    def kill(self):
        """Stops the job (state 'killed'): its workers are told to stop and killed within about
        a second, its table is dropped. Returns at once; wait() observes the end."""
        with self._lock:
            if self._job is not None:
                if self._killed_at is None:
                    self._killed_at = time.monotonic()
                self._job.kill()

    def wait(self, timeout=None, progress=False):
        """Block until the job ends, or for `timeout` seconds.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; None waits for the end.
        progress : bool or int, default False
            Show progress meanwhile (epoch, loss, samples/s): True or 1 in a notebook or on a
            terminal, 2 also as a text line every few seconds elsewhere (virga.progress).

        Returns
        -------
        dict or None
            The engine's result once the job has ended (None if it is still running).

        Raises
        ------
        KeyboardInterrupt
            When interrupted (Ctrl-C, Jupyter's interrupt) the job is killed and its workers
            stopped, then the interrupt is re-raised.
        """
        from . import progress as progress_mod
        deadline = None if timeout is None else time.monotonic() + timeout
        display = progress_mod.make(int(progress)) if progress else None
        try:
            while not self._done.wait(0.5 if display else 0.1 if deadline else 1.0):
                if display:
                    display.update(self)
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            self.kill()
            self._done.wait(30)
            if display:
                display.update(self, final=True)
            raise
        if display:
            display.update(self, final=self._done.is_set())
        if self._done.is_set() and self._error is not None:
            raise self._error
        if self._done.is_set() and self._save_error is not None:
            raise self._save_error
        return self._result

    def worker_pids(self):
        """PIDs of this job's worker functions that have not ended."""
        return [f["pid"] for f in self.session.worker_functions()
                if f["label"] == self.id and f["state"] in ("starting", "running") and f["pid"]]

    def describe(self):
        p = self.progress
        loss = p.get("test_metric", p.get("test_logloss", float("nan")))
        best = p.get("best_metric", p.get("best_logloss", float("nan")))
        return (f"{self.id}: {self.status}  {p.get('seconds', 0):6.1f}s  epoch "
                f"{p.get('epoch', 0)}/{p.get('epochs', 0)}  test {p.get('metric', 'logloss')} "
                f"{loss:.4f} (best {best:.4f})  "
                f"{p.get('samples_per_second', 0):,.0f} samples/s  workers {p.get('workers_alive', 0)}")

    def __repr__(self):
        return f"<virga.Job {self.describe()}>"

    def _repr_html_(self):
        """Jupyter's view: the progress table, and the loss history so far."""
        from . import progress as progress_mod
        h = self.history
        rows = [[f"{p['seconds']:.1f}", p["samples"], f"{p['test_logloss']:.4f}",
                 f"{p['test_auc']:.4f}"] for p in h[-8:]]
        hist = (progress_mod.html_table(rows, ["seconds", "samples", "loss", "AUC"])
                if rows else "")
        return (f"<div><b>virga job</b> {progress_mod.job_html(self)}"
                f"{'<details><summary>history (last 8)</summary>' + hist + '</details>' if hist else ''}"
                "</div>")

    def plot(self, ax=None, live=None):
        """Test logloss against time (matplotlib).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; default a new figure.
        live : bool, optional
            Redraw every second until the job ends (default: in Jupyter only).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from . import plotting
        return plotting.plot_runs([(self.id, self)], ax=ax, live=live)


def finite(x):
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


class ProgressLine:
    """One status line on stderr, rewritten in place on a terminal; every 5 s otherwise."""

    def __init__(self, stream=None):
        import sys
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = 0.0

    def show(self, text, final=False):
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text[:200] + "\033[K" + ("\n" if final else ""))
        elif final or now - self.last >= 5:
            self.stream.write(text + "\n")
            self.last = now
        self.stream.flush()
