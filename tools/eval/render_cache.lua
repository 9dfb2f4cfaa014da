-- Renders the evaluation set once per step-cache setting, interleaved, for the table of
-- docs/SAMPLING.md (tools/eval/eval_cache.py runs it):
--   zoe tools/eval/render_cache.lua pairs.json configs.json OUTDIR [model]
-- configs.json: a list of {id =, cache =, cache_threshold =}, the uncached one first (id
-- "uncached", no cache). Each pair is rendered with every setting in turn (the order rotating
-- from pair to pair, so a busy spell of the shared machine falls on all of them alike) to
-- OUTDIR/<id>/NNNN.mp4 (crf 10, the model's defaults); OUTDIR/results.json gets, per setting,
-- the DiT evaluations, the denoising seconds and the PSNR of its frames against the uncached
-- frames of the same pair (float frames in [-1, 1], peak-to-peak 2). results.json is rewritten
-- after every pair (pairs_done); run again, the same command goes on from there.
local zoe = require "zoe"

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local v = zoe.json.decode(f:read("a"))
  f:close()
  return v
end

local pairs_, configs, out = read_json(arg[1]), read_json(arg[2]), arg[3]
local model = zoe.models.load(arg[4] or "zoe-tiny")
model.text_cache = {} -- each prompt encoded once for all settings
assert(configs[1].id == "uncached" and not configs[1].cache, "the uncached setting comes first")
local res = {}
local done = io.open(out .. "/results.json", "rb")
if done then
  done:close()
  res = read_json(out .. "/results.json")
end
for _, c in ipairs(configs) do
  assert(os.execute(("mkdir -p '%s/%s'"):format(out, c.id)))
  res[c.id] = res[c.id] or {id = c.id, evaluations = 0, uncached = 0, denoise = 0, cpu = 0, total = 0, psnr = {}}
end
res.pairs_done = res.pairs_done or 0

local function save()
  local f = assert(io.open(out .. "/results.json.tmp", "wb"))
  f:write(zoe.json.encode(res, {indent = true}), "\n")
  f:close()
  assert(os.rename(out .. "/results.json.tmp", out .. "/results.json"))
end

local function psnr(a, b)
  local mse = ((a - b) * (a - b)):mean():item()
  return mse == 0 and 100 or math.min(100, 10 * math.log(4 / mse, 10))
end

for i = res.pairs_done + 1, #pairs_ do
  local p = pairs_[i]
  local frames = {}
  for k = 0, #configs - 1 do
    local c = configs[(i - 1 + k) % #configs + 1]
    local cpu0, cpu
    local f, record = zoe.pipeline.text2video{model = model, prompt = p.prompt, seed = p.seed, crf = 10,
      out = ("%s/%s/%04d.mp4"):format(out, c.id, i), cache = c.cache, cache_threshold = c.cache_threshold,
      preview = false, on_step = function(state)
        if state.step == 1 then cpu0 = os.clock() end
        if state.step == state.steps then cpu = os.clock() - cpu0 end
      end}
    frames[c.id] = f
    local r = res[c.id]
    local e = record.evaluations
    r.evaluations = r.evaluations + (e and e.evaluations or 2 * record.recipe.steps)
    r.uncached = r.uncached + (e and e.uncached or 2 * record.recipe.steps)
    r.denoise = r.denoise + record.timings.denoise
    r.cpu = (r.cpu or 0) + cpu
    r.total = r.total + record.timings.total
    if i == 1 and record.recipe.cache then r.skipped = record.recipe.cache.skipped end
  end
  for _, c in ipairs(configs) do
    if c.id ~= "uncached" then table.insert(res[c.id].psnr, psnr(frames[c.id], frames.uncached)) end
  end
  res.pairs_done = i
  save()
  if i % 10 == 0 then io.stderr:write(("rendered %d/%d pairs x %d settings\n"):format(i, #pairs_, #configs)) end
end
