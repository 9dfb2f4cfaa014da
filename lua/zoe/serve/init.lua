-- zoe serve: the page and a JSON API on the loop the REPL and the jobs run on.
--
--   local app = zoe.serve.start{port = 8188, host = "127.0.0.1", out = "out", token = nil,
--                               web = ROOT .. "/web", max_body = 1 << 20}
--   app:run()     -- in a job: serve until the job is canceled (Ctrl-C), then close
--   app:close()
--
-- API (JSON; errors are {"error": "..."} with a 4xx status):
--   GET  /api/models                 model names
--   GET  /api/models/NAME            its defaults (what the form starts from)
--   GET  /api/jobs                   the queue: state, progress, ETA, preview, output, record
--   POST /api/jobs                   a recipe {"prompt": ..., ...} or {"storyboard": {...}}
--   GET  /api/jobs/ID                one entry
--   POST /api/jobs/ID/cancel         (DELETE /api/jobs/ID too)
--   GET  /api/events                 server-sent events: "job", "preview", "done" of every job
--   GET  /api/jobs/ID/events         the same for one job, ending after its "done"
--   GET  /api/outputs                finished videos with their recipes, newest first
--   POST /api/replay                 {"output": "NAME.mp4"}: make it again, compare the bytes
-- Requests carry data only: recipes are checked by zoe.serve.recipe, storyboards by the
-- storyboard format (no lora, models by name), output names by their shape.
local zoe = require "zoe"
local recipe = require "zoe.serve.recipe"
local queue = require "zoe.serve.queue"
local format = require "zoe.storyboard.format"

local M = {}
local App = {}
App.__index = App

local json = zoe.json

local function reply(status, value) return status, json.encode(value) end
local function bad(status, msg) return status, json.encode {error = msg} end

local function sse(event, value) return ("event: %s\ndata: %s\n\n"):format(event, json.encode(value)) end

