-- The command `zoe storyboard`, run as a child process: output and exit status, errors as
-- one line, the data-only sandbox and --trusted, SIGKILL at several moments then resume
-- (no finished shot lost, no damaged file, the same final bytes as a run never
-- interrupted), and --watch ended by Ctrl-C (SIGINT).
local t = require "testlib"
local zoe = require "zoe"
local tiny = require "tiny_wan"
local files = require "zoe.storyboard.files"
local uv = zoe.uv

local ZOE = os.getenv("ZOE_TEST_ZOE") or arg[-1]
local root = os.tmpname()
os.remove(root)
files.mkdir_p(root .. "/model")
tiny.write(root .. "/model")

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
local function read(path) return files.read(path) end
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Starts `zoe storyboard ARGS` with its output in files; returns the process and its end.
local function start(args, name)
  local cmd = {"exec", q(ZOE), "-q", "storyboard"}
  for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
  local outp, errp = ("%s/%s.out"):format(root, name), ("%s/%s.err"):format(root, name)
  cmd[#cmd + 1] = ("> %s 2> %s"):format(q(outp), q(errp))
  local ended = {}
  local handle = uv.spawn("/bin/sh", {args = {"-c", table.concat(cmd, " ")}}, function(code, signal)
    ended.code, ended.signal = code, signal
    if ended.wake then ended.wake() end
  end)
  assert(handle, "cannot start " .. ZOE)
  local proc = {handle = handle, ended = ended}
  function proc.wait()
    if ended.code == nil then zoe.await(function(cb) ended.wake = cb end) end
    handle:close()
    return ended.code, ended.signal, read(outp) or "", read(errp) or ""
  end
  return proc
end

local function run(args, name) return start(args, name).wait() end

-- Waits (up to 60 s) until cond() holds.
local function until_(cond, what)
  for _ = 1, 6000 do
    if cond() then return end
    zoe.sleep(10)
  end
  error("timed out waiting for " .. what)
end

-- The committed cache entries of a folder.
local function entries(dir)
  local n = 0
  for _, name in ipairs(files.list(dir .. "/cache")) do
    if name:match("^[%x]+%.mp4$") then n = n + 1 end
  end
  return n
end

local board = zoe.json.encode(zoe.storyboard{
  title = "cli board", model = root .. "/model", size = {32, 32}, fps = 8, style = "on a white background",
  characters = {hero = "a red circle", foe = "a blue square"},
  shots = {
    {prompt = "{hero} moving left", frames = 5, seed = 1},
    {prompt = "{hero} moving right", frames = 5, continuity = "continue"},
    {prompt = "{foe} moving up", frames = 9, seed = 2},
    {prompt = "{foe} and {hero}", frames = 5, seed = 3, transition = {"crossfade", frames = 2}},
    {prompt = "{foe} moving down", frames = 5, continuity = "continue"},
  },
})
local path = root .. "/board.json"
write(path, board)
local ref = root .. "/ref"
local reference -- final.mp4 of a run never interrupted

t.test("zoe storyboard renders a board and says what it made", function()
  local code, _, out, err = run({path, "--out", ref}, "ref")
  t.eq(code, 0, "exit status (stderr: " .. err .. ")")
  t.ok(out:find("storyboard: 5 shots (5 rendered, 0 from the cache) -> " .. ref .. "/final.mp4 (25 frames)", 1, true), out)
  t.ok(out:find("shot 03  rendered   9 frames", 1, true), out)
  reference = read(ref .. "/final.mp4")
  t.eq(zoe.video.info(ref .. "/final.mp4").frames, 25, "29 frames, less 2 shared by continued shots and 2 cross-faded")
  code, _, out = run({path, "--out", ref}, "again")
  t.eq(code, 0)
  t.ok(out:find("(0 rendered, 5 from the cache)", 1, true), out)
  t.ok(read(ref .. "/final.mp4") == reference, "the same final")
end)

t.test("errors: one line naming the shot and field, status 1; bad arguments, status 2", function()
  write(root .. "/bad.json", board:gsub('"frames":9', '"frames":0'))
  local code, _, _, err = run({root .. "/bad.json", "--out", root .. "/bad"}, "bad")
  t.eq(code, 1)
  t.eq(err, ("zoe storyboard: %s/bad.json: shot 3: field 'frames' must be > 0, got 0\n"):format(root))
  t.eq(files.exists(root .. "/bad"), false, "nothing written")
  code, _, _, err = run({path, "--frobnicate"}, "usage")
  t.eq(code, 2)
  t.ok(err:find("unknown option '--frobnicate'", 1, true), err)
  code, _, _, err = run({path, "--jobs"}, "novalue")
  t.eq(code, 2)
  t.ok(err:find("--jobs needs a value", 1, true), err)
  code, _, _, err = run({path, "--jobs=0"}, "nojobs")
  t.eq(code, 2)
  t.ok(err:find("--jobs takes a whole number >= 1", 1, true), err)
  code, _, _, err = run({}, "none")
  t.eq(code, 2)
  t.ok(err:find("which storyboard?", 1, true), err)
end)

t.test("a .lua board is data unless --trusted", function()
  local marker = root .. "/ran"
  write(root .. "/code.lua", ([[
    os.execute("touch %s")
    return {model = %q, size = {32, 32}, shots = {{prompt = "a red circle", frames = 1, seed = 1}}}
  ]]):format(marker, root .. "/model"))
  local code, _, _, err = run({root .. "/code.lua", "--out", root .. "/code"}, "code")
  t.eq(code, 1)
  t.ok(err:find("(global 'os')", 1, true) and err:find("--trusted", 1, true), err)
  t.eq(files.exists(marker), false, "the code never ran")
  code, _, _, err = run({root .. "/code.lua", "--out", root .. "/code", "--trusted"}, "trusted")
  t.eq(code, 0, err)
  t.eq(files.exists(marker), true, "trusted: it ran")
  t.eq(zoe.video.info(root .. "/code/final.mp4").frames, 1)
end)

-- Every video left in the folder reads whole: nothing half-written is ever under a real name.
local function all_videos_whole(dir)
  local n = 0
  for _, sub in ipairs {"cache", "shots"} do
    for _, name in ipairs(files.list(dir .. "/" .. sub)) do
      if name:match("%.mp4$") and name:sub(1, 1) ~= "." then
        local p = dir .. "/" .. sub .. "/" .. name
        local info = zoe.video.info(p)
        t.eq(zoe.video.read(p, {dtype = "u8"}):size(1), info.frames, p)
        t.ok(info.frames == 5 or info.frames == 9, p)
        n = n + 1
      end
    end
  end
  return n
end

local function kill_and_resume(name, when, after_kill)
  local dir = root .. "/" .. name
  local p = start({path, "--out", dir}, name)
  when(dir)
  p.handle:kill("sigkill")
  local _, signal = p.wait()
  t.eq(signal, 9, "killed by SIGKILL")
  t.eq(files.exists(dir .. "/final.mp4"), false, "the kill came before the end")
  local finished = files.exists(dir) and entries(dir) or 0
  if files.exists(dir) then all_videos_whole(dir) end
  if after_kill then after_kill(dir, finished) end
  local code, _, out, err = run({path, "--out", dir}, name .. "-resume")
  t.eq(code, 0, "resume: " .. err)
  t.ok(out:find(("(%d rendered, %d from the cache)"):format(5 - finished, finished), 1, true),
    ("%d finished before the kill: %s"):format(finished, out))
  t.ok(read(dir .. "/final.mp4") == reference, "the same final bytes as the run never interrupted")
  for _, sub in ipairs {"", "/cache", "/shots"} do
    for _, n in ipairs(files.list(dir .. sub)) do
      t.ok(not n:match("%.tmp$") and not n:match("^%..*render"), "no temporary left: " .. sub .. "/" .. n)
    end
  end
  return finished
end

t.test("SIGKILL as it starts, then resume", function()
  kill_and_resume("kill0", function() zoe.sleep(20) end)
end)

t.test("SIGKILL after the first shot's file appears, then resume", function()
  local finished = kill_and_resume("kill1", function(dir)
    until_(function() return files.exists(dir .. "/shots/01.mp4") end, "shots/01.mp4")
  end)
  t.ok(finished >= 1 and finished < 5, "killed mid-run with " .. finished .. " shots done")
end)

t.test("SIGKILL with three shots done, then resume", function()
  local finished = kill_and_resume("kill3", function(dir)
    until_(function() return files.exists(dir .. "/cache") and entries(dir) >= 3 end, "three cache entries")
  end, function(dir)
    -- and a stale lock of the killed process is there: it is taken over
    t.ok(files.exists(dir .. "/.lock"), "the killed run's lock")
  end)
  t.ok(finished >= 3 and finished < 5, "killed with " .. finished .. " shots done")
end)

t.test("--watch renders again on a change, and Ctrl-C ends it", function()
  local wpath, dir = root .. "/watched.json", root .. "/watched"
  write(wpath, board)
  local p = start({wpath, "--out", dir, "--watch"}, "watch")
  until_(function() return files.exists(dir .. "/manifest.json") end, "the first render")
  local first = zoe.json.decode(read(dir .. "/manifest.json"))
  t.eq(first.rendered, 5)
  zoe.sleep(50)
  write(wpath, board:gsub('"seed":2', '"seed":7')) -- shot 3
  until_(function()
    local m = zoe.json.decode(read(dir .. "/manifest.json"))
    return m.final.hash ~= first.final.hash
  end, "the second render")
  local second = zoe.json.decode(read(dir .. "/manifest.json"))
  t.eq(second.rendered, 1, "only shot 3")
  t.eq(second.shots[3].rendered, true)
  p.handle:kill("sigint")
  local code, _, out, err = p.wait()
  t.eq(code, 130, "Ctrl-C: " .. err)
  t.ok(out:find("watching " .. wpath, 1, true), out)
  -- the documented way out is not an error: what it cancels, then that watching stopped
  t.ok(err:find("Ctrl-C: canceling job 1 (storyboard)", 1, true), err)
  t.ok(err:find("zoe storyboard: stopped watching " .. wpath .. "\n$"), err)
  t.ok(not err:find("%.lua:%d+:") and not err:find("canceled\n"), "no error: " .. err)
end)

os.execute(("rm -rf %s"):format(q(root)))
t.done()
