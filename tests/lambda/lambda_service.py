#!/usr/bin/python3
"""A local AWS Lambda service for virga's tests: it behaves like AWS, not like virga.

    /usr/bin/python3 tests/lambda/lambda_service.py --state-dir DIR [--port 0]
        [--access-key VIRGA --secret-key VIRGASECRET] [--region us-east-1] [--account 123456789012]

prints `PORT <n>` on stdout once listening on 127.0.0.1, logs to stderr only with
--verbose, runs until SIGTERM/SIGINT. docs/lambda-local.md has the whole reference.

What it implements
- The control and Invoke APIs as AWS answers them (rest-json, 2015-03-31), every request
  SigV4-checked (service `lambda`, the configured region and key pair): CreateFunction,
  GetFunction, UpdateFunctionCode, DeleteFunction, Invoke (RequestResponse, Event, DryRun;
  Qualifier $LATEST; name, partial or full ARN). Errors carry `x-amzn-ErrorType` and
  {"Type": "User", "message"|"Message": ...} with the casing of botocore's model.
- Execution environments for `provided.al2023`/`provided.al2` functions: the zip unpacked
  into a fresh task root, `bootstrap` started with Lambda's environment variables, one
  Runtime API listener (2018-06-01) per environment, warm reuse, idle reclaim.
- Lambda's limits and failures: payload caps (6 MB sync, 1 MB async, 6 MB responses),
  Timeout (Sandbox.Timedout), MemorySize (Runtime.OutOfMemory), a bootstrap that exits
  (Runtime.ExitError), init/error, a missing bootstrap (Runtime.InvalidEntrypoint at
  invoke, as AWS: CreateFunction accepts such a zip), the account concurrency limit
  (429 for sync calls; async events wait), async retries (2 more attempts).
- Faults and observation through an unsigned admin API under /__admin/ (below).

What it does not implement: versions, aliases and Publish; layers; container images and
S3-hosted code; reserved/provisioned concurrency; event source mappings, destinations
and DLQs; streaming responses; extensions and the Telemetry/Logs APIs; X-Ray; tags and
every other control operation.

How it differs from AWS
- No isolation: a bootstrap runs as the service's user on this host, sees the host's
  file system (/tmp is shared) and network; LAMBDA_TASK_ROOT is a writable directory.
- Memory: RLIMIT_AS would punish runtimes that reserve address space, so the resident
  set of the environment's process group (and descendants that left it) is read from
  /proc every 50 ms and the environment is SIGKILLed above MemorySize: a short spike
  between two reads is missed. CPU is not scaled with memory.
- Between invocations AWS freezes an environment; here it simply waits in `next`.
- Init: a new environment has --init-timeout (10 s) to call `next`, else Sandbox.Timedout;
  AWS instead re-runs a slow init inside the invocation.
- A timed-out, killed or crashed environment is discarded (AWS resets it in place).
- Log tails (X-Amz-Log-Type: Tail) hold the function's own output, without Lambda's
  START/END/REPORT lines.
- Duplicate async deliveries and environment kills happen only when injected.

Admin API (unsigned, JSON): GET /__admin/health; GET|POST /__admin/faults;
GET|POST /__admin/config; GET /__admin/stats; GET /__admin/invocations[?function=F];
GET /__admin/environments; GET /__admin/functions/NAME/code; POST /__admin/reset.
"""
import argparse
import base64
import collections
import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lambda_support as sup  # noqa: E402

