-- `zoe serve` as a child process on a loopback port, driven with curl (a real HTTP client):
-- the JSON API (submit, events, outputs, replay, cancel), the checks on what a request may
-- hold (unknown fields with "did you mean", paths, body size, content type, Host), the
-- token when listening elsewhere, and Ctrl-C stopping it with nothing half-written.
local t = require "testlib"
local zoe = require "zoe"
local tiny = require "tiny_wan"
local files = require "zoe.storyboard.files"
local uv = zoe.uv

local ZOE = os.getenv("ZOE_TEST_ZOE") or arg[-1]
if os.execute("command -v curl > /dev/null 2>&1") ~= true then
  t.skip("serve", "curl is not installed (make deps installs it)")
  return t.done()
end

local root = os.tmpname()
os.remove(root)
files.mkdir_p(root .. "/out")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function read(path) return files.read(path) end
local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Waits (up to 'seconds') until cond() holds.
local function until_(cond, what, seconds)
  for _ = 1, (seconds or 60) * 20 do
    if cond() then return end
    zoe.sleep(50)
  end
  error("timed out waiting for " .. what)
end

-- `zoe serve ARGS` with its output in files; the port is read from what it prints.
local function start(args, name)
  local outp, errp = ("%s/%s.out"):format(root, name), ("%s/%s.err"):format(root, name)
  local cmd = {"exec", q(ZOE), "-q", "serve", "--port", "0"}
  for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
  cmd[#cmd + 1] = ("> %s 2> %s"):format(q(outp), q(errp))
  local ended = {}
  local handle, pid = uv.spawn("/bin/sh", {args = {"-c", table.concat(cmd, " ")}}, function(code, signal)
    ended.code, ended.signal = code, signal
    if ended.wake then ended.wake() end
  end)
  assert(handle, "cannot start " .. ZOE)
  local s = {handle = handle, pid = pid, ended = ended, outp = outp, errp = errp}
  until_(function() return (read(outp) or ""):match("http://[^/]+:(%d+)/") end, "the server's address")
  local text = read(outp)
  s.port = tonumber(text:match("http://[^/]+:(%d+)/"))
  s.token = text:match("%?token=(%x+)")
  s.host = text:match("http://([^/]+):%d+/")
  s.base = ("http://%s:%d"):format(s.host, s.port)
  function s.wait()
    if ended.code == nil then zoe.await(function(cb) ended.wake = cb end) end
    handle:close()
    return ended.code, ended.signal, read(outp) or "", read(errp) or ""
  end
  return s
end

-- curl: returns status, body, headers. opts: method, body, type, headers = {...}, raw (--path-as-is)
local function curl(s, path, opts)
  opts = opts or {}
  local bodyf, headf = root .. "/body", root .. "/head"
  local cmd = {"curl -s --max-time 30 -o", q(bodyf), "-D", q(headf), "-w '%{http_code}'"}
  if opts.method then cmd[#cmd + 1] = "-X " .. opts.method end
  if opts.body then
    write(root .. "/req", opts.body)
    cmd[#cmd + 1] = "--data-binary @" .. q(root .. "/req")
    cmd[#cmd + 1] = "-H " .. q("Content-Type: " .. (opts.type or "application/json"))
  end
  for _, h in ipairs(opts.headers or {}) do cmd[#cmd + 1] = "-H " .. q(h) end
  if opts.raw then cmd[#cmd + 1] = "--path-as-is" end
  cmd[#cmd + 1] = q((opts.base or s.base) .. path)
  local p = io.popen(table.concat(cmd, " "))
  local code = tonumber(p:read("a"))
  p:close()
  return code, read(bodyf) or "", (read(headf) or ""):lower()
end

local function api(s, path, opts)
  local code, body = curl(s, path, opts)
  local ok, v = pcall(zoe.json.decode, body)
  return code, ok and v or body
end

local function post(s, path, value) return api(s, path, {body = zoe.json.encode(value)}) end

local function job(s, id)
  local _, v = api(s, "/api/jobs/" .. id)
  return v
end

local PROMPT = "a red circle moving left on a white background"
local srv = start({"--out", root .. "/out"}, "main")

t.test("the page and its headers: CSP, nosniff; 127.0.0.1 by default", function()
  t.eq(srv.host, "127.0.0.1")
  local code, body, head = curl(srv, "/")
  t.eq(code, 200)
  t.ok(body:find("<script src=\"/static/app.js\"", 1, true), "the page loads its script from /static")
  t.ok(head:find("content-security-policy: default-src 'none'; script-src 'self'", 1, true), head)
  t.ok(head:find("x-content-type-options: nosniff", 1, true))
  code, _, head = curl(srv, "/api/models")
  t.ok(head:find("content-security-policy:", 1, true), "API responses carry it too")
  t.eq(code, 200)
  local _, css, chead = curl(srv, "/static/app.css")
  t.ok(#css > 100 and chead:find("content-type: text/css", 1, true), "the style sheet")
end)

t.test("models and their defaults for the form", function()
  local code, v = api(srv, "/api/models")
  t.eq(code, 200)
  t.ok(table.concat(v.models, ","):find("zoe-tiny", 1, true))
  code, v = api(srv, "/api/models/zoe-tiny")
  t.eq(code, 200)
  t.eq(v.defaults.width, 64)
  t.eq(v.defaults.frames, 17)
  t.eq(v.defaults.sampler, "euler")
  code = api(srv, "/api/models/..%2fetc")
  t.eq(code, 404)
end)

t.test("recipes are data, checked strictly: unknown fields with 'did you mean'", function()
  local code, v = post(srv, "/api/jobs", {prompt = PROMPT, stpes = 4})
  t.eq(code, 400)
  t.ok(v.error:find("unknown field 'stpes' (did you mean 'steps'?)", 1, true), v.error)
  code, v = post(srv, "/api/jobs", {prompt = PROMPT, sampler = "eulr"})
  t.eq(code, 400)
  t.ok(v.error:find("did you mean 'euler'", 1, true), v.error)
  code, v = post(srv, "/api/jobs", {prompt = PROMPT, model = "../models/zoe-tiny"})
  t.eq(code, 400)
  t.ok(v.error:find("'model'", 1, true), v.error)
  code, v = post(srv, "/api/jobs", {prompt = PROMPT, model = "/etc"})
  t.eq(code, 400)
  code, v = post(srv, "/api/jobs", {prompt = PROMPT, steps = 2.5})
  t.eq(code, 400)
  t.ok(v.error:find("whole number", 1, true), v.error)
  code, v = post(srv, "/api/jobs", {prompt = PROMPT, steps = 100000})
  t.eq(code, 400)
  code, v = post(srv, "/api/jobs", {prompt = PROMPT, on_step = "os.execute('touch " .. root .. "/pwned')"})
  t.eq(code, 400)
  t.ok(v.error:find("unknown field 'on_step'", 1, true), v.error)
  code, v = post(srv, "/api/jobs", {storyboard = {title = "x", shots = {{prompt = PROMPT, lroa = 1}}}})
  t.eq(code, 400)
  t.ok(v.error:find("did you mean 'lora'", 1, true), v.error)
  code, v = post(srv, "/api/jobs", {storyboard = {shots = {{prompt = PROMPT, lora = {{"/etc/passwd", 1}}}}}})
  t.eq(code, 400)
  code, v = api(srv, "/api/jobs", {body = "{\"prompt\": "})
  t.eq(code, 400)
  t.ok(v.error:find("not JSON", 1, true), v.error)
  code = api(srv, "/api/jobs", {body = zoe.json.encode {prompt = PROMPT}, type = "text/plain"})
  t.eq(code, 415, "a cross-site form cannot POST JSON")
  code = api(srv, "/api/jobs", {body = ("x"):rep(2 * 1024 * 1024)})
  t.eq(code, 413, "bodies over 1 MB")
  code = api(srv, "/api/models", {headers = {"Host: evil.example:80"}})
  t.eq(code, 403, "a loopback server answers loopback names only")
  _, v = api(srv, "/api/jobs")
  t.eq(#v.jobs, 0, "nothing was queued")
  t.ok(not io.open(root .. "/pwned"), "nothing ran")
end)

local first -- the finished job's entry
t.test("submit, follow its events to the end, get the video and its record", function()
  -- follow every job's events from before the submission (a 4-step job may end at once)
  local evf = root .. "/events"
  local p = io.popen(("curl -sN --max-time 60 %s > %s 2>&1 & echo $!"):format(q(srv.base .. "/api/events"), q(evf)))
  local curl_pid = tonumber(p:read("a"))
  p:close()
  until_(function() return (read(evf) or ""):find("event: hello", 1, true) end, "the stream to open")
  local code, e = post(srv, "/api/jobs", {prompt = PROMPT, steps = 4, seed = 7})
  t.eq(code, 202)
  t.eq(e.state, "queued")
  until_(function() return (read(evf) or ""):find("event: done", 1, true) end, "the job's end")
  uv.kill(curl_pid, "sigterm")
  local text = read(evf)
  t.ok(text:find("event: job", 1, true), "progress events")
  t.ok(text:find("\"stage\":\"denoise\"", 1, true), "denoise progress")
  t.ok(text:find("event: preview", 1, true), "a preview")
  local last = text:match("event: done\ndata: ([^\n]*)")
  t.ok(last, "the stream has the job's 'done'")
  first = zoe.json.decode(last)
  t.eq(first.state, "done")
  t.eq(first.record.recipe.seed, 7)
  t.eq(first.record.recipe.steps, 4)
  t.eq(first.record.output, first.output, "the record names the file, not this machine's path")
  local info = zoe.video.info(root .. "/out/" .. first.output)
  t.eq(info.frames, 17)
  local _, body, head = curl(srv, "/outputs/" .. first.output)
  t.eq(body, read(root .. "/out/" .. first.output), "served byte for byte")
  t.ok(head:find("content-type: video/mp4", 1, true))
  local pcode = curl(srv, first.preview.url)
  t.eq(pcode, 200, "the preview image")
  local _, outs = api(srv, "/api/outputs")
  t.eq(outs.outputs[1].name, first.output)
  t.eq(outs.outputs[1].recipe.seed, 7)
end)

t.test("replay an output from its record: the same bytes", function()
  local code, e = post(srv, "/api/replay", {output = first.output})
  t.eq(code, 202)
  until_(function() return job(srv, e.id).state ~= "queued" and job(srv, e.id).state ~= "running" end, "the replay")
  local r = job(srv, e.id)
  t.eq(r.state, "done")
  t.eq(r.result.equal, true)
  code = post(srv, "/api/replay", {output = "../" .. first.output})
  t.eq(code, 400)
  code = post(srv, "/api/replay", {output = "nothing.mp4"})
  t.eq(code, 404)
  local v
  code, v = post(srv, "/api/replay", {outptu = first.output})
  t.eq(code, 400)
  t.ok(v.error:find("did you mean 'output'", 1, true), v.error)
end)

t.test("outputs only from the output folder: .., %2e%2e, absolute, symlinks out", function()
  write(root .. "/secret.mp4", "secret")
  uv.fs_symlink(root .. "/secret.mp4", root .. "/out/leak.mp4")
  uv.fs_symlink(root, root .. "/out/up")
  write(root .. "/out/.hidden.mp4", "hidden")
  for _, path in ipairs {"/outputs/../secret.mp4", "/outputs/%2e%2e/secret.mp4", "/outputs/%2E%2E%2Fsecret.mp4",
                         "/outputs//etc/passwd", "/outputs/%2fetc%2fpasswd", "/outputs/leak.mp4",
                         "/outputs/up/secret.mp4", "/outputs/.hidden.mp4", "/outputs/x%00.mp4",
                         "/static/..%2f..%2fMakefile", "/static/../../Makefile", "/outputs/" .. first.output:gsub("mp4$", "json")} do
    local code, body = curl(srv, path, {raw = true})
    t.ok(code == 404 or code == 400, path .. " -> " .. tostring(code))
    t.ok(not body:find("secret", 1, true) and not body:find("root:", 1, true), path)
  end
end)

t.test("cancel a running job: it ends canceled, no video left", function()
  local _, e = post(srv, "/api/jobs", {prompt = PROMPT, steps = 400, seed = 1})
  until_(function()
    local j = job(srv, e.id)
    return j.progress and j.progress.stage == "denoise"
  end, "the job to denoise")
  local code = api(srv, "/api/jobs/" .. e.id .. "/cancel", {method = "POST", body = "{}"})
  t.eq(code, 200)
  until_(function() return job(srv, e.id).state == "canceled" end, "the cancel", 10)
  local j = job(srv, e.id)
  t.eq(j.output, nil)
  for _, name in ipairs(files.list(root .. "/out")) do
    t.ok(not name:find("%-" .. e.id .. "%.") and not name:find("tmp"), "left: " .. name)
  end
  code = api(srv, "/api/jobs/999/cancel", {method = "POST", body = "{}"})
  t.eq(code, 404)
end)

t.test("a storyboard: its shots render, and the same board again comes from the cache", function()
  local board = {title = "Two shapes", style = "on a navy background",
                 characters = {hero = "a red circle", rival = "a blue square"},
                 shots = {{prompt = "{hero} moving right", caption = "the hero runs", steps = 4},
                          {prompt = "{rival} moving right", continuity = "continue", steps = 4}}}
  local runs = {}
  for i = 1, 2 do
    local code, e = post(srv, "/api/jobs", {storyboard = board})
    t.eq(code, 202)
    until_(function() local s = job(srv, e.id).state return s ~= "queued" and s ~= "running" end, "the storyboard")
    runs[i] = job(srv, e.id)
    t.eq(runs[i].state, "done", runs[i].error)
  end
  t.eq(runs[1].result.rendered, 2)
  t.eq(runs[2].result.rendered, 0)
  t.eq(runs[2].result.reused, 2, "both shots from the cache")
  t.eq(runs[2].result.final, "/outputs/board-two-shapes/final.mp4")
  local code, body = curl(srv, runs[2].result.final)
  t.eq(code, 200)
  t.eq(body, read(root .. "/out/board-two-shapes/final.mp4"))
  local _, outs = api(srv, "/api/outputs")
  local found
  for _, o in ipairs(outs.outputs) do if o.storyboard then found = o end end
  t.ok(found and #found.shots == 2, "the board is in the outputs with its shots")
  t.eq(found.shots[1].cached, true, "the last run took shot 1 from the cache")
end)

t.test("in one process: the REPL's jobs are in /api/jobs, the API's renders are jobs", function()
  local serve = require "zoe.serve"
  local app = serve.start{port = 0, out = root .. "/out"}
  local base = ("http://127.0.0.1:%d"):format(app:port())
  -- curl as a child, awaited: this process's loop must keep turning to answer it
  local function get(path, body)
    local outf = root .. "/inproc.json"
    local args = {"-s", "-o", outf, base .. path}
    if body then for _, a in ipairs {"-H", "Content-Type: application/json", "-d", body} do args[#args + 1] = a end end
    local h
    zoe.await(function(cb) h = uv.spawn("curl", {args = args}, function() cb() end) end)
    h:close()
    return zoe.json.decode(read(outf))
  end
  local mine = zoe.spawn(function() zoe.sleep(3000) end)
  mine:name("a job of the REPL")
  local listed = get("/api/jobs").jobs
  local seen
  for _, j in ipairs(listed) do if j.id == mine:id() then seen = j end end
  t.ok(seen and seen.external and seen.name == "a job of the REPL", "the other job is listed")
  local e = get("/api/jobs", zoe.json.encode {prompt = "a red circle", steps = 2})
  local as_job
  for _, j in ipairs(zoe.jobs()) do if j:id() == e.id then as_job = j end end
  t.ok(as_job, "the API's render is one of zoe.jobs()")
  t.eq(as_job:name(), "serve video " .. e.id)
  local out = get("/api/jobs/" .. mine:id() .. "/cancel", "{}")
  t.eq(out.canceled, mine:id())
  pcall(mine.wait, mine)
  t.eq(mine:status(), "canceled")
  pcall(as_job.wait, as_job)
  t.eq(as_job:status(), "done")
  app:close()
end)

t.test("Ctrl-C stops the server: running job canceled, nothing half-written", function()
  local _, e = post(srv, "/api/jobs", {prompt = PROMPT, steps = 400, seed = 2})
  until_(function()
    local j = job(srv, e.id)
    return j.progress and j.progress.stage == "denoise"
  end, "the job to denoise")
  uv.kill(srv.pid, "sigint")
  local code, signal, out = srv.wait()
  t.eq(signal, 0)
  t.eq(code, 130, "the exit status of a run Ctrl-C ended")
  t.ok(out:find("zoe serve: stopped", 1, true), out)
  for _, name in ipairs(files.list(root .. "/out")) do
    t.ok(not name:find("%-" .. e.id .. "%.mp4") and not name:find("tmp"), "left: " .. name)
  end
end)

t.test("elsewhere than 127.0.0.1 a token is needed on every request, the stream included", function()
  local s = start({"--out", root .. "/out", "--host", "127.0.0.2"}, "tok")
  t.ok(s.token and #s.token == 64, "a token was generated and printed")
  t.eq((curl(s, "/")), 401)
  t.eq((curl(s, "/api/jobs")), 401)
  t.eq((curl(s, "/api/events")), 401)
  t.eq((curl(s, "/outputs/" .. first.output)), 401)
  local wrong = s.token:sub(1, 63) .. (s.token:sub(64) == "0" and "1" or "0")
  t.eq((curl(s, "/api/jobs?token=" .. wrong)), 401)
  t.eq((curl(s, "/api/jobs", {headers = {"Authorization: Bearer " .. s.token}})), 200)
  t.eq((curl(s, "/?token=" .. s.token)), 200)
  t.eq((curl(s, "/outputs/" .. first.output .. "?token=" .. s.token)), 200)
  uv.kill(s.pid, "sigint")
  t.eq((s.wait()), 130)
  -- with --models: its models are listed first, and recipes may name them
  files.mkdir_p(root .. "/models/tiny-test")
  tiny.write(root .. "/models/tiny-test")
  local s2 = start({"--out", root .. "/out", "--host", "127.0.0.2", "--token", "sesame", "--models", root .. "/models"},
    "tok2")
  t.eq(s2.token, nil, "a given token is not printed")
  local code, v = api(s2, "/api/models", {headers = {"Authorization: Bearer sesame"}})
  t.eq(code, 200)
  t.eq(v.models[1], "tiny-test")
  code, v = api(s2, "/api/models/tiny-test", {headers = {"Authorization: Bearer sesame"}})
  t.eq(v.defaults.width, 32)
  t.eq((curl(s2, "/api/models", {headers = {"Authorization: Bearer sesam"}})), 401)
  uv.kill(s2.pid, "sigint")
  s2.wait()
end)

if os.getenv("KEEP") then print(root) else os.execute("rm -rf " .. q(root)) end
t.done()
