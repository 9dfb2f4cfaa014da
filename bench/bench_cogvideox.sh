#!/bin/sh
# make bench-cogvideox: bench/cogvideox.lua (zoe) and tools/bench_cogvideox_torch.py (the PyTorch
# mirror, f32 and bf16 autocast) on the same checkpoint and thread count, stage after stage,
# then each stage's ratio: PyTorch's seconds over zoe's (above 1: zoe is faster); zoe's
# whole-pipeline memory runs first (the must-show that needs no PyTorch side), so that the
# timed stages of both sides run minutes apart.
# The load average goes beside the numbers: the build machine is shared.
# With a second folder (CogVideoX-5B), one 5B transformer forward on each side last: PyTorch on
# the released bf16 weights under autocast, as f32 would need 22 GB.
# usage: ZOE=bin/zoe sh bench/bench_cogvideox.sh MODEL_DIR [MODEL_DIR_5B]
set -u
ZOE=${ZOE:-bin/zoe}
dir=${1:-../cogvideox-random/CogVideoX-2b}
dir5=${2:-}
threads=${ZOE_THREADS:-$(nproc)}
zoe_out=$(mktemp)
torch_out=$(mktemp)
trap 'rm -f "$zoe_out" "$torch_out"' EXIT
echo "load before: $(uptime)"
"$ZOE" bench/cogvideox.lua "$dir" pipeline | grep -v '^zoe bench-cogvideox'
echo "load after the pipeline: $(uptime)"
"$ZOE" bench/cogvideox.lua "$dir" t5 dit vae | tee "$zoe_out"
/usr/bin/python3 tools/bench_cogvideox_torch.py "$dir" "$threads" | tee "$torch_out"
echo "load after the timed stages: $(uptime)"
if [ -n "$dir5" ] && [ -d "$dir5" ]; then
  "$ZOE" bench/cogvideox.lua "$dir5" dit | sed 's/^RESULT dit /RESULT dit5 /' | tee -a "$zoe_out"
  /usr/bin/python3 tools/bench_cogvideox_torch.py "$dir5" "$threads" dit_bf16w | sed 's/^RESULT dit_bf16w /RESULT dit5_bf16w /' | tee -a "$torch_out"
  echo "load after the 5B forwards: $(uptime)"
fi
result() { awk -v k="$2" '$1 == "RESULT" && $2 == k {print $3}' "$1"; }
echo
echo "zoe against PyTorch 1.13 ($threads threads): PyTorch's seconds / zoe's"
for pair in "t5 t5_bf16 T5-XXL one prompt (226 tokens), PyTorch bf16" "dit dit_f32 transformer forward, PyTorch f32" \
            "dit dit_bf16 transformer forward, PyTorch bf16 autocast" "vae vae_f32 VAE decode 17 frames, PyTorch f32" \
            "dit5 dit5_bf16w 5B transformer forward, PyTorch bf16 weights + autocast"; do
  set -- $pair
  z=$(result "$zoe_out" "$1")
  t=$(result "$torch_out" "$2")
  shift 2
  [ -n "$z" ] && [ -n "$t" ] && awk -v z="$z" -v t="$t" -v n="$*" \
    'BEGIN {printf "%-56s zoe %7.2f s  PyTorch %7.2f s  ratio %.2f\n", n, z, t, t / z}'
done
echo "load at the end: $(uptime)"
exit 0
