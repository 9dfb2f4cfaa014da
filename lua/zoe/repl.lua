-- zoe.repl: what the REPL does with a line. runtime/lua/lrepl.c reads the
-- terminal and calls R.ready, R.line, R.complete, R.interrupt and R.eof; it
-- gives us 'io': prompt(on, more), history(text), print(text, to_stderr),
-- clear_line(), focus(job_id) (whose progress the display shows) and stop().
--
-- Every chunk runs as a job, so the loop goes on while it runs, and a
-- generation started with zoe.spawn keeps running while you type.
local zoe = require "zoe"

local M = {}

local HELP = [[
Lua 5.4 with 'zoe' loaded. A line runs as a job; an expression prints its value.
  zoe.spawn(fn, ...)   run fn in the background (a job); the prompt stays free
  job:wait()           its results      job:cancel()    stop it at its next op
  job:on("progress", fn)                zoe.progress{stage = "x", step = i, steps = n}
  zoe.sleep(ms)        zoe.uv          libuv (luv) on the same loop
Commands:
  :help                this text
  :jobs                the jobs still running, with their progress
  :cancel N            cancel job N (:cancel alone cancels them all)
  :quit                leave (as Ctrl-D does; running jobs are waited for)
Keys: Tab completes globals and fields (zoe.tensor.ze<Tab>, t:ma<Tab>);
Ctrl-C cancels the running line, or clears the input; twice cancels background jobs.]]

