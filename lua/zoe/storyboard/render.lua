-- Rendering a storyboard into a folder:
--   DIR/cache/<key>.mp4 + .json   every shot ever rendered here, by what determines it
--   DIR/shots/01.mp4, 02.mp4 ...   hard links (or copies) of this board's cache entries
--   DIR/shots/01.preview.png ...   each rendered shot's preview, kept up to date while it renders
--   DIR/final.mp4                  the shots assembled with their transitions
--   DIR/contact.png                one captioned row per shot
--   DIR/manifest.json              every shot's key, output hash and record
--
-- Order of work: look up every shot in the cache; encode the prompts of the shots to
-- render (then the text encoder may go); render chains of shots (a cut and the shots that
-- continue from it) as jobs on the loop, a few at a time; assemble. Each step writes under
-- temporary names and renames, so killing the process at any moment loses at most the
-- shot being rendered, and running again finishes the same files.
local zoe = require "zoe"
local prompt = require "zoe.prompt"
local plan = require "zoe.storyboard.plan"
local files = require "zoe.storyboard.files"
local cache_mod = require "zoe.storyboard.cache"
local assemble = require "zoe.storyboard.assemble"

local M = {}

local function progress(t)
  if zoe.progress then zoe.progress(t) end
end

-- Release the text encoder after encoding when the model's weights take more than half
-- of the memory there is (umT5-XXL alone is 11 GB); opts.release_text_encoder forces it.
local function memory_is_tight(model)
  local size = 0
  for _, path in pairs(model.files or {}) do
    local st = files.stat(path)
    size = size + (st and st.size or 0)
  end
  local limit = zoe.uv.get_total_memory()
  local constrained = zoe.uv.get_constrained_memory and zoe.uv.get_constrained_memory() or 0
  if constrained > 0 and constrained < limit then limit = constrained end
  return size > limit / 2
end

-- Temporary files of killed runs ("." names ending in .tmp) in the folder and shots/.
local function clean_temporaries(out)
  for _, dir in ipairs {out, out .. "/shots"} do
    for _, name in ipairs(files.list(dir)) do
      if name:match("^%..*%.tmp$") then files.remove(dir .. "/" .. name) end
    end
  end
end

local function last_frame(path)
  local v = zoe.video.read(path)
  return v:select(2, v:size(2)):contiguous()
end

local function read_json(path)
  local text = files.read(path)
  if not text then return nil end
  local ok, v = pcall(zoe.json.decode, text)
  return ok and type(v) == "table" and v or nil
end

