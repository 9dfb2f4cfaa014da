-- A recipe from the web, checked before anything runs. It is data (decoded JSON): every
-- field is named here with its type and range, an unknown field is refused with the
-- nearest known one ("did you mean"), and model names are names, never paths. Nothing in
-- it becomes code: the checked table goes to zoe.pipeline.text2video as settings.
--
--   recipe.check(t, ctx) -> spec | nil, message
--   ctx = {models = {"zoe-tiny", ...}, samplers = {...}, schedules = {...}, caches = {...}}
--
-- Pure Lua with no require, so fuzz/fuzz_recipe.c runs it as it is.
local M = {}

M.MAX_TEXT = 2000

-- name -> {type, check}; ranges are generous but bounded (a web form is not a benchmark)
local FIELDS = {
  model = {"string"},
  prompt = {"string", min_len = 1},
  negative = {"string"},
  width = {"integer", 16, 4096},
  height = {"integer", 16, 4096},
  frames = {"integer", 1, 1025},
  fps = {"integer", 1, 120},
  steps = {"integer", 1, 500},
  sampler = {"string"},
  schedule = {"string"},
  shift = {"number", 0, 100},
  cfg = {"number", 0, 100},
  seed = {"integer", 0, 2 ^ 53},
  cache = {"string"},
  cache_threshold = {"number", 0, 10},
}
M.FIELDS = {}
for k in pairs(FIELDS) do M.FIELDS[#M.FIELDS + 1] = k end
table.sort(M.FIELDS)

-- Levenshtein distance, for "did you mean"
local function distance(a, b)
  if #a > 64 or #b > 64 then return math.huge end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- " (did you mean 'x'?)" when a known name is close, else ""
function M.nearest(word, known)
  local best, hint = 3, ""
  for _, k in ipairs(known) do
    -- the distance is at least the difference in length: most names need no table
    local d = math.abs(#word - #k) < best and distance(word:lower(), k:lower()) or best
    if d < best then best, hint = d, (" (did you mean '%s'?)"):format(k) end
  end
  return hint
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(#v > 40 and v:sub(1, 40) .. "..." or v) end
  if type(v) == "table" then return "a list or object" end
  return tostring(v)
end

local function one_of(field, v, known)
  for _, k in ipairs(known) do
    if v == k then return true end
  end
  return nil, ("'%s' is %s, not one of: %s%s"):format(field, show(v), table.concat(known, ", "), M.nearest(v, known))
end

local function check_field(k, v, rule, ctx)
  local kind, lo, hi = rule[1], rule[2], rule[3]
  if kind == "string" then
    if type(v) ~= "string" then return nil, ("'%s' must be a text, got %s"):format(k, show(v)) end
    if #v > M.MAX_TEXT then return nil, ("'%s' is longer than %d bytes"):format(k, M.MAX_TEXT) end
    if rule.min_len and not v:find("%S") then return nil, ("'%s' must not be empty"):format(k) end
    if k == "model" then return one_of(k, v, ctx.models or {}) end
    if k == "sampler" then return one_of(k, v, ctx.samplers or {}) end
    if k == "schedule" then return one_of(k, v, ctx.schedules or {}) end
    if k == "cache" then return one_of(k, v, ctx.caches or {}) end
    return true
  end
  if type(v) ~= "number" or v ~= v then return nil, ("'%s' must be a number, got %s"):format(k, show(v)) end
  if kind == "integer" and math.tointeger(v) == nil then
    return nil, ("'%s' must be a whole number, got %s"):format(k, show(v))
  end
  if v < lo or v > hi then return nil, ("'%s' must be in %s..%s, got %s"):format(k, lo, hi, show(v)) end
  return true
end

-- The settings for zoe.pipeline.text2video, or nil and what is wrong (the first problem).
function M.check(t, ctx)
  ctx = ctx or {}
  if type(t) ~= "table" then return nil, "a recipe is a JSON object of settings" end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then return nil, "a recipe is a JSON object of settings, not a list" end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local spec = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    local rule = FIELDS[k]
    if not rule then
      return nil, ("unknown field '%s'%s; allowed: %s"):format(show(k):sub(2, -2), M.nearest(k, M.FIELDS),
        table.concat(M.FIELDS, ", "))
    end
    if v ~= ctx.null then
      local ok, why = check_field(k, v, rule, ctx)
      if not ok then return nil, why end
      spec[k] = rule[1] == "integer" and math.tointeger(v) or v
    end
  end
  if spec.prompt == nil then return nil, "'prompt' is required" end
  if spec.cache == "none" then spec.cache = nil end
  if spec.cache_threshold and not spec.cache then return nil, "'cache_threshold' needs a 'cache'" end
  return spec
end

-- A name for an output folder from a storyboard title: lowercase letters, digits and '-'.
function M.slug(title)
  local s = tostring(title or ""):lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
  s = s:sub(1, 40):gsub("%-+$", "")
  return s ~= "" and s or "storyboard"
end

return M
