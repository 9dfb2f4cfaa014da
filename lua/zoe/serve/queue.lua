-- The render queue of zoe serve: every submitted recipe, storyboard or replay is a job on
-- the loop at once (so the REPL's :jobs lists it), which waits for the one submitted before
-- it, so renders run one at a time in order. Entries keep what the page shows: state,
-- progress, ETA, the latest preview, the output and its record; each change goes to
-- on_change(entry, event).
local zoe = require "zoe"

local M = {}
M.__index = M

-- out: the output folder; on_change(entry, kind): kind is "job", "preview" or "done";
-- farm: a redis://HOST:PORT/NAME queue (zoe serve --queue): recipes and storyboards go to
-- its workers as the farm's jobs (docs/DISTRIBUTED.md), and out must be a folder they see
function M.new(out, on_change, farm)
  return setmetatable({out = out, entries = {}, order = {}, last_job = nil, on_change = on_change,
                       seq = 0, farm = farm}, M)
end

local function now() return zoe.uv.hrtime() / 1e9 end

-- What the API shows of an entry (no tensors, no functions).
function M.view(e)
  return {id = e.id, kind = e.kind, state = e.state, name = e.name, recipe = e.recipe, board = e.board,
          output = e.output, preview = e.preview, progress = e.progress, error = e.error, record = e.record,
          result = e.result, created = e.created, finished = e.finished, replay_of = e.replay_of}
end

local function stamp()
  return os.date("!%Y%m%d-%H%M%S")
end

local function remove_if_exists(path) os.remove(path) end

-- Listen to the job and keep the entry current.
function M:watch(e, job)
  local last_progress = 0
  job:on("progress", function(p)
    e.state = e.state == "queued" and "running" or e.state
    e.progress = {stage = p.stage, step = p.step, steps = p.steps, eta = p.eta, rate = p.rate, elapsed = p.elapsed}
    local t = now()
    -- the page needs a few updates a second, not every op's
    if t - last_progress >= 0.2 or p.stage ~= "denoise" or p.step == p.steps then
      last_progress = t
      self.on_change(e, "job")
    end
  end)
  job:on("preview", function(p)
    if p.path and p.path:sub(1, #self.out + 1) == self.out .. "/" then
      e.preview = {url = "/outputs/" .. p.path:sub(#self.out + 2), step = p.step, steps = p.steps}
      self.on_change(e, "preview")
    end
  end)
  job:on("done", function(j)
    e.finished = os.time()
    local status = j:status()
    e.state = status == "done" and "done" or status
    if status == "done" then
      local ok, res = pcall(j.result, j)
      if ok and type(res) == "table" then
        e.record = res.record
        e.result = res.result
      end
    else
      local err = j:info().error
      e.error = err and tostring(err):gsub("^[^\n]*%.lua:%d+: ", "") or status
      e.output = nil
      if e.preview_file then remove_if_exists(e.preview_file) end
    end
    e.job = nil
    self.on_change(e, "done")
  end)
end

-- Spawn the job running fn(entry) after the previous job ends.
function M:add(e, fn)
  self.seq = self.seq + 1
  e.state, e.created = "queued", os.time()
  local before = self.last_job
  local job = zoe.spawn(function()
    if before then pcall(before.wait, before) end
    e.state = "running"
    self.on_change(e, "job")
    return fn(e)
  end)
  e.id = job:id()
  e.job = job
  job:name(("serve %s %d"):format(e.kind, e.id))
  self.last_job = job
  self.entries[e.id] = e
  self.order[#self.order + 1] = e.id
  self:watch(e, job)
  self.on_change(e, "job")
  return e
end

-- A recipe (checked) renders to OUT/web-STAMP-ID.mp4 with its record beside it.
function M:submit_video(spec)
  local e = {kind = "video", recipe = spec}
  return self:add(e, function(entry)
    local base = ("web-%s-%d"):format(stamp(), entry.id)
    local settings = {}
    for k, v in pairs(spec) do settings[k] = v end
    settings.out = self.out .. "/" .. base .. ".mp4"
    entry.preview_file = self.out .. "/" .. base .. ".preview.png"
    entry.output = base .. ".mp4"
    if self.farm then -- the same job any front end submits; its progress shown as a local one
      settings.out = nil
      local got = zoe.queue.render(settings, {queue = self.farm, out = self.out .. "/farm", on_event = function(_, f)
        if f.type == "progress" then zoe.progress {stage = f.stage, step = tonumber(f.step), steps = tonumber(f.steps)} end
      end})
      assert(zoe.uv.fs_link(got.file, self.out .. "/" .. entry.output) or zoe.uv.fs_copyfile(got.file, self.out .. "/" .. entry.output))
      got.record.output = entry.output
      return {record = got.record}
    end
    local _, record = zoe.pipeline.text2video(settings)
    record.output = entry.output -- a name in the output folder, not this machine's path
    return {record = record}
  end)
end

-- A storyboard (normalized) renders into OUT/board-SLUG/, whose cache the next run of the
-- same title reuses.
function M:submit_board(board, slug)
  local e = {kind = "storyboard", board = board}
  return self:add(e, function(entry)
    local dir = self.out .. "/board-" .. slug
    entry.output = "board-" .. slug .. "/final.mp4"
    local r = zoe.storyboard.render(board, {out = dir, queue = self.farm})
    local shots = {}
    for i, s in ipairs(r.shots) do
      shots[i] = {index = s.index, url = "/outputs/" .. s.file:sub(#self.out + 2), key = s.key,
                  frames = s.frames, cached = not s.rendered}
    end
    return {result = {final = "/outputs/" .. entry.output, rendered = r.rendered, reused = r.reused,
                      frames = r.frames, shots = shots,
                      contact = r.contact and "/outputs/board-" .. slug .. "/contact.png" or nil}}
  end)
end

-- Make an output again from its recipe; the result says whether the bytes are the same.
function M:submit_replay(name)
  local e = {kind = "replay", replay_of = name}
  return self:add(e, function(entry)
    local base = ("replay-%s-%d"):format(stamp(), entry.id)
    entry.output = base .. ".mp4"
    local _, record, same = zoe.replay(self.out .. "/" .. name, {out = self.out .. "/" .. entry.output})
    record.output, record.replay = entry.output, nil
    return {record = record, result = {equal = same, of = name}}
  end)
end

function M:cancel(id)
  local e = self.entries[id]
  if e and e.job then
    e.job:cancel()
    return true
  end
  -- a job of this process that the server did not start (the REPL's): cancel it too
  for _, j in ipairs(zoe.jobs()) do
    if j:id() == id then
      j:cancel()
      return true
    end
  end
  return false
end

-- Every entry, newest first, and the other unfinished jobs of this process (the REPL's).
function M:list()
  local out = {}
  for i = #self.order, 1, -1 do out[#out + 1] = M.view(self.entries[self.order[i]]) end
  for _, j in ipairs(zoe.jobs()) do
    if not self.entries[j:id()] and j:id() ~= self.ignore then
      local info = j:info()
      out[#out + 1] = {id = info.id, kind = "job", name = info.name, state = info.status == "ready" and "queued" or "running",
                       external = true, progress = info.stage and {stage = info.stage, step = info.step,
                       steps = info.steps, eta = info.eta, rate = info.rate} or nil}
    end
  end
  return out
end

function M:cancel_all()
  for _, id in ipairs(self.order) do
    local e = self.entries[id]
    if e.job then e.job:cancel() end
  end
end

return M
