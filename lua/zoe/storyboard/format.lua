-- The storyboard format: which fields a board and its shots take, checked strictly.
--
--   format.normalize(t) -> board
--
-- The board is plain data again (it passes normalize unchanged), so a board built in Lua,
-- read from JSON or from a data-only Lua file is the same thing. Errors name the shot and
-- the field: "shot 3: field 'frames' must be > 0, got 0". Checks that need the model
-- (frame counts the model can make, image-to-video) are in storyboard/plan.lua.
local zoe = require "zoe"
local prompt = require "zoe.prompt"

local M = {}

M.BOARD_FIELDS = {"title", "model", "size", "width", "height", "fps", "style", "negative", "characters", "shots",
                  "seed", "sampler", "steps", "cfg", "shift", "schedule", "lora"}
M.SHOT_FIELDS = {"prompt", "frames", "seconds", "seed", "sampler", "steps", "cfg", "shift", "schedule", "negative",
                 "continuity", "transition", "caption", "lora"}
M.TRANSITION_FIELDS = {"type", "frames", "seconds"}
M.TRANSITIONS = {cut = true, crossfade = true}

local function fail(where, fmt, ...) error(where .. ": " .. fmt:format(...), 0) end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function check_known(t, allowed, where)
  local ok = {}
  for _, k in ipairs(allowed) do ok[k] = true end
  local bad = {}
  for k in pairs(t) do
    if not ok[k] then bad[#bad + 1] = tostring(k) end
  end
  if #bad == 0 then return end
  table.sort(bad)
  local sorted = {table.unpack(allowed)}
  table.sort(sorted)
  local hint, best = "", 3
  for _, k in ipairs(sorted) do
    local d = distance(bad[1], k)
    if d < best then hint, best = (" (did you mean '%s'?)"):format(k), d end
  end
  fail(where, "unknown field '%s'%s; allowed: %s", bad[1], hint, table.concat(sorted, ", "))
end

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- JSON null is "not given".
local function strip_nulls(t)
  for k, v in pairs(t) do
    if v == zoe.json.null then t[k] = nil end
  end
  return t
end

local function text(v, where, field, optional)
  if v == nil and optional then return nil end
  if type(v) ~= "string" or v:match("^%s*$") then
    fail(where, "field '%s' must be a non-empty text, got %s", field, show(v))
  end
  return v
end

local function number(v, where, field, opts)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= v then fail(where, "field '%s' must be a number, got %s", field, show(v)) end
  if opts.integer and math.tointeger(v) == nil then
    fail(where, "field '%s' must be a whole number, got %s", field, show(v))
  end
  if opts.positive and v <= 0 then fail(where, "field '%s' must be > 0, got %s", field, show(v)) end
  if opts.min and v < opts.min then fail(where, "field '%s' must be >= %s, got %s", field, opts.min, show(v)) end
  -- 5.0 and 5 are one setting: the same cache key, the same JSON
  return math.tointeger(v) or v
end

-- The "{name}" references of a template (wildcards "{a|b}" are not names), checked
-- against the characters. Returns the names in the order they first appear.
function M.references(template, characters, where, field)
  local names, seen = {}, {}
  local plain = template:gsub("{{", ""):gsub("}}", "")
  for inner in plain:gmatch("{([^{}]*)}") do
    if not inner:find("|", 1, true) then
      local name = inner:match("^%s*([%a_][%w_]*)%s*$")
      if not name then
        fail(where, "field '%s': '{%s}' is neither a character nor a {a|b} choice", field, inner)
      end
      if characters[name] == nil then
        local known = {}
        for n in pairs(characters) do known[#known + 1] = n end
        table.sort(known)
        fail(where, "field '%s': unknown character '{%s}' (%s)", field, name,
          #known > 0 and "characters: " .. table.concat(known, ", ") or "the storyboard defines no characters")
      end
      if not seen[name] then
        seen[name] = true
        names[#names + 1] = name
      end
    end
  end
  return names
end

-- The characters a text uses, following characters that mention others. Sorted.
function M.characters_used(texts, characters)
  local used, list = {}, {}
  local function visit(name)
    if used[name] then return end
    used[name] = true
    list[#list + 1] = name
    for _, n in ipairs(M.references(characters[name], characters, "characters", name)) do visit(n) end
  end
  for _, t in ipairs(texts) do
    for _, n in ipairs(M.references(t, characters, "?", "?")) do visit(n) end
  end
  table.sort(list)
  return list
end

local function check_prompt_syntax(v, where, field)
  local ok, err = pcall(prompt.parse, v)
  if not ok then fail(where, "field '%s': %s", field, tostring(err):gsub("^prompt: ", "")) end
end

local function characters_of(v)
  if v == nil then return {} end
  if type(v) ~= "table" or (next(v) ~= nil and is_list(v)) then
    fail("storyboard", "field 'characters' must map names to descriptions, like {hero = \"a red circle\"}")
  end
  local out = {}
  for name, desc in pairs(strip_nulls(v)) do
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
      fail("storyboard", "field 'characters': '%s' is not a name (letters, digits and _)", tostring(name))
    end
    out[name] = text(desc, "characters", name)
  end
  -- every mention resolves, and no character is defined through itself
  local state = {}
  local function visit(name, path)
    if state[name] == "done" then return end
    if state[name] == "open" then
      fail("characters", "'%s' mentions itself (%s)", name, table.concat(path, " -> "))
    end
    state[name] = "open"
    for _, n in ipairs(M.references(out[name], out, "characters", name)) do
      path[#path + 1] = n
      visit(n, path)
      path[#path] = nil
    end
    state[name] = "done"
  end
  local names = {}
  for name in pairs(out) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    check_prompt_syntax(out[name], "characters", name)
    visit(name, {name})
  end
  return out
end

-- "cut", "crossfade", {"crossfade", frames = 4}, {type = "crossfade", seconds = 0.5}
local function transition_of(v, where, first)
  if v == nil or v == "cut" then return "cut" end
  local t
  if type(v) == "string" then
    t = {type = v}
  elseif type(v) == "table" then
    t = {}
    for k, x in pairs(strip_nulls(v)) do t[k] = x end
    if t[1] ~= nil then
      if t.type ~= nil then fail(where, "field 'transition': give its type once (as [1] or as type =)") end
      t.type, t[1] = t[1], nil
    end
    check_known(t, M.TRANSITION_FIELDS, where .. ": field 'transition'")
  else
    fail(where, "field 'transition' must be \"cut\", \"crossfade\" or {\"crossfade\", frames = n}, got %s", show(v))
  end
  if not M.TRANSITIONS[t.type] then
    fail(where, "field 'transition': unknown transition %s (cut, crossfade)", show(t.type))
  end
  if t.type == "cut" then
    if t.frames or t.seconds then fail(where, "field 'transition': a cut has no length") end
    return "cut"
  end
  if first then fail(where, "field 'transition': the first shot has no shot before it to cross-fade from") end
  t.frames = number(t.frames, where, "transition.frames", {integer = true, positive = true})
  t.seconds = number(t.seconds, where, "transition.seconds", {positive = true})
  if t.frames and t.seconds then fail(where, "field 'transition': give frames or seconds, not both") end
  return t
end

-- lora = {{"file.safetensors", strength}, ...} (a shot's replaces the board's; {} for none)
local function loras(v, where)
  if v == nil then return nil end
  if type(v) ~= "table" then fail(where, "field 'lora' must be a list of {file, strength}, got %s", show(v)) end
  local out = {}
  for i, item in ipairs(v) do
    if type(item) ~= "table" or type(item[1]) ~= "string" or (item[2] ~= nil and type(item[2]) ~= "number") then
      fail(where, "field 'lora': entry %d must be {\"file.safetensors\", strength}, got %s", i, show(item))
    end
    out[i] = {item[1], item[2] or 1.0}
  end
  return out
end

local function shot_of(v, i, board)
  local where = ("shot %d"):format(i)
  if type(v) ~= "table" then fail(where, "must be a table of fields, got %s", show(v)) end
  local s = {}
  for k, x in pairs(strip_nulls(v)) do s[k] = x end
  check_known(s, M.SHOT_FIELDS, where)
  if s.prompt == nil then fail(where, "field 'prompt' is missing") end
  text(s.prompt, where, "prompt")
  check_prompt_syntax(s.prompt, where, "prompt")
  M.references(s.prompt, board.characters, where, "prompt")
  s.frames = number(s.frames, where, "frames", {integer = true, positive = true})
  s.seconds = number(s.seconds, where, "seconds", {positive = true})
  if s.frames and s.seconds then fail(where, "give frames or seconds, not both") end
  s.seed = number(s.seed, where, "seed", {integer = true, min = 0})
  s.steps = number(s.steps, where, "steps", {integer = true, positive = true})
  s.cfg = number(s.cfg, where, "cfg", {min = 0})
  s.shift = number(s.shift, where, "shift", {positive = true})
  text(s.sampler, where, "sampler", true)
  if s.sampler then
    local ok, err = pcall(zoe.sampler.get, s.sampler)
    if not ok then fail(where, "field 'sampler': %s", tostring(err):gsub("^[^\n]-:%d+: ", "")) end
  end
  text(s.schedule, where, "schedule", true)
  if s.negative ~= nil and type(s.negative) ~= "string" then
    fail(where, "field 'negative' must be a text, got %s", show(s.negative))
  end
  text(s.caption, where, "caption", true)
  s.lora = loras(s.lora, where)
  s.continuity = s.continuity == nil and "cut" or s.continuity
  if s.continuity ~= "cut" and s.continuity ~= "continue" then
    fail(where, "field 'continuity' must be \"cut\" or \"continue\", got %s", show(s.continuity))
  end
  if i == 1 and s.continuity == "continue" then
    fail(where, "field 'continuity': the first shot has no shot before it to continue (use \"cut\")")
  end
  s.transition = transition_of(s.transition, where, i == 1)
  if s.continuity == "continue" and s.transition ~= "cut" then
    fail(where, "field 'transition': a continued shot starts on the last frame of the one before; it cannot also cross-fade (use \"cut\")")
  end
  return s
end

function M.normalize(t)
  if type(t) ~= "table" then fail("storyboard", "must be a table of fields, got %s", show(t)) end
  local b = {}
  for k, v in pairs(strip_nulls(t)) do b[k] = v end
  check_known(b, M.BOARD_FIELDS, "storyboard")
  text(b.title, "storyboard", "title", true)
  b.lora = loras(b.lora, "storyboard")
  b.model = b.model == nil and "zoe-tiny" or text(b.model, "storyboard", "model")
  if b.size ~= nil then
    if b.width ~= nil or b.height ~= nil then fail("storyboard", "give size or width and height, not both") end
    if not is_list(b.size) or #b.size ~= 2 then
      fail("storyboard", "field 'size' must be {width, height}, like {64, 64}")
    end
    b.width, b.height, b.size = b.size[1], b.size[2], nil
  end
  b.width = number(b.width, "storyboard", "width", {integer = true, positive = true})
  b.height = number(b.height, "storyboard", "height", {integer = true, positive = true})
  b.fps = number(b.fps, "storyboard", "fps", {positive = true})
  b.seed = number(b.seed, "storyboard", "seed", {integer = true, min = 0})
  b.steps = number(b.steps, "storyboard", "steps", {integer = true, positive = true})
  b.cfg = number(b.cfg, "storyboard", "cfg", {min = 0})
  b.shift = number(b.shift, "storyboard", "shift", {positive = true})
  text(b.sampler, "storyboard", "sampler", true)
  if b.sampler then
    local ok, err = pcall(zoe.sampler.get, b.sampler)
    if not ok then fail("storyboard", "field 'sampler': %s", tostring(err):gsub("^[^\n]-:%d+: ", "")) end
  end
  text(b.schedule, "storyboard", "schedule", true)
  if b.negative ~= nil and type(b.negative) ~= "string" then
    fail("storyboard", "field 'negative' must be a text, got %s", show(b.negative))
  end
  b.characters = characters_of(b.characters)
  text(b.style, "storyboard", "style", true)
  if b.style then
    check_prompt_syntax(b.style, "storyboard", "style")
    M.references(b.style, b.characters, "storyboard", "style")
  end
  if b.shots == nil then fail("storyboard", "field 'shots' is missing") end
  if not is_list(b.shots) or #b.shots == 0 then
    fail("storyboard", "field 'shots' must be a list of one or more shots")
  end
  local shots = {}
  for i, s in ipairs(b.shots) do shots[i] = shot_of(s, i, b) end
  b.shots = shots
  return b
end

return M