SYNC_LIMIT = 6 * 1024 * 1024          # Invoke payload, RequestResponse (6291456 bytes)
ASYNC_LIMIT = 1024 * 1024             # Invoke payload, Event (1048576 bytes)
RESPONSE_LIMIT = SYNC_LIMIT + 100     # a function's response (Lambda says 6291556 bytes)
ZIP_LIMIT = 50 * sup.MIB              # a zip uploaded in the request
REQUEST_LIMIT = ZIP_LIMIT * 4 // 3 + 65536
UNZIPPED_LIMIT = 262144000
RUNTIMES = ("provided.al2023", "provided.al2")
RESERVED_ENV = {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION",
                "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
                "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}
NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ROLE_RE = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
ENV_KEY_RE = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
DEFAULT_FAULTS = {"throttle_rate": 0.0, "duplicate_rate": 0.0, "kill_rate": 0.0,
                  "cold_start_ms": [0, 0], "never_start": [], "seed": None,
                  "duplicate_delay_ms": [50, 300], "kill_window_ms": 1000}


class ApiError(Exception):
    def __init__(self, status, error_type, message, extra=None):
        super().__init__(message)
        self.status, self.error_type, self.extra = status, error_type, extra or {}


def _message_keys():
    """Error type -> the casing of its message member in botocore's lambda model."""
    try:
        import botocore.session
        model = botocore.session.get_session().get_service_model("lambda")
        return {name: ("Message" if "Message" in model.shape_for(name).members else "message")
                for name in model.shape_names if name.endswith("Exception")}
    except Exception:  # the service still answers; "message" is the common casing
        return {}


def now_iso():
    return datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def validation(field, value, constraint):
    return ApiError(400, "ValidationException",
                    f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
                    f"constraint: {constraint}")


class Invocation:
    """One delivery attempt of an invocation (a retry or a duplicate is another one)."""

    def __init__(self, fn, arn, kind, payload, request_id=None, attempt=1, duplicate=False,
                 client_context=None):
        self.request_id = request_id or str(uuid.uuid4())
        self.function, self.arn, self.kind, self.payload = fn, arn, kind, payload
        self.attempt, self.duplicate, self.client_context = attempt, duplicate, client_context
        t = int(time.time())
        self.trace_id = (f"Root=1-{t:08x}-{uuid.uuid4().hex[:24]};"
                         f"Parent={uuid.uuid4().hex[:16]};Sampled=0")
        self.queued_at = time.time()
        self.env = None
        self.cold = None
        self.delivered = False
        self.started_at = self.deadline = self.ended_at = self.kill_at = None
        self.outcome = None  # "Success" | "Unhandled" | "Abandoned"
        self.error_type = None
        self.result = b""
        self.max_rss_mb = 0.0
        self.log_start = self.log_end = 0
        self.done = threading.Event()

    def again(self, **changes):
        args = dict(fn=self.function, arn=self.arn, kind=self.kind, payload=self.payload,
                    request_id=self.request_id, attempt=self.attempt,
                    duplicate=self.duplicate, client_context=self.client_context)
        args.update(changes)
        return Invocation(**args)

    def record(self):
        state = self.outcome or ("running" if self.delivered else "pending")
        return {"request_id": self.request_id, "function": self.function, "type": self.kind,
                "attempt": self.attempt, "duplicate": self.duplicate,
                "environment": self.env.id if self.env else None, "cold": self.cold,
                "queued_at": self.queued_at, "start": self.started_at, "end": self.ended_at,
                "outcome": state, "error_type": self.error_type,
                "max_rss_mb": round(self.max_rss_mb, 1)}


class Environment:
    """An execution environment: a task root, a bootstrap process group and its
    Runtime API listener. States: starting -> init -> busy <-> idle -> dying -> dead
    (an init/error makes it "failed", then dying)."""

    def __init__(self, env_id, fn):
        self.id, self.function = env_id, fn["FunctionName"]
        self.fn = fn  # the configuration it was started with
        self.state = "starting"
        self.current = None
        self.served = 0
        self.created = time.time()
        self.init_started = self.idle_since = None
        self.kill_reason = None  # (errorType, message, stats key) for the current invocation
        self.proc = self.pgid = self.server = self.port = None
        self.dir = self.log_path = None
        self.members, self.escaped = set(), set()
        self.rss_mb = 0.0

    def info(self):
        return {"id": self.id, "function": self.function, "state": self.state,
                "pid": self.proc.pid if self.proc else None, "pgid": self.pgid,
                "runtime_api_port": self.port, "invocations": self.served,
                "rss_mb": round(self.rss_mb, 1), "pids": sorted(self.members),
                "escaped": sorted(self.escaped), "code_sha256": self.fn["CodeSha256"],
                "task_root": os.path.join(self.dir, "task") if self.dir else None}


class Service:
    def __init__(self, args, guardian):
        self.args, self.guardian = args, guardian
        self.spawner = sup.Spawner()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # any environment or invocation change
        # Everything below is guarded by self.lock.
        self.functions = {}          # name -> configuration (FunctionConfiguration fields)
        self.envs = {}               # id -> live Environment
        self.sync_q, self.async_q = collections.deque(), collections.deque()
        self.timers = set()          # scheduled retries and duplicates
        self.invocations = []        # every delivery attempt, oldest first
        self.stats = collections.Counter()
        self.faults = json.loads(json.dumps(DEFAULT_FAULTS))
        self.settings = {"retry_delays_s": [float(x) for x in args.retry_delays.split(",") if x],
                         "idle_timeout_s": args.idle_timeout,
                         "max_concurrency": args.max_concurrency,
                         "init_timeout_s": args.init_timeout}
        self.rng = random.Random()
        self.env_seq = 0
        self.closing = False
        self.port = None
        self.message_keys = _message_keys()
        os.makedirs(os.path.join(args.state_dir, "functions"), exist_ok=True)
        shutil.rmtree(os.path.join(args.state_dir, "envs"), ignore_errors=True)
        self._load_functions()
        threading.Thread(target=self._monitor, name="monitor", daemon=True).start()

    def log(self, msg):
        if self.args.verbose:
            print(f"lambda_service: {msg}", file=sys.stderr, flush=True)

    # -- functions ---------------------------------------------------------------------

    def _fn_dir(self, name):
        return os.path.join(self.args.state_dir, "functions", name)

    def _load_functions(self):
        root = os.path.join(self.args.state_dir, "functions")
        for name in os.listdir(root):
            try:
                with open(os.path.join(root, name, "config.json")) as f:
                    self.functions[name] = json.load(f)
            except (OSError, ValueError):
                pass

    def _save_function(self, cfg, zip_bytes=None):
        d = self._fn_dir(cfg["FunctionName"])
        os.makedirs(d, exist_ok=True)
        if zip_bytes is not None:
            with open(os.path.join(d, "code.zip.tmp"), "wb") as f:
                f.write(zip_bytes)
            os.replace(os.path.join(d, "code.zip.tmp"), os.path.join(d, "code.zip"))
        with open(os.path.join(d, "config.json.tmp"), "w") as f:
            json.dump(cfg, f)
        os.replace(os.path.join(d, "config.json.tmp"), os.path.join(d, "config.json"))

    def arn(self, name, qualifier=None):
        a = f"arn:aws:lambda:{self.args.region}:{self.args.account}:function:{name}"
        return a + (":" + qualifier if qualifier else "")

    def resolve(self, raw, qualifier=None):
        """(configuration, invoked ARN) for a name, name:qualifier, partial or full ARN."""
        parts = raw.split(":")
        if raw.startswith("arn:") and len(parts) in (7, 8) and parts[5] == "function":
            ok = parts[3] == self.args.region and parts[4] == self.args.account
            name, q = parts[6], (parts[7] if len(parts) == 8 else None)
        elif len(parts) in (3, 4) and parts[1] == "function":
            ok, name, q = parts[0] == self.args.account, parts[2], (parts[3] if len(parts) == 4 else None)
        elif len(parts) in (1, 2):
            ok, name, q = True, parts[0], (parts[1] if len(parts) == 2 else None)
        else:
            raise validation("functionName", raw, "Member must satisfy regular expression pattern")
        if q and qualifier and q != qualifier:
            raise ApiError(400, "InvalidParameterValueException",
                           "The derived qualifier from the function name does not match the "
                           "specified qualifier.")
        q = q or qualifier
        with self.lock:
            cfg = self.functions.get(name)
        if not ok or cfg is None or (q and q != "$LATEST"):
            raise ApiError(404, "ResourceNotFoundException",
                           f"Function not found: {self.arn(name, q)}")
        return cfg, self.arn(name, q)

    def _check_code(self, zip_b64):
        try:
            data = base64.b64decode(zip_b64, validate=True)
        except (ValueError, TypeError):
            raise ApiError(400, "InvalidParameterValueException",
                           "Could not unzip uploaded file. Please check your file, then try to upload again.")
        if len(data) > ZIP_LIMIT:
            raise ApiError(413, "RequestEntityTooLargeException",
                           f"Request must be smaller than {REQUEST_LIMIT} bytes for the "
                           "CreateFunction operation")
        try:
            sha, _ = sup.inspect_zip(data, UNZIPPED_LIMIT)
        except sup.BadPackage as e:
            raise ApiError(400, "InvalidParameterValueException", str(e))
        return data, sha

    def create_function(self, req):
        name = req.get("FunctionName")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise validation("functionName", name, "Member must satisfy regular expression "
                             "pattern: [a-zA-Z0-9-_]+ and have length less than or equal to 64")
        runtime = req.get("Runtime")
        if runtime not in RUNTIMES:
            raise ApiError(400, "InvalidParameterValueException",
                           f"The runtime parameter of {runtime} is not supported by this local "
                           f"service: use one of {', '.join(RUNTIMES)}.")
        role = req.get("Role")
        if not isinstance(role, str) or not ROLE_RE.fullmatch(role):
            raise validation("role", role, "Member must satisfy regular expression pattern: "
                             "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+")
        memory, timeout = req.get("MemorySize", 128), req.get("Timeout", 3)
        if not isinstance(memory, int) or not 128 <= memory <= 10240:
            raise validation("memorySize", memory, "Member must have value between 128 and 10240")
        if not isinstance(timeout, int) or not 1 <= timeout <= 900:
            raise validation("timeout", timeout, "Member must have value between 1 and 900")
        arch = req.get("Architectures") or ["x86_64"]
        if arch != ["x86_64"]:
            raise ApiError(400, "InvalidParameterValueException",
                           f"Architectures {arch} cannot run on this host (x86_64 only).")
        variables = self._check_env((req.get("Environment") or {}).get("Variables") or {})
        code = req.get("Code") or {}
        if "ZipFile" not in code:
            raise ApiError(400, "InvalidParameterValueException",
                           "Code.ZipFile is required (S3 code and images are not supported here).")
        data, sha = self._check_code(code["ZipFile"])
        cfg = {"FunctionName": name, "FunctionArn": self.arn(name), "Runtime": runtime,
               "Role": role, "Handler": req.get("Handler", ""), "CodeSize": len(data),
               "Description": req.get("Description", ""), "Timeout": timeout,
               "MemorySize": memory, "LastModified": now_iso(), "CodeSha256": sha,
               "Version": "$LATEST", "TracingConfig": {"Mode": "PassThrough"},
               "RevisionId": str(uuid.uuid4()), "State": "Active",
               "LastUpdateStatus": "Successful", "PackageType": "Zip",
               "Architectures": ["x86_64"], "EphemeralStorage": {"Size": 512}}
        if variables:
            cfg["Environment"] = {"Variables": variables}
        with self.lock:
            if name in self.functions:
                raise ApiError(409, "ResourceConflictException", f"Function already exist: {name}")
            self.functions[name] = cfg
        self._save_function(cfg, data)
        return cfg

    def _check_env(self, variables):
        if not isinstance(variables, dict):
            raise ApiError(400, "InvalidParameterValueException", "Environment.Variables must be a map.")
        reserved = sorted(k for k in variables if k in RESERVED_ENV)
        if reserved:
            raise ApiError(400, "InvalidParameterValueException",
                           "Lambda was unable to configure your environment variables because the "
                           "environment variables you have provided contains reserved keys that are "
                           "currently not supported for modification. Reserved keys used in this "
                           f"request: {','.join(reserved)}")
        bad = [k for k in variables if not ENV_KEY_RE.fullmatch(k)]
        if bad:
            raise validation("environment.variables", bad[0], "Member must satisfy regular "
                             "expression pattern: [a-zA-Z]([a-zA-Z0-9_])+")
        if len(json.dumps(variables)) > 4096:
            raise ApiError(400, "InvalidParameterValueException",
                           "Lambda was unable to configure your environment variables because the "
                           "environment variables you have provided exceeded the 4KB limit.")
        return {k: str(v) for k, v in variables.items()}

    def update_code(self, raw, req):
        cfg, _ = self.resolve(raw)
        if "ZipFile" not in req:
            raise ApiError(400, "InvalidParameterValueException",
                           "ZipFile is required (S3 code and images are not supported here).")
        data, sha = self._check_code(req["ZipFile"])
        with self.lock:
            cfg = dict(cfg, CodeSize=len(data), CodeSha256=sha, LastModified=now_iso(),
                       RevisionId=str(uuid.uuid4()))
            self.functions[cfg["FunctionName"]] = cfg
            for env in list(self.envs.values()):  # old code never serves again
                if env.function == cfg["FunctionName"] and env.state == "idle":
                    self._kill(env, None)
        self._save_function(cfg, data)
        return cfg

    def delete_function(self, raw):
        cfg, _ = self.resolve(raw)
        name = cfg["FunctionName"]
        with self.lock:
            self.functions.pop(name, None)
            for q in (self.sync_q, self.async_q):
                for inv in [i for i in q if i.function == name]:
                    q.remove(inv)
                    self._finish(inv, "ResourceNotFoundException", "Function deleted")
            for env in list(self.envs.values()):
                if env.function == name:
                    self._kill(env, ("ResourceNotFoundException", "Function deleted", "deleted"))
        shutil.rmtree(self._fn_dir(name), ignore_errors=True)

    # -- invocations -------------------------------------------------------------------

    def maybe_throttle(self):
        with self.lock:
            if self.faults["throttle_rate"] and self.rng.random() < self.faults["throttle_rate"]:
                self.stats["throttled"] += 1
                raise ApiError(429, "TooManyRequestsException", "Rate Exceeded.",
                               {"Reason": "CallerRateLimitExceeded"})

    def submit_sync(self, cfg, arn, payload, client_context):
        with self.lock:
            name = cfg["FunctionName"]
            if (name not in self.faults["never_start"] and self._idle_env(cfg) is None
                    and self._active() >= self.settings["max_concurrency"]):
                self.stats["throttled"] += 1
                raise ApiError(429, "TooManyRequestsException", "Rate Exceeded.",
                               {"Reason": "ConcurrentInvocationLimitExceeded"})
            self.stats["invokes.RequestResponse"] += 1
            inv = Invocation(name, arn, "RequestResponse", payload, client_context=client_context)
            self.sync_q.append(inv)
            self.invocations.append(inv)
            self._pump()
            return inv

    def submit_event(self, cfg, arn, payload):
        with self.lock:
            self.stats["invokes.Event"] += 1
            inv = Invocation(cfg["FunctionName"], arn, "Event", payload)
            self._enqueue(inv)
            if self.faults["duplicate_rate"] and self.rng.random() < self.faults["duplicate_rate"]:
                lo, hi = self.faults["duplicate_delay_ms"]
                self._later(self.rng.uniform(lo, hi) / 1000, inv.again(duplicate=True))
            return inv

    def abandon(self, inv):
        """A synchronous caller went away: an invocation not yet running is dropped."""
        with self.lock:
            if inv in self.sync_q:
                self.sync_q.remove(inv)
                inv.outcome = "Abandoned"
                inv.ended_at = time.time()
                inv.done.set()

    def _enqueue(self, inv):
        self.async_q.append(inv)
        self.invocations.append(inv)
        self._pump()

    def _later(self, delay, inv):
        def fire():
            with self.lock:
                self.timers.discard(timer)
                if not self.closing and inv.function in self.functions:
                    self._enqueue(inv)
        timer = threading.Timer(delay, fire)
        timer.daemon = True
        self.timers.add(timer)
        timer.start()

    def _active(self):
        return sum(1 for e in self.envs.values() if e.state in ("starting", "init", "busy"))

    def _idle_env(self, cfg):
        for env in self.envs.values():
            if (env.function == cfg["FunctionName"] and env.state == "idle"
                    and env.fn["CodeSha256"] == cfg["CodeSha256"]):
                return env
        return None

    def _pump(self):
        """Gives waiting invocations (synchronous first) to idle or new environments."""
        if self.closing:
            return
        for q in (self.sync_q, self.async_q):
            keep = collections.deque()
            while q:
                inv = q.popleft()
                cfg = self.functions.get(inv.function)
                if cfg is None:
                    self._finish(inv, "ResourceNotFoundException", "Function deleted")
                    continue
                if inv.function in self.faults["never_start"]:
                    keep.append(inv)
                    continue
                env = self._idle_env(cfg)
                if env is not None:
                    self.stats["environments_reused"] += 1
                elif self._active() < self.settings["max_concurrency"]:
                    env = self._new_env(cfg)
                else:
                    keep.append(inv)
                    continue
                inv.env, inv.cold = env, env.served == 0 and env.state == "starting"
                env.current = inv
                if env.state == "idle":
                    env.state = "busy"
            q.extend(keep)
        self.changed.notify_all()

    def _finish(self, inv, error_type=None, message=None, payload=None):
        """Completes an attempt; a failed event is retried. REQUIRES: self.lock held."""
        if inv.done.is_set():
            return
        inv.ended_at = time.time()
        if error_type is None:
            inv.outcome, inv.result = "Success", payload
        else:
            inv.outcome, inv.error_type = "Unhandled", error_type
            inv.result = payload if payload else json.dumps(
                {"errorType": error_type, "errorMessage": message}).encode()
        if inv.env is not None and inv.env.log_path:
            try:
                inv.log_end = os.path.getsize(inv.env.log_path)
            except OSError:
                pass
        inv.done.set()
        self.log(f"{inv.request_id} {inv.function} {inv.kind} attempt {inv.attempt}: "
                 f"{inv.outcome} {inv.error_type or ''} {message or ''}")
        delays = self.settings["retry_delays_s"]
        if (inv.kind == "Event" and error_type and inv.attempt <= len(delays)
                and inv.function in self.functions and not self.closing):
            self.stats["retries"] += 1
            self._later(delays[inv.attempt - 1], inv.again(attempt=inv.attempt + 1, duplicate=False))

    def tail(self, inv):
        if inv.env is None or not inv.env.log_path:
            return ""
        try:
            with open(inv.env.log_path, "rb") as f:
                start = max(inv.log_start, inv.log_end - 4096)
                f.seek(start)
                return base64.b64encode(f.read(inv.log_end - start)).decode()
        except OSError:
            return ""

    # -- environments ------------------------------------------------------------------

    def _new_env(self, cfg):
        self.env_seq += 1
        env = Environment(f"env-{self.env_seq:04d}", dict(cfg))
        self.envs[env.id] = env
        self.stats["environments_started"] += 1
        lo, hi = self.faults["cold_start_ms"]
        delay = self.rng.uniform(lo, hi) / 1000 if hi else 0.0
        threading.Thread(target=self._start_env, args=(env, delay), daemon=True).start()
        return env

    def _start_env(self, env, delay):
        time.sleep(delay)
        with self.lock:
            if env.state != "starting":  # killed while waiting
                self._gone(env, None)
                return
        env.dir = os.path.join(self.args.state_dir, "envs", env.id)
        task, runtime_dir = os.path.join(env.dir, "task"), os.path.join(env.dir, "runtime")
        for d in (task, runtime_dir):
            os.makedirs(d, exist_ok=True)
        env.log_path = os.path.join(env.dir, "log")
        boot = os.path.join(task, "bootstrap")
        try:
            sup.unzip_into(os.path.join(self._fn_dir(env.function), "code.zip"), task)
            if not os.path.isfile(boot):
                raise FileNotFoundError("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")
            server = sup.Server(("127.0.0.1", 0), RuntimeHandler)
            server.env, server.svc = env, self
            threading.Thread(target=server.serve_forever, daemon=True).start()
            env.server, env.port = server, server.server_address[1]
            with open(env.log_path, "ab") as log:
                proc = self.spawner.popen([boot], cwd=task, env=self._environment(env, task, runtime_dir),
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        except OSError as e:  # as Lambda reports a bootstrap it cannot run
            msg = f"fork/exec /var/task/bootstrap: {os.strerror(e.errno).lower()}" if e.errno else str(e)
            with self.lock:
                self._kill(env, ("Runtime.InvalidEntrypoint", msg, "invalid_entrypoint"))
                self._gone(env, None)
            if env.server is not None:
                env.server.shutdown()
                env.server.server_close()
            if not self.args.keep_envs:
                shutil.rmtree(env.dir, ignore_errors=True)
            return
        with self.lock:
            env.proc, env.pgid, env.members = proc, proc.pid, {proc.pid}
            self.guardian.tell("+", "g", proc.pid)
            if env.state == "starting":
                env.state, env.init_started = "init", time.time()
            else:  # killed while starting
                sup.kill_all(proc.pid, ())
        self.log(f"{env.id} {env.function}: bootstrap pid {proc.pid}, runtime API :{env.port}")
        threading.Thread(target=self._reap, args=(env,), daemon=True).start()

    def _environment(self, env, task, runtime_dir):
        fn, a = env.fn, self.args
        e = {"PATH": "/usr/local/bin:/usr/bin:/bin:/opt/bin",
             "LD_LIBRARY_PATH": f"/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:{task}:{task}/lib:/opt/lib",
             "LANG": "en_US.UTF-8", "TZ": ":UTC",
             "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{env.port}",
             "AWS_LAMBDA_FUNCTION_NAME": fn["FunctionName"], "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
             "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn["MemorySize"]),
             "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn['FunctionName']}",
             "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
             "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
             "AWS_REGION": a.region, "AWS_DEFAULT_REGION": a.region,
             "LAMBDA_TASK_ROOT": task, "LAMBDA_RUNTIME_DIR": runtime_dir, "_HANDLER": fn["Handler"],
             "AWS_ACCESS_KEY_ID": a.access_key, "AWS_SECRET_ACCESS_KEY": a.secret_key,
             "AWS_SESSION_TOKEN": a.session_token}
        e.update((fn.get("Environment") or {}).get("Variables") or {})
        return e

    def _reap(self, env):
        rc = env.proc.wait()
        with self.lock:
            self._gone(env, rc)
        env.server.shutdown()
        env.server.server_close()
        if not self.args.keep_envs:
            shutil.rmtree(env.dir, ignore_errors=True)

    def _gone(self, env, rc):
        """The environment's bootstrap ended (rc None: it never started)."""
        env.state = "dead"
        self.envs.pop(env.id, None)
        if env.pgid:
            self.guardian.tell("-", "g", env.pgid)
            sup.kill_all(env.pgid, env.escaped)  # what is left of the group goes too
        for p in env.escaped:
            self.guardian.tell("-", "p", p)
        inv = env.current
        if inv is not None and not inv.done.is_set():
            if env.kill_reason:
                error_type, message, key = env.kill_reason
            elif not inv.delivered and rc == 0:
                error_type, message, key = ("Runtime.ExitError",
                                            "Runtime exited without providing a reason", "exit_errors")
            else:
                error_type, message, key = ("Runtime.ExitError", "Runtime exited with error: "
                                            + sup.exit_description(rc), "exit_errors")
            self.stats[key] += 1
            self._finish(inv, error_type, f"RequestId: {inv.request_id} Error: {message}")
        self._pump()
        self.changed.notify_all()

    def _kill(self, env, reason):
        """SIGKILLs an environment; `reason` fails its current invocation. REQUIRES: lock."""
        if env.state in ("dying", "dead"):
            return
        if env.kill_reason is None:
            env.kill_reason = reason
        env.state = "dying"  # one still starting is ended by _start_env
        if env.proc is not None:
            sup.kill_all(env.pgid, env.escaped)
        self.changed.notify_all()

    def _monitor(self):
        """Every 50 ms: memory (RSS of the group), deadlines, injected kills, idle reclaim."""
        tick = 0
        while True:
            time.sleep(0.05)
            tick += 1
            with self.lock:
                live = [e for e in self.envs.values() if e.proc is not None and e.state != "dead"]
            if not live:
                continue
            # A full /proc scan (group membership) every 200 ms, resident sizes every 50 ms.
            table = sup.proc_table() if tick % 4 == 0 else None
            members, rss = {}, {}
            for env in live:
                members[env.id] = (sup.group_members(table, env.proc.pid, env.pgid)
                                   if table is not None else env.members)
                rss[env.id] = sup.rss_of(members[env.id]) / sup.MIB
            now = time.time()
            with self.lock:
                for env in live:
                    if env.state == "dead":
                        continue
                    env.members = members[env.id]
                    for p in env.members:
                        if table is not None and table[p][1] != env.pgid and p not in env.escaped:
                            env.escaped.add(p)
                            self.guardian.tell("+", "p", p)
                    self._check(env, rss[env.id], now)

    def _check(self, env, rss_mb, now):
        if env.state in ("dying", "dead"):
            return
        env.rss_mb = rss_mb
        inv = env.current
        if inv is not None and inv.delivered and not inv.done.is_set():
            inv.max_rss_mb = max(inv.max_rss_mb, rss_mb)
        if rss_mb > env.fn["MemorySize"]:
            self._kill(env, ("Runtime.OutOfMemory", "Runtime exited with error: signal: killed", "ooms"))
        elif env.state == "busy" and inv is not None and inv.delivered and not inv.done.is_set():
            if now >= inv.deadline:
                self._kill(env, ("Sandbox.Timedout",
                                 f"Task timed out after {env.fn['Timeout']:.2f} seconds", "timeouts"))
            elif inv.kill_at is not None and now >= inv.kill_at:
                self._kill(env, ("Runtime.ExitError", "Runtime exited with error: signal: killed", "kills"))
        elif env.state == "init" and now - env.init_started > self.settings["init_timeout_s"]:
            self._kill(env, ("Sandbox.Timedout", "Init phase timed out after "
                             f"{self.settings['init_timeout_s']:.2f} seconds", "timeouts"))
        elif env.state == "idle" and now - env.idle_since > self.settings["idle_timeout_s"]:
            self.stats["environments_reclaimed"] += 1
            self._kill(env, None)

    # -- the Runtime API (called by RuntimeHandler) ------------------------------------

    def runtime_next(self, env):
        """Blocks until an invocation is assigned to `env`; None once it is being discarded."""
        with self.lock:
            inv = env.current
            if inv is not None and inv.delivered and not inv.done.is_set():
                return "busy"
            while True:
                if env.state in ("dying", "dead"):
                    return None
                inv = env.current
                if inv is not None and not inv.delivered and not inv.done.is_set():
                    break
                if env.state == "init":  # initialised without an invocation waiting
                    env.state, env.idle_since = "idle", time.time()
                    self._pump()
                    continue
                self.changed.wait()
            now = time.time()
            inv.delivered, inv.started_at = True, now
            inv.deadline = now + env.fn["Timeout"]
            env.state = "busy"
            env.served += 1
            if inv.duplicate:
                self.stats["duplicates_delivered"] += 1
            if self.faults["kill_rate"] and self.rng.random() < self.faults["kill_rate"]:
                window = min(env.fn["Timeout"] * 1000, self.faults["kill_window_ms"])
                inv.kill_at = now + self.rng.uniform(0, window) / 1000
            try:
                inv.log_start = os.path.getsize(env.log_path)
            except OSError:
                pass
            return inv

    def runtime_result(self, env, request_id, kind, body, error_header):
        """POST invocation/{id}/response|error: (status, body) or None to drop the connection."""
        with self.lock:
            inv = env.current
            if (inv is None or inv.request_id != request_id or not inv.delivered
                    or inv.done.is_set() or env.state != "busy"):
                return 400, {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
            if inv.kill_at is not None:  # the injected kill lands before the result does
                self._kill(env, ("Runtime.ExitError", "Runtime exited with error: signal: killed", "kills"))
                return None
            reply = (202, {"status": "OK"})
            if body is None:
                self._finish(inv, "Function.ResponseSizeTooLarge",
                             f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).")
                reply = (413, {"errorMessage": f"Exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
                               "errorType": "RequestEntityTooLarge"})
            elif kind == "response":
                self._finish(inv, payload=body)
            else:
                try:
                    doc_type = json.loads(body).get("errorType")
                except (ValueError, AttributeError):
                    doc_type = None
                self._finish(inv, error_header or doc_type or "Unhandled", "", payload=body)
            env.current, env.state, env.idle_since = None, "idle", time.time()
            cfg = self.functions.get(env.function)
            if cfg is None or cfg["CodeSha256"] != env.fn["CodeSha256"] or self.closing:
                self._kill(env, None)
            self._pump()
            return reply

    def runtime_init_error(self, env, body, error_header):
        with self.lock:
            inv = env.current
            if env.state != "init" or (inv is not None and inv.delivered):
                return 403, {"errorMessage": "State transition from Ready to InitError failed for runtime.",
                             "errorType": "InvalidStateTransition"}
            try:
                doc_type = json.loads(body).get("errorType")
            except (ValueError, AttributeError):
                doc_type = None
            if inv is not None:
                self.stats["init_errors"] += 1
                self._finish(inv, error_header or doc_type or "Runtime.Unknown", "", payload=body)
            env.state = "failed"  # discarded once the runtime has its 202
            return 202, {"status": "OK"}

    def discard(self, env):
        with self.lock:
            self._kill(env, None)

    # -- admin -------------------------------------------------------------------------

    def set_faults(self, req):
        with self.lock:
            for k, v in req.items():
                if k not in DEFAULT_FAULTS:
                    raise ApiError(400, "InvalidParameterValueException", f"unknown fault {k}")
                self.faults[k] = v
            if req.get("seed") is not None:
                self.rng.seed(req["seed"])
            self._pump()
            return dict(self.faults)

    def set_config(self, req):
        with self.lock:
            for k, v in req.items():
                if k not in self.settings:
                    raise ApiError(400, "InvalidParameterValueException", f"unknown setting {k}")
                self.settings[k] = v
            self._pump()
            return dict(self.settings)

    def stats_doc(self):
        with self.lock:
            s = self.stats
            return {"invokes": {k: s[f"invokes.{k}"] for k in ("RequestResponse", "Event", "DryRun")},
                    "throttled": s["throttled"], "duplicates_delivered": s["duplicates_delivered"],
                    "retries": s["retries"], "kills": s["kills"], "timeouts": s["timeouts"],
                    "ooms": s["ooms"], "exit_errors": s["exit_errors"], "init_errors": s["init_errors"],
                    "invalid_entrypoint": s["invalid_entrypoint"],
                    "environments_started": s["environments_started"],
                    "environments_reused": s["environments_reused"],
                    "environments_reclaimed": s["environments_reclaimed"],
                    "environments_live": len(self.envs),
                    "events_pending": len(self.async_q) + len(self.timers),
                    "sync_pending": len(self.sync_q),
                    "running": sum(1 for e in self.envs.values() if e.state == "busy")}

    def reset(self):
        """Faults and settings' counters back to defaults; queues, records, environments dropped."""
        with self.lock:
            for t in self.timers:
                t.cancel()
            self.timers.clear()
            for q in (self.sync_q, self.async_q):
                while q:
                    inv = q.popleft()
                    inv.outcome, inv.ended_at = "Abandoned", time.time()
                    inv.done.set()
            for env in list(self.envs.values()):
                self._kill(env, ("Service.Reset", "the service was reset", "reset_kills"))
            self.faults = json.loads(json.dumps(DEFAULT_FAULTS))
            self.invocations.clear()
            self.stats.clear()
        self._wait_envs_gone(5)

    def _wait_envs_gone(self, seconds):
        end = time.time() + seconds
        with self.lock:
            while self.envs and time.time() < end:
                self.changed.wait(0.05)

    def close(self):
        with self.lock:
            self.closing = True
            for t in self.timers:
                t.cancel()
            for env in list(self.envs.values()):
                self._kill(env, ("Service.Shutdown", "the service is shutting down", "shutdown_kills"))
            for q in (self.sync_q, self.async_q):
                for inv in q:
                    inv.outcome = "Abandoned"
                    inv.done.set()
        self._wait_envs_gone(5)


# ---------------------------------------------------------------------------------------
# HTTP: the front (control, Invoke, admin) and each environment's Runtime API.

class FrontHandler(sup.Handler):
    svc = None

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def do_DELETE(self):
        self._route("DELETE")

    def _error(self, e):
        key = self.svc.message_keys.get(e.error_type, "message")
        doc = {"Type": "Service" if e.status >= 500 else "User", key: str(e)}
        doc.update(e.extra)
        self.reply(e.status, doc, {"x-amzn-ErrorType": e.error_type,
                                   "x-amzn-RequestId": str(uuid.uuid4())})

    def _json(self, body):
        try:
            doc = json.loads(body or b"{}")
        except ValueError as e:
            raise ApiError(400, "InvalidRequestContentException", f"Could not parse request body into json: {e}")
        if not isinstance(doc, dict):
            raise ApiError(400, "InvalidRequestContentException", "The request body must be a JSON object.")
        return doc

    def _route(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            if url.path.startswith("/__admin/"):
                return self._admin(method, url.path, query)
            body = self.read_body(REQUEST_LIMIT)
            if body is None:
                raise ApiError(413, "RequestEntityTooLargeException",
                               f"Request must be smaller than {REQUEST_LIMIT} bytes")
            svc = self.svc
            try:
                sup.verify_sigv4(method, self.path, self.headers, body, {svc.args.access_key: svc.args.secret_key},
                                 svc.args.region, "lambda", svc.args.session_token)
            except sup.AuthError as e:
                raise ApiError(403, e.error_type, str(e))
            m = re.fullmatch(r"/2015-03-31/functions/?([^/]*)(/code|/invocations)?/?", url.path)
            name = urllib.parse.unquote(m.group(1)) if m else ""
            op = (method, m.group(2) if m else "?", bool(name))
            if op == ("POST", None, False):
                return self.reply(201, svc.create_function(self._json(body)))
            if op == ("GET", None, True):
                cfg, _ = svc.resolve(name, query.get("Qualifier"))
                return self.reply(200, {"Configuration": cfg, "Code": {
                    "RepositoryType": "S3",
                    "Location": f"http://127.0.0.1:{svc.port}/__admin/functions/{cfg['FunctionName']}/code"}})
            if op == ("PUT", "/code", True):
                return self.reply(200, svc.update_code(name, self._json(body)))
            if op == ("DELETE", None, True):
                svc.delete_function(name)
                return self.reply(204)
            if op == ("POST", "/invocations", True):
                return self._invoke(name, query, body)
            raise ApiError(404, "UnknownOperationException", "Unknown operation")
        except ApiError as e:
            self._error(e)

    def _invoke(self, name, query, body):
        svc = self.svc
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            raise validation("invocationType", kind,
                             "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
        cfg, arn = svc.resolve(name, query.get("Qualifier"))
        svc.maybe_throttle()
        cap = ASYNC_LIMIT if kind == "Event" else SYNC_LIMIT
        if len(body) > cap:
            raise ApiError(413, "RequestEntityTooLargeException",
                           f"Request must be smaller than {cap} bytes for the InvokeFunction operation")
        body = body or b"{}"
        try:
            json.loads(body)
        except ValueError as e:
            raise ApiError(400, "InvalidRequestContentException", f"Could not parse request body into json: {e}")
        if kind == "DryRun":
            with svc.lock:
                svc.stats["invokes.DryRun"] += 1
            return self.reply(204, headers={"x-amzn-RequestId": str(uuid.uuid4())})
        if kind == "Event":
            inv = svc.submit_event(cfg, arn, body)
            return self.reply(202, headers={"x-amzn-RequestId": inv.request_id})
        context = self.headers.get("X-Amz-Client-Context")
        if context:
            try:
                context = base64.b64decode(context).decode()
            except ValueError:
                raise ApiError(400, "InvalidParameterValueException", "Client context must be base64 JSON.")
        inv = svc.submit_sync(cfg, arn, body, context)
        while not inv.done.wait(0.5):
            if self.client_gone():
                svc.abandon(inv)
                self.close_connection = True
                return
        headers = {"x-amzn-RequestId": inv.request_id, "X-Amz-Executed-Version": "$LATEST"}
        if inv.outcome != "Success":
            headers["X-Amz-Function-Error"] = "Unhandled"
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = svc.tail(inv)
        self.reply(200, inv.result or b"", headers)

    def _admin(self, method, path, query):
        svc = self.svc
        body = self.read_body(sup.MIB) or b""
        route = (method, path.rstrip("/"))
        if route == ("GET", "/__admin/health"):
            return self.reply(200, {"ok": True})
        if route == ("GET", "/__admin/faults"):
            with svc.lock:
                return self.reply(200, dict(svc.faults))
        if route == ("POST", "/__admin/faults"):
            return self.reply(200, svc.set_faults(self._json(body)))
        if route == ("GET", "/__admin/config"):
            with svc.lock:
                return self.reply(200, dict(svc.settings))
        if route == ("POST", "/__admin/config"):
            return self.reply(200, svc.set_config(self._json(body)))
        if route == ("GET", "/__admin/stats"):
            return self.reply(200, svc.stats_doc())
        if route == ("GET", "/__admin/invocations"):
            with svc.lock:
                recs = [i.record() for i in svc.invocations
                        if "function" not in query or i.function == query["function"]]
            return self.reply(200, {"invocations": recs})
        if route == ("GET", "/__admin/environments"):
            with svc.lock:
                return self.reply(200, {"environments": [e.info() for e in svc.envs.values()]})
        if route == ("POST", "/__admin/reset"):
            svc.reset()
            return self.reply(200, {"ok": True})
        m = re.fullmatch(r"/__admin/functions/([^/]+)/code", route[1])
        if method == "GET" and m and os.path.exists(os.path.join(svc._fn_dir(m.group(1)), "code.zip")):
            with open(os.path.join(svc._fn_dir(m.group(1)), "code.zip"), "rb") as f:
                return self.reply(200, f.read(), content_type="application/zip")
        self.reply(404, {"message": f"no admin route {method} {path}"})


class RuntimeHandler(sup.Handler):
    """The Runtime API of one environment (self.server.env)."""

    def do_GET(self):
        svc, env = self.server.svc, self.server.env
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self.reply(404, {"errorMessage": "not found", "errorType": "NotFound"})
        inv = svc.runtime_next(env)
        if inv is None:
            self.close_connection = True
            return
        if inv == "busy":
            return self.reply(403, {"errorMessage": "State transition from Running to Ready failed "
                                    "for runtime: the current invocation has no result yet.",
                                    "errorType": "InvalidStateTransition"})
        headers = {"Lambda-Runtime-Aws-Request-Id": inv.request_id,
                   "Lambda-Runtime-Deadline-Ms": str(int(inv.deadline * 1000)),
                   "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
                   "Lambda-Runtime-Trace-Id": inv.trace_id}
        if inv.client_context:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        self.reply(200, inv.payload, headers)

    def do_POST(self):
        svc, env = self.server.svc, self.server.env
        error_header = self.headers.get("Lambda-Runtime-Function-Error-Type")
        m = re.fullmatch(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)", self.path)
        if m:
            body = self.read_body(RESPONSE_LIMIT)
            out = svc.runtime_result(env, urllib.parse.unquote(m.group(1)), m.group(2), body, error_header)
            if out is None:
                self.close_connection = True
                return
            return self.reply(*out)
        if self.path == "/2018-06-01/runtime/init/error":
            body = self.read_body(RESPONSE_LIMIT) or b""
            code, doc = svc.runtime_init_error(env, body, error_header)
            self.reply(code, doc)
            if code == 202:
                self.wfile.flush()
                svc.discard(env)
            return
        self.reply(404, {"errorMessage": "not found", "errorType": "NotFound"})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--state-dir", required=True, help="functions (config + zip) and task roots")
    p.add_argument("--port", type=int, default=0, help="0: a free port")
    p.add_argument("--access-key", default="VIRGA")
    p.add_argument("--secret-key", default="VIRGASECRET")
    p.add_argument("--session-token", default="VIRGA-LOCAL-SESSION",
                   help="given to functions as AWS_SESSION_TOKEN; accepted in X-Amz-Security-Token")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--account", default="123456789012")
    p.add_argument("--max-concurrency", type=int, default=1000)
    p.add_argument("--retry-delays", default="1,2", help="seconds before async retries 1, 2, ...")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="seconds before an idle environment goes")
    p.add_argument("--init-timeout", type=float, default=10.0, help="seconds for a bootstrap to call next")
    p.add_argument("--keep-envs", action="store_true", help="keep task roots and logs of ended environments")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    args.state_dir = os.path.abspath(args.state_dir)

    guardian = sup.Guardian()  # before any thread
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    svc = Service(args, guardian)
    FrontHandler.svc = svc
    sup.Handler.verbose = args.verbose
    front = sup.Server(("127.0.0.1", args.port), FrontHandler)
    svc.port = front.server_address[1]
    threading.Thread(target=front.serve_forever, daemon=True).start()
    print(f"PORT {svc.port}", flush=True)
    while not stop.wait(1):
        pass
    svc.log("stopping")
    front.shutdown()
    svc.close()
    guardian.close()  # the guardian SIGKILLs whatever is still registered
    return 0


if __name__ == "__main__":
    sys.exit(main())
