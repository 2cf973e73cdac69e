# Sourced by scripts and tests: starts s3rver (the build tree's copy, installed
# by the build's `s3rver` target with npm ci) and points AWS's conventions at it.
#
#   start_s3rver BUILD_DIR DATA_DIR BUCKET...   sets S3_PID, S3_PORT, S3_ENDPOINT and exports
#       AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID=S3RVER, AWS_SECRET_ACCESS_KEY=S3RVER,
#       AWS_REGION / AWS_DEFAULT_REGION=us-east-1 (s3rver's key pair; for virga and awscli alike)
#   stop_s3rver                                 stops it (call it from an EXIT trap)
# Returns non-zero, with a message, if node or the build's s3rver copy is missing.

start_s3rver() {
  local build=$1 data=$2
  shift 2
  local script="$build/tests/s3/s3rver.mjs"
  if [ ! -f "$script" ] || [ ! -d "$build/tests/s3/node_modules/@20minutes/s3rver" ]; then
    echo "s3rver is not installed in $build/tests/s3 (build the 's3rver' target)" >&2
    return 1
  fi
  command -v node > /dev/null || { echo "node is not installed" >&2; return 1; }
  local args=(--dir "$data")
  for b in "$@"; do args+=(--bucket "$b"); done
  mkdir -p "$data"
  local out="$data.out"
  # s3rver's continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
  node --openssl-legacy-provider "$script" "${args[@]}" > "$out" 2>&1 < /dev/null &
  S3_PID=$!
  S3_PORT=""
  local i
  for i in $(seq 200); do
    S3_PORT=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$out" 2> /dev/null)
    [ -n "$S3_PORT" ] && break
    kill -0 "$S3_PID" 2> /dev/null || break
    sleep 0.1
  done
  if [ -z "$S3_PORT" ]; then
    cat "$out" >&2
    echo "s3rver did not start" >&2
    return 1
  fi
  S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
  export AWS_ENDPOINT_URL_S3="$S3_ENDPOINT" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  unset AWS_SESSION_TOKEN AWS_PROFILE
}

stop_s3rver() {
  if [ -n "${S3_PID:-}" ]; then
    kill -TERM "$S3_PID" 2> /dev/null
    wait "$S3_PID" 2> /dev/null
    S3_PID=""
  fi
}
