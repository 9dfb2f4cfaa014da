-- zoe.pipeline: prompt in, video out.
--
--   local frames, record = zoe.pipeline.text2video{model = "zoe-tiny", prompt = "...",
--     negative =, width =, height =, frames =, fps =, steps =, sampler =, schedule =,
--     shift =, cfg =, dynamic_cfg =, cfg_rescale =, seed =, on_step = fn(state), out = "out/a.mp4",
--     vars = {...}, release_text_encoder = false, vae_tile = {h, w} | false,
--     cache = "teacache" | zoe.cache.NAME{...} | a policy table, cache_threshold =,
--     on_preview = fn(frames, state), preview_every = N, preview = path | false}
--   zoe.pipeline.image2video{..., image = [3, H, W] tensor or a path}
--   zoe.pipeline.extend{..., video = [3, T, H, W] tensor or a path, context_frames = 1}
--
-- frames: [3, T, H, W] in [-1, 1]. record: every setting, the seed, the model and its
-- weights hash, versions, timings. With out =, the video is written as it is decoded,
-- record beside it as JSON, and the recipe (the record without timings) in the file's
-- metadata, which is what zoe.replay(path) makes the same video again from. dynamic_cfg = true
-- turns cfg into CogVideoX's schedule of scales (zoe.guidance.dynamic(cfg, steps)). vae_tile:
-- the decode's spatial tiles in latent pixels (false: none); by default the model picks them
-- from the machine's memory (model:decode_tile), and the recipe keeps what was used.
-- cache: a step cache (lua/zoe/cache/): the record holds the policy, its settings and the
-- evaluations it skipped, and replay lays that pattern again. Previews (lua/zoe/preview.lua):
-- every preview_every steps (and at the last) the model's latent -> RGB projection of the x0
-- estimate goes to on_preview(frames [3, F, h, w], state), to the job's "preview" listeners and,
-- with out = "out/NAME.mp4", to out/NAME.preview.png (or the path given as preview).
-- Settings the model does not fix default to the model's own (model.defaults). Everything
-- model-specific (frame counts, latents, conditioning) is asked of the model (the Model
-- contract, lua/zoe/family/README.md).
local zoe = require "zoe"
local prompt = require "zoe.prompt"
local guidance = require "zoe.guidance"
local cache = require "zoe.cache"
local preview = require "zoe.preview"
local check = require "zoe.pipeline_check"
local record = require "zoe.record"
local estimate = require "zoe.estimate"
local T = zoe.tensor

local pipeline = {}

local KNOWN = {
  "model", "prompt", "negative", "width", "height", "frames", "fps", "steps", "sampler", "schedule",
  "shift", "cfg", "dynamic_cfg", "cfg_rescale", "seed", "on_step", "out", "vars", "release_text_encoder", "image",
  "video", "context_frames", "eta", "s_noise", "order", "corrector", "metadata", "crf", "preset", "vae_tile",
  "cache", "cache_threshold", "on_preview", "preview_every", "preview", "lora",
}

local function check_known(spec, mode)
  local ok = {}
  for _, k in ipairs(KNOWN) do ok[k] = true end
  for k in pairs(spec) do
    if not ok[k] then
      local all = {table.unpack(KNOWN)}
      table.sort(all)
      error(("%s: unknown setting '%s' (%s)"):format(mode, tostring(k), table.concat(all, ", ")), 0)
    end
  end
end

local function clock() return os.clock() end
local function now()
  local uv = zoe.uv
  return uv and uv.hrtime() / 1e9 or os.time()
end

local function progress(t)
  if zoe.progress then zoe.progress(t) end
end

local function read_video_or_image(v, what)
  if type(v) == "string" then
    if what == "image" then return zoe.image.read(v) end
    return zoe.video.read(v)
  end
  if not T.is_tensor(v) then error(("%s must be a tensor or a file path"):format(what), 0) end
  return v
end