-- A value as the REPL shows it: strings plain at the top, tables briefly, the rest by tostring.
local function show(v, depth, seen)
  local t = type(v)
  if t == "string" then return depth > 0 and string.format("%q", v) or v end
  local mt = getmetatable(v)
  if t ~= "table" or (type(mt) == "table" and mt.__tostring) then return tostring(v) end
  if depth >= 2 or seen[v] then return tostring(v) end
  seen[v] = true
  local parts, count, n = {}, 0, #v
  for i = 1, n do
    count = count + 1
    if count > 20 then parts[#parts + 1] = "..." break end
    parts[#parts + 1] = show(v[i], depth + 1, seen)
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    count = count + 1
    if count > 20 then parts[#parts + 1] = "..." break end
    local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. show(k, 1, seen) .. "]"
    parts[#parts + 1] = key .. " = " .. show(v[k], depth + 1, seen)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function M.show(v) return show(v, 0, {}) end

-- "job 2 (stdin:1), at denoise 3/20, in matmul (compute thread)"
function M.describe(job)
  local i = job:info()
  local s = ("job %d (%s)"):format(i.id, i.name)
  if i.stage then s = ("%s, at %s %d/%d"):format(s, i.stage, i.step, i.steps) end
  if i.waiting ~= "" then s = s .. ", " .. i.waiting end
  return s
end

local function fmt_time(s)
  if s < 60 then return ("%.1fs"):format(s) end
  return ("%d:%02d"):format(s // 60, math.floor(s % 60))
end

function M.jobs_table()
  local lines = {}
  for _, job in ipairs(zoe.jobs()) do
    local i = job:info()
    local doing = i.waiting
    if i.stage then
      doing = ("%s %d/%d"):format(i.stage, i.step, i.steps)
      if i.rate and i.rate > 0 then doing = doing .. (" %.2f it/s"):format(i.rate) end
      if i.eta and i.eta >= 0 and i.step < i.steps then doing = doing .. " ETA " .. fmt_time(i.eta) end
      if i.waiting ~= "" then doing = doing .. " (" .. i.waiting .. ")" end
    end
    lines[#lines + 1] = ("%4d  %-8s %8s  %-16s %s"):format(i.id, i.status, fmt_time(i.elapsed), i.name, doing)
    local shown = job.last and job:last("preview") -- what it is making (lua/zoe/preview.lua)
    if type(shown) == "table" and type(shown.path) == "string" then
      lines[#lines + 1] = ("%4s  preview: %s (step %s)"):format("", shown.path, tostring(shown.step))
    end
  end
  if #lines == 0 then return "no jobs running" end
  return ("%4s  %-8s %8s  %-16s %s\n"):format("id", "status", "time", "name", "doing") .. table.concat(lines, "\n")
end

-- ---- completion ----

local KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

-- Names reachable from v: its keys, and through its metatable (__index tables, 'methods').
local function fields(v, out, depth)
  if depth > 3 then return end
  if type(v) == "table" then
    for k in next, v do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") then out[k] = out[k] or rawget(v, k) or true end
    end
  end
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return end
  if type(rawget(mt, "methods")) == "table" then fields(rawget(mt, "methods"), out, depth + 1) end
  if type(rawget(mt, "__index")) == "table" then fields(rawget(mt, "__index"), out, depth + 1) end
end

-- Modules of zoe that load on first use: lua/zoe/*.lua next to this file.
local function lazy_modules(out)
  local path = package.searchpath("zoe.repl", package.path)
  local ok, uv = pcall(function() return zoe.uv end)
  if not path or not ok or not uv then return end
  local dir = path:match("^(.*)/[^/]*$")
  local req = uv.fs_scandir(dir)
  while req do
    local name, kind = uv.fs_scandir_next(req)
    if not name then break end
    local mod = name:match("^([%a_][%w_]*)%.lua$") or (kind == "directory" and name:match("^[%a_][%w_]*$"))
    if mod and mod ~= "init" and mod ~= "repl" then out[mod] = out[mod] or true end
  end
end

-- 'word' is what precedes the cursor: "zoe.ten", "t:ma", "pri". Returns whole words that complete it.
function M.complete(word)
  local head, sep, part = word:match("^(.-)([%.:])([%w_]*)$")
  local names = {}
  if head then
    if not head:match("^[%a_][%w_]*[%w_%.]*$") then return {} end
    local v = _G
    for name in head:gmatch("[^%.]+") do
      local ok, x = pcall(function() return v[name] end)
      if not ok or x == nil then return {} end
      v = x
    end
    fields(v, names, 0)
    if v == zoe then lazy_modules(names) end
  else
    head, sep, part = "", "", word
    fields(_G, names, 0)
    for _, k in ipairs(KEYWORDS) do names[k] = true end
  end
  local out = {}
  for k, val in pairs(names) do
    if k:sub(1, #part) == part and (sep ~= ":" or type(val) == "function") then
      out[#out + 1] = head .. sep .. k
    end
  end
  table.sort(out)
  return out
end

-- ---- the REPL ----

-- Cancel a job, saying so; err: on the error stream.
local function cancel(io, job, err)
  local what = M.describe(job)
  if job:cancel() then io.print("canceling " .. what, err) end
end

-- What a finished line gave: its values, "canceled", or its error's traceback.
local function show_outcome(io, job)
  local st = job:status()
  if st == "done" then
    local r = table.pack(job:result())
    if r.n > 0 then
      local parts = {}
      for i = 1, r.n do parts[i] = M.show(r[i]) end
      io.print(table.concat(parts, "\t"))
    end
  elseif st == "canceled" then
    io.print("canceled", true)
  else -- an error without a position (a bad setting) in one line, as zoe prints it
    local err = tostring(select(2, job:result()))
    local debug = (os.getenv("ZOE_DEBUG") or "0") ~= "0"
    io.print(not debug and not err:match("^[^\n]-:%d+:") and err or job:info().traceback or err, true)
  end
end

-- The REPL's :commands (R.eof ends it).
local function commands_of(io, R)
  local commands = {}
  function commands.help() io.print(HELP) end
  function commands.jobs() io.print(M.jobs_table()) end
  function commands.cancel(arg)
    local id = tonumber(arg)
    local any = false
    for _, job in ipairs(zoe.jobs()) do
      if not id or job:id() == id then
        cancel(io, job)
        any = true
      end
    end
    if not any then io.print(id and ("no job " .. id) or "no jobs running", true) end
  end
  function commands.quit() R.eof() end
  commands.q, commands.exit = commands.quit, commands.quit
  return commands
end

-- A chunk compiled as lua.c does: as an expression first, then as statements. nil and
-- "incomplete" when it needs more lines.
local function compile(chunk)
  local fn, err = load("return " .. chunk, "=stdin", "t")
  if not fn then fn, err = load(chunk, "=stdin", "t") end
  if not fn and err:sub(-5) == "<eof>" then return nil, "incomplete" end
  return fn, err
end

function M.start(io)
  local R = {status = 0}
  local buffer  -- an incomplete chunk, waiting for more lines
  local nlines = 0
  local fg      -- the job running the current line
  local done = false

  local function prompt()
    if not done then io.prompt(true, buffer ~= nil) end
  end

  function R.ready()
    _G.zoe = zoe
    io.focus(-1)
    if io.tty then
      io.print(("Zoetrope %s (%s) -- zoe is loaded; :help for help, Ctrl-D exits"):format(zoe.version, _VERSION))
    end
    prompt()
  end

  function R.finished(job)
    fg = nil
    io.focus(-1)
    show_outcome(io, job)
    prompt()
  end

  local commands = commands_of(io, R)

  function R.line(line)
    if not buffer then
      local cmd, arg = line:match("^%s*:(%a+)%s*(.-)%s*$")
      if cmd then
        io.history(line)
        local f = commands[cmd]
        if f then f(arg) else io.print(("unknown command :%s (:help lists them)"):format(cmd), true) end
        prompt()
        return
      end
      if line:match("^%s*$") then prompt() return end
    end
    local chunk = buffer and (buffer .. "\n" .. line) or line
    local fn, err = compile(chunk)
    if err == "incomplete" then
      buffer = chunk
      prompt()
      return
    end
    buffer = nil
    io.history(chunk)
    if not fn then
      io.print(err, true)
      prompt()
      return
    end
    nlines = nlines + 1
    io.prompt(false)
    fg = zoe.spawn(fn)
    fg:name("stdin:" .. nlines)
    io.focus(fg:id())
    fg:on("done", R.finished)
  end

  function R.complete(word) return M.complete(word) end

  -- Ctrl-C: cancels the running line; at the prompt it clears the input, and a
  -- second press within 2 s cancels the background jobs. Never the REPL itself.
  function R.interrupt(presses)
    if fg then return cancel(io, fg, true) end
    io.clear_line()
    if buffer then
      buffer = nil
      prompt()
    end
    local jobs = zoe.jobs()
    if #jobs == 0 then
      if not done then io.print("(Ctrl-D or :quit exits)") end
    elseif presses >= 2 or done then
      for _, job in ipairs(jobs) do cancel(io, job, true) end
    else
      io.print(("%d job%s running (:jobs lists them): Ctrl-C again within 2 s cancels them")
        :format(#jobs, #jobs > 1 and "s" or ""), true)
    end
  end

  function R.eof()
    if done then return end
    done = true
    io.stop()
    if io.tty then io.print("\n") end
    local n = #zoe.jobs()
    if n > 0 then io.print(("waiting for %d job%s (Ctrl-C cancels)"):format(n, n > 1 and "s" or ""), true) end
  end

  return R
end

return M
