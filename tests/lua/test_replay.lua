-- Records hold what actually ran, and zoe.replay makes the same bytes and says so
-- (lua/zoe/record.lua): the README's own recipe, verbatim; a cfg and a schedule given as
-- functions; the model found by name on "another machine".
local t = require "testlib"
local zoe = require "zoe"
local record = require "zoe.record"

local zoe_bin = os.getenv("ZOE_TEST_ZOE") or "bin/zoe"
local root = os.getenv("PWD") or "."
if zoe_bin:sub(1, 1) ~= "/" then zoe_bin = root .. "/" .. zoe_bin end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute(("mkdir -p '%s'"):format(d)))
  return d
end

-- the ```lua block of README.md that calls zoe.replay, as it is written there
local function readme_recipe()
  local text = assert(read("README.md"), "README.md")
  for block in text:gmatch("```lua\n(.-)```") do
    if block:find("zoe.replay", 1, true) then return block end
  end
  error("README.md has no Lua block calling zoe.replay")
end

t.test("the README's recipe, verbatim, replays to identical bytes (its on_step changes cfg at step 10)", function()
  local dir = tmpdir()
  local f = assert(io.open(dir .. "/recipe.lua", "w"))
  f:write(readme_recipe())
  f:close()
  local p = io.popen(("cd '%s' && '%s' --quiet recipe.lua 2>&1"):format(dir, zoe_bin))
  local out = p:read("a")
  p:close()
  t.eq(out, "true\n", "the recipe prints that replay made the same bytes")
  local a, b = read(dir .. "/out/a.mp4"), read(dir .. "/out/again.mp4")
  t.ok(a and #a > 1000 and a == b, "out/a.mp4 and out/again.mp4 hold the same bytes")
  local rec = zoe.json.decode(read(dir .. "/out/a.json")).recipe
  t.eq(#rec.cfg, 20, "a scale per model evaluation")
  for i = 1, 20 do t.eq(rec.cfg[i], i <= 10 and 4 or 2, "scale " .. i) end
  t.eq(rec.model, "zoe-tiny", "the model by the name it was found by")
  t.eq(#rec.weights_hash, 16)
  t.eq(#rec.sigmas, 21, "the sigmas walked")
  os.execute(("rm -rf '%s'"):format(dir))
end)

t.test("cfg and schedule given as functions are recorded as what they gave, and replay the same bytes", function()
  local dir = tmpdir()
  local spec = {model = "zoe-tiny", prompt = "a blue square moving up", seed = 5, steps = 4, out = dir .. "/f.mp4",
    cfg = function(step) return 2 + step / 2 end, schedule = function() return {1, 0.75, 0.45, 0.2, 0} end,
    on_step = function(state) if state.step == 2 then state.settings.cfg_rescale = 0.5 end end}
  local _, rec = zoe.pipeline.text2video(spec)
  t.eq(rec.recipe.cfg, {2.5, 3, 3.5, 4})
  t.eq(rec.recipe.schedule.sigmas, {1, 0.75, 0.45, 0.2, 0})
  t.eq(rec.recipe.per_step.cfg_rescale[3], 0.5, "a setting on_step changed: its value at every step")
  local _, again, same = zoe.replay(dir .. "/f.mp4", {out = dir .. "/g.mp4"})
  t.eq(same, true)
  t.eq(again.replay.equal, true)
  t.ok(read(dir .. "/f.mp4") == read(dir .. "/g.mp4"))
  -- what replay would have made without the recorded values: other bytes (so the test can fail)
  spec.cfg, spec.schedule, spec.on_step, spec.out = 4, nil, nil, dir .. "/h.mp4"
  zoe.pipeline.text2video(spec)
  t.eq(select(1, record.compare(dir .. "/f.mp4", dir .. "/h.mp4")), false)
  os.execute(("rm -rf '%s'"):format(dir))
end)

t.test("another machine: a recorded folder that is not there is found again by name and hash", function()
  local hash = zoe.models.load("zoe-tiny"):hash()
  local m = record.model_of{model = "/nowhere/models/zoe-tiny", model_name = "zoe-tiny", weights_hash = hash}
  t.eq(m.name, "zoe-tiny")
  t.raises(function() record.model_of{model = "zoe-tiny", weights_hash = "0123456789abcdef"} end,
    "replay: no model with the weights the video was made with (0123456789abcdef)")
  local tiny = zoe.models.load("zoe-tiny")
  t.eq(record.model_ref(tiny, tiny), "zoe-tiny", "a model object found by its name is recorded by name")
end)

t.test("compare says where two files differ", function()
  local dir = tmpdir()
  for name, text in pairs {a = "abcdef", b = "abcdef", c = "abcxef"} do
    local f = assert(io.open(dir .. "/" .. name, "wb"))
    f:write(text)
    f:close()
  end
  t.eq(record.compare(dir .. "/a", dir .. "/b"), true)
  t.eq({record.compare(dir .. "/a", dir .. "/c")}, {false, "first difference at byte 4 (6 and 6 bytes)"})
  os.execute(("rm -rf '%s'"):format(dir))
end)

t.done()
