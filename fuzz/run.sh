#!/bin/sh
# make fuzz: builds every fuzz/fuzz_NAME.c with clang's libFuzzer + AddressSanitizer
# and runs each for FUZZ_SECONDS on its corpus, then prints one line per fuzzer.
#
# The file parsers (runtime/io/*.c) are compiled here with clang, instrumented;
# the rest of the core (core, ops, nn, loop) is linked from the ordinary build's
# objects in CORE_OBJ_DIR, as gcc built them.
# Seeds: fuzz/corpus/NAME/ (committed, tiny) and whatever fuzz/NAME.seeds.sh writes
# into the folder it is given. The corpus grows in $OUT/corpus/NAME across runs;
# a crash leaves its input in $OUT/artifacts/.
# Env: FUZZ_SECONDS (60), CORE_OBJ_DIR, PKG_CFLAGS, PKG_LIBS (from the Makefile), OUT.
set -u
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
OUT=${OUT:-build/fuzz}
CORE_OBJ_DIR=${CORE_OBJ_DIR:-build/rel/obj}
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer ${PKG_CFLAGS:-}"
mkdir -p "$OUT/obj" "$OUT/bin" "$OUT/corpus" "$OUT/artifacts"

objs=""
for src in runtime/io/*.c; do
  obj="$OUT/obj/$(basename "$src" .c).o"
  clang $CFLAGS -fsanitize=fuzzer-no-link,address -c "$src" -o "$obj" || exit 1
  objs="$objs $obj"
done
for src in runtime/core/*.c runtime/ops/*.c runtime/nn/*.c runtime/nn/*/*.c runtime/loop/*.c; do
  [ -f "$src" ] || continue
  obj="$CORE_OBJ_DIR/${src%.c}.o"
  [ -f "$obj" ] || { echo "make fuzz: $obj is missing (build the core first)"; exit 1; }
  objs="$objs $obj"
done

status=0
for src in fuzz/fuzz_*.c; do
  [ -f "$src" ] || continue
  name=$(basename "$src" .c)
  bin="$OUT/bin/$name"
  # shellcheck disable=SC2086
  clang $CFLAGS -fsanitize=fuzzer,address -o "$bin" "$src" $objs ${PKG_LIBS:-} || exit 1
  corpus="$OUT/corpus/$name"
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$name" ]; then cp -n "fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true; fi
  if [ -f "fuzz/$name.seeds.sh" ]; then sh "fuzz/$name.seeds.sh" "$corpus" || exit 1; fi
  log="$OUT/$name.log"
  ZOE_THREADS=1 "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=25 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1 | sed 's/.*cov: \([0-9]*\).*/\1/')
  if [ "$rc" -eq 0 ]; then
    echo "ok   $name: ${runs:-?} inputs in ${FUZZ_SECONDS} s, coverage ${cov:-?} edges, $(ls "$corpus" | wc -l) in the corpus"
  else
    echo "FAIL $name (exit $rc): see $log"
    grep -E 'ERROR|SUMMARY|artifact' "$log" | head -10
    status=1
  fi
done
exit $status
