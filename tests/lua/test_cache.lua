-- Step caches (lua/zoe/cache/) on zoe-tiny: threshold 0 gives exactly the uncached video, the
-- skipped evaluations are recorded and replayed, a policy written here works (with guidance
-- branches that decide apart), a branch run alone is the branch run in the batch, and the
-- calibration's pieces.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local model = zoe.models.load("zoe-tiny")
local dir = os.tmpname()
os.remove(dir)
assert(os.execute(("mkdir -p '%s'"):format(dir)))

local BASE = {model = model, prompt = "a red circle moving right on a white background", seed = 5, steps = 10}
local function render(extra)
  local s = {}
  for k, v in pairs(BASE) do s[k] = v end
  for k, v in pairs(extra or {}) do s[k] = v end
  return zoe.pipeline.text2video(s)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function identical(a, b) return (a - b):abs():max():item() == 0 end

local function psnr(a, b)
  local mse = ((a - b) * (a - b)):mean():item()
  return mse == 0 and math.huge or 10 * math.log(4 / mse, 10)
end

local uncached = render()

t.test("every shipped policy at threshold 0 gives exactly the uncached frames", function()
  for _, name in ipairs(zoe.cache.names) do
    local frames, record = render {cache = name, cache_threshold = 0}
    t.ok(identical(frames, uncached), name .. ": the same frames")
    t.eq(record.evaluations.evaluations, 20, name .. ": 10 guided steps, 20 evaluations")
    t.eq(record.evaluations.skipped, 0, name)
    t.eq(record.recipe.cache.policy, name, "the record names the policy")
    t.eq(record.recipe.cache.settings.threshold, 0, "and its settings")
  end
end)

t.test("each shipped policy at a working threshold skips evaluations and stays close", function()
  for name, th in pairs {teacache = 0.2, magcache = 0.05, easycache = 0.2, first_block = 0.2} do
    local frames, record = render {cache = name, cache_threshold = th}
    local e = record.evaluations
    t.ok(e.skipped > 0 and e.evaluations < 20, ("%s %g: %d skipped, %.2f evaluations"):format(name, th, e.skipped, e.evaluations))
    t.ok(psnr(frames, uncached) > 18, ("%s: PSNR %.1f dB against uncached"):format(name, psnr(frames, uncached)))
    t.ok(not identical(frames, uncached), name .. ": skipping is seen")
  end
end)

