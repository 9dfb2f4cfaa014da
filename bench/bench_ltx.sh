#!/bin/sh
# make bench-ltx: bench/ltx.lua (zoe) and tools/bench_ltx_torch.py (the PyTorch mirror, f32 and
# bf16 autocast) on the same random full-size LTX-Video 2B checkpoint and thread count, the
# timed stages of both sides minutes apart, then each stage's ratio: PyTorch's seconds over
# zoe's (above 1: zoe is faster), with the load average beside every number (this machine
# is shared; only ratios taken in one run compare). The 704x512x161 estimate runs last.
# usage: ZOE=bin/zoe sh bench/bench_ltx.sh CHECKPOINT_DIR   (tools/ltx_random.py's OUT)
#   FULL=0: skip the 704x512x161 estimate (the part-by-part measurements at full size)
set -u
ZOE=${ZOE:-bin/zoe}
dir=${1:-build/ltx-random}
threads=${ZOE_THREADS:-$(nproc)}
zoe_out=$(mktemp)
torch_out=$(mktemp)
trap 'rm -f "$zoe_out" "$torch_out"' EXIT
# the checkpoint starts out of the page cache, as after a reboot (zoe maps it in 2 MiB pages)
for f in "$dir"/diffusers/*/*.safetensors; do dd if="$f" iflag=nocache count=0 status=none; done
echo "uptime: $(uptime)"
"$ZOE" bench/ltx.lua "$dir/diffusers" transformer vae t5 | tee "$zoe_out"
/usr/bin/python3 tools/bench_ltx_torch.py "$dir/diffusers" "$threads" | tee "$torch_out"
[ "${FULL:-1}" = 0 ] || "$ZOE" bench/ltx.lua "$dir/diffusers" full | grep -v '^zoe bench-ltx'
result() { awk -v k="$2" '$1 == "RESULT" && $2 == k {print $3}' "$1"; }
echo
echo "zoe against PyTorch 1.13 ($threads threads): PyTorch's seconds / zoe's   (uptime: $(uptime | sed 's/.*load/load/'))"
for pair in "transformer transformer_bf16 transformer forward 512x320x65, PyTorch bf16 autocast" \
            "vae vae_f32 VAE decode 512x320x65, PyTorch f32" "vae vae_bf16 VAE decode 512x320x65, PyTorch bf16 autocast"; do
  set -- $pair
  z=$(result "$zoe_out" "$1")
  t=$(result "$torch_out" "$2")
  shift 2
  [ -n "$z" ] && [ -n "$t" ] && awk -v z="$z" -v t="$t" -v n="$*" \
    'BEGIN {printf "%-56s zoe %7.2f s  PyTorch %7.2f s  ratio %.2f\n", n, z, t, t / z}'
done
exit 0
