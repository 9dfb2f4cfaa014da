#!/bin/sh
# make bench: runs every bench program (bench/*.c, built into BENCH_BIN_DIR) and
# every bench script (bench/*.lua, run with ZOE). Each prints its own table of
# ratios measured in one run; nothing here passes or fails on time.
set -u
ZOE=${ZOE:-bin/zoe}
BENCH_BIN_DIR=${BENCH_BIN_DIR:-build/rel/bin/bench}
export LUA_PATH_5_4="bench/?.lua;tests/lua/?.lua;;"
echo "zoe bench: $(nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, ZOE_THREADS=${ZOE_THREADS:-default}"
grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/^/cpu: /'
status=0
for b in "$BENCH_BIN_DIR"/bench_*; do
  [ -x "$b" ] || continue
  echo
  echo "== $(basename "$b")"
  "$b" || status=1
done
for s in bench/bench_*.lua; do
  [ -f "$s" ] || continue
  echo
  echo "== $(basename "$s" .lua)"
  "$ZOE" "$s" || status=1
done
for s in bench/bench_*.sh; do
  [ -f "$s" ] || continue
  # make bench-wan's own: a full-size checkpoint, 25 minutes and 24 GB
  [ "$(basename "$s")" = bench_wan.sh ] && continue
  echo
  echo "== $(basename "$s" .sh)"
  ZOE="$ZOE" sh "$s" || status=1
done
exit $status