-- The chains of shots: a shot that cuts starts one, shots that continue join it.
local function chains_of(shots)
  local chains = {}
  for i, s in ipairs(shots) do
    if s.continuity == "continue" then
      table.insert(chains[#chains], i)
    else
      chains[#chains + 1] = {i}
    end
  end
  return chains
end

local function caption(s)
  local what = s.continuity == "continue" and "continue: "
    or (type(s.transition) == "table" and ("crossfade %d: "):format(s.transition.frames)) or ""
  return ("%s %s%s"):format(s.name, what, s.caption)
end

-- The state of one render: the board, its plan, the cache, and per shot what was found
-- or made (state[i].key, .fields, .entry, .rendered).
local function new_run(board, opts, model, p, cache)
  local r = {board = board, opts = opts, out = opts.out, model = model, plan = p, cache = cache,
             state = {}, fresh = {}, inflight = {}, done = 0, rendered = 0}
  for i = 1, #p.shots do r.state[i] = {} end
  return r
end

-- 1. What the cache has (a continued shot's key needs its parent's video): the shots to render.
local function look_up(r)
  local to_render = {}
  for i, s in ipairs(r.plan.shots) do
    local st, prev = r.state[i], r.state[i - 1]
    if s.continuity == "cut" then
      st.key, st.fields = plan.key(s, r.model, r.board, nil)
    elseif prev.entry then
      st.key, st.fields = plan.key(s, r.model, r.board, prev.entry.output_hash)
    end -- else its parent renders first: its key is known only then
    st.entry = st.key and not r.opts.force and r.cache:lookup(st.key) or nil
    if not st.entry then to_render[#to_render + 1] = s end
  end
  return to_render
end

-- 2. Every prompt still needed, into model.text_cache before any shot renders; then the
-- text encoder may go.
local function encode_prompts(r, to_render)
  local texts = r.model.text_cache
  for k, s in ipairs(to_render) do
    progress {stage = "encode prompts", step = k, steps = #to_render}
    if not texts[s.prompt_expanded] then texts[s.prompt_expanded] = prompt.encode(r.model, s.prompt_expanded) end
    if s.cfg ~= 1 and not texts[s.negative] then texts[s.negative] = prompt.encode(r.model, s.negative) end
  end
  local release = r.opts.release_text_encoder
  if release == nil then release = memory_is_tight(r.model) end
  if #to_render > 0 and release then r.model:release_text_encoder() end
end

-- The board's own job waits for a shot to finish; a finished shot wakes it.
local function wake_board(r)
  if r.board_waits then
    local wake = r.board_waits
    r.board_waits = nil
    wake()
  end
end

-- Shot i: from the cache, from another job rendering the same shot, or rendered now.
local function render_shot(r, i)
  local s, st, opts, cache = r.plan.shots[i], r.state[i], r.opts, r.cache
  if s.continuity == "continue" then
    st.key, st.fields = plan.key(s, r.model, r.board, r.state[i - 1].entry.output_hash)
    st.entry = not opts.force and cache:lookup(st.key) or nil
  end
  st.entry = st.entry or r.fresh[st.key]
  while not st.entry and r.inflight[st.key] do -- the same shot twice in a board: render it once
    zoe.await(function(cb) table.insert(r.inflight[st.key], cb) end)
    st.entry = r.fresh[st.key] or cache:lookup(st.key)
  end
  if not st.entry then
    r.inflight[st.key] = {}
    local staging = cache:staging(st.key)
    local spec = {
      model = r.board.model, prompt = s.prompt, vars = s.vars, negative = s.negative,
      width = s.width, height = s.height, frames = s.frames, fps = s.fps, steps = s.steps,
      sampler = s.sampler, schedule = s.schedule, shift = s.shift, cfg = s.cfg, seed = s.seed, out = staging,
      -- what the shot is making, while it renders (kept after: its last step)
      preview = ("%s/shots/%s.preview.png"):format(r.out, s.name),
      lora = s.lora,
    }
    local run = zoe.pipeline.text2video
    if s.continuity == "continue" then
      spec.image, run = last_frame(r.state[i - 1].entry.file), zoe.pipeline.image2video
    end
    local ok, err = pcall(function()
      local _, record = run(spec)
      record.output = nil -- the staging name
      st.entry = cache:commit(st.key, staging, {shot = i, frames = record.frames, fields = st.fields, record = record})
    end)
    local waiters = r.inflight[st.key]
    r.inflight[st.key] = nil
    if ok then r.fresh[st.key] = st.entry end
    for _, wake in ipairs(waiters) do wake() end
    if not ok then error(("shot %d: %s"):format(i, tostring(err)), 0) end
    st.rendered = true
    r.rendered = r.rendered + 1
  end
  files.link_or_copy(st.entry.file, ("%s/shots/%s.mp4"):format(r.out, s.name))
  r.done = r.done + 1
  if opts.on_shot then opts.on_shot(i, st) end
  wake_board(r)
end

-- 3. The shots, chain by chain, in up to opts.jobs jobs; the first failure cancels the rest.
local function render_chains(r)
  local chains = chains_of(r.plan.shots)
  local queue, workers = 1, {}
  local function worker()
    while queue <= #chains do
      local chain = chains[queue]
      queue = queue + 1
      for _, i in ipairs(chain) do
        local me = zoe.current and zoe.current()
        if me then me:name("shot " .. r.plan.shots[i].name) end
        render_shot(r, i)
      end
    end
  end
  local stop <close> = setmetatable({}, {__close = function()
    for _, job in ipairs(workers) do job:cancel() end
  end})
  for k = 1, math.max(1, math.min(r.opts.jobs or 2, #chains)) do
    workers[k] = zoe.spawn(worker)
    workers[k]:on("done", function(job)
      if job:status() == "failed" then
        for _, other in ipairs(workers) do other:cancel() end
      end
      wake_board(r)
    end)
  end
  -- one progress line for the board, from the board's job, as shots finish
  while zoe.current and zoe.current() do -- (outside a job, job:wait below runs the loop)
    progress {stage = "shots", step = r.done, steps = #r.plan.shots}
    local running = false
    for _, job in ipairs(workers) do running = running or job:status() == "running" end
    if not running then break end
    zoe.await(function(wake) r.board_waits = wake end)
  end
  local first_error
  for _, job in ipairs(workers) do
    local ok, err = pcall(job.wait, job)
    if not ok and (not first_error or first_error:find("canceled", 1, true)) then first_error = tostring(err) end
  end
  workers = {}
  if first_error then
    collectgarbage() -- the writers of canceled shots drop their temporary files ...
    r.cache:clean() -- ... and what is left of them goes too
    error(first_error, 0)
  end
end

-- 4. Shots of an earlier, longer version of the board go.
local function remove_stale_shots(out, n)
  for _, name in ipairs(files.list(out .. "/shots")) do
    local k = tonumber(name:match("^(%d+)%.mp4$") or name:match("^(%d+)%.preview%.png$"))
    if k and k > n then files.remove(out .. "/shots/" .. name) end
  end
end

-- 5. The assembled video and the contact sheet, when what they are made of changed.
-- Returns the final video's manifest entry and the contact sheet's key.
local function assemble_outputs(r, old)
  local p, out = r.plan, r.out
  local parts, hashes, labels = {}, {}, {}
  for i, s in ipairs(p.shots) do
    parts[i] = {file = ("%s/shots/%s.mp4"):format(out, s.name), skip_first = s.skip_first,
                fade_in = s.fade_in, fade_out = s.fade_out, label = caption(s)}
    hashes[i] = r.state[i].entry.output_hash
    labels[i] = parts[i].label
  end
  local meta = {zoe_storyboard_shots = table.concat(hashes, ",")}
  if r.board.title then meta.title = r.board.title end
  local fades = {}
  for i, q in ipairs(parts) do fades[i] = {q.skip_first or false, q.fade_in, q.fade_out} end
  local final_key = zoe.hash(zoe.json.encode({fps = p.fps, shots = hashes, meta = meta, parts = fades}))
  local final_path = out .. "/final.mp4"
  local final = old.final
  if r.opts.force or not (final and final.key == final_key and files.exists(final_path)
                          and zoe.hash_file(final_path) == final.hash) then
    progress {stage = "assemble"}
    local frames = assemble.final(parts, final_path, {fps = p.fps, metadata = meta})
    final = {file = "final.mp4", key = final_key, frames = frames, hash = zoe.hash_file(final_path)}
  end
  local contact_key = zoe.hash(zoe.json.encode({shots = hashes, labels = labels}))
  local contact_path = out .. "/contact.png"
  if r.opts.force or old.contact_key ~= contact_key or not files.exists(contact_path) then
    progress {stage = "contact sheet"}
    assemble.contact(parts, contact_path)
  end
  return final, contact_key
end

-- 6. The manifest, last; returns what M.render gives.
local function write_manifest(r, manifest_path, final, contact_key)
  local p, out, n = r.plan, r.out, #r.plan.shots
  local manifest = {
    title = r.board.title, model = r.board.model, model_name = r.model.name, weights_hash = r.model:hash(),
    width = p.width, height = p.height, fps = p.fps,
    final = final, contact = "contact.png", contact_key = contact_key,
    rendered = r.rendered, reused = n - r.rendered,
    shots = {},
  }
  local result = {out = out, final = out .. "/final.mp4", contact = out .. "/contact.png", manifest = manifest_path,
                  frames = final.frames, rendered = r.rendered, reused = n - r.rendered, shots = {}}
  for i, s in ipairs(p.shots) do
    local st = r.state[i]
    manifest.shots[i] = {
      index = i, file = "shots/" .. s.name .. ".mp4", cache = "cache/" .. st.key .. ".mp4",
      key = st.key, output_hash = st.entry.output_hash, frames = st.entry.frames,
      continuity = s.continuity, transition = s.transition, caption = s.caption,
      prompt = s.prompt_expanded, rendered = st.rendered or false, settings = st.fields, record = st.entry.record,
    }
    result.shots[i] = {index = i, file = out .. "/" .. manifest.shots[i].file, key = st.key,
                       output_hash = st.entry.output_hash, frames = st.entry.frames, rendered = st.rendered or false}
  end
  files.write_atomic(manifest_path, zoe.json.encode(manifest, {indent = true}) .. "\n")
  return result
end

function M.render(board, opts)
  local out = opts.out
  local model = zoe.models.load(board.model)
  local p = plan.resolve(board, model)
  files.mkdir_p(out .. "/shots")
  local lock <close> = files.lock(out)
  local cache = cache_mod.open(out)
  cache:clean()
  clean_temporaries(out)
  local r = new_run(board, opts, model, p, cache)
  local to_render = look_up(r)
  model.text_cache = opts.text_cache or {}
  local forget <close> = setmetatable({}, {__close = function() model.text_cache = nil end})
  encode_prompts(r, to_render)
  render_chains(r)
  return M.finish(r)
end

-- Steps 4 to 6, once every shot's entry is in r.state[i].entry (r.state[i].key, .fields,
-- .rendered; r also has board, plan, model, out, rendered, opts): also what a farm's
-- submitter (queue/submit.lua) ends with, so a run on many machines assembles the same
-- bytes as one here.
function M.finish(r)
  remove_stale_shots(r.out, #r.plan.shots)
  local manifest_path = r.out .. "/manifest.json"
  local final, contact_key = assemble_outputs(r, read_json(manifest_path) or {})
  local result = write_manifest(r, manifest_path, final, contact_key)
  progress {stage = "done"}
  return result
end

return M
