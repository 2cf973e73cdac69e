"""Tests of the local Lambda service (tests/lambda/lambda_service.py): AWS's own clients
against it (awscli for the control and Invoke APIs, npm aws-lambda-ric for the Runtime
API), then Lambda's semantics: limits, failures, retries, injected faults, and that no
process outlives the service.

    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/lambda

VIRGA_LAMBDA_NPM_DIR: where `npm ci` installs aws-lambda-ric (ctest: the build tree);
by default a directory under the system's temporary directory, reused while
package-lock.json is unchanged.
"""
import base64
import hashlib
import io
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ReadTimeoutError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVICE = os.path.join(HERE, "lambda_service.py")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-botocore
AWS = "/usr/bin/aws"         # Debian's awscli
ROLE = "arn:aws:iam::123456789012:role/virga-test"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
SESSION = botocore.session.get_session()

# A custom runtime in sh + curl: next -> response, forever (awscli tests).
SHELL_BOOTSTRAP = r"""#!/bin/sh
set -eu
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
headers=$(mktemp)
while true; do
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p' "$headers" | tr -d '\r')
  if [ -n "${EVENTS_FILE:-}" ]; then printf '%s %s\n' "$id" "$event" >> "$EVENTS_FILE"; fi
  printf '{"version":"@VERSION@","echo":%s}' "$event" |
    curl -sS -o /dev/null -X POST --data-binary @- "$api/invocation/$id/response"
done
"""

# A custom runtime in Python whose behaviour the event chooses (semantics tests).
PY_BOOTSTRAP = r'''#!/usr/bin/python3
import http.client, json, os, subprocess, sys, time
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)

def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(HOST, int(PORT))
    c.request(method, "/2018-06-01/runtime" + path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data

if os.environ.get("INIT_ERROR"):
    call("POST", "/init/error", json.dumps({"errorType": "Runtime.TestInitError",
                                            "errorMessage": "init failed on purpose"}),
         {"Lambda-Runtime-Function-Error-Type": "Runtime.TestInitError"})
    sys.exit(1)
held = []
while True:
    r, body = call("GET", "/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    ev = json.loads(body)
    if ev.get("marker"):
        with open(ev["marker"], "a") as f:
            f.write(rid + "\n")
    out = {"echo": ev, "pid": os.getpid(), "request_id": rid, "cwd": os.getcwd(),
           "got_at": time.time(),
           "headers": {k: r.getheader(k) for k in ("Lambda-Runtime-Deadline-Ms",
                       "Lambda-Runtime-Invoked-Function-Arn", "Lambda-Runtime-Trace-Id")},
           "env": dict(os.environ) if ev.get("env") else None}
    if ev.get("log"):
        print(ev["log"], flush=True)
    time.sleep(ev.get("sleep", 0))
    if ev.get("alloc_mb"):
        b = bytearray(ev["alloc_mb"] << 20)
        b[::4096] = b"\1" * len(range(0, len(b), 4096))
        held.append(b)
        time.sleep(ev.get("hold", 0))
    if "exit" in ev:
        os._exit(ev["exit"])
    if ev.get("spawn"):
        out["children"] = [subprocess.Popen(["sleep", "300"]).pid,
                           subprocess.Popen(["sleep", "300"], start_new_session=True).pid]
    if ev.get("error"):
        call("POST", f"/invocation/{rid}/error",
             json.dumps({"errorType": "Test.Failure", "errorMessage": ev["error"], "stackTrace": []}),
             {"Lambda-Runtime-Function-Error-Type": "Test.Failure"})
        continue
    if ev.get("big_response"):
        out = "x" * ev["big_response"]
    if ev.get("probe"):
        seen = []
        for path, data in (("/invocation/not-a-request-id/response", b"{}"),
                           (f"/invocation/{rid}/response", json.dumps(out)),
                           (f"/invocation/{rid}/response", b"{}")):
            r2, d2 = call("POST", path, data)
            seen.append([r2.status, json.loads(d2)])
        with open(ev["probe"], "w") as f:
            json.dump(seen, f)
        continue
    call("POST", f"/invocation/{rid}/response", json.dumps(out))
'''

RIC_BOOTSTRAP = """#!/bin/sh
exec node "$VIRGA_RIC_DIR/node_modules/aws-lambda-ric/index.mjs" "$_HANDLER"
"""
RIC_HANDLER = """let calls = 0;
exports.handler = async (event, context) => {
  calls += 1;
  if (event.fail) throw new Error(event.fail);
  return {echo: event, calls, pid: process.pid, requestId: context.awsRequestId,
          arn: context.invokedFunctionArn, remaining: context.getRemainingTimeInMillis(),
          name: context.functionName, memory: context.memoryLimitInMB};
};
"""


