"""Sessions and dataset handles.

A Session is where a workflow runs: an object store (datasets, and everything its jobs produce:
results, models, search summaries; docs/object-layout.md), parameter servers (an embedded one by
default, started on first use and shared by every job of the session) and a compute backend
(chosen by name, local worker processes by default; one backend shared by every job). Jobs of
one session run concurrently, each with its own table and work queue on the shared server.
"""
import atexit
import json
import os
import re
import subprocess
import threading
import uuid
import warnings
import weakref

from . import _engine
from ._engine import _virga


class Dataset:
    """A handle on one split ("train" or "test") of a dataset in a session's store."""

    def __init__(self, session, name, split, source=None):
        self.session = session
        self.name = name
        self.split = split
        self.source = source  # the handle this dataset was derived from (normalize), if any
        self._manifest = None

    @property
    def manifest(self):
        """The dataset's manifest (docs/object-layout.md) as a dict."""
        if self._manifest is None:
            self._manifest = json.loads(_virga.manifest_json(self.session.store, self.name))
        return self._manifest

    @property
    def rows(self):
        return self.manifest[f"{self.split}_rows"]

    @property
    def train(self):
        return Dataset(self.session, self.name, "train", self.source)

    @property
    def test(self):
        """The test split of the same dataset (None if it has none)."""
        if self.manifest["test_rows"] == 0:
            return None
        return Dataset(self.session, self.name, "test", self.source)

    def __repr__(self):
        return f"Dataset({self.name!r}, split={self.split!r}, store={self.session.store!r})"

    def __eq__(self, other):
        return (isinstance(other, Dataset) and (self.session.store, self.name, self.split) ==
                (other.session.store, other.name, other.split))

    def __hash__(self):
        return hash((self.session.store, self.name, self.split))


def _token_from_home():
    env = os.environ.get("VIRGA_TOKEN")
    if env:
        return env
    path = os.path.expanduser("~/.virga/token")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        raise _virga.InvalidArgumentError(
            "connect: servers given but no token: pass token=, set $VIRGA_TOKEN or write "
            "~/.virga/token") from None


def _dataset_name(path, prefix):
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(str(path)).split(".")[0]) or prefix
    return f"{stem[:100]}-{uuid.uuid4().hex[:8]}"


