#!/bin/sh
# make bench-wan: bench/wan.lua (zoe) and tools/bench_wan_torch.py (the PyTorch mirror, f32 and
# bf16 autocast) on the same checkpoint and thread count, stage after stage, then each
# stage's ratio: PyTorch's seconds over zoe's (above 1: zoe is faster); zoe's whole-pipeline
# memory runs last, so that the timed stages of both sides run minutes apart, not a quarter
# of an hour (this machine's speed drifts by 30% over an hour).
# usage: ZOE=bin/zoe sh bench/bench_wan.sh CHECKPOINT_DIR
set -u
ZOE=${ZOE:-bin/zoe}
dir=${1:-build/wan-random}
threads=${ZOE_THREADS:-$(nproc)}
zoe_out=$(mktemp)
torch_out=$(mktemp)
trap 'rm -f "$zoe_out" "$torch_out"' EXIT
# The checkpoint starts out of the page cache, as after a reboot: zoe reads it through its
# own mappings, which keep it in 2 MiB pages (runtime/io/mapfile.c). A file just written
# (by tools/wan_random.py) sits in the cache in its writer's 4 KiB pages, and the streamed
# umT5 then spends 0.45 s more per prompt mapping them.
for f in "$dir"/*.pth "$dir"/*.safetensors; do dd if="$f" iflag=nocache count=0 status=none; done
"$ZOE" bench/wan.lua "$dir" t5 dit vae | tee "$zoe_out"
/usr/bin/python3 tools/bench_wan_torch.py "$dir" "$threads" | tee "$torch_out"
"$ZOE" bench/wan.lua "$dir" long pipeline | grep -v '^zoe bench-wan\|^sgemm'
result() { awk -v k="$2" '$1 == "RESULT" && $2 == k {print $3}' "$1"; }
echo
echo "zoe against PyTorch 1.13 ($threads threads): PyTorch's seconds / zoe's"
for pair in "t5 t5_bf16 umT5-XXL 40 tokens, PyTorch bf16" "dit dit_f32 DiT forward, PyTorch f32" \
            "dit dit_bf16 DiT forward, PyTorch bf16 autocast" "vae vae_f32 VAE decode 17 frames, PyTorch f32"; do
  set -- $pair
  z=$(result "$zoe_out" "$1")
  t=$(result "$torch_out" "$2")
  shift 2
  [ -n "$z" ] && [ -n "$t" ] && awk -v z="$z" -v t="$t" -v n="$*" \
    'BEGIN {printf "%-46s zoe %7.2f s  PyTorch %7.2f s  ratio %.2f\n", n, z, t, t / z}'
done
exit 0