def make_zip(files):
    """{name: text or (text, mode)} -> zip bytes; `bootstrap` is executable by default."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            mode = 0o755 if name == "bootstrap" else 0o644
            if isinstance(content, tuple):
                content, mode = content
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pgid_members(pgids):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and alive(int(name)):
            try:
                if os.getpgid(int(name)) in pgids:
                    out.append(int(name))
            except OSError:
                pass
    return out


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class LocalLambda:
    """One service process on a free port, with a state directory under `tmp`."""

    def __init__(self, tmp, *args, access="VIRGA", secret="VIRGASECRET"):
        self.tmp, self.access, self.secret = tmp, access, secret
        self.err = open(os.path.join(tmp, "service.err"), "wb")
        self.proc = subprocess.Popen(
            [PYTHON, SERVICE, "--state-dir", os.path.join(tmp, "state"), "--access-key", access,
             "--secret-key", secret, "--verbose", *args],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        assert line.startswith("PORT "), f"service did not start: {line!r}"
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.pids, self.pgids = set(), set()  # everything seen, checked after stop()
        self._clients = {}

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/__admin/" + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def stats(self):
        return self.admin("GET", "stats")

    def records(self, function=None):
        q = f"?function={function}" if function else ""
        return self.admin("GET", "invocations" + q)["invocations"]

    def envs(self):
        envs = self.admin("GET", "environments")["environments"]
        for e in envs:
            self.pids.update(e["pids"])
            if e["pgid"]:
                self.pgids.add(e["pgid"])
        return envs

    def client(self, read_timeout=120, secret=None):
        key = (read_timeout, secret)
        if key not in self._clients:
            self._clients[key] = SESSION.create_client(
                "lambda", endpoint_url=self.url, region_name="us-east-1",
                aws_access_key_id=self.access, aws_secret_access_key=secret or self.secret,
                config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout,
                              connect_timeout=10, parameter_validation=False))
        return self._clients[key]

    def create(self, name, files=None, **cfg):
        env = cfg.pop("env", None)
        req = dict(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="fn.handler",
                   Code={"ZipFile": make_zip(files or {"bootstrap": PY_BOOTSTRAP})})
        req.update(cfg)
        if env:
            req["Environment"] = {"Variables": env}
        return self.client().create_function(**req)

    def invoke(self, name, payload=None, kind="RequestResponse", raw=None, client=None, **kw):
        data = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        t0 = time.time()
        r = (client or self.client()).invoke(FunctionName=name, InvocationType=kind, Payload=data, **kw)
        body = r["Payload"].read()
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            doc = None
        return {"status": r["StatusCode"], "error": r.get("FunctionError"), "body": body,
                "json": doc, "request_id": r["ResponseMetadata"]["RequestId"],
                "seconds": time.time() - t0, "log": r.get("LogResult")}

    def stop(self, sig=signal.SIGTERM):
        """Stops the service; asserts that no bootstrap or child of one survives it."""
        if self.proc.poll() is None:
            try:
                self.envs()
            except OSError:
                pass
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.err.close()
        wait_for(lambda: not [p for p in self.pids if alive(p)] and not pgid_members(self.pgids), 10,
                 f"the environments' processes to end after the service ({sorted(self.pids)})")


@pytest.fixture
def lam(tmp_path):
    started = []

    def start(*args, **kw):
        d = tmp_path / f"svc{len(started)}"
        d.mkdir()
        s = LocalLambda(str(d), *args, **kw)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


# ---------------------------------------------------------------------------------------
# 1. awscli (AWS's own client) against the control and Invoke APIs.

def aws(s, *args, secret=None, access=None, tmp=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") or k in ("AWS_CA_BUNDLE",)}
    env.update(AWS_ACCESS_KEY_ID=access or s.access, AWS_SECRET_ACCESS_KEY=secret or s.secret,
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_MAX_ATTEMPTS="1",
               AWS_CONFIG_FILE=os.path.join(s.tmp, "no-aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=os.path.join(s.tmp, "no-aws-credentials"),
               AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([AWS, "--endpoint-url", s.url, "--output", "json", "lambda", *args],
                       env=env, capture_output=True, text=True, timeout=120)
    doc = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
    return r.returncode, doc, r.stderr


def test_awscli_function_lifecycle_and_invoke(lam, tmp_path):
    s = lam(access="AKIDVIRGATESTKEY", secret="awscli-test-secret")
    events = tmp_path / "events.txt"
    v1, v2 = (tmp_path / "v1.zip", tmp_path / "v2.zip")
    v1.write_bytes(make_zip({"bootstrap": SHELL_BOOTSTRAP.replace("@VERSION@", "1")}))
    v2.write_bytes(make_zip({"bootstrap": SHELL_BOOTSTRAP.replace("@VERSION@", "2")}))
    create = ["create-function", "--function-name", "echo", "--runtime", "provided.al2023",
              "--role", ROLE, "--handler", "echo.handler", "--zip-file", f"fileb://{v1}",
              "--timeout", "5", "--environment", json.dumps({"Variables": {"EVENTS_FILE": str(events)}})]
    rc, cfg, err = aws(s, *create)
    assert rc == 0, err
    sha1 = base64.b64encode(hashlib.sha256(v1.read_bytes()).digest()).decode()
    assert (cfg["FunctionName"], cfg["FunctionArn"], cfg["State"]) == ("echo", ARN + "echo", "Active")
    assert (cfg["CodeSha256"], cfg["MemorySize"], cfg["Timeout"]) == (sha1, 128, 5)
    rc, _, err = aws(s, *create)
    assert rc != 0 and "ResourceConflictException" in err

    rc, got, err = aws(s, "get-function", "--function-name", "echo")
    assert rc == 0, err
    assert got["Configuration"]["CodeSha256"] == sha1
    with urllib.request.urlopen(got["Code"]["Location"], timeout=30) as r:
        assert r.read() == v1.read_bytes()

    payload, out = tmp_path / "payload.json", tmp_path / "out.json"
    payload.write_text('{"n": 1}')
    rc, res, err = aws(s, "invoke", "--function-name", "echo", "--payload", f"fileb://{payload}", str(out))
    assert rc == 0, err
    assert res["StatusCode"] == 200 and "FunctionError" not in res
    assert json.loads(out.read_text()) == {"version": "1", "echo": {"n": 1}}

    payload.write_text('{"n": 2}')
    rc, res, err = aws(s, "invoke", "--function-name", "echo", "--invocation-type", "Event",
                       "--payload", f"fileb://{payload}", str(out))
    assert rc == 0, err
    assert res["StatusCode"] == 202 and out.read_bytes() == b""
    wait_for(lambda: '{"n": 2}' in (events.read_text() if events.exists() else ""), 30, "the event to run")
    recs = s.records("echo")
    assert [(r["type"], r["outcome"], r["cold"]) for r in recs] == [
        ("RequestResponse", "Success", True), ("Event", "Success", False)]

    rc, res, err = aws(s, "invoke", "--function-name", "echo", "--invocation-type", "DryRun", str(out))
    assert rc == 0 and res["StatusCode"] == 204, err

    rc, cfg, err = aws(s, "update-function-code", "--function-name", "echo", "--zip-file", f"fileb://{v2}")
    assert rc == 0, err
    assert cfg["CodeSha256"] != sha1
    rc, res, err = aws(s, "invoke", "--function-name", ARN + "echo", "--payload", f"fileb://{payload}", str(out))
    assert rc == 0, err
    assert json.loads(out.read_text()) == {"version": "2", "echo": {"n": 2}}
    assert s.records("echo")[-1]["environment"] != recs[0]["environment"]  # old code retired

    rc, _, err = aws(s, "delete-function", "--function-name", "echo")
    assert rc == 0, err
    rc, _, err = aws(s, "get-function", "--function-name", "echo")
    assert rc != 0 and "ResourceNotFoundException" in err
    wait_for(lambda: s.stats()["environments_live"] == 0, 10, "the deleted function's environments to go")


def test_awscli_errors(lam, tmp_path):
    s = lam(access="AKIDVIRGATESTKEY", secret="awscli-test-secret")
    code = tmp_path / "fn.zip"
    code.write_bytes(make_zip({"bootstrap": SHELL_BOOTSTRAP.replace("@VERSION@", "1")}))
    rc, _, err = aws(s, "create-function", "--function-name", "echo", "--runtime", "provided.al2",
                     "--role", ROLE, "--handler", "h", "--zip-file", f"fileb://{code}")
    assert rc == 0, err
    out = tmp_path / "out.json"

    rc, _, err = aws(s, "invoke", "--function-name", "no-such-function", str(out))
    assert rc != 0 and "ResourceNotFoundException" in err and ARN + "no-such-function" in err

    big = tmp_path / "big.json"  # 1.1 MB: over the 1 MB async cap, under the 6 MB sync one
    big.write_text(json.dumps({"pad": "x" * 1_100_000}))
    rc, _, err = aws(s, "invoke", "--function-name", "echo", "--invocation-type", "Event",
                     "--payload", f"fileb://{big}", str(out))
    assert rc != 0 and "RequestEntityTooLargeException" in err and "1048576" in err
    rc, res, err = aws(s, "invoke", "--function-name", "echo", "--payload", f"fileb://{big}", str(out))
    assert rc == 0 and res["StatusCode"] == 200, err
    assert json.loads(out.read_text())["echo"]["pad"] == "x" * 1_100_000

    rc, _, err = aws(s, "get-function", "--function-name", "echo", secret="not-the-secret")
    assert rc != 0 and "InvalidSignatureException" in err
    rc, _, err = aws(s, "get-function", "--function-name", "echo", access="AKIDUNKNOWN")
    assert rc != 0 and "UnrecognizedClientException" in err
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(
            s.url + "/2015-03-31/functions/echo/invocations", data=b"{}", method="POST"), timeout=30)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert s.stats()["invokes"] == {"RequestResponse": 1, "Event": 0, "DryRun": 0}


def signed(s, method, path, body=b"", headers=None):
    """(status, headers, body) of a request signed with botocore's SigV4Auth."""
    req = AWSRequest(method=method, url=s.url + path, data=body, headers=headers or {})
    SigV4Auth(Credentials(s.access, s.secret), "lambda", "us-east-1").add_auth(req)
    r = urllib.request.Request(req.url, data=body or None, method=method, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_control_api_errors_as_aws(lam):
    s = lam()
    status, headers, body = signed(s, "GET", "/2015-03-31/functions/nope")
    assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(body) == {"Type": "User", "Message": "Function not found: " + ARN + "nope"}
    c = s.client()
    s.create("f")
    with pytest.raises(ClientError) as e:
        s.create("f")
    assert error_code(e) == "ResourceConflictException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    for bad, code in (({"Runtime": "python3.12"}, "InvalidParameterValueException"),
                      ({"MemorySize": 64}, "ValidationException"),
                      ({"Timeout": 901}, "ValidationException"),
                      ({"env": {"AWS_REGION": "x"}}, "InvalidParameterValueException")):
        with pytest.raises(ClientError) as e:
            s.create("g", **bad)
        assert error_code(e) == code, bad
    with pytest.raises(ClientError) as e:
        c.create_function(FunctionName="g", Runtime="provided.al2023", Role=ROLE,
                          Code={"ZipFile": b"not a zip"})
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        c.invoke(FunctionName="f", Payload=b"{not json")
    assert error_code(e) == "InvalidRequestContentException"
    with pytest.raises(ClientError) as e:
        c.invoke(FunctionName="f", Qualifier="7")
    assert error_code(e) == "ResourceNotFoundException"


