-- Submitting work to a farm and following it: a storyboard's shots (and a sweep's
-- settings, queue/sweep.lua) become jobs (queue/job.lua) on zoe:NAME:jobs; their events
-- on zoe:NAME:events move the progress display; when every shot is in the shared folder's
-- cache the final cut is assembled here exactly as a local render assembles it.
--
-- A shot that continues another is enqueued when the shot it continues is done: its key
-- holds that video's hash, and its job names it in 'after'. Events can be lost (Redis
-- restarted without its append-only file): the shared folder is the truth, so every few
-- seconds the shots still out are looked up in the cache too.
local zoe = require "zoe"
local redis = require "zoe.queue.redis"
local jobfmt = require "zoe.queue.job"
local now_ms = jobfmt.now_ms
local plan = require "zoe.storyboard.plan"
local files = require "zoe.storyboard.files"
local cache_mod = require "zoe.storyboard.cache"

local M = {}

local function progress(t)
  if zoe.progress then zoe.progress(t) end
end

-- The group exists before the first job, so workers that start later see every job.
function M.ensure_group(r, K)
  local ok, err = pcall(r.call, r, "XGROUP", "CREATE", K.jobs, jobfmt.GROUP, "0", "MKSTREAM")
  if not ok and not tostring(err):find("BUSYGROUP", 1, true) then error(err, 0) end
end

-- Cancels a run everywhere: workers skip its jobs and stop the one they render.
function M.cancel(r, K, run)
  r:call("SADD", K.canceled, run)
  r:call("XADD", K.events, "MAXLEN", "~", "100000", "*", "type", "cancel", "run", run)
end

-- A progress line per job in flight, as a local render shows one per shot's job.
local function shows()
  local live = {}
  local self = {}
  function self.update(name, p)
    local s = live[name]
    if not s then
      s = {p = p}
      live[name] = s
      s.job = zoe.spawn(function()
        zoe.current():name(name)
        while not s.over do
          if s.p then progress(s.p) end
          zoe.await(function(cb) s.wake = cb end)
        end
      end)
    end
    s.p = p or s.p
    if s.wake then local w = s.wake s.wake = nil w() end
  end
  function self.over(name)
    local s = live[name]
    if not s then return end
    s.over = true
    if s.wake then local w = s.wake s.wake = nil w() end
    live[name] = nil
  end
  function self.all_over()
    for name in pairs(live) do self.over(name) end
  end
  return self
end

-- Follows the events of 'run' until done() is true. handlers: done(id, fields),
-- failed(id, fields), progress(id, fields), poll() every 2 s (the folder is the truth).
function M.follow(r, K, run, since, done, handlers)
  local last, polled = since, now_ms()
  while not done() do
    local got = r:call("XREAD", "COUNT", "200", "BLOCK", "1000", "STREAMS", K.events, last)
    for _, e in ipairs(got and redis.entries(got[1][2]) or {}) do
      last = e.id
      local f = e.fields
      if f.run == run then
        local h = handlers[f.type]
        if h then h(f.job, f) end
      end
    end
    if now_ms() - polled > 2000 and not done() then
      polled = now_ms()
      handlers.poll()
    end
  end
end

local function shot_settings(s, board)
  return {model = board.model, prompt = s.prompt, vars = s.vars, negative = s.negative, width = s.width,
    height = s.height, frames = s.frames, fps = s.fps, steps = s.steps, sampler = s.sampler,
    schedule = s.schedule, shift = s.shift, cfg = s.cfg, seed = s.seed, lora = s.lora}
end

