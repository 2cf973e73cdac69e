"""Helpers of the local Lambda service (lambda_service.py): HTTP plumbing, SigV4
verification, deployment packages, and the processes of execution environments.

Nothing here knows about functions or invocations; lambda_service.py does.

Processes. A bootstrap runs in a process group of its own (setsid), is started by one
long-lived thread (PR_SET_PDEATHSIG follows the thread that forked, not the process)
with PR_SET_PDEATHSIG=SIGKILL, and its group is registered with a guardian process
forked before any thread exists: when the service ends in any way (SIGKILL included)
the guardian reads EOF on its pipe and SIGKILLs every group and every escaped
descendant it was told about. Memory is the resident set of the group plus any
descendants that left it, read from /proc.
"""
import base64
import ctypes
import datetime
import hashlib
import hmac
import http.server
import io
import json
import os
import queue
import signal
import stat
import subprocess
import threading
import zipfile

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------
# HTTP plumbing (HTTP/1.1 with keep-alive, Content-Length or chunked request bodies).

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    verbose = False

    def log_message(self, fmt, *args):  # stderr only with --verbose
        if self.verbose:
            super().log_message(fmt, *args)

    def read_body(self, limit):
        """The request body; None (and the connection closed) past `limit` bytes."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = io.BytesIO()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    break
                if out.tell() + size > limit:
                    self.close_connection = True
                    return None
                out.write(self.rfile.read(size))
                self.rfile.readline()
            return out.getvalue()
        n = int(self.headers.get("Content-Length") or 0)
        if n > limit:
            self.close_connection = True
            return None
        return self.rfile.read(n) if n else b""

    def reply(self, code, body=b"", headers=None, content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body or code not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def client_gone(self):
        """True once the client closed its side (used while a synchronous call waits)."""
        import select
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            return bool(r) and self.connection.recv(1, 0x2) == b""  # MSG_PEEK
        except OSError:
            return True


# ---------------------------------------------------------------------------------------
# SigV4 (AWS4-HMAC-SHA256 in the Authorization header). The canonical request is
# botocore's (the signing oracle of our tests); the signed headers are exactly those
# the client listed.

class AuthError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


def verify_sigv4(method, raw_path, headers, body, keys, region, service, session_token=None,
                 max_skew_s=300):
    """Raises AuthError unless the request is signed by one of `keys` {access: secret}."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    auth = headers.get("Authorization")
    if not auth:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    try:
        algo, rest = auth.split(" ", 1)
        fields = dict(p.strip().split("=", 1) for p in rest.split(","))
        access, date, reg, svc, term = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
        amz_date = headers.get("X-Amz-Date")
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    except (ValueError, KeyError, TypeError):
        raise AuthError("IncompleteSignatureException",
                        "Authorization header requires 'Credential', 'Signature', 'SignedHeaders' "
                        "and an X-Amz-Date header.")
    if algo != "AWS4-HMAC-SHA256" or term != "aws4_request":
        raise AuthError("IncompleteSignatureException", "Unsupported AWS 'algorithm': " + algo)
    if access not in keys:
        raise AuthError("UnrecognizedClientException",
                        "The security token included in the request is invalid.")
    token = headers.get("X-Amz-Security-Token")
    if token is not None and token != session_token:
        raise AuthError("UnrecognizedClientException",
                        "The security token included in the request is invalid.")
    if reg != region:
        raise AuthError("InvalidSignatureException",
                        f"Credential should be scoped to a valid region, not '{reg}'.")
    if svc != service:
        raise AuthError("InvalidSignatureException",
                        f"Credential should be scoped to correct service: '{service}'.")
    skew = abs((datetime.datetime.utcnow() - when).total_seconds())
    if skew > max_skew_s or date != amz_date[:8]:
        raise AuthError("InvalidSignatureException",
                        f"Signature expired: {amz_date} is now earlier than the allowed 5 min skew.")

    class Exact(SigV4Auth):
        def headers_to_sign(self, request):
            from botocore.awsrequest import HTTPHeaders
            out = HTTPHeaders()
            for name in signed:
                for v in headers.get_all(name) or []:
                    out.add_header(name, v)
            return out

    hdrs = {}
    if "X-Amz-Content-SHA256" in headers:
        sha = headers["X-Amz-Content-SHA256"]
        if sha != "UNSIGNED-PAYLOAD" and sha != hashlib.sha256(body).hexdigest():
            raise AuthError("InvalidSignatureException",
                            "The provided 'x-amz-content-sha256' header does not match what was computed.")
        hdrs["X-Amz-Content-SHA256"] = sha
    req = AWSRequest(method=method, url="http://" + headers.get("Host", "localhost") + raw_path,
                     data=body, headers=hdrs)
    req.context["timestamp"] = amz_date
    signer = Exact(Credentials(access, keys[access]), service, region)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(expected, signature):
        raise AuthError("InvalidSignatureException",
                        "The request signature we calculated does not match the signature you "
                        "provided. Check your AWS Secret Access Key and signing method. Consult the "
                        "service documentation for details.")


