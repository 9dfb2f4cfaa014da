#!/bin/sh
# zoe-tiny (issue 7): the end-to-end time of scripts/hello.lua (a fresh process each time: load,
# text, 20 steps, decode, write MP4 + JSON + PNG), and one guided denoise step in zoe against
# the same model's step in PyTorch (tools/bench_tiny_torch.py), same machine and thread count,
# measured in this run, with the peak RSS of both. Skips what it cannot run, saying why.
set -u
ZOE=${ZOE:-bin/zoe}
if [ ! -f models/zoe-tiny/config.json ]; then
  echo "skipped: models/zoe-tiny is not here"
  exit 0
fi
now() { date +%s.%N; }
best=""
first=""
for i in 1 2 3; do
  t0=$(now)
  "$ZOE" --quiet scripts/hello.lua >/dev/null || exit 1
  t1=$(now)
  dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
  [ -z "$first" ] && first=$dt
  best=$(awk -v a="$dt" -v b="${best:-$dt}" 'BEGIN {print (a < b) ? a : b}')
done
printf 'hello.lua end to end (zoe --quiet scripts/hello.lua): first %.2f s, best of 3 %.2f s (target < 15 s)\n' "$first" "$best"

threads=${ZOE_THREADS:-$(nproc)}
zoe_out=$("$ZOE" bench/tiny_step.lua zoe-tiny 20) || exit 1
echo "$zoe_out" | grep -v '^RESULT'
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "torch side skipped: /usr/bin/python3 has no torch (apt-get install python3-torch)"
  exit 0
fi
torch_out=$(/usr/bin/python3 tools/bench_tiny_torch.py models/zoe-tiny "$threads" 20) || exit 1
echo "$torch_out" | grep -v '^RESULT'
for kind in f32 bf16; do
  zt=$(echo "$zoe_out" | awk -v k="zoe_$kind" '$1 == "RESULT" && $2 == k {print $3}')
  tt=$(echo "$torch_out" | awk -v k="torch_$kind" '$1 == "RESULT" && $2 == k {print $3}')
  printf 'denoise step, %s: zoe is %.2fx as fast as PyTorch (%d threads; target >= 2x)\n' "$kind" "$(awk -v a="$tt" -v b="$zt" 'BEGIN {print a / b}')" "$threads"
done