-- The resolved settings of a run: what was asked, else the model's defaults.
local function settings(spec, model, mode)
  local d = model.defaults
  local s = {
    mode = mode,
    -- what replay loads: the name or folder asked for (a model object: its name when the name
    -- finds it, else its folder); replay falls back on model_name and checks the weights' hash
    model = record.model_ref(spec.model, model),
    model_name = model.name,
    prompt = spec.prompt,
    negative = spec.negative == nil and d.negative or spec.negative,
    width = spec.width or d.width, height = spec.height or d.height,
    frames = spec.frames or d.frames, fps = spec.fps or d.fps,
    steps = spec.steps or d.steps, sampler = spec.sampler or d.sampler,
    schedule = spec.schedule or d.schedule, shift = spec.shift or d.shift,
    cfg = spec.cfg or d.cfg, cfg_rescale = spec.cfg_rescale,
    dynamic_cfg = spec.dynamic_cfg == nil and d.dynamic_cfg or spec.dynamic_cfg,
    seed = spec.seed or math.random(0, 2 ^ 31 - 1),
    eta = spec.eta, s_noise = spec.s_noise, order = spec.order, corrector = spec.corrector,
    context_frames = spec.context_frames, vars = spec.vars, vae_tile = spec.vae_tile,
  }
  check.resolved(s, spec, model, mode)
  s.sampler = select(2, zoe.sampler.get(s.sampler)) -- as spelled in the code ("DPM++ 2M" -> dpmpp_2m)
  return s
end

-- Embeddings of the prompt: one for the clip, or one per latent frame (travel).
local function encode_prompt(model, s, vars)
  if type(s.prompt) == "string" then
    s.prompt_expanded = prompt.expand(s.prompt, {vars = vars, seed = s.seed})
    check.prompt_length(s.mode, model, prompt.plain(s.prompt_expanded))
    return prompt.encode(model, s.prompt_expanded)
  end
  local list = {}
  for i, p in ipairs(s.prompt) do
    list[i] = {text = prompt.expand(p.text or "", {vars = vars, seed = s.seed}), from = p.from, to = p.to}
    check.prompt_length(s.mode, model, prompt.plain(list[i].text), ("prompt %d"):format(i))
  end
  s.prompt_expanded = list
  return prompt.travel(model, list, s.frames, model.text_len)
end

-- The recipe that makes the video again: settings only (no timings, no paths), so the
-- same recipe gives the same bytes.
local function recipe_of(s, model)
  local r = {}
  for k, v in pairs(s) do
    if type(v) ~= "function" then r[k] = v end
  end
  r.weights_hash = model:hash()
  r.zoe = zoe.version
  r.lua = _VERSION
  return r
end

local function write_json(path, value)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "wb"))
  f:write(zoe.json.encode(value, {indent = true}), "\n")
  f:close()
  assert(os.rename(tmp, path))
end

local function sidecar(out) return (out:gsub("%.[^./]*$", "")) .. ".json" end

-- conditioning frames for image2video / extend: [3, n, H, W]
local function conditioning(spec, mode, s, model)
  if mode == "image2video" then
    local img = read_video_or_image(spec.image, "image")
    if img:dim() == 3 then img = img:unsqueeze(2) end
    s.image = type(spec.image) == "string" and spec.image or "(tensor)"
    return img
  elseif mode == "extend" then
    local video = read_video_or_image(spec.video, "video")
    local n = s.context_frames or 1
    local ok, why = model:frames_ok(n)
    if not ok then error(("extend: context_frames %s, got %s"):format(why, tostring(n)), 0) end
    if video:size(2) < n then error(("extend: the video has %d frames, fewer than context_frames %d"):format(video:size(2), n), 0) end
    s.video = type(spec.video) == "string" and spec.video or "(tensor)"
    return video:narrow(2, video:size(2) - n + 1, n), video
  end
end