# ---------------------------------------------------------------------------------------
# Deployment packages.

class BadPackage(Exception):
    pass


def inspect_zip(data, max_unzipped):
    """(CodeSha256 base64, unzipped size); raises BadPackage for a zip that cannot be used."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            size = sum(i.file_size for i in z.infolist())
            z.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError):
        raise BadPackage("Could not unzip uploaded file. Please check your file, then try to upload again.")
    if size > max_unzipped:
        raise BadPackage(f"Unzipped size must be smaller than {max_unzipped} bytes")
    return base64.b64encode(hashlib.sha256(data).digest()).decode(), size


def unzip_into(zip_path, dest):
    """Unpacks keeping the Unix modes stored in the zip (zipfile itself drops them)."""
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            target = os.path.realpath(os.path.join(dest, info.filename))
            if not target.startswith(os.path.realpath(dest) + os.sep) and target != os.path.realpath(dest):
                continue  # a path that climbs out of the task root
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                os.symlink(z.read(info).decode(), target)
                continue
            z.extract(info, dest)
            if mode & 0o777:
                os.chmod(target, mode & 0o777)


# ---------------------------------------------------------------------------------------
# Processes.

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


class Guardian:
    """A child forked before any thread: SIGKILLs the registered groups and pids when
    the service's end of its pipe closes, however the service ended."""

    def __init__(self):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            self._run(r)
        os.close(r)
        self.pid, self._w, self._lock = pid, w, threading.Lock()

    @staticmethod
    def _run(r):
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            groups, pids, buf = set(), set(), b""
            while True:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    op, kind, n = line.decode().split()
                    target = groups if kind == "g" else pids
                    (target.add if op == "+" else target.discard)(int(n))
            for g in groups:
                try:
                    os.killpg(g, signal.SIGKILL)
                except OSError:
                    pass
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        finally:
            os._exit(0)

    def tell(self, op, kind, n):
        with self._lock:
            try:
                os.write(self._w, f"{op} {kind} {n}\n".encode())
            except OSError:
                pass

    def close(self):
        os.close(self._w)
        os.waitpid(self.pid, 0)


class Spawner:
    """Starts every bootstrap from one thread that lives as long as the service, so
    PR_SET_PDEATHSIG fires only when the service itself dies."""

    def __init__(self):
        self._q = queue.Queue()
        self._parent = os.getpid()
        threading.Thread(target=self._loop, name="spawner", daemon=True).start()

    def _loop(self):
        while True:
            args, kwargs, box, done = self._q.get()
            try:
                box.append(subprocess.Popen(*args, preexec_fn=self._child, start_new_session=True,
                                            **kwargs))
            except OSError as e:
                box.append(e)
            done.set()

    def _child(self):  # runs in the child between fork and exec
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != self._parent:
            os._exit(1)

    def popen(self, *args, **kwargs):
        """subprocess.Popen in a new session; returns the Popen or raises its OSError."""
        box, done = [], threading.Event()
        self._q.put((args, kwargs, box, done))
        done.wait()
        if isinstance(box[0], OSError):
            raise box[0]
        return box[0]


def proc_table():
    """{pid: (ppid, pgid, rss_bytes)} for every process, from /proc/*/stat."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(b")") + 2:].split()
        out[int(name)] = (int(fields[1]), int(fields[2]), int(fields[21]) * PAGE)
    return out


def group_members(table, pid, pgid):
    """The pids of process group `pgid` plus every descendant of `pid`, wherever it went."""
    children = {}
    for p, (pp, _, _) in table.items():
        children.setdefault(pp, []).append(p)
    members = {p for p, (_, g, _) in table.items() if g == pgid}
    if pid in table:
        members.add(pid)
    stack = list(members)
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in members:
                members.add(c)
                stack.append(c)
    return members


def rss_of(pids):
    """Resident bytes of `pids`, from /proc/PID/statm (gone processes count 0)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def kill_all(pgid, pids):
    for fn, arg in [(os.killpg, pgid)] + [(os.kill, p) for p in pids]:
        try:
            fn(arg, signal.SIGKILL)
        except OSError:
            pass


def exit_description(returncode):
    """As Lambda words it (Go's ProcessState): 'exit status 1', 'signal: killed'."""
    if returncode >= 0:
        return f"exit status {returncode}"
    names = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault",
             signal.SIGABRT: "aborted", signal.SIGTERM: "terminated"}
    return "signal: " + names.get(-returncode, signal.Signals(-returncode).name)
