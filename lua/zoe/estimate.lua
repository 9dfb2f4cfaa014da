-- zoe.estimate: how long a run will take on this machine, before it starts.
--
--   local e = zoe.estimate.time(model:work(settings))
--   -- e.seconds, e.stages = {text =, denoise =, decode =}, e.rough = {kinds not timed yet}
--   zoe.estimate.format(e.seconds)  --> "2 h 10 min"
--
-- A model's work (Model:work, lua/zoe/family/README.md) is a list of {stage, kind, units,
-- count, flops_per_unit}. The seconds come from what this machine measured: the op rates
-- the runtime learns as it runs (zoe.offload_rates: ns per unit of each op's cost) and the
-- stages the pipeline times itself (M.learn), both kept between runs in
-- ~/.cache/zoe/op-rates.json. An op's rate is taken at the size the run will call it (its
-- size class). A kind never timed here at a similar size falls back on its flops at the
-- speed of this machine's f32 products (a rough figure; e.rough names such kinds).
local zoe = require "zoe"

local M = {}

local function cache_path()
  local base = os.getenv("XDG_CACHE_HOME") or ((os.getenv("HOME") or "/tmp") .. "/.cache")
  return base .. "/zoe/op-rates.json"
end

local function read_cache()
  local f = io.open(cache_path(), "rb")
  if not f then return {} end
  local ok, t = pcall(zoe.json.decode, f:read("a"))
  f:close()
  return ok and type(t) == "table" and t or {}
end

-- ns per unit of every kind known: the cache, then what this process measured
function M.rates()
  local r = read_cache()
  for k, v in pairs(zoe.offload_rates()) do r[k] = v end
  return r
end

-- Keep this process's op rates (and any stage rates) for the next runs.
function M.save(extra)
  local r = M.rates()
  for k, v in pairs(extra or {}) do r[k] = v end
  local path = cache_path()
  os.execute(("mkdir -p '%s'"):format(path:match("^(.*)/")))
  local tmp = ("%s.%d.tmp"):format(path, math.random(1, 1e9))
  local f = io.open(tmp, "wb")
  if not f then return end -- a read-only home: estimates are just rougher
  f:write(zoe.json.encode(r))
  f:close()
  os.rename(tmp, path)
end

-- A stage timed whole (seconds for 'units' units): its rate moves a third of the way in
-- log space, so one run on a busy machine does not undo the others.
function M.learn(kind, units, seconds)
  if not (units > 0 and seconds > 0) then return end
  local x = seconds * 1e9 / units
  local old = read_cache()[kind]
  M.save {[kind] = old and math.exp(math.log(old) + (math.log(x) - math.log(old)) / 3) or x}
end

-- ns per flop of this machine's products, timed once per process on a 512-cube product
-- (the fallback for kinds never timed here)
local ns_flop
function M.ns_per_flop()
  if not ns_flop then
    local a = zoe.tensor.randn({512, 512}, {seed = 1})
    a:matmul(a)
    local best = math.huge
    for _ = 1, 2 do
      local t0 = zoe.uv.hrtime()
      a:matmul(a)
      best = math.min(best, zoe.uv.hrtime() - t0)
    end
    ns_flop = best / (2 * 512 ^ 3)
  end
  return ns_flop
end

-- The size class of an op's cost, as runtime/lua/loffload.c learns it ("wan_block@17"):
-- factors of 4.
function M.size_class(units) return math.floor(math.log(units, 2) / 2) end

-- ns per unit of an op kind at 'units' a call, and whether it is rough: its own size class,
-- else the nearest one timed within two classes (16x the cost). A kind's rate moves with
-- size (zoe-tiny's DiT blocks run at a fraction of the speed per flop of Wan's), so one
-- further off, or a rate of no size kept by an older version, is not used.
local function op_rate(rates, kind, units)
  local c = M.size_class(units)
  if rates[kind .. "@" .. c] then return rates[kind .. "@" .. c], false end
  local best, dist
  for k, v in pairs(rates) do
    local name, class = k:match("^(.+)@(%-?%d+)$")
    local d = name == kind and math.abs(tonumber(class) - c)
    if d and d <= 2 and (not dist or d < dist or (d == dist and v < best)) then best, dist = v, d end
  end
  return best, true
end

-- {seconds =, stages = {stage = seconds}, rough = {kind, ...}} of a work list. A kind
-- with a ':' is a stage the pipeline times whole ("decode:NAME"); any other is an op.
function M.time(work)
  local rates = M.rates()
  local out = {seconds = 0, stages = {}, rough = {}}
  for _, w in ipairs(work) do
    local ns, rough
    if w.kind:find(":", 1, true) then ns = rates[w.kind]
    elseif w.units > 0 then ns, rough = op_rate(rates, w.kind, w.units) end
    if not ns then ns, rough = (w.flops_per_unit or 1) * M.ns_per_flop(), true end
    if rough then out.rough[#out.rough + 1] = w.kind end
    local s = w.units * w.count * ns / 1e9
    out.seconds = out.seconds + s
    out.stages[w.stage] = (out.stages[w.stage] or 0) + s
  end
  return out
end

function M.format(seconds)
  if seconds < 60 then return ("%.0f s"):format(seconds) end
  if seconds < 3600 then return ("%d min %02d s"):format(seconds // 60, math.floor(seconds % 60)) end
  if seconds < 48 * 3600 then return ("%d h %02d min"):format(seconds // 3600, math.floor(seconds % 3600 / 60)) end
  return ("%.1f days"):format(seconds / 86400)
end

return M