-- The preview of each chosen step: fn(state), or nil when nobody would see it. The x0
-- estimate of the last step is the final latent itself (the step lands on sigma 0).
local function previews(spec, s, model)
  if spec.on_preview ~= nil and type(spec.on_preview) ~= "function" then
    error("on_preview must be a function(frames, state)", 4)
  end
  local every = spec.preview_every or math.max(1, s.steps // 10)
  if type(every) ~= "number" or every < 1 or every % 1 ~= 0 then
    error(("preview_every must be a positive integer, got %s"):format(tostring(every)), 4)
  end
  local path = spec.preview
  if path == nil then path = preview.path_for(spec.out) end
  if path ~= false and path ~= nil and type(path) ~= "string" then
    error("preview must be a file path (.png) or false", 4)
  end
  local on = spec.on_preview
  if not model.preview or not (on or path or (zoe.current and zoe.current())) then return nil end
  local written -- the sheet is a file: at most one a second (a zoe-tiny step takes 30 ms), and the last
  return function(state)
    if state.step % every ~= 0 and state.step ~= state.steps then return end
    local z = state.sigma_next == 0 and state.x or state.denoised
    local frames = model:preview(z)
    if not frames then return end
    if on then on(frames, state) end
    local t = now()
    if path and (state.step == state.steps or not written or t - written >= 1) then
      preview.sheet(frames, path, ("step %d/%d"):format(state.step, state.steps))
      written = t
    end
    preview.emit {frames = frames, step = state.step, steps = state.steps, sigma = state.sigma,
                  path = path or nil, output = spec.out}
  end
end

local function run(mode, spec)
  spec = spec or {}
  if type(spec) ~= "table" then error(mode .. ": give a table of settings", 0) end
  check_known(spec, mode)
  check.given(spec, mode)
  local t_start = now()
  local timings = {}
  local model = zoe.models.load(spec.model or "zoe-tiny")
  if spec.lora and #spec.lora > 0 then -- {{path, strength}, ...}: a variant of the model with them
    if not model.with_loras then error(("%s: this model does not take LoRAs"):format(mode), 3) end
    model = model:with_loras(spec.lora)
  end
  -- a bf16 checkpoint's text encoder and DiT run in bf16 throughout (the VAE stays
  -- as its weights are); put back however the run ends
  local precision_before
  local restore <close> = setmetatable({}, {__close = function()
    if precision_before then zoe.precision(precision_before) end
  end})
  local function model_precision(on)
    if not model.precision then return end
    if on then
      local _, before = zoe.precision(model.precision)
      precision_before = before
    elseif precision_before then
      zoe.precision(precision_before)
      precision_before = nil
    end
  end
  local s = settings(spec, model, mode)
  local ok, policy = pcall(cache.policy, spec.cache, spec.cache_threshold)
  if not ok then error(("%s: %s"):format(mode, tostring(policy):gsub("^[^:]*:%d+: ", "")), 3) end
  -- each LoRA's path, content hash and strength: replay loads the same files
  if spec.lora and #spec.lora > 0 then s.lora = require("zoe.lora").record(spec.lora) end
  local shape = model:latent_shape(s.frames, s.height, s.width)
  if model.work then -- a long run says first how long it will take here
    local e = estimate.time(model:work(s))
    if e.seconds >= pipeline.ESTIMATE_NOTE_S and zoe.note then zoe.note(pipeline.describe_estimate(mode, s, e)) end
  end
  -- the VAE's tiles (the image's encode and the decode) go into the recipe: a replay on a
  -- machine with other memory tiles the same
  if model.decode_tile then s.vae_tile = model:decode_tile(shape, spec.vae_tile) end
  local cond_frames, source = conditioning(spec, mode, s, model)
  local extra, given
  if cond_frames then
    local h, w = cond_frames:size(3), cond_frames:size(4)
    if h ~= s.height or w ~= s.width then
      error(("%s: the conditioning frames are %dx%d and the video %dx%d: give width = %d, height = %d, or frames of the video's size")
        :format(mode, w, h, s.width, s.height, w, h), 0)
    end
  end

  -- text
  model_precision(true)
  local t0 = now()
  progress {stage = "encode text"}
  local cond = encode_prompt(model, s, spec.vars)
  local uncond = s.cfg ~= 1 and prompt.encode(model, s.negative) or nil
  if cond_frames then
    progress {stage = "encode image"}
    -- the denoiser's extra channels, and the latent frames the given frames alone determine
    extra, given = model:condition(cond_frames, shape, {tile = s.vae_tile})
  end
  local kv_cond, kv_uncond = model:text_condition(cond, uncond)
  if spec.release_text_encoder then model:release_text_encoder() end
  timings.encode = now() - t0

  -- denoise
  t0 = now()
  local noise = T.randn(shape, {seed = s.seed})
  local user_step = spec.on_step
  local runner = policy and cache.runner(policy, {steps = s.steps, model = model,
                                                  calibration = cache.calibration.load(model)})
  local model_batch = model:denoiser(extra, {fps = s.fps, around_blocks = runner and runner.around})
  if runner then model_batch = runner:wrap(model_batch, model.family) end
  local show = previews(spec, s, model)
  local sample = {
    model_batch = model_batch, kind = model.kind, sampler = s.sampler,
    schedule = s.schedule, steps = s.steps, shift = s.shift, integer_timesteps = model.defaults.integer_timesteps,
    noise = noise, cond = kv_cond, uncond = kv_uncond, cfg = s.cfg, cfg_rescale = s.cfg_rescale,
    seed = s.seed, eta = s.eta, s_noise = s.s_noise, order = s.order, corrector = s.corrector,
    on_step = function(state)
      if state.step == 1 then check.finite(mode, model, state.denoised) end
      progress {stage = "denoise", step = state.step, steps = state.steps}
      if show then show(state) end
      if user_step then user_step(state) end
    end,
  }

  -- the model's own schedule settings (LTX-Video's dynamic shift) when it keeps its schedule
  if s.schedule == model.defaults.schedule then
    for k, v in pairs(model.defaults.schedule_opts or {}) do sample[k] = v end
  end
  if s.dynamic_cfg and type(s.cfg) == "number" then sample.cfg = guidance.dynamic(s.cfg, s.steps) end
  -- the model's noise table, whatever the schedule (CogVideoX: its scheduler's SNR shift, zero SNR)
  for k, v in pairs(model.sample_settings or {}) do sample[k] = v end
  -- what actually runs (the scales of a cfg function, settings on_step changes) is recorded
  local ran = record.tracker(sample)
  local on_step = sample.on_step
  sample.on_step = function(state)
    on_step(state)
    ran.after_step(state)
  end
  local x, walked = zoe.sample(sample)
  ran.finish(s, walked)
  timings.denoise = now() - t0
  if runner then s.cache = runner:record() end
  model_precision(false)
  -- those latent frames are the given frames' encoding, not the model's redraw of it: a
  -- continued shot starts on the frame it continues (as closely as the VAE gives it back)
  if given then x:narrow(2, 1, given:size(2)):copy_(given) end
  model:release_denoiser()

  -- decode (streamed into the writer when there is an output)
  t0 = now()
  progress {stage = "decode"}
  local recipe = recipe_of(s, model)
  local meta = {zoe_recipe = zoe.json.encode(recipe)}
  for k, v in pairs(spec.metadata or {}) do meta[k] = tostring(v) end
  -- a to-be-closed writer: an error or a cancel while decoding removes its temporary file
  local writer <close> = spec.out and
    zoe.video.writer(spec.out, {fps = s.fps, metadata = meta, crf = spec.crf, preset = spec.preset}) or nil
  local frames = model:decode(x, {on_frames = writer and function(chunk) writer:write(chunk) end, seed = s.seed,
                                  frames = s.frames, tile = s.vae_tile})
  timings.decode = now() - t0
  if writer then
    t0 = now()
    progress {stage = "write"}
    writer:close()
    timings.write = now() - t0
  end
  if mode == "extend" then -- the new clip starts on the context frames; keep the source's copy
    local n = cond_frames:size(2)
    frames = T.cat({source, frames:narrow(2, n + 1, frames:size(2) - n)}, 2)
  end
  timings.total = now() - t_start
  if model.learn_stages then model:learn_stages(s, timings) end
  estimate.save() -- the op rates this run measured serve the next estimates
  local record = {recipe = recipe, timings = timings, output = spec.out, frames = frames:size(2),
                  cpu_seconds = clock(), evaluations = runner and runner:stats() or nil}
  if spec.out then write_json(sidecar(spec.out), record) end
  progress {stage = "done"}
  return frames, record
