-- The default recipe, scripts/hello.lua, as the README runs it: prompt, seed, model, then
-- settings as name=value (how a CPU user makes Wan finish in minutes), from another folder.
local t = require "testlib"
local zoe = require "zoe"

local zoe_bin = os.getenv("ZOE_TEST_ZOE") or "bin/zoe"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute(("mkdir -p '%s'"):format(dir)))
local function abs(path) return path:sub(1, 1) == "/" and path or (os.getenv("PWD") .. "/" .. path) end

local function hello(args)
  local p = io.popen(("cd '%s' && '%s' --quiet '%s' %s 2>&1; echo \"exit $?\""):format(dir, abs(zoe_bin),
    abs("scripts/hello.lua"), args))
  local out = p:read("a")
  p:close()
  return out, tonumber(out:match("exit (%d+)\n$"))
end

t.test("hello.lua takes settings after the model; a malformed one is refused in one line", function()
  local out, code = hello("'a red circle moving right' 3 zoe-tiny steps=2 frames=5 width=96")
  t.eq(code, 0, out)
  t.ok(out:find('"a red circle moving right", seed 3: 5 frames of 96x64, euler 2 steps, cfg 4', 1, true), out)
  local info = zoe.video.info(dir .. "/out/hello.mp4")
  t.eq({info.frames, info.width, info.height}, {5, 96, 64})
  -- 5 frames every 2: 3 cells drawn 3x (64 -> 192 high), one row
  t.eq(zoe.image.read(dir .. "/out/hello.png"):shape(), {3, 2 + 22 + 194, 2 + 3 * (288 + 2)})
  out, code = hello("'a red circle' 3 zoe-tiny steps 2")
  t.eq(code, 1)
  t.eq(out, "zoe: hello.lua: argument 4 is 'steps'; settings are name=value (steps=10)\nexit 1\n")
end)

os.execute(("rm -rf '%s'"):format(dir))
t.done()
