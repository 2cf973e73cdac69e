#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages virga needs that are missing.
# Usage: scripts/install-deps.sh [build|bench|fuzz|browser|lambda]...   (default: build)
#   build  compiler toolchain and libraries (make build / demo / test)
#   bench  + scikit-learn, numpy, redis-server and liblinear-tools for the side-by-side benchmarks
#   fuzz   + clang and its libFuzzer runtime (scripts/fuzz.sh)
#   browser + chromium for the dashboard's browser test (tests/dashboard_browser_test.sh)
#   lambda + what npm aws-lambda-ric's native build needs (it builds curl and aws-lambda-cpp
#          from source: autoconf, automake, libtool, cmake, g++, make), for tests/lambda
set -euo pipefail

build_pkgs=(g++ make cmake ninja-build pkg-config
  zlib1g-dev libzstd-dev liblz4-dev libxxhash-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libasio-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev
  pybind11-dev python3-dev python3-numpy python3-pytest python3-scipy python3-matplotlib)
# The Python package's scikit-learn side (python/tests/test_sklearn.py: check_estimator, Pipeline,
# GridSearchCV, pandas input) and `pip install .` into a venv (python_pip_install: venv, and the
# setuptools and wheel a --no-build-isolation build uses).
build_pkgs+=(python3-sklearn python3-pandas python3-venv python3-setuptools python3-wheel)
build_pkgs+=(redis-server)  # tests/channel_e2e_test.sh trains through a real Redis
build_pkgs+=(ccache)  # rebuilds (the pip install test's fresh clone) compile only what changed
build_pkgs+=(libcpp-httplib-dev)  # the dashboard's HTTP server (and the Lambda runtime's test double)
build_pkgs+=(libzip-dev)  # the AWS Lambda deployment zip (src/lambda/lambda_package.cc): modes kept
# The s3:// store: HTTP through libcurl, SigV4 hashes through OpenSSL, S3's XML through pugixml.
# libssl-dev also gives the servers' TLS (src/net/tls.cc); the openssl CLI makes tests/tls_test.sh's
# certificates.
build_pkgs+=(libcurl4-openssl-dev libssl-dev libpugixml-dev)
# Its tests: AWS's own clients (awscli for interop, botocore as the signing oracle); the S3 server
# they run against (npm @20minutes/s3rver, tests/s3/package-lock.json) needs node and npm below.
build_pkgs+=(awscli python3-botocore openssl curl)
# npm bundles the dashboard's charting library: Debian's, unless node and npm are installed already.
command -v npm >/dev/null 2>&1 || build_pkgs+=(npm)
bench_pkgs=(python3 python3-numpy python3-sklearn redis-server liblinear-tools)
fuzz_pkgs=(clang libclang-rt-14-dev)
browser_pkgs=(chromium curl)
lambda_pkgs=(autoconf automake libtool cmake g++ make curl)

wanted=()
for set in "${@:-build}"; do
  case "$set" in
    build) wanted+=("${build_pkgs[@]}") ;;
    bench) wanted+=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
    fuzz) wanted+=("${build_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
    browser) wanted+=("${build_pkgs[@]}" "${browser_pkgs[@]}") ;;
    lambda) wanted+=("${build_pkgs[@]}" "${lambda_pkgs[@]}") ;;
    *) echo "install-deps: unknown set '$set' (build|bench|fuzz|browser|lambda)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
