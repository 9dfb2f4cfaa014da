-- make test's accounting (tests/run.sh, testlib, tests/c/test.h's SKIP): what could not run
-- here counts as skipped, never as passed. Runs tests/run.sh on test files written here.
local t = require "testlib"

local zoe_bin = os.getenv("ZOE_TEST_ZOE") or "bin/zoe"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute(("mkdir -p '%s/bin'"):format(dir)))
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

t.test("whole-file skips, t.skip inside a test and a C test's SKIP count as skipped", function()
  write(dir .. "/test_a.lua", [[
    local t = require "testlib"
    t.test("one", function() t.eq(1 + 1, 2) end)
    t.test("two", function() t.skip("two", "no fixture here") end)
    t.test("three", function() t.ok(true) end)
    t.done()
  ]])
  write(dir .. "/test_b.lua", [[
    local t = require "testlib"
    t.skip("all of b", "../shared is absent")
    t.done()
    error("never reached")
  ]])
  -- a C test program on a CPU without AVX512-BF16, as tests/c/test.h prints it
  write(dir .. "/bin/test_c", "#!/bin/sh\necho 'ok - test_kernel # SKIP this CPU has no AVX512-BF16'\n" ..
    "echo 'ok - test_choice'\necho '# passed 1 failed 0 skipped 1'\n")
  assert(os.execute(("chmod +x '%s/bin/test_c'"):format(dir)))
  local p = io.popen(("ZOE='%s' TEST_BIN_DIR='%s/bin' LUA_TESTS='%s/test_*.lua' sh tests/run.sh 2>&1")
    :format(zoe_bin, dir, dir))
  local out = p:read("a")
  p:close()
  t.ok(out:find("\n3 passed, 0 failed, 3 skipped\n$"), out)
  t.ok(out:find("ok   c/test_c (1, 1 skipped: this CPU has no AVX512-BF16)", 1, true), out)
  t.ok(out:find("(0, 1 skipped: ../shared is absent)", 1, true), out)
end)

os.execute(("rm -rf '%s'"):format(dir))
t.done()