# ---------------------------------------------------------------------------------------
# 2. aws-lambda-ric (AWS's runtime interface client for Node.js) against the Runtime API.

RIC_TOOLS = ("node", "npm", "cmake", "make", "g++", "autoreconf", "automake", "libtoolize")


def say(request, line):
    """A line on the terminal even under pytest -q and its output capture."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print("\n" + line, flush=True)


@pytest.fixture(scope="module")
def ric(request):
    """The directory holding node_modules/aws-lambda-ric, built by `npm ci` when needed."""
    pkg, lock = os.path.join(HERE, "package.json"), os.path.join(HERE, "package-lock.json")
    digest = hashlib.sha256(open(pkg, "rb").read() + open(lock, "rb").read()).hexdigest()
    d = os.environ.get("VIRGA_LAMBDA_NPM_DIR") or os.path.join(tempfile.gettempdir(), "virga-lambda-npm")
    stamp = os.path.join(d, "npm-ci.stamp")
    native = os.path.join(d, "node_modules", "aws-lambda-ric", "rapid-client.node")
    if os.path.exists(native) and os.path.exists(stamp) and open(stamp).read() == digest:
        return d
    missing = [t for t in RIC_TOOLS if not shutil.which(t)]
    if missing and os.geteuid() == 0:
        subprocess.run([os.path.join(ROOT, "scripts", "install-deps.sh"), "lambda"], check=False)
        missing = [t for t in RIC_TOOLS if not shutil.which(t)]
    if missing:
        why = (f"*** SKIPPED aws-lambda-ric: its native build (curl and aws-lambda-cpp from "
               f"source) needs {', '.join(missing)}: run scripts/install-deps.sh lambda ***")
        say(request, why)
        pytest.skip(why)
    os.makedirs(d, exist_ok=True)
    for f in (pkg, lock):
        shutil.copy(f, d)
    cmd = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    if os.path.exists("/usr/include/node/node_api.h"):  # node-gyp would download the headers
        cmd.append("--nodedir=/usr")
    t0 = time.time()
    r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0 and os.path.exists(native), \
        f"npm ci of aws-lambda-ric failed ({time.time() - t0:.0f} s):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    with open(stamp, "w") as f:
        f.write(digest)
    say(request, f"aws-lambda-ric installed by npm ci in {time.time() - t0:.0f} s ({d})")
    return d


@pytest.mark.parametrize("client", ["native", "node-http"])
def test_aws_lambda_ric(lam, ric, client):
    """Both of the RIC's Runtime API clients: its native one (aws-lambda-cpp over curl) and
    its alternative one (node:http)."""
    s = lam()
    env = {"VIRGA_RIC_DIR": ric}
    if client == "node-http":
        env["AWS_LAMBDA_NODEJS_USE_ALTERNATIVE_CLIENT_1"] = "true"
    s.create("ric", {"bootstrap": RIC_BOOTSTRAP, "handler.js": RIC_HANDLER}, Handler="handler.handler",
             Timeout=5, MemorySize=256, env=env)
    r1 = s.invoke("ric", {"n": 1})
    assert r1["status"] == 200 and r1["error"] is None, r1["body"]
    j1 = r1["json"]
    assert (j1["echo"], j1["calls"], j1["requestId"]) == ({"n": 1}, 1, r1["request_id"])
    assert (j1["arn"], j1["name"], j1["memory"]) == (ARN + "ric", "ric", "256")
    assert 0 < j1["remaining"] <= 5000
    r2 = s.invoke("ric", {"n": 2})
    assert (r2["json"]["echo"], r2["json"]["calls"], r2["json"]["pid"]) == ({"n": 2}, 2, j1["pid"])
    r3 = s.invoke("ric", {"fail": "asked to fail"})
    assert r3["error"] == "Unhandled"
    assert (r3["json"]["errorType"], r3["json"]["errorMessage"]) == ("Error", "asked to fail")
    assert [r["cold"] for r in s.records()] == [True, False, False]
    st = s.stats()
    assert (st["environments_started"], st["environments_reused"]) == (1, 2)
    assert [e["pid"] for e in s.envs()] == [j1["pid"]]


# ---------------------------------------------------------------------------------------
# 3. Semantics.

def test_timeout_kills_and_reports_sandbox_timedout(lam):
    s = lam()
    s.create("slow", Timeout=1)
    r = s.invoke("slow", {"sleep": 5, "spawn": False})
    assert r["error"] == "Unhandled" and r["json"]["errorType"] == "Sandbox.Timedout", r["body"]
    assert "Task timed out after 1.00 seconds" in r["json"]["errorMessage"]
    assert 0.9 <= r["seconds"] < 3.5
    assert s.stats()["timeouts"] == 1
    r = s.invoke("slow", {})
    assert r["error"] is None and s.records()[-1]["cold"] is True  # a new environment


def test_memory_limit_runtime_out_of_memory(lam):
    s = lam()
    s.create("mem", MemorySize=128, Timeout=10)
    r = s.invoke("mem", {"alloc_mb": 60, "hold": 0.4})
    assert r["error"] is None, r["body"]
    assert s.records()[-1]["max_rss_mb"] >= 60
    r = s.invoke("mem", {"alloc_mb": 200, "hold": 5})
    assert r["error"] == "Unhandled" and r["json"]["errorType"] == "Runtime.OutOfMemory", r["body"]
    assert r["seconds"] < 4
    assert s.stats()["ooms"] == 1


def test_bootstrap_exit_is_runtime_exit_error(lam):
    s = lam()
    s.create("crash")
    first = s.invoke("crash", {})["json"]["pid"]
    r = s.invoke("crash", {"exit": 3})
    assert r["error"] == "Unhandled" and r["json"]["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: exit status 3" in r["json"]["errorMessage"]
    assert not alive(first)
    r = s.invoke("crash", {})
    assert r["json"]["pid"] != first and s.records()[-1]["cold"] is True
    assert s.stats()["exit_errors"] == 1


def test_function_error_init_error_and_entrypoint(lam):
    s = lam()
    s.create("f")
    r = s.invoke("f", {"error": "bad input"})
    assert r["error"] == "Unhandled"
    assert r["json"] == {"errorType": "Test.Failure", "errorMessage": "bad input", "stackTrace": []}
    assert s.records()[-1]["error_type"] == "Test.Failure"
    r = s.invoke("f", {"log": "a line for the tail"}, LogType="Tail")
    assert r["error"] is None  # the environment survives a function error
    assert b"a line for the tail" in base64.b64decode(r["log"])

    s.create("init", env={"INIT_ERROR": "1"})
    r = s.invoke("init", {})
    assert r["error"] == "Unhandled"
    assert r["json"] == {"errorType": "Runtime.TestInitError", "errorMessage": "init failed on purpose"}
    assert s.stats()["init_errors"] == 1

    s.create("nobootstrap", {"handler.js": "x"})  # accepted, as AWS does
    r = s.invoke("nobootstrap", {})
    assert r["error"] == "Unhandled" and r["json"]["errorType"] == "Runtime.InvalidEntrypoint"
    assert "bootstrap" in r["json"]["errorMessage"]
    s.create("noexec", {"bootstrap": (PY_BOOTSTRAP, 0o644)})
    r = s.invoke("noexec", {})
    assert r["json"]["errorType"] == "Runtime.InvalidEntrypoint"
    assert "permission denied" in r["json"]["errorMessage"]
    wait_for(lambda: {e["function"] for e in s.envs()} == {"f"}, 10, "failed environments to go")


def test_runtime_api_request_ids(lam, tmp_path):
    s = lam()
    s.create("probe")
    probe = tmp_path / "probe.json"
    r = s.invoke("probe", {"probe": str(probe)})
    assert r["error"] is None and r["json"]["echo"] == {"probe": str(probe)}
    seen = json.loads(wait_for(lambda: probe.exists() and probe.read_text(), 10, "the probe"))
    invalid = {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
    assert seen == [[400, invalid], [202, {"status": "OK"}], [400, invalid]]
    headers = s.invoke("probe", {})["json"]["headers"]
    start = s.records()[-1]["start"]
    assert abs(int(headers["Lambda-Runtime-Deadline-Ms"]) / 1000 - (start + 3)) < 0.5
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN + "probe"
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")


def test_payload_caps(lam):
    s = lam()
    s.create("echo", Timeout=30)
    for kind, size in (("RequestResponse", 6 * 1024 * 1024 + 1), ("Event", 1024 * 1024 + 1)):
        with pytest.raises(ClientError) as e:
            s.invoke("echo", raw=b'"' + b"x" * (size - 2) + b'"', kind=kind)
        assert error_code(e) == "RequestEntityTooLargeException", kind
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    r = s.invoke("echo", raw=b'"' + b"x" * (1024 * 1024 - 2) + b'"', kind="Event")
    assert r["status"] == 202
    r = s.invoke("echo", {"pad": "y" * (5 << 20)})
    assert r["error"] is None and len(r["json"]["echo"]["pad"]) == 5 << 20
    r = s.invoke("echo", {"big_response": 7 << 20})
    assert r["error"] == "Unhandled" and r["json"]["errorType"] == "Function.ResponseSizeTooLarge"


def test_warm_reuse_environment_and_cold_start(lam):
    s = lam()
    s.admin("POST", "faults", {"cold_start_ms": [800, 800]})
    s.create("warm", MemorySize=256, Timeout=7, Handler="my.handler", env={"GREETING": "hi"})
    r1 = s.invoke("warm", {"env": True})
    rec = s.records()[-1]
    assert rec["cold"] is True and rec["start"] - rec["queued_at"] >= 0.8 and r1["seconds"] >= 0.8
    env, [info] = r1["json"]["env"], s.envs()
    assert env["AWS_LAMBDA_RUNTIME_API"] == f"127.0.0.1:{info['runtime_api_port']}"
    expected = {"AWS_LAMBDA_FUNCTION_NAME": "warm", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1", "_HANDLER": "my.handler", "TZ": ":UTC",
                "GREETING": "hi", "AWS_ACCESS_KEY_ID": "VIRGA", "AWS_SECRET_ACCESS_KEY": "VIRGASECRET",
                "LAMBDA_TASK_ROOT": info["task_root"]}
    assert {k: env.get(k) for k in expected} == expected
    assert env["AWS_SESSION_TOKEN"] and "AWS_EXECUTION_ENV" not in env
    assert r1["json"]["cwd"] == info["task_root"] and os.path.isdir(env["LAMBDA_RUNTIME_DIR"])
    assert "/usr/bin" in env["PATH"].split(":") and info["task_root"] in env["LD_LIBRARY_PATH"].split(":")
    r2 = s.invoke("warm", {}, Qualifier="$LATEST")
    rec = s.records()[-1]
    assert r2["json"]["pid"] == r1["json"]["pid"] and rec["cold"] is False
    assert rec["start"] - rec["queued_at"] < 0.5
    assert r2["json"]["headers"]["Lambda-Runtime-Invoked-Function-Arn"] == ARN + "warm:$LATEST"
    st = s.stats()
    assert (st["environments_started"], st["environments_reused"], st["environments_live"]) == (1, 1, 1)


def test_idle_environments_are_reclaimed(lam):
    s = lam("--idle-timeout", "0.5")
    s.create("f")
    pid = s.invoke("f", {})["json"]["pid"]
    s.envs()
    wait_for(lambda: s.stats()["environments_live"] == 0, 10, "the idle environment to go")
    assert s.stats()["environments_reclaimed"] == 1 and not alive(pid)
    s.invoke("f", {})
    assert s.records()[-1]["cold"] is True


def test_async_failures_retried_twice_with_delays(lam):
    s = lam()  # Lambda's delays here: 1 s then 2 s
    s.create("f")
    rid = s.invoke("f", {"error": "always"}, kind="Event")["request_id"]
    recs = wait_for(lambda: [r for r in s.records() if r["end"]] if len(
        [r for r in s.records() if r["end"]]) == 3 else None, 20, "three attempts")
    assert [(r["attempt"], r["request_id"], r["error_type"]) for r in recs] == [
        (1, rid, "Test.Failure"), (2, rid, "Test.Failure"), (3, rid, "Test.Failure")]
    assert recs[1]["start"] - recs[0]["end"] >= 0.95 and recs[2]["start"] - recs[1]["end"] >= 1.95
    time.sleep(0.5)
    st = s.stats()
    assert (st["retries"], st["events_pending"], len(s.records())) == (2, 0, 3)
    rid = s.invoke("f", {}, kind="Event")["request_id"]
    wait_for(lambda: [r for r in s.records() if r["request_id"] == rid and r["outcome"] == "Success"],
             10, "a good event")
    assert s.stats()["retries"] == 2


def test_async_timeouts_and_crashes_are_retried(lam):
    s = lam("--retry-delays", "0.1,0.1")
    s.create("f", Timeout=1)
    for event, error_type in (({"sleep": 3}, "Sandbox.Timedout"), ({"exit": 1}, "Runtime.ExitError")):
        rid = s.invoke("f", event, kind="Event")["request_id"]
        recs = wait_for(lambda: (lambda rs: rs if len(rs) == 3 else None)(
            [r for r in s.records() if r["request_id"] == rid and r["end"]]), 20, f"3 attempts of {event}")
        assert [(r["attempt"], r["error_type"]) for r in recs] == [(i, error_type) for i in (1, 2, 3)]
    st = s.stats()
    assert (st["retries"], st["timeouts"], st["exit_errors"]) == (4, 3, 3)


def test_duplicate_deliveries(lam, tmp_path):
    s = lam()
    s.admin("POST", "faults", {"duplicate_rate": 0.5, "seed": 7})
    s.create("f")
    marker = tmp_path / "delivered.txt"
    ids = [s.invoke("f", {"marker": str(marker), "i": i}, kind="Event")["request_id"] for i in range(30)]
    wait_for(lambda: s.stats()["events_pending"] == 0 and all(r["end"] for r in s.records()), 60,
             "every delivery")
    # Duplicates that reached a runtime (a copy whose environment failed to start under a
    # loaded machine ends without a delivery, as on AWS, and is not counted).
    dups = [r for r in s.records() if r["duplicate"] and r["start"]]
    delivered = marker.read_text().split()
    assert 5 <= len(dups) <= 25 and s.stats()["duplicates_delivered"] == len(dups)
    assert len(delivered) == 30 + len(dups) and set(delivered) == set(ids)
    assert {r["request_id"] for r in dups} <= set(ids)
    assert all(delivered.count(i) in (1, 2) for i in ids)

    s.admin("POST", "reset")
    s.admin("POST", "faults", {"duplicate_rate": 1.0})
    marker.unlink()
    ids = [s.invoke("f", {"marker": str(marker)}, kind="Event")["request_id"] for _ in range(4)]
    wait_for(lambda: marker.exists() and len(marker.read_text().split()) == 8, 30, "8 deliveries")
    assert sorted(marker.read_text().split()) == sorted(ids * 2)


def test_throttling_injected_and_by_concurrency(lam):
    s = lam("--max-concurrency", "1")
    s.create("f", Timeout=10)
    s.admin("POST", "faults", {"throttle_rate": 1.0})
    for kind in ("RequestResponse", "Event"):
        with pytest.raises(ClientError) as e:
            s.invoke("f", {}, kind=kind)
        assert error_code(e) == "TooManyRequestsException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert s.stats()["throttled"] == 2 and s.stats()["invokes"]["Event"] == 0
    s.admin("POST", "faults", {"throttle_rate": 0.0})

    first = {}
    t = threading.Thread(target=lambda: first.update(s.invoke("f", {"sleep": 2})))
    t.start()
    wait_for(lambda: s.stats()["running"] == 1, 10, "the first call to run")
    with pytest.raises(ClientError) as e:
        s.invoke("f", {})
    assert error_code(e) == "TooManyRequestsException"
    assert e.value.response.get("Reason") == "ConcurrentInvocationLimitExceeded"
    rid = s.invoke("f", {}, kind="Event")["request_id"]  # async: waits, not throttled
    assert s.stats()["events_pending"] == 1
    t.join()
    assert first["error"] is None
    done = wait_for(lambda: [r for r in s.records() if r["request_id"] == rid and r["end"]], 10, "the event")
    assert done[0]["outcome"] == "Success" and done[0]["cold"] is False
    assert s.stats()["throttled"] == 3


def test_never_start_leaves_invocations_pending(lam):
    s = lam()
    s.create("stuck")
    s.admin("POST", "faults", {"never_start": ["stuck"]})
    rid = s.invoke("stuck", {}, kind="Event")["request_id"]
    with pytest.raises(ReadTimeoutError):
        s.invoke("stuck", {}, client=s.client(read_timeout=1.5))
    time.sleep(0.5)
    st = s.stats()
    assert (st["events_pending"], st["environments_started"], st["environments_live"]) == (1, 0, 0)
    recs = {r["type"]: r for r in s.records()}
    assert recs["Event"]["outcome"] == "pending" and recs["RequestResponse"]["outcome"] == "Abandoned"
    s.admin("POST", "faults", {"never_start": []})
    wait_for(lambda: [r for r in s.records() if r["request_id"] == rid and r["outcome"] == "Success"],
             10, "the event to run once its environment can start")


def test_kill_rate(lam):
    s = lam()
    s.create("f")
    s.admin("POST", "faults", {"kill_rate": 1.0})
    r = s.invoke("f", {"sleep": 0.2})
    assert r["error"] == "Unhandled" and r["json"]["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in r["json"]["errorMessage"]
    s.admin("POST", "faults", {"kill_rate": 0.5, "seed": 3})
    errors = [r["json"] for r in (s.invoke("f", {"sleep": 0.05}) for _ in range(12)) if r["error"]]
    assert all(e["errorMessage"].endswith("Runtime exited with error: signal: killed") for e in errors), errors
    assert 1 <= len(errors) <= 11 and s.stats()["kills"] == 1 + len(errors), (s.stats(), s.records())


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_process_outlives_the_service(lam, how):
    s = lam()
    s.create("f")
    s.create("g", Timeout=30)
    children = s.invoke("f", {"spawn": True})["json"]["children"]
    def call_that_the_stop_cuts():
        try:
            s.invoke("g", {"sleep": 20})
        except Exception:  # noqa: BLE001 (the connection closes with the service)
            pass
    busy = threading.Thread(target=call_that_the_stop_cuts, daemon=True)
    busy.start()
    wait_for(lambda: len(s.envs()) == 2 and s.stats()["running"] == 1, 10, "two environments")
    wait_for(lambda: set(children) <= s.pids | {p for e in s.envs() for p in e["escaped"]}, 5,
             "the children to be seen")  # the monitor scans /proc every 200 ms
    s.pids.update(children)
    assert all(alive(p) for p in s.pids)
    t0 = time.time()
    s.stop(how)  # asserts that every pid and process group seen is gone
    assert time.time() - t0 < 15
