#!/bin/sh
# Wan2.1-1.3B's DiT (random weights at full size) with its weights in bf16, quantized to Q8_0
# and Q4_K by our own converter (zoe convert), kept quantized in memory, and as ComfyUI's scaled
# fp8 (e4m3fn, also zoe convert): one forward at
# 320x192x17 (1200 tokens, no guidance) each, every file in a process of its own, the three
# alternated twice in one run; the best time of each, its ratio to bf16, and the peak RSS.
# The checkpoint comes from tools/wan_random.py (make bench-wan makes it); the GGUF files are
# converted from it once into WAN_GGUF. Skipped when the checkpoint is absent.
# Env: ZOE, WAN_RANDOM (build/wan-random), WAN_GGUF ($WAN_RANDOM-gguf)
set -u
ZOE=${ZOE:-bin/zoe}
dir=${WAN_RANDOM:-build/wan-random}
gguf=${WAN_GGUF:-$dir-gguf}
src=$dir/diffusion_pytorch_model.safetensors
if [ ! -f "$src" ] || [ ! -f "$dir/config.json" ]; then
  echo "skipped: no full-size checkpoint in $dir (make bench-wan writes one; or set WAN_RANDOM)"
  exit 0
fi
mkdir -p "$gguf"
for t in q8_0 q4_k; do
  out=$gguf/wan2.1-t2v-1.3b-$t.gguf
  [ -f "$out" ] || "$ZOE" -q convert "$src" "$out" --type "$t" || exit 1
done
fp8=$gguf/wan2.1-t2v-1.3b-fp8_e4m3fn_scaled.safetensors
[ -f "$fp8" ] || "$ZOE" -q convert "$src" "$fp8" --type f8_e4m3 || exit 1
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows every side alike; ratios are within this run)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for round in 1 2; do
  "$ZOE" bench/quant_dit.lua "$dir/config.json" "$src" bf16 >> "$log" || exit 1
  "$ZOE" bench/quant_dit.lua "$dir/config.json" "$gguf/wan2.1-t2v-1.3b-q8_0.gguf" q8_0 >> "$log" || exit 1
  "$ZOE" bench/quant_dit.lua "$dir/config.json" "$gguf/wan2.1-t2v-1.3b-q4_k.gguf" q4_k >> "$log" || exit 1
  "$ZOE" bench/quant_dit.lua "$dir/config.json" "$fp8" fp8 >> "$log" || exit 1
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '$1 == "RESULT" {
  k = $2; if (!(k in t) || $3 < t[k]) t[k] = $3
  if (!(k in c) || $6 < c[k]) c[k] = $6
  if (!(k in rss) || $4 > rss[k]) rss[k] = $4
  w[k] = $5
}
END {
  printf "%-6s %9s %8s %10s %8s %10s %10s %9s\n", "DiT", "forward", "vs bf16", "cpu time", "vs bf16", "peak RSS", "weights", "vs bf16"
  n = split("bf16 q8_0 q4_k fp8", ks, " ")
  for (i = 1; i <= n; i++) {
    k = ks[i]
    printf "%-6s %7.2f s %7.2fx %8.2f s %7.2fx %7.2f GB %7.2f GB %8.0f%%\n", k, t[k], t["bf16"] / t[k], c[k],
      c["bf16"] / c[k], rss[k] / 2^30, w[k] / 2^30, 100 * w[k] / w["bf16"]
  }
}' "$log"
