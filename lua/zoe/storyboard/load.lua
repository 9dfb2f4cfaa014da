-- Reading a storyboard file. Storyboards get shared, so by default none can run code:
--   .json   decoded as data
--   .lua    run with no io, os, require, load, dofile, setmetatable, pcall or debug: only
--           pure functions (pairs, ipairs, math, string, table, ...) and zoe.storyboard{...},
--           which returns its table; text only (no bytecode); stopped after LIMIT instructions
-- A trusted load ({trusted = true}, the command's --trusted) runs a .lua file as a script.
local zoe = require "zoe"
local files = require "zoe.storyboard.files"
local format = require "zoe.storyboard.format"

local M = {}

M.LIMIT = 10000000 -- instructions a data-only file may run (building its tables takes far fewer)
M.MEMORY = 256 * 2 ^ 20 -- bytes of Lua memory it may grow by (a storyboard is a small table)

local TRUST_HINT = "a storyboard loads as data, with no io, os, require or load; if you trust this file, " ..
  "load it with --trusted (zoe.storyboard.load(path, {trusted = true}))"

local function line_col(text, byte)
  local line, col = 1, 1
  for i = 1, math.min(byte, #text) - 1 do
    if text:byte(i) == 10 then line, col = line + 1, 1 else col = col + 1 end
  end
  return line, col
end

local function decode_json(path, text)
  local ok, v = pcall(zoe.json.decode, text)
  if not ok then
    local msg = tostring(v)
    local byte = tonumber(msg:match("near byte (%d+)"))
    if byte then
      local line, col = line_col(text, byte) -- "near byte N" counts from 1 already
      msg = ("%s (line %d, column %d)"):format(msg, line, col)
    end
    error(("%s: %s"):format(path, msg), 0)
  end
  return v
end

-- What a data-only file may call: pure functions that reach nothing outside it, copied so
-- that the file cannot change the real ones. No pcall (it could catch the instruction
-- limit), no setmetatable (a __gc would run later, outside the limit), no string.dump.
local function data_env()
  local env = {zoe = {storyboard = function(t) return t end}}
  for _, name in ipairs {"ipairs", "pairs", "next", "select", "type", "tostring", "tonumber", "error", "assert"} do
    env[name] = _G[name]
  end
  for _, lib in ipairs {"math", "string", "table", "utf8"} do
    env[lib] = {}
    for k, v in pairs(_G[lib]) do env[lib][k] = v end
  end
  env.string.dump = nil
  return env
end

-- The data a .lua file returns, run with nothing to reach outside it.
local function run_as_data(path, text)
  local env = data_env()
  local chunk, err = load(text, "@" .. path, "t", env)
  if not chunk then error(err, 0) end
  local co = coroutine.create(chunk)
  local count = 0
  debug.sethook(co, function()
    count = count + 1000
    if count > M.LIMIT then error(("still running after %d instructions"):format(M.LIMIT), 2) end
  end, "", 1000)
  -- memory: every allocation is capped while it runs (a hook could not stop s = s .. s)
  local ok, v = zoe.memory_limited(M.MEMORY, coroutine.resume, co)
  if not ok then
    local msg = tostring(v)
    if msg == "not enough memory" then msg = ("using more than %d MB of memory"):format(M.MEMORY // 2 ^ 20) end
    if msg:find("(global '", 1, true) or msg:find("still running after", 1, true) or msg:find(" MB of memory", 1, true) then
      msg = ("%s; %s"):format(msg, TRUST_HINT)
    end
    error(msg:find(path, 1, true) and msg or ("%s: %s"):format(path, msg), 0)
  end
  return v
end

local function run_trusted(path)
  local env = setmetatable({zoe = zoe}, {__index = _G})
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error(err, 0) end
  return chunk()
end

function M.load(path, opts)
  opts = opts or {}
  if type(path) ~= "string" then error("zoe.storyboard.load: give the path of a .lua or .json file", 3) end
  local ext = path:match("%.([%w]+)$")
  if ext ~= "lua" and ext ~= "json" then error(("%s: a storyboard is a .lua or a .json file"):format(path), 0) end
  local text, err = files.read(path)
  if not text then error(("cannot read the storyboard %s: %s"):format(path, err), 0) end
  local value
  if ext == "json" then
    value = decode_json(path, text)
  elseif opts.trusted then
    value = run_trusted(path)
  else
    value = run_as_data(path, text)
  end
  if type(value) ~= "table" then
    error(("%s: a storyboard must %s a table of fields, got %s"):format(path, ext == "json" and "be" or "return", type(value)), 0)
  end
  local ok, board = pcall(format.normalize, value)
  if not ok then error(("%s: %s"):format(path, board), 0) end
  return board
end

return M
