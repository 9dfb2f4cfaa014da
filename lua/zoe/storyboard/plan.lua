-- A storyboard resolved against its model: every shot's settings made concrete (the
-- board's and then the model's defaults fill what a shot leaves out), frame counts the
-- model can make, transitions in frames, and the cache key of each shot.
--
--   plan.resolve(board, model) -> {width, height, fps, shots = {resolved shot, ...}}
--   plan.key(shot, model, board, prev_output_hash) -> hash, fields
local zoe = require "zoe"
local format = require "zoe.storyboard.format"
local prompt = require "zoe.prompt"

local M = {}

-- Bump when what a cached shot holds changes meaning, so old entries are not reused.
M.CACHE_VERSION = 1

local function fail(where, fmt, ...) error(where .. ": " .. fmt:format(...), 0) end

-- The model's complaint without the position and model name error() put in front.
local function complaint(err)
  return (tostring(err):gsub("^[^\n]-:%d+: ", ""):gsub("^[^:]*: ", ""))
end

local function frames_ok(model, frames, height, width)
  return pcall(model.latent_shape, model, frames, height, width)
end

-- The valid frame count nearest to 'target' (a tie goes to the longer one).
local function nearest_frames(model, target, height, width)
  local best
  for c = math.max(1, math.floor(target) - 64), math.ceil(target) + 64 do
    if frames_ok(model, c, height, width) and (not best or math.abs(c - target) <= math.abs(best - target)) then
      best = c
    end
  end
  return best
end

-- Style is added after the prompt: with a space, or straight after when it starts with
-- punctuation (style = ", film grain").
function M.join_style(text, style)
  if not style then return text end
  if style:match("^[,.;:!?]") then return text .. style end
  return text .. " " .. style
end

-- A shot with no seed gets one from its prompt (and the board's seed): inserting or
-- moving shots changes no other shot's seed.
local function default_seed(shot, board)
  return (tonumber(zoe.hash(shot.prompt):sub(1, 8), 16) + (board.seed or 0)) % 2147483647
end

function M.resolve(board, model)
  local d = model.defaults
  local width, height = board.width or d.width, board.height or d.height
  local fps = board.fps or d.fps
  local ok, err = frames_ok(model, 1, height, width)
  if not ok then fail("storyboard", "field 'size': %s (model %s)", complaint(err), model.name) end
  local out = {width = width, height = height, fps = fps, shots = {}}
  for i, s in ipairs(board.shots) do
    local where = ("shot %d"):format(i)
    local frames = s.frames
    if s.seconds then
      frames = nearest_frames(model, s.seconds * fps, height, width)
      if not frames then fail(where, "field 'seconds': no frame count of %s near %g s", model.name, s.seconds) end
    end
    frames = frames or d.frames
    ok, err = frames_ok(model, frames, height, width)
    if not ok then fail(where, "field 'frames': %s (model %s)", complaint(err), model.name) end
    if s.continuity == "continue" and not model.supports_i2v then
      fail(where, "field 'continuity': model %s cannot do image-to-video, so a shot cannot continue the one before (use \"cut\")",
        model.name)
    end
    local text = M.join_style(s.prompt, board.style)
    local used = format.characters_used({text}, board.characters)
    local vars = {}
    for _, name in ipairs(used) do vars[name] = board.characters[name] end
    out.shots[i] = {
      index = i, name = ("%02d"):format(i),
      prompt = text, vars = next(vars) and vars or nil, characters = used,
      negative = s.negative or board.negative or d.negative,
      width = width, height = height, fps = fps, frames = frames,
      steps = s.steps or board.steps or d.steps, sampler = s.sampler or board.sampler or d.sampler,
      schedule = s.schedule or board.schedule or d.schedule, shift = s.shift or board.shift or d.shift,
      cfg = s.cfg or board.cfg or d.cfg,
      lora = s.lora or board.lora,
      seed = s.seed or default_seed(s, board),
      continuity = s.continuity,
      fade_in = 0, fade_out = 0,
    }
    -- the expanded prompt (wildcards picked by the seed), as the pipeline will make it; the
    -- caption is the shot's own part of it (its wildcards come first, so they pick the same)
    local r = out.shots[i]
    local eok, expanded = pcall(prompt.expand, text, {vars = vars, seed = r.seed})
    if not eok then fail(where, "field 'prompt': %s", complaint(expanded)) end
    r.prompt_expanded = expanded
    r.caption = s.caption or prompt.expand(s.prompt, {vars = vars, seed = r.seed})
  end
  -- transitions: a crossfade overlaps the end of the shot before with the start of this one
  for i, s in ipairs(board.shots) do
    local r, prev = out.shots[i], out.shots[i - 1]
    if s.continuity == "continue" then r.skip_first = true end
    if type(s.transition) == "table" then
      local t = s.transition
      local n = t.frames or (t.seconds and math.max(1, math.floor(t.seconds * fps + 0.5))) or math.max(1, math.floor(fps / 2 + 0.5))
      local left = prev.frames - prev.fade_in - (prev.skip_first and 1 or 0)
      if n > left then
        fail(("shot %d"):format(i), "field 'transition': a crossfade of %d frames is longer than what shot %d leaves (%d frames)",
          n, i - 1, left)
      end
      if n > r.frames then
        fail(("shot %d"):format(i), "field 'transition': a crossfade of %d frames is longer than the shot (%d frames)", n, r.frames)
      end
      r.fade_in, prev.fade_out = n, n
      r.transition = {type = "crossfade", frames = n}
    else
      r.transition = "cut"
    end
  end
  return out
end

-- What determines a shot's video, and its hash: its settings, the style and characters
-- (inside prompt and vars), the model's weights, the runtime, and for a continued shot
-- the video it starts from.
function M.key(shot, model, board, prev_hash)
  local fields = {
    v = M.CACHE_VERSION, zoe = zoe.version,
    mode = shot.continuity == "continue" and "image2video" or "text2video",
    model = board.model, weights = model:hash(),
    prompt = shot.prompt, vars = shot.vars, negative = shot.negative,
    width = shot.width, height = shot.height, fps = shot.fps, frames = shot.frames,
    steps = shot.steps, sampler = shot.sampler, schedule = shot.schedule, shift = shot.shift, cfg = shot.cfg,
    seed = shot.seed, from = prev_hash,
    lora = shot.lora and #shot.lora > 0 and require("zoe.lora").record(shot.lora) or nil, -- paths, hashes, strengths
  }
  return zoe.hash(zoe.json.encode(fields)), fields
end

return M