-- zoe.storyboard.render(board, {queue =, out =}) through the farm. Returns what render does.
function M.storyboard(board, opts)
  if opts.force then error("--force with --queue: delete the folder's cache/ instead (workers reuse what is there)", 0) end
  local out = jobfmt.absolute(opts.out)
  local model = zoe.models.load(board.model)
  local p = plan.resolve(board, model)
  files.mkdir_p(out .. "/shots")
  local lock <close> = files.lock(out)
  local cache = cache_mod.open(out)
  local n = #p.shots
  local state = {}
  for i = 1, n do state[i] = {} end
  local log = opts.log or function(text) if zoe.progress then print(text) else io.stderr:write(text, "\n") end end
  local r = redis.open(opts.queue, {log = log})
  local K = jobfmt.keys(r.name)
  M.ensure_group(r, K)
  local run = jobfmt.new_run_id()
  local since = r:call("XADD", K.events, "MAXLEN", "~", "100000", "*", "type", "submitted", "run", run)
  r:call("HSET", K.runs, run, zoe.json.encode {title = board.title, out = out, jobs = n, submitted = now_ms()})
  local finished = false
  local cancel_on_exit <close> = setmetatable({}, {__close = function()
    if not finished then -- an error here, or Ctrl-C: the farm stops too (from a job of its own:
      zoe.spawn(function() pcall(M.cancel, r, K, run) r:close() end) -- this one may be canceled)
    else
      r:close()
    end
  end})
  local show = shows()
  local done, rendered = 0, 0

  local try -- enqueue shot i when its key is known, or take it from the cache
  local function completed(i, entry, by_farm)
    local st = state[i]
    if st.entry then return end
    st.entry = entry
    st.rendered = by_farm or false
    if by_farm then rendered = rendered + 1 end
    files.link_or_copy(entry.file, ("%s/shots/%s.mp4"):format(out, p.shots[i].name))
    done = done + 1
    show.over("shot " .. p.shots[i].name)
    if opts.on_shot then opts.on_shot(i, st) end
    progress {stage = "shots", step = done, steps = n}
    if i < n and p.shots[i + 1].continuity == "continue" then try(i + 1) end
  end
  function try(i)
    local s, st = p.shots[i], state[i]
    if s.continuity == "cut" then
      st.key, st.fields = plan.key(s, model, board, nil)
    elseif state[i - 1].entry then
      st.key, st.fields = plan.key(s, model, board, state[i - 1].entry.output_hash)
    else
      return -- after the shot it continues
    end
    local entry = cache:lookup(st.key)
    if entry then return completed(i, entry, false) end
    local job = {v = jobfmt.VERSION, run = run, id = s.name, kind = "shot", out = out, key = st.key,
      fields = st.fields, mode = s.continuity == "continue" and "image2video" or "text2video",
      settings = shot_settings(s, board), entry = {shot = i}, preview = "shots/" .. s.name .. ".preview.png"}
    if s.continuity == "continue" then
      local prev = state[i - 1]
      job.after = {id = p.shots[i - 1].name, key = prev.key, output_hash = prev.entry.output_hash}
    end
    r:call("XADD", K.jobs, "*", "run", run, "job", jobfmt.encode(job))
    r:call("HSET", K.run(run), s.name, "queued")
    st.queued = true
    show.update("shot " .. s.name, {stage = "queued"})
  end

  progress {stage = "shots", step = 0, steps = n}
  for i = 1, n do
    if not state[i].key then try(i) end
  end
  local function index(id) return tonumber(id) end
  M.follow(r, K, run, since, function() return done == n end, {
    claimed = function(id, f) show.update("shot " .. id, {stage = "on " .. tostring(f.worker)}) end,
    progress = function(id, f)
      show.update("shot " .. id, {stage = f.stage, step = tonumber(f.step), steps = tonumber(f.steps)})
    end,
    done = function(id, f)
      local i = index(id)
      local entry = i and state[i].key == f.key and cache:lookup(f.key)
      if entry then completed(i, entry, f.rendered == "1") end
    end,
    failed = function(id, f)
      show.all_over()
      error(("shot %s: %s (worker %s)"):format(id, tostring(f.error), tostring(f.worker)), 0)
    end,
    canceled = function() show.all_over() error(("run %s was canceled"):format(run), 0) end,
    cancel = function() show.all_over() error(("run %s was canceled"):format(run), 0) end,
    poll = function()
      for i = 1, n do
        local st = state[i]
        if st.queued and not st.entry then
          local entry = cache:lookup(st.key)
          if entry then completed(i, entry, true) end
        end
      end
    end,
  })
  show.all_over()
  finished = true
  return require("zoe.storyboard.render").finish {board = board, plan = p, model = model, out = out,
    state = state, rendered = rendered, opts = opts}
end

return M
