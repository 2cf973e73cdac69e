#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan/UBSan into build-fuzz and runs each for the
# given time: fuzz_frame (src/net/frame_fuzz.cc: header decoding, frame assembly,
# PayloadReader), fuzz_ps_service (src/ps/service_fuzz.cc: every parameter-server request),
# fuzz_s3_xml (src/store/s3_xml_fuzz.cc: S3's error documents, listings, multipart answers) and
# fuzz_checkpoint (src/ps/checkpoint_fuzz.cc: restoring tables, KV and queues from a checkpoint).
# Usage: scripts/fuzz.sh [seconds]   (default 30)
# Exits non-zero if the fuzzer finds a crash; the input is saved under build-fuzz/fuzz-artifacts/.
# The corpus persists in build-fuzz/fuzz-corpus/frame, so later runs start where this one ended.
set -euo pipefail

seconds=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
corpus="$build/fuzz-corpus/frame"
artifacts="$build/fuzz-artifacts"

"$root/scripts/install-deps.sh" fuzz
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DVIRGA_FUZZ=ON \
  -DVIRGA_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_frame fuzz_ps_service fuzz_s3_xml fuzz_checkpoint

mkdir -p "$corpus" "$artifacts"
if [ -z "$(ls -A "$corpus")" ]; then
  # Seeds: byte 0 picks the feeding chunk size, then a frame stream. A HELLO carrying the
  # string "tok", then a frame with ops 5 (u64 array of 1) and 4 (string of 2).
  hdr() {  # opcode payload_len(as 4 escaped bytes)
    printf 'VGPS\x01%b\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00%b' "$1" "$2"
  }
  { printf '\x07'; hdr '\x00' '\x07\x00\x00\x00'; printf '\x03\x00\x00\x00tok'; } \
    >"$corpus/seed-hello"
  { printf '\x3f'; hdr '\x01' '\x18\x00\x00\x00'
    printf '\x05\x01\x00\x00\x00\x00\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00'
    printf '\x04\x02\x00\x00\x00hi\x00'; } >"$corpus/seed-arrays"
fi

ps_corpus="$build/fuzz-corpus/ps"
mkdir -p "$ps_corpus"
if [ -z "$(ls -A "$ps_corpus")" ]; then
  # Byte 0 is the opcode. A pull of keys 1, 2 from table "t"; a KV get of "k"; a lease from "q".
  printf '\x05\x01\x00\x00\x00t\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00' \
    >"$ps_corpus/seed-pull"
  printf '\x0b\x01\x00\x00\x00k' >"$ps_corpus/seed-kv-get"
  printf '\x15\x01\x00\x00\x00q\x01\x00\x00\x00w\x10\x27\x00\x00' >"$ps_corpus/seed-lease"
fi

echo "fuzz.sh: running fuzz_frame for ${seconds}s" >&2
"$build/src/net/fuzz_frame" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus"
echo "fuzz.sh: running fuzz_ps_service for ${seconds}s" >&2
"$build/src/ps/fuzz_ps_service" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$ps_corpus"

s3_corpus="$build/fuzz-corpus/s3xml"
mkdir -p "$s3_corpus"
if [ -z "$(ls -A "$s3_corpus")" ]; then
  printf '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>m</Message></Error>' \
    >"$s3_corpus/seed-error"
  printf '<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/b</Key><Size>12</Size></Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>' \
    >"$s3_corpus/seed-list"
  printf '<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>' \
    >"$s3_corpus/seed-upload"
fi
echo "fuzz.sh: running fuzz_s3_xml for ${seconds}s" >&2
"$build/src/store/fuzz_s3_xml" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$s3_corpus"

ckpt_corpus="$build/fuzz-corpus/checkpoint"
mkdir -p "$ckpt_corpus"
if [ -z "$(ls -A "$ckpt_corpus")" ]; then
  # Seeds written by the real serializers: tables (sparse, dense), a KV, queues with a lease.
  VIRGA_FUZZ_SEEDS="$ckpt_corpus" "$build/src/ps/fuzz_checkpoint"
fi
echo "fuzz.sh: running fuzz_checkpoint for ${seconds}s" >&2
"$build/src/ps/fuzz_checkpoint" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$artifacts/" "$ckpt_corpus"