end

-- Runs predicted to take this long or more print their estimate first.
pipeline.ESTIMATE_NOTE_S = 60

function pipeline.describe_estimate(mode, s, e)
  local parts = {}
  for _, st in ipairs {"text", "denoise", "decode"} do
    if e.stages[st] then
      parts[#parts + 1] = st == "denoise" and ("denoise %d steps %s"):format(s.steps, estimate.format(e.stages[st]))
        or ("%s %s"):format(st, estimate.format(e.stages[st]))
    end
  end
  return ("%s: about %s on this machine (%s)%s; Ctrl-C cancels"):format(mode, estimate.format(e.seconds),
    table.concat(parts, ", "), #e.rough > 0 and ", rough: not timed here yet" or "")
end

-- What a run would cost, without running it: {seconds =, stages =, rough =, bytes =,
-- memory = {denoise =, decode =}} (a field is nil when the model cannot say). Checks the
-- settings as a run would.
function pipeline.estimate(spec, mode)
  mode = mode or "text2video"
  spec = spec or {}
  check_known(spec, mode)
  check.given(spec, mode)
  local model = zoe.models.load(spec.model or "zoe-tiny")
  local s = settings(spec, model, mode)
  local out = {}
  if model.work then out = estimate.time(model:work(s)) end
  if model.memory_estimate then
    local m = model:memory_estimate(s)
    out.bytes, out.memory = m.bytes, m.parts
  end
  return out
end

function pipeline.text2video(spec) return run("text2video", spec) end
function pipeline.image2video(spec) return run("image2video", spec) end
function pipeline.extend(spec) return run("extend", spec) end

-- The recipe of a video zoe made: from its metadata, or from the JSON beside it.
function pipeline.recipe(path)
  local ok, info = pcall(zoe.video.info, path)
  if ok and info.metadata and info.metadata.zoe_recipe then return zoe.json.decode(info.metadata.zoe_recipe) end
  local f = io.open(sidecar(path), "rb")
  if f then
    local rec = zoe.json.decode(f:read("a"))
    f:close()
    if rec.recipe then return rec.recipe end
  end
  error(("replay: %s carries no zoe recipe (neither in its metadata nor in %s)"):format(path, sidecar(path)), 0)
end

-- Make a video again from its recipe and compare: zoe.replay("out.mp4", {out = "again.mp4"})
-- returns frames, record and whether the new file's bytes are the old one's (record.replay
-- says so too, and a note tells it). Without out = the new file is a temporary one, removed.
function pipeline.replay(path, opts)
  local r = pipeline.recipe(path)
  opts = opts or {}
  local spec = record.spec_of(r, {"vars", "prompt", "negative", "width", "height", "frames", "fps", "steps", "sampler",
    "schedule", "shift", "cfg", "dynamic_cfg", "cfg_rescale", "seed", "eta", "s_noise", "order", "corrector",
    "context_frames", "vae_tile"})
  spec.model = opts.model or record.model_of(r)
  local ext = path:match("%.([^./]+)$") or "mp4"
  local out = opts.out or ("%s.replay.%s"):format(os.tmpname(), ext)
  spec.out = out
  -- the recorded skips again, whatever policy (a user's own included) made them
  if r.cache then spec.cache = cache.pattern(r.cache) end
  if r.lora then
    spec.lora = {}
    for i, l in ipairs(r.lora) do
      local h = require("zoe.models").hash_file(l.path)
      if h ~= l.hash then
        error(("replay: LoRA '%s' has content %s, the video was made with %s"):format(l.path, h, l.hash), 2)
      end
      spec.lora[i] = {l.path, l.strength}
    end
  end
  if r.mode == "image2video" then spec.image = opts.image or r.image end
  if r.mode == "extend" then spec.video = opts.video or r.video end
  local frames, rec = run(r.mode or "text2video", spec)
  local same, why = record.compare(path, out)
  rec.replay = {of = path, equal = same, difference = why}
  if zoe.note then
    zoe.note(same and ("replay: %s is byte for byte %s"):format(opts.out or "the new render", path)
      or ("replay: %s differs from %s: %s"):format(opts.out or "the new render", path, why))
  end
  if not opts.out then
    os.remove(out)
    os.remove(sidecar(out))
  end
  return frames, rec, same
end

return pipeline