local function list_copy(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = v end
  return out
end

function App:ctx()
  return {models = zoe.models.list(), samplers = list_copy(zoe.sampler.names), schedules = list_copy(zoe.sched.names),
          caches = {"none", table.unpack(zoe.cache.names)}, null = json.null}
end

-- each change of an entry goes to every stream that follows it
function App:broadcast(e, kind)
  local text = sse(kind, queue.view(e))
  for id, sub in pairs(self.subs) do
    if sub.job == nil or sub.job == e.id then
      if not self.server:send(id, text) then self.subs[id] = nil
      elseif kind == "done" and sub.job == e.id then
        self.server:finish(id)
        self.subs[id] = nil
      end
    end
  end
end

local function decode_body(req)
  if #req.body == 0 then return nil, "the request has no body" end
  local ok, v = pcall(json.decode, req.body)
  if not ok then return nil, "the body is not JSON: " .. tostring(v):gsub("^[^:]*:%d+: ", "") end
  return v
end

local function is_object(v) return type(v) == "table" and next(v) ~= 1 end

-- a model name from the web: a name in the search path, never a folder
function App:model_ok(name)
  for _, n in ipairs(zoe.models.list()) do
    if n == name then return true end
  end
  return false
end

function App:submit(req)
  local t, err = decode_body(req)
  if not t then return bad(400, err) end
  if not is_object(t) then return bad(400, "give a recipe as a JSON object") end
  if t.storyboard ~= nil then
    for k in pairs(t) do
      if k ~= "storyboard" then return bad(400, ("a storyboard request has only 'storyboard', not '%s'"):format(k)) end
    end
    local b = t.storyboard
    if not is_object(b) then return bad(400, "'storyboard' must be an object of board fields") end
    if b.lora ~= nil then return bad(400, "storyboards from the web cannot name LoRA files") end
    if b.model ~= nil and (type(b.model) ~= "string" or not self:model_ok(b.model)) then
      return bad(400, ("'model' must be one of: %s"):format(table.concat(zoe.models.list(), ", ")))
    end
    for _, s in ipairs(type(b.shots) == "table" and b.shots or {}) do
      if type(s) == "table" and s.lora ~= nil then return bad(400, "storyboards from the web cannot name LoRA files") end
    end
    local ok, board = pcall(format.normalize, b)
    if not ok then return bad(400, "storyboard: " .. tostring(board)) end
    local e = self.queue:submit_board(board, recipe.slug(board.title))
    return reply(202, queue.view(e))
  end
  local spec, why = recipe.check(t, self:ctx())
  if not spec then return bad(400, why) end
  return reply(202, queue.view(self.queue:submit_video(spec)))
end

local function read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, v = pcall(json.decode, text)
  return ok and v or nil
end

-- finished videos: NAME.mp4 with NAME.json beside it, and storyboards' final cuts
function App:outputs()
  local out, uv = {}, zoe.uv
  local req = uv.fs_scandir(self.out)
  while req do
    local name, kind = uv.fs_scandir_next(req)
    if not name then break end
    if kind == "file" and name:match("^[%w_%-][%w_%.%-]*%.mp4$") then
      local rec = read_json(self.out .. "/" .. name:gsub("%.mp4$", ".json"))
      local st = uv.fs_stat(self.out .. "/" .. name)
      if rec and st then
        out[#out + 1] = {name = name, url = "/outputs/" .. name, recipe = rec.recipe, timings = rec.timings,
                         frames = rec.frames, mtime = st.mtime.sec}
      end
    elseif kind == "directory" and name:match("^board%-[%w%-]+$") then
      local m = read_json(self.out .. "/" .. name .. "/manifest.json")
      local st = uv.fs_stat(self.out .. "/" .. name .. "/final.mp4")
      if m and st then
        local shots = {}
        for i, s in ipairs(m.shots or {}) do
          shots[i] = {index = s.index, url = "/outputs/" .. name .. "/" .. s.file, cached = not s.rendered,
                      caption = s.caption, prompt = s.prompt}
        end
        out[#out + 1] = {name = name .. "/final.mp4", url = "/outputs/" .. name .. "/final.mp4", storyboard = true,
                         title = m.title, shots = shots, mtime = st.mtime.sec, frames = m.final and m.final.frames}
      end
    end
  end
  table.sort(out, function(a, b)
    if a.mtime ~= b.mtime then return a.mtime > b.mtime end
    return a.name > b.name
  end)
  return out
end

function App:replay(req)
  local t, err = decode_body(req)
  if not t then return bad(400, err) end
  if not is_object(t) then return bad(400, "give {\"output\": \"NAME.mp4\"}") end
  for k in pairs(t) do
    if k ~= "output" then return bad(400, ("unknown field '%s'%s; allowed: output"):format(tostring(k),
      recipe.nearest(tostring(k), {"output"}))) end
  end
  local name = t.output
  if type(name) ~= "string" or not name:match("^[%w_%-][%w_%.%-]*%.mp4$") or name:find("..", 1, true) then
    return bad(400, "'output' must be the name of a video in the output folder (NAME.mp4)")
  end
  if not zoe.uv.fs_stat(self.out .. "/" .. name) then return bad(404, ("no output '%s'"):format(name)) end
  return reply(202, queue.view(self.queue:submit_replay(name)))
end

function App:model_defaults(name)
  if not self:model_ok(name) then
    return bad(404, ("no model '%s'%s"):format(name, recipe.nearest(name, zoe.models.list())))
  end
  local ok, m = pcall(zoe.models.load, name)
  if not ok then return bad(500, tostring(m)) end
  local d = {}
  for k, v in pairs(m.defaults or {}) do
    if type(v) ~= "function" and type(v) ~= "table" then d[k] = v end
  end
  return reply(200, {name = name, defaults = d, samplers = zoe.sampler.names, schedules = zoe.sched.names,
                     caches = {"none", table.unpack(zoe.cache.names)}})
end

function App:handle(req)
  local m, p = req.method, req.path
  if p == "/api/models" and m == "GET" then return reply(200, {models = zoe.models.list()}) end
  local name = p:match("^/api/models/([%w_%.%-]+)$")
  if name and m == "GET" then return self:model_defaults(name) end
  if p == "/api/jobs" then
    if m == "GET" then return reply(200, {jobs = self.queue:list()}) end
    if m == "POST" then return self:submit(req) end
  end
  if p == "/api/events" and m == "GET" then
    self.subs[req.id] = {}
    return "stream", sse("hello", {jobs = self.queue:list()})
  end
  local id, rest = p:match("^/api/jobs/(%d+)(.*)$")
  id = tonumber(id)
  if id then
    local e = self.queue.entries[id]
    if (rest == "/cancel" and m == "POST") or (rest == "" and m == "DELETE") then
      if not self.queue:cancel(id) then return bad(404, ("no running job %d"):format(id)) end
      return reply(200, {canceled = id})
    end
    if not e then return bad(404, ("no job %d"):format(id)) end
    if rest == "" and m == "GET" then return reply(200, queue.view(e)) end
    if rest == "/events" and m == "GET" then
      if e.state ~= "queued" and e.state ~= "running" then return "stream", sse("done", queue.view(e)) end
      self.subs[req.id] = {job = id}
      return "stream", sse("job", queue.view(e))
    end
  end
  if p == "/api/outputs" and m == "GET" then return reply(200, {outputs = self:outputs()}) end
  if p == "/api/replay" and m == "POST" then return self:replay(req) end
  return bad(404, ("no API %s %s"):format(m, p))
end

-- Start listening now; the handler runs on the loop between jobs.
function M.start(opts)
  local root = zoe.models.root()
  local app = setmetatable({out = opts.out, subs = {}}, App)
  app.queue = queue.new(opts.out, function(e, kind) app:broadcast(e, kind) end, opts.queue)
  app.server = zoe.http.listen{
    host = opts.host, port = opts.port, token = opts.token, max_body = opts.max_body,
    web = opts.web or root .. "/web", out = opts.out,
    handler = function(req) return app:handle(req) end,
  }
  return app
end

function App:port() return self.server:port() end

-- Serve until canceled: streams get a comment now and then so proxies and browsers keep them.
function App:run()
  local me = zoe.current()
  if me then self.queue.ignore = me:id() end
  local ok, err = pcall(function()
    while true do
      zoe.sleep(15000)
      for id in pairs(self.subs) do
        if not self.server:send(id, ": ping\n\n") then self.subs[id] = nil end
      end
    end
  end)
  self:close()
  return ok, err
end

function App:close()
  if self.closed then return end
  self.closed = true
  self.queue:cancel_all()
  self.server:close()
end

return M