t.test("the skipped evaluations are recorded, and replay lays them again: the same bytes", function()
  local out = dir .. "/tea.mp4"
  local _, record = render {cache = zoe.cache.teacache{threshold = 0.2, start_at = 0.2}, out = out}
  local rc = record.recipe.cache
  t.ok(#rc.skipped.cond > 0 and #rc.skipped.uncond > 0, "both branches skipped some")
  t.eq(rc.settings.start_at, 0.2, "the settings given")
  t.ok(#rc.settings.coefficients == 5, "and the polynomial that decided")
  for _, e in ipairs(rc.skipped.cond) do t.ok(e > 2, "nothing skipped before start_at (step 3 of 10)") end
  local json = zoe.json.decode(read(dir .. "/tea.json"))
  t.eq(json.recipe.cache.skipped.cond, rc.skipped.cond, "the sidecar holds the skips")
  local _, again = zoe.replay(out, {out = dir .. "/tea2.mp4"})
  t.ok(read(out) == read(dir .. "/tea2.mp4"), "replay gives the same bytes")
  t.eq(again.recipe.cache.skipped.cond, rc.skipped.cond, "and records the same skips")
end)

-- A policy of one's own: reuse the cond branch's residual every other step after step 3, and
-- the uncond branch's at steps 5 and 6 only, so some steps compute one branch alone.
local function alternate()
  return {
    name = "alternate", settings = {every = 2},
    decide = function(_, s)
      if s.branch == "cond" then return s.step < 4 or s.step % 2 == 0 end
      return s.step ~= 5 and s.step ~= 6
    end,
  }
end

t.test("a user-written policy: its decisions per branch, recorded and replayed without its code", function()
  local out = dir .. "/mine.mp4"
  local frames, record = render {cache = alternate(), out = out}
  local rc = record.recipe.cache
  t.eq(rc.policy, "alternate")
  t.eq(rc.settings.every, 2)
  t.eq(rc.skipped.cond, {5, 7, 9}, "cond: odd steps from 5 (step 3's residual is there)")
  t.eq(rc.skipped.uncond, {5, 6}, "uncond: steps 5 and 6")
  t.eq(record.evaluations.evaluations, 15, "20 evaluations less 5")
  t.ok(psnr(frames, uncached) > 18, ("PSNR %.1f"):format(psnr(frames, uncached)))
  zoe.replay(out, {out = dir .. "/mine2.mp4"}) -- the policy's code is not in the file
  t.ok(read(out) == read(dir .. "/mine2.mp4"), "replay gives the same bytes")
end)

t.test("a policy that asks for the first block's residual: the first block runs every step", function()
  local seen = {}
  local p = {
    name = "fb", signal = "first_block",
    decide = function(_, s)
      seen[#seen + 1] = s.signal:shape()
      return s.step <= 5
    end,
  }
  local _, record = render {cache = p, cfg = 1}
  t.eq(seen[1], {1, 80, 256}, "the residual of one branch: [1, tokens, dim]")
  t.eq(record.recipe.cache.reuse_from, 2, "the reused residual covers blocks 2..8")
  t.eq(record.evaluations.evaluations, 5 + 5 / 8, "5 steps whole, 5 of block 1 only (cfg 1: one branch)")
end)

t.test("a branch run alone through the hook is that branch of the batch", function()
  local dit = model:dit()
  local kc, ku = model:text_condition(model:encode_text("a blue square moving up on a black background"),
                                      model:encode_text(""))
  local x = T.randn({16, 5, 8, 8}, {seed = 2})
  local extra = T.zeros(20, 5, 8, 8)
  local inp = T.cat({x, extra}, 1)
  local kv = {}
  for b = 1, #kc do kv[b] = {T.cat({kc[b][1], ku[b][1]}, 1), T.cat({kc[b][2], ku[b][2]}, 1)} end
  local both = dit.forward({inp, inp}, 500, kv)
  for row = 1, 2 do
    local alone = dit.forward({inp, inp}, 500, kv, {around_blocks = function(tokens, run)
      local ran = run(tokens:narrow(1, row, 1), 1, nil, {row})
      local other = tokens:narrow(1, 3 - row, 1)
      return row == 1 and T.cat({ran, other}, 1) or T.cat({other, ran}, 1)
    end})
    t.close(alone[row], both[row], 1e-5, "branch " .. row)
  end
end)

t.test("a recorded cache table is a pattern: the same skips, the same frames", function()
  local f1, r1 = render {cache = "first_block", cache_threshold = 0.2}
  local f2, r2 = render {cache = r1.recipe.cache}
  t.ok(identical(f1, f2), "the same frames")
  t.eq(r2.recipe.cache.skipped.cond, r1.recipe.cache.skipped.cond)
  t.eq(r2.recipe.cache.policy, "first_block")
end)

t.test("a family that does not call the hook is named at the first step", function()
  local blind = setmetatable({denoiser = function(_, extra) return model:denoiser(extra) end}, {__index = model})
  t.raises(function() render {model = blind, cache = "first_block", cache_threshold = 0.1} end,
           "the wan family does not call the step-cache hook")
end)

t.test("bad settings are refused by name", function()
  t.raises(function() render {cache = "teacahe"} end, "unknown cache policy 'teacahe'")
  t.raises(function() render {cache_threshold = 0.1} end, "cache_threshold needs a cache policy")
  t.raises(function() render {cache = zoe.cache.teacache{threshold = 0.1}, cache_threshold = 0.2} end,
           "cache_threshold goes with a policy name")
  t.raises(function() zoe.cache.magcache{treshold = 0.1} end, "unknown setting 'treshold'")
  t.raises(function() zoe.cache.first_block{coefficients = {1}} end, "unknown setting 'coefficients'")
  t.raises(function() zoe.cache.first_block{threshold = -1} end, "threshold must be a number >= 0")
  t.raises(function() zoe.cache.easycache{start_at = 2} end, "start_at must be a fraction")
  t.raises(function() render {cache = {decide = function() return true end, signal = "output"}} end,
           "signal must be")
  t.raises(function() render {cache = zoe.cache.teacache{threshold = 0.1},
                              model = (function()
                                local m = zoe.models.load("zoe-tiny")
                                local copy = setmetatable({dir = "/nonexistent"}, {__index = m})
                                return copy
                              end)()} end, "teacache: no coefficients for zoe-tiny")
end)

t.test("calibration: the polynomial fit recovers a polynomial, and zoe-tiny's file is read", function()
  local cal = require "zoe.cache.calibration"
  local xs, ys = {}, {}
  for i = 1, 30 do
    local x = i / 100
    xs[i], ys[i] = x, 3 * x ^ 4 - 2 * x ^ 3 + 0.5 * x ^ 2 + 7 * x - 0.25
  end
  local c = cal.fit_poly(xs, ys, 4)
  for i, want in ipairs {3, -2, 0.5, 7, -0.25} do t.near(c[i], want, 1e-6, "coefficient " .. i) end
  local shipped = cal.load(model)
  t.ok(#shipped.teacache.coefficients == 5, "zoe-tiny ships its teacache polynomial")
  t.eq(#shipped.magcache.norms.sigmas, 20, "and its residual norms over its 20 default steps")
end)

t.test("calibration measured on two prompts, written beside a model and read back", function()
  local cal = require "zoe.cache.calibration"
  local there = setmetatable({dir = dir}, {__index = model})
  local c = cal.measure(there, {"a red circle moving left on a white background", "a green square on a navy background"},
                        {steps = 5})
  t.eq(c.teacache.samples, 2 * 2 * 4, "2 prompts x 2 branches x 4 pairs of consecutive steps")
  t.ok(c.teacache.rmse < 0.5, "the polynomial fits its samples: rms " .. c.teacache.rmse)
  t.eq(#c.magcache.norms.sigmas, 5)
  t.ok(c.magcache.norms.cond[1] > 0 and c.magcache.norms.uncond[5] > 0, "norms per branch")
  cal.write(there, c)
  local back = cal.load(there)
  t.eq(back.teacache.coefficients, c.teacache.coefficients, "read back")
  local _, r = render {model = there, cache = "magcache", cache_threshold = 0.05}
  t.ok(r.evaluations.evaluations <= 20, "magcache runs on it")
end)

os.execute(("rm -rf '%s'"):format(dir))
t.done()
