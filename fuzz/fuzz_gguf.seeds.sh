#!/bin/sh
# Seeds for fuzz_gguf: the small GGUF fixtures ggml wrote (../shared/fixtures/gguf), into $1.
set -eu
mkdir -p "$1"
for f in quant-types wan-tiny-q4_k wan-tiny-q8_0-city96 wan-tiny-mixed; do
  src="../shared/fixtures/gguf/$f.gguf"
  [ -f "$src" ] && cp -n "$src" "$1/" || true
done
