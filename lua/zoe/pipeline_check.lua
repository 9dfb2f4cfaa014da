-- Checks of a pipeline run's settings, made before anything is computed: every problem
-- found is listed in one error, without a position (a settings error is the recipe's, not
-- a line of the runtime's), so `zoe` prints it as one line.
--
--   check.given(spec, mode)              what can be checked without the model
--   check.resolved(s, spec, model, mode) the settings with the model's defaults, the output,
--                                        and the memory the run needs (model:memory_estimate)
local zoe = require "zoe"

local M = {}

-- More steps than a schedule has distinct noise levels (most models train on 1000) change
-- nothing; 1e9 of them only fill memory with sigmas.
M.MAX_STEPS = 1000

local IMAGE_EXT = {png = true, jpg = true, jpeg = true, webp = true}
local VIDEO_EXT = {mp4 = true, mov = true, m4v = true, mkv = true, webm = true, gif = true}

local function finite(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end
local function integer(v) return finite(v) and v % 1 == 0 end
local function show(v)
  if type(v) == "number" and v ~= v then return "nan" end
  if type(v) == "number" then return ("%.14g"):format(v) end
  if type(v) == "string" then return ("'%s'"):format(v) end
  return tostring(v)
end

local function fail(mode, problems)
  if #problems > 0 then error(("%s: %s"):format(mode, table.concat(problems, "; ")), 0) end
end

-- problems of the settings as given (nil ones take the model's defaults later)
function M.given(spec, mode)
  local p = {}
  local function want(ok, key, what)
    if spec[key] ~= nil and not ok(spec[key]) then p[#p + 1] = ("%s must be %s, got %s"):format(key, what, show(spec[key])) end
  end
  local pr = spec.prompt
  local function utf8_ok(what, text)
    local ok, bad = utf8.len(text)
    if not ok then p[#p + 1] = ("%s is not valid UTF-8 (at byte %d)"):format(what, bad) end
  end
  if type(pr) == "string" then utf8_ok("the prompt", pr) end
  if type(spec.negative) == "string" then utf8_ok("the negative prompt", spec.negative) end
  if type(pr) == "table" then
    for i, e in ipairs(pr) do
      if type(e) == "table" and type(e.text) == "string" then utf8_ok(("prompt %d"):format(i), e.text) end
    end
    for i, e in ipairs(pr) do
      if type(e) ~= "table" or type(e.text) ~= "string" then
        p[#p + 1] = ("prompt %d must be {text =, from =, to =}"):format(i)
      end
    end
    if #pr == 0 then p[#p + 1] = "prompt travel needs at least one {text =, from =, to =}" end
  elseif type(pr) ~= "string" then
    p[#p + 1] = ("prompt must be a text or a list of {text =, from =, to =} (prompt travel), got %s"):format(show(pr))
  end
  want(function(v) return type(v) == "string" end, "negative", "a text")
  want(function(v) return integer(v) and v > 0 end, "width", "a positive integer")
  want(function(v) return integer(v) and v > 0 end, "height", "a positive integer")
  want(function(v) return integer(v) and v > 0 end, "frames", "a positive integer")
  want(function(v) return finite(v) and v > 0 and v <= 1000 end, "fps", "a number of frames per second above 0 (at most 1000)")
  want(function(v) return integer(v) and v >= 1 and v <= M.MAX_STEPS end, "steps",
    ("an integer from 1 to %d"):format(M.MAX_STEPS))
  want(function(v) return finite(v) and v > 0 end, "shift", "a number above 0")
  want(function(v) return finite(v) or type(v) == "function" end, "cfg", "a number (not nan or inf) or fn(step, sigma, timestep)")
  want(function(v) return finite(v) and v >= 0 and v <= 1 end, "cfg_rescale", "a number from 0 to 1")
  want(function(v) return integer(v) and v >= 0 and v < 2 ^ 53 end, "seed", "an integer from 0 to 2^53")
  want(function(v) return finite(v) and v >= 0 end, "eta", "a number of 0 or more")
  want(function(v) return finite(v) and v >= 0 end, "s_noise", "a number of 0 or more")
  want(function(v) return type(v) == "boolean" end, "dynamic_cfg", "true or false")
  want(function(v) return type(v) == "boolean" end, "release_text_encoder", "true or false")
  want(function(v) return type(v) == "table" end, "vars", "a table")
  want(function(v) return type(v) == "table" end, "metadata", "a table")
  want(function(v) return type(v) == "function" end, "on_step", "a function")
  want(function(v) return integer(v) and v >= 0 and v <= 63 end, "crf", "an integer from 0 to 63")
  want(function(v) return type(v) == "string" end, "preset", "a name (like 'medium')")
  want(function(v) return type(v) == "string" end, "out", "a file path")
  if type(spec.out) == "string" then
    local bad = M.output_path(spec.out)
    if bad then p[#p + 1] = bad end
  end
  if spec.sampler ~= nil then
    local ok, err = pcall(zoe.sampler.get, spec.sampler)
    if not ok then p[#p + 1] = tostring(err):gsub("^.-:%d+: ", "") end
  end
  local sch = spec.schedule
  if type(sch) == "string" then
    local known = false
    for _, n in ipairs(zoe.sched.names) do known = known or n == sch end
    if not known then p[#p + 1] = ("unknown schedule '%s' (%s, or a list of sigmas, or a function)"):format(sch, table.concat(zoe.sched.names, ", ")) end
  elseif sch ~= nil and type(sch) ~= "table" and type(sch) ~= "function" then
    p[#p + 1] = ("schedule must be a name, a list of sigmas or a function, got %s"):format(show(sch))
  end
  if mode == "image2video" and spec.image == nil then p[#p + 1] = "image2video needs image = (a [3, H, W] tensor or a path)" end
  if mode == "extend" and spec.video == nil then p[#p + 1] = "extend needs video = (a [3, T, H, W] tensor or a path)" end
  for _, k in ipairs {"image", "video"} do
    local v = spec[k]
    if type(v) == "string" then
      local f = io.open(v, "rb")
      if f then f:close() else p[#p + 1] = ("%s: cannot read '%s'"):format(k, v) end
    elseif v ~= nil and not zoe.tensor.is_tensor(v) then
      p[#p + 1] = ("%s must be a tensor or a file path, got %s"):format(k, show(v))
    end
  end
  fail(mode, p)
end

local function split(out)
  local dir, name = out:match("^(.*)/([^/]*)$")
  if not dir then dir, name = ".", out end
  if dir == "" then dir = "/" end
  local ext = name:match("%.([^.]+)$")
  return dir, name, ext and ext:lower()
end

-- problems of an output path: its extension, and a folder that exists and takes a file
-- (tried: root passes every permission check, and /proc refuses files all the same)
function M.output_path(out)
  local dir, _, ext = split(out)
  if not ext then
    return ("out '%s' has no extension: give .mp4, .mov, .mkv, .webm, .gif, or .png/.jpg/.webp for stills"):format(out)
  end
  if not VIDEO_EXT[ext] and not IMAGE_EXT[ext] then
    return ("out '%s': unknown extension '.%s' (mp4, mov, mkv, webm, gif, png, jpg, webp)"):format(out, ext)
  end
  local st = zoe.uv.fs_stat(dir)
  if not st then return ("out '%s': the folder '%s' does not exist"):format(out, dir) end
  if st.type ~= "directory" then return ("out '%s': '%s' is not a folder"):format(out, dir) end
  local probe = ("%s/.zoe-check-%d-%d.tmp"):format(dir, zoe.uv.os_getpid(), math.random(1, 1e9))
  local f, err = io.open(probe, "wb")
  if not f then return ("out '%s': cannot write in the folder '%s' (%s)"):format(out, dir, tostring(err):gsub("^.-: ", "")) end
  f:close()
  os.remove(probe)
end

-- the same for a clip of 'frames' frames: an image holds one
function M.output(out, frames)
  local dir, name, ext = split(out)
  if IMAGE_EXT[ext] and frames > 1 and not name:find("%%0?%d*d") then
    return ("out '%s': a .%s holds one frame and this run makes %d; write a pattern like '%s/frame%%04d.%s', or a video (.mp4, .webm, .gif)")
      :format(out, ext, frames, dir, ext)
  end
end

-- bytes of memory this machine can give a run: what is available plus what we hold
function M.available()
  local env = tonumber(os.getenv("ZOE_MEMORY_LIMIT_MB") or "")
  if env then return env * 2 ^ 20 end
  local avail, rss
  for line in io.lines("/proc/meminfo") do
    avail = avail or tonumber(line:match("^MemAvailable:%s+(%d+)"))
  end
  for line in io.lines("/proc/self/status") do
    rss = rss or tonumber(line:match("^VmRSS:%s+(%d+)"))
  end
  return avail and (avail + (rss or 0)) * 1024 or math.huge
end

local function gb(b) return ("%.1f GB"):format(b / 1e9) end

-- the settings with the model's defaults (s), the output, and whether the run fits
function M.resolved(s, spec, model, mode)
  local p = {}
  local function want(ok, key, what)
    if not ok(s[key]) then p[#p + 1] = ("%s must be %s, got %s"):format(key, what, show(s[key])) end
  end
  want(function(v) return integer(v) and v >= 1 and v <= M.MAX_STEPS end, "steps", ("an integer from 1 to %d"):format(M.MAX_STEPS))
  want(function(v) return finite(v) and v > 0 and v <= 1000 end, "fps", "a number of frames per second above 0 (at most 1000)")
  want(function(v) return finite(v) or type(v) == "function" end, "cfg", "a number (not nan or inf) or fn(step, sigma, timestep)")
  local ok, why = pcall(model.latent_shape, model, s.frames, s.height, s.width)
  if not ok then p[#p + 1] = tostring(why):gsub("^.-:%d+: ", "") end
  if mode == "extend" then
    local good, because = model:frames_ok(s.context_frames or 1)
    if not good then p[#p + 1] = ("context_frames %s, got %s"):format(because, show(s.context_frames)) end
  end
  if (mode == "image2video" or mode == "extend") and not model.supports_i2v then
    p[#p + 1] = ("%s does not take an image (%s needs a model with image conditioning)"):format(model.name, mode)
  end
  if spec.out then
    local bad = M.output(spec.out, s.frames)
    if bad then p[#p + 1] = bad end
  end
  fail(mode, p)
  if model.memory_estimate then
    local est = model:memory_estimate(s)
    local have = M.available()
    if est.bytes > have then
      fail(mode, {("this run needs about %s of memory (%s; denoise %s, decode %s), more than the %s this machine has available; make it smaller or shorter (ZOE_MEMORY_LIMIT_MB sets the limit)")
        :format(gb(est.bytes), est.what, gb(est.parts.denoise), gb(est.parts.decode), gb(have))})
    end
  end
end

-- A prompt longer than the model reads is cut: say by how much (model:count_tokens).
function M.prompt_length(mode, model, text, what)
  if not (model.count_tokens and model.text_len and zoe.note) then return end
  local n = model:count_tokens(text)
  if n > model.text_len then
    zoe.note(("%s: %s is %d tokens and %s reads %d: the last %d tokens are dropped")
      :format(mode, what or "the prompt", n, model.name, model.text_len, n - model.text_len))
  end
end

-- A model whose weights hold NaN or Inf predicts them at once: stop at the first step
-- rather than render a video of noise.
function M.finite(mode, model, x0)
  local sum = x0:abs():sum():item()
  if sum ~= sum or sum == math.huge then
    error(("%s: the first step's prediction holds NaN or Inf values: %s's weights are likely damaged (NaN in a file, or an overflow in half precision); nothing was written")
      :format(mode, model.name), 0)
  end
end

return M
