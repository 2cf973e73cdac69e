#!/usr/bin/env bash
# The Lambda package as Lambda runs it (docs/lambda.md):
#  1. `virga deploy lambda --zip` writes bootstrap (0755, first), virga (0755),
#     lib/ld-linux-x86-64.so.2 (0755) and the libraries (0644), modes stored in the zip;
#  2. unpacked (modes from the zip), its bootstrap started with an EMPTY environment but
#     Lambda's variables (no PATH, no LD_LIBRARY_PATH) serves one invocation from a Runtime
#     API played by python3: the real worker code path rejects the payload "{}" (exit 2)
#     and the report says so;
#  3. while it waits for the next event, every shared object mapped in the process
#     (/proc/PID/maps) is a file of the package, none from /lib or /usr/lib.
# Usage: lambda_package_test.sh path/to/virga
set -euo pipefail
virga=$(realpath "$1")
work=$(mktemp -d)
server_pid=""
runtime_pid=""
cleanup() {
  [ -n "$runtime_pid" ] && kill -9 "$runtime_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$virga" deploy lambda --zip "$work/virga.zip" >"$work/deploy.out"
grep -q "virga.zip: .* files, .* MiB zipped" "$work/deploy.out" || fail "deploy output: $(cat "$work/deploy.out")"

# Modes as stored, and an extraction that applies them (Lambda's does).
python3 - "$work/virga.zip" "$work/task" <<'EOF'
import os, sys, zipfile
zf = zipfile.ZipFile(sys.argv[1])
infos = zf.infolist()
assert infos[0].filename == "bootstrap", infos[0].filename
modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
for name, want in [("bootstrap", 0o755), ("virga", 0o755), ("lib/ld-linux-x86-64.so.2", 0o755),
                   ("lib/libc.so.6", 0o644), ("lib/libstdc++.so.6", 0o644)]:
    assert modes.get(name) == want, (name, oct(modes.get(name, 0)))
for i in infos:
    assert i.create_system == 3, (i.filename, i.create_system)  # Unix: the modes count
    zf.extract(i, sys.argv[2])
    if not i.is_dir():
        os.chmod(os.path.join(sys.argv[2], i.filename), modes[i.filename])
EOF
task="$work/task"
[ -x "$task/bootstrap" ] || fail "bootstrap is not executable once unpacked"

# The Runtime API: one event, then `next` waits until $work/release exists and answers 500.
cat >"$work/api.py" <<'EOF'
import http.server, json, os, sys, threading, time
work = sys.argv[1]
event = json.dumps({"virga": 1, "function_id": 42, "label": "package-test", "lifetime_ms": 0,
                    "payload": "{}"}).encode()
nexts = 0
lock = threading.Lock()
class Api(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        global nexts
        assert self.path == "/2018-06-01/runtime/invocation/next", self.path
        with lock:
            nexts += 1
            n = nexts
        if n == 1:
            deadline = str(int(time.time() * 1000) + 60000)
            return self.reply(200, event, [("Lambda-Runtime-Aws-Request-Id", "req-1"),
                                           ("Lambda-Runtime-Deadline-Ms", deadline)])
        open(os.path.join(work, "waiting"), "w").close()
        while not os.path.exists(os.path.join(work, "release")): time.sleep(0.05)
        self.reply(500, b"done")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(os.path.join(work, "posts"), "a") as f:
            f.write(json.dumps({"path": self.path, "body": body.decode()}) + "\n")
        self.reply(202, b"{}")
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
with open(os.path.join(work, "port.tmp"), "w") as f: f.write(str(server.server_address[1]))
os.rename(os.path.join(work, "port.tmp"), os.path.join(work, "port"))
server.serve_forever()
EOF
python3 "$work/api.py" "$work" &
server_pid=$!
for _ in $(seq 100); do [ -f "$work/port" ] && break; sleep 0.1; done
[ -f "$work/port" ] || fail "the Runtime API did not start"
port=$(cat "$work/port")

env -i AWS_LAMBDA_RUNTIME_API="127.0.0.1:$port" LAMBDA_TASK_ROOT="$task" \
  AWS_LAMBDA_FUNCTION_NAME=virga-test AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024 AWS_REGION=us-east-1 \
  "$task/bootstrap" >"$work/runtime.log" 2>&1 &
runtime_pid=$!
for _ in $(seq 300); do [ -f "$work/waiting" ] && break; sleep 0.1; done
[ -f "$work/waiting" ] || fail "no second next; log: $(cat "$work/runtime.log")"

# The process that asked is the bootstrap's pid (sh and env exec'd into the loader).
maps=$(cat "/proc/$runtime_pid/maps")
exe=$(readlink "/proc/$runtime_pid/exe")
[ "$exe" = "$(realpath "$task/lib/ld-linux-x86-64.so.2")" ] || fail "the process runs $exe"
files=$(awk '$6 ~ /^\// {print $6}' <<<"$maps" | sort -u)
objects=$(grep -E '\.so(\.|$)' <<<"$files" || true)
[ -n "$objects" ] || fail "no shared object mapped?"
outside=$(grep -v "^$task/lib/" <<<"$objects" || true)
[ -z "$outside" ] || fail "shared objects from outside the package: $outside"
others=$(grep -v "^$task/" <<<"$files" || true)
[ -z "$others" ] || fail "files from outside the package mapped: $others"
grep -q "^$task/virga\$" <<<"$files" || fail "virga not mapped from the package"
echo "mapped: $(wc -l <<<"$objects") shared objects, all from $task/lib"
if tr "\0" "\n" <"/proc/$runtime_pid/environ" | grep -q "^LD_"; then fail "LD_* variables set"; fi

# The invocation's report: the real worker path rejected "{}" with exit 2.
python3 - "$work/posts" <<'EOF'
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1])]
assert len(posts) == 1, posts
assert posts[0]["path"] == "/2018-06-01/runtime/invocation/req-1/response", posts[0]["path"]
r = json.loads(posts[0]["body"])
assert r["function_id"] == 42 and r["request_id"] == "req-1", r
assert r["exit_code"] == 2 and r["reason"] == "exit 2", r
assert "event payload" in r["stderr_tail"], r["stderr_tail"]
print("report:", r["reason"], "-", r["stderr_tail"].strip())
EOF

touch "$work/release"
set +e
wait "$runtime_pid"
rc=$?
set -e
runtime_pid=""
[ "$rc" -ne 0 ] || fail "the runtime exited 0 after next answered 500"
grep -q "HTTP 500" "$work/runtime.log" || fail "log: $(cat "$work/runtime.log")"
echo "1 passed, 0 failed"
