#!/bin/sh
# Runs one program under valgrind's memcheck, failing on any error or leak:
#   sh tests/valgrind.sh build/NAME/bin/tests/test_video
#   sh tests/valgrind.sh build/NAME/bin/zoe tests/lua/test_video.lua
# Debian's libavcodec loads libhwy (through libjxl), whose start-up code times
# itself with RDTSCP; valgrind 3.19 stops there with SIGILL on CPUs that lack
# the instruction (these VMs). A preloaded stub of that one function
# (hwy::platform::TimerResolution) lets the program start; nothing of ours uses it.
set -eu
dir=${TMPDIR:-/tmp}/zoe-valgrind-$(id -u)
mkdir -p "$dir"
shim="$dir/hwy_timer.so"
if [ ! -f "$shim" ]; then
  printf '%s\n' '#include <stdint.h>' \
    'uint64_t _ZN3hwy8platform15TimerResolutionEv(void);' \
    'uint64_t _ZN3hwy8platform15TimerResolutionEv(void) { return 100; }' >"$dir/hwy_timer.c"
  cc -shared -fPIC -O1 -o "$shim" "$dir/hwy_timer.c"
fi
export LUA_PATH_5_4="tests/lua/?.lua;;"
LD_PRELOAD="$shim" exec valgrind -q --error-exitcode=9 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect "$@"