def _setting_text(value):
    """A backend setting's value as the engine reads it (text; booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


class Session:
    """See connect()."""

    def __init__(self, store=None, servers=None, backend=None, token=None, registry_dir=None,
                 dashboard=False, dashboard_port=0, **backend_settings):
        # A setting may be named with its backend's prefix too (lambda_function= for
        # backend="lambda"), as the CLI flags are (--lambda-function).
        prefix = (backend or _virga.default_backend_name()) + "_"
        self.backend_settings = {(k[len(prefix):] if k.startswith(prefix) else k): _setting_text(v)
                                 for k, v in backend_settings.items()}
        # An unknown backend or setting fails here, naming the known ones ("": the default).
        _virga.check_backend(backend or "", self.backend_settings)
        self.backend_name = backend or _virga.default_backend_name()
        # Stages (ingest, normalize) run on the backend's functions when a backend was chosen
        # (here or by $VIRGA_BACKEND), as the CLI's do (docs/stages.md).
        self.stages_on_functions = backend is not None or bool(os.environ.get("VIRGA_BACKEND"))
        self.store = store or os.environ.get("VIRGA_STORE") or _engine.TRAIN_DEFAULTS["store"]
        if isinstance(servers, str):
            servers = [s for s in servers.split(",") if s]
        self.servers = list(servers) if servers else None
        self.token = (token or _token_from_home()) if self.servers else None
        self.registry_dir = registry_dir
        self._lock = threading.Lock()
        self._server = None    # embedded PsServer, GUARDED_BY(_lock)
        self._backend = None   # _virga.Backend, GUARDED_BY(_lock)
        self._store_uri = None  # the store's normalised URI, GUARDED_BY(_lock)
        self._jobs = []        # every Job started in this session
        self._closed = False
        self._dashboard = None  # `virga dashboard` process
        self.dashboard_url = None
        _open_sessions.add(self)
        if dashboard:
            self._dashboard, self.dashboard_url = _start_dashboard(registry_dir, dashboard_port)
            print(f"virga dashboard: {self.dashboard_url}", flush=True)

    # A session is a handle on shared resources: copies share them (sklearn.base.clone
    # deep-copies estimator parameters, and `session` is one).
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    # Pickled (an estimator's `session` parameter, joblib) as the way to reach it: unpickling
    # in this process returns this same session while it is open; elsewhere it opens one on
    # the same store, servers and backend. The servers' token is not pickled (it is read
    # again from $VIRGA_TOKEN or ~/.virga/token).
    def __reduce__(self):
        return (_reconnect, (self.store, self.servers, self.backend_name, self.registry_dir,
                             dict(self.backend_settings)))

    def __repr__(self):
        where = ",".join(self.servers) if self.servers else (
            f"embedded:{self._server.port}" if self._server else "embedded (not started)")
        return f"Session(store={self.store!r}, servers={where}, backend={self.backend_name!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- data -------------------------------------------------------------------------------
    def _stage_backend(self, functions):
        """The backend a stage runs on (None: in this process), from `functions`: None follows
        the session (on functions when it was given a backend), 0/False in process, True or
        N > 0 on functions (at most N at once)."""
        if functions is None:
            functions = self.stages_on_functions
        if functions is False or functions == 0:
            return None, 0
        _, backend = self._train_options()
        return backend, (0 if functions is True else int(functions))

    def _ingest(self, fmt, paths, name, test_fraction, functions=None, part_mb=128, **kw):
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        paths = [os.fspath(p) for p in paths]
        name = name or _dataset_name(paths[0], fmt)
        backend, n = self._stage_backend(functions)
        report = _virga.ingest(self.store, fmt, paths, name, test_fraction=test_fraction,
                               backend=backend, functions=n, part_mb=part_mb, **kw)
        train = Dataset(self, name, "train")
        test = Dataset(self, name, "test") if report["test_rows"] > 0 else None
        return train, test

    def load_criteo(self, path, test_fraction=0.1, hash_bits=20, name=None, on_error="fail",
                    functions=None, part_mb=128, task="any", classes=0):
        """Ingests Criteo TSV file(s) (plain, .gz, .zst); returns (train, test) handles.

        Parameters
        ----------
        path : str or list of str
            Local paths or object URIs (keys may hold wildcards: ``s3://b/raw/*.gz``).
        test_fraction : float
            Share of rows routed to the test split.
        hash_bits : int
            The hashed feature space has 2**hash_bits slots.
        name : str, optional
            The dataset's name (default: from the first file's name).
        on_error : {"fail", "skip"}
            A bad line fails the ingest naming FILE:LINE, or is skipped and counted.
        functions : None, bool or int
            Run the ingest as functions of the session's backend, one per part of the input
            (docs/stages.md): None does so when the session was given a backend (or
            $VIRGA_BACKEND is set); False or 0 runs it in this process; True or N on
            functions, at most N at once.
        part_mb : int
            With functions: input MB per function task (larger uncompressed files are cut into
            byte ranges).
        task : {"any", "binary", "regression", "multiclass"}
            The labels' task, checked line by line as `virga ingest --task` does: a label that
            does not fit (7 for "binary") fails the ingest naming FILE:LINE.
        classes : int
            > 0: labels are class numbers 0..classes-1 (multiclass).
        """
        return self._ingest("criteo", path, name, test_fraction, functions, part_mb,
                            hash_bits=hash_bits, on_error=on_error, task=task, classes=classes)

    def load_libsvm(self, path, test_fraction=0.1, name=None, on_error="fail", functions=None,
                    part_mb=128, task="any", classes=0):
        """Ingests LIBSVM file(s); parameters as for load_criteo."""
        return self._ingest("libsvm", path, name, test_fraction, functions, part_mb,
                            on_error=on_error, task=task, classes=classes)

    def load_csv(self, path, test_fraction=0.1, label_column="0", header="auto", name=None,
                 on_error="fail", functions=None, part_mb=128, task="any", classes=0):
        """Ingests CSV file(s): the label column by name or 0-based index; header "auto",
        "yes" or "no" (only files without a header are cut into byte ranges on functions);
        the other parameters as for load_criteo."""
        return self._ingest("csv", path, name, test_fraction, functions, part_mb,
                            label_column=str(label_column), header=header, on_error=on_error,
                            task=task, classes=classes)

    def load_ratings(self, path, test_fraction=0.1, name=None, on_error="fail", functions=None,
                     part_mb=128, task="any", classes=0):
        """Ingests ratings file(s) (user, item, rating[, time]); parameters as for load_criteo."""
        return self._ingest("ratings", path, name, test_fraction, functions, part_mb,
                            on_error=on_error, task=task, classes=classes)

    def dataset(self, name, split="train"):
        """A handle on a dataset already in the store."""
        ds = Dataset(self, name, split)
        ds.manifest  # raises NotFoundError naming it if absent
        return ds

    def normalize(self, ds, method="minmax", name=None, functions=None):
        """Scales numeric features (fit on the train split, applied to both splits) into a new
        dataset. Accepts a handle or a (train, test) pair and returns the same shape.
        `functions`: as for the load_* methods."""
        pair = isinstance(ds, tuple)
        first = ds[0] if pair else ds
        name = name or f"{first.name[:100]}-{method}-{uuid.uuid4().hex[:4]}"
        backend, n = self._stage_backend(functions)
        _virga.normalize(self.store, first.name, name, method, backend=backend, functions=n)
        out = Dataset(self, name, first.split, source=first)
        if pair:
            return out.train, out.test
        return out

    # ---- servers and backend for jobs --------------------------------------------------------
    def _train_options(self):
        """servers, token and backend for a job of this session (started on first use)."""
        with self._lock:
            if self._closed:
                raise _virga.Error("session is closed")
            if self._backend is None:
                settings = dict(self.backend_settings)
                if self.backend_name == "local" and "worker_binary" not in settings:
                    settings["worker_binary"] = _engine.worker_binary()  # not python itself
                self._backend = _virga.Backend(self.backend_name, settings)
            if self.servers:
                servers, token = self.servers, self.token
            else:
                if self._server is None:
                    self._server_token = uuid.uuid4().hex + uuid.uuid4().hex
                    self._server = _virga.PsServer(self._server_token, threads=1)
                servers, token = [f"127.0.0.1:{self._server.port}"], self._server_token
            opts = {"store": self.store, "servers": servers, "token": token}
            if self.registry_dir is not None:
                opts["registry_dir"] = self.registry_dir
            return opts, self._backend

    def resume(self, job_id):
        """Continues job `job_id` from its last checkpoint in this session's store (as
        ``virga train --resume``): a running :class:`virga.Job`. See ``Job.resume``."""
        from .job import Job
        return Job.resume(job_id, session=self)

    def object_uri(self, key):
        """The URI of object `key` in the session's store (e.g. for virga.load)."""
        with self._lock:
            if self._store_uri is None:
                self._store_uri = _virga.store_uri(self.store)
            return f"{self._store_uri}/{key}"

    def _model_path(self, job_id):
        """Where a job's model goes: jobs/<job-id>/model.vmdl in the store."""
        return self.object_uri(_virga.job_model_key(job_id))

    def _add_job(self, job):
        with self._lock:
            self._jobs.append(job)

    @property
    def jobs(self):
        """Every job started in this session, oldest first."""
        with self._lock:
            return list(self._jobs)

    def worker_functions(self):
        """The backend's functions: id, label (the job id), state, pid."""
        with self._lock:
            backend = self._backend
        return backend.functions() if backend else []

    def close(self):
        """Kills running jobs, waits for them, stops the embedded server."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            jobs = list(self._jobs)
        for j in jobs:
            j.kill()
        for j in jobs:
            j._done.wait(30)
        with self._lock:
            if self._server is not None:
                self._server.stop()
            self._server = None
            self._backend = None
        if self._dashboard is not None:
            self._dashboard.terminate()
            self._dashboard.wait(10)


def _start_dashboard(registry_dir, port):
    """Runs `virga dashboard` over the session's registry; returns (process, URL with token)."""
    if registry_dir == "-":
        raise _virga.InvalidArgumentError("connect: dashboard=True needs a job registry, not '-'")
    cmd = [_engine.worker_binary(), "dashboard", "--port", str(int(port)),
           "--registry", registry_dir or _virga.default_registry_dir()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "virga dashboard: http://...?token=..." once it listens
    m = re.search(r"(http://\S+token=[0-9a-f]+)", line)
    if not m:
        proc.kill()
        err = proc.communicate(timeout=10)[1].strip()
        raise _virga.Error(f"virga dashboard did not start: {err or line.strip() or 'no output'}")
    return proc, m.group(1)


# Sessions still open at interpreter exit are closed (their jobs killed and waited for), so no
# engine thread runs while Python finalizes.
_open_sessions = weakref.WeakSet()


@atexit.register
def _close_open_sessions():
    for s in list(_open_sessions):
        s.close()


def _reconnect(store, servers, backend, registry_dir, backend_settings):
    for s in list(_open_sessions):
        if (not s._closed and (s.store, s.servers, s.backend_name, s.registry_dir,
                               s.backend_settings) ==
                (store, servers, backend, registry_dir, backend_settings)):
            return s
    return Session(store=store, servers=servers, backend=backend, registry_dir=registry_dir,
                   **backend_settings)


_default_lock = threading.Lock()
_default = None  # the session of estimators given in-memory data and no session


def default_session():
    """The session estimators use when given in-memory data (numpy, scipy.sparse, pandas) and
    no `session`: created on first use with the store $VIRGA_STORE, else a private temporary
    directory removed at exit; an embedded server and the local backend."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            store = os.environ.get("VIRGA_STORE")
            tmp = None
            if not store:
                import tempfile
                tmp = tempfile.mkdtemp(prefix="virga-store-")
                store = tmp
            _default = Session(store=store)
            if tmp:
                atexit.register(_remove_default_store, _default, tmp)
        return _default


def _remove_default_store(session, path):
    import shutil
    session.close()
    shutil.rmtree(path, ignore_errors=True)


def connect(store=None, servers=None, backend=None, token=None, registry_dir=None,
            dashboard=False, dashboard_port=0, **backend_settings):
    """Open a session: a store, parameter servers and a compute backend for jobs.

    Parameters
    ----------
    store : str, optional
        Object store URI (``file:///dir``, a plain path, ``s3://bucket/prefix``,
        ``mem://name``); default ``$VIRGA_STORE``, else the engine's default
        (``file://./virga-store``). Datasets live there, and everything jobs produce:
        ``jobs/<job-id>/result.json``, ``jobs/<job-id>/model.vmdl``,
        ``searches/<search-id>/result.json`` (docs/object-layout.md).
    servers : list of str or str, optional
        ``"host:port"`` list (or comma-separated string) of running ``virga server`` processes; None
        runs one embedded server in this process, shared by all the session's jobs.
    backend : str, optional
        The compute backend running the worker functions, by name (``virga.backends()``
        lists them); default ``$VIRGA_BACKEND``, else ``"local"`` (local processes). One
        backend is shared by all the session's jobs. An unknown name raises
        InvalidArgumentError listing the known ones.
    token : str, optional
        The servers' secret (default ``$VIRGA_TOKEN``, else ``~/.virga/token``); only with
        ``servers``.
    registry_dir : str, optional
        Where jobs register for ``virga jobs`` / ``virga kill`` (default: the engine's,
        ``$VIRGA_HOME/jobs`` else ``~/.virga/jobs``; ``"-"`` registers nothing).
    dashboard : bool, default False
        Start the live dashboard (``virga dashboard``, docs/dashboard.md) over the registry
        and print its URL (token included; also ``session.dashboard_url``); it stops with the
        session.
    dashboard_port : int, default 0
        The dashboard's port; 0 picks a free one.
    **backend_settings
        The backend's own settings, e.g. for ``"local"`` ``worker_binary``,
        ``worker_prefix``, ``work_dir``, ``memory_cap``, ``seed``; for ``"lambda"``
        ``function``, ``qualifier``, ``max_concurrency``, ``start_timeout``,
        ``heartbeat_timeout`` (``virga.backends()`` lists them with their environment
        variables). The backend's name may prefix them, as the CLI flags do:
        ``connect(backend="lambda", lambda_function="virga-worker")``. An unknown one raises
        InvalidArgumentError.

    Returns
    -------
    Session
    """
    return Session(store=store, servers=servers, backend=backend, token=token,
                   registry_dir=registry_dir, dashboard=dashboard, dashboard_port=dashboard_port,
                   **backend_settings)


def warn_unnormalized_test(train, test):
    """If `test` is the test split of the dataset `train` was normalized from, returns the test
    split of `train`'s own dataset (normalized with the same statistics) and warns."""
    if (test is not None and train.source is not None and test.split == "test"
            and test.name == train.source.name and test.name != train.name):
        warnings.warn(f"test split of {test.name!r} is not normalized; evaluating on the test "
                      f"split of {train.name!r} instead", stacklevel=3)
        return train.test
    return test
