#!/bin/sh
# Runs every C test binary and every Lua test file, then prints one line:
# "N passed, N failed, N skipped". Each test program prints "# passed N failed M skipped K"
# last; a test that could not run here (a whole file without ../shared, a CPU without the
# instructions it tests) is a skip, never a pass.
# Env: ZOE (the zoe binary), TEST_BIN_DIR (C test binaries), SAN (1 under sanitizers),
# LUA_TESTS (the Lua test files, a glob: tests/lua/test_*.lua).
set -u
ZOE=${ZOE:-bin/zoe}
TEST_BIN_DIR=${TEST_BIN_DIR:-build/rel/bin/tests}
export LUA_PATH_5_4="tests/lua/?.lua;;"
export ZOE_TEST_ZOE="$ZOE"
# caches the tests make (file hashes) go to a folder of their own, not the user's
XDG_CACHE_HOME=$(mktemp -d)
export XDG_CACHE_HOME
if [ "${SAN:-}" = 1 ]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
  export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
passed=0
failed=0
skipped=0
log=$(mktemp)
run_one() { # name, command...
  name=$1
  shift
  "$@" >"$log" 2>&1
  rc=$?
  summary=$(grep -E '^# passed [0-9]+ failed [0-9]+ skipped [0-9]+' "$log" | tail -1)
  if [ -z "$summary" ]; then
    echo "FAIL $name: crashed or printed no summary (exit $rc)"
    tail -30 "$log"
    failed=$((failed + 1))
    return
  fi
  p=$(echo "$summary" | awk '{print $3}')
  f=$(echo "$summary" | awk '{print $5}')
  k=$(echo "$summary" | awk '{print $7}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + k))
  if [ "$f" -gt 0 ]; then
    echo "FAIL $name ($p passed, $f failed, $k skipped)"
    grep -E '^not ok|^(==|  )|Sanitizer|runtime error' "$log" | head -40
  elif [ "$k" -gt 0 ]; then
    echo "ok   $name ($p, $k skipped: $(grep -E ' # SKIP ' "$log" | sed 's/.* # SKIP //' | sort -u | head -3 | paste -sd ';' -))"
  else
    echo "ok   $name ($p)"
  fi
}
for t in "$TEST_BIN_DIR"/test_*; do
  [ -x "$t" ] || continue
  run_one "c/$(basename "$t")" "$t"
done
for t in ${LUA_TESTS:-tests/lua/test_*.lua}; do
  [ -f "$t" ] || continue
  run_one "lua/$(basename "$t" .lua)" "$ZOE" "$t"
done
rm -f "$log"
rm -rf "$XDG_CACHE_HOME"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
