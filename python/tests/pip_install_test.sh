#!/usr/bin/env bash
# From a fresh clone: python3 -m venv --system-site-packages v && v/bin/pip install
# --no-build-isolation --no-index . , then `import virga` outside the repository and one fit
# through the installed package (its own worker binary). Registered with ctest as
# python_pip_install. Usage: pip_install_test.sh SOURCE_DIR PYTHON [CMAKE_ARGS]
# The clone is of the committed HEAD of SOURCE_DIR (uncommitted changes are not in it).
# ccache, when installed, is shared with the development build (CCACHE_BASEDIR makes the
# clone's paths relative), so this takes about a minute instead of a full build.
set -euo pipefail
src=$1
py=$2
cmake_args=${3:-}
if ! git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  echo "*** SKIPPED: $src is not a git checkout; nothing to clone ***"
  exit 0
fi
tmp=$(mktemp -d /tmp/virga-pip.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$src" "$tmp/virga"
"$py" -m venv --system-site-packages "$tmp/v"
export CCACHE_BASEDIR=$tmp CCACHE_NOHASHDIR=1
export VIRGA_CMAKE_ARGS=$cmake_args VIRGA_BUILD_JOBS=${VIRGA_BUILD_JOBS:-2}
(cd "$tmp/virga" && "$tmp/v/bin/pip" install -q --no-build-isolation --no-index .) \
  > "$tmp/pip.log" 2>&1 || { tail -40 "$tmp/pip.log"; echo "pip install failed"; exit 1; }
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere"
env -u PYTHONPATH -u VIRGA_BINARY "$tmp/v/bin/python" - "$tmp/v" <<'PY'
import os, sys
import numpy as np
import virga
where = os.path.dirname(virga.__file__)
assert where.startswith(sys.argv[1]), f"virga imported from {where}, not the venv"
assert virga.worker_binary().startswith(where), virga.worker_binary()
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4))
y = (X[:, 0] - X[:, 1] > 0).astype(int)
m = virga.LogisticRegression(workers=1, verbose=0).fit(X, y)
acc = m.score(X, y)
assert acc > 0.9, acc
print(f"installed virga at {where}: fit OK, accuracy {acc:.3f}")
PY
