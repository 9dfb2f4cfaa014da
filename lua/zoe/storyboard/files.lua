-- Small file helpers for storyboards, on zoe.uv (luv): every file that others may read
-- is written under a temporary name in the same folder and renamed when complete, so a
-- crash (even SIGKILL) leaves either the old file or the new one, never half of one.
local zoe = require "zoe"

local M = {}

local function uv() return zoe.uv end

local counter = 0
local function pid() return math.tointeger(uv().os_getpid()) end

function M.exists(path) return uv().fs_stat(path) ~= nil end

function M.stat(path) return uv().fs_stat(path) end

function M.dirname(path) return path:match("^(.*)/[^/]*$") or "." end

function M.basename(path) return path:match("([^/]*)$") end

-- "dir/.name.PID-N.tmp": the same folder as the file, so the rename is atomic.
function M.temp_name(path)
  counter = counter + 1
  return ("%s/.%s.%d-%d.tmp"):format(M.dirname(path), M.basename(path), pid(), counter)
end

function M.mkdir_p(path)
  local sofar = path:sub(1, 1) == "/" and "" or nil
  for part in path:gmatch("[^/]+") do
    sofar = sofar and (sofar .. "/" .. part) or part
    local ok, err, code = uv().fs_mkdir(sofar, 511)
    if not ok and code ~= "EEXIST" then error(("cannot make the folder %s: %s"):format(sofar, err), 0) end
  end
  local st = uv().fs_stat(path)
  if not st or st.type ~= "directory" then error(("%s is not a folder"):format(path), 0) end
end

function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

function M.write_atomic(path, text)
  local tmp = M.temp_name(path)
  local fd, err = uv().fs_open(tmp, "w", 438)
  if not fd then error(("cannot write %s: %s"):format(path, err), 0) end
  local ok, werr = uv().fs_write(fd, text, 0)
  uv().fs_close(fd)
  if not ok then
    uv().fs_unlink(tmp)
    error(("cannot write %s: %s"):format(path, werr), 0)
  end
  M.rename(tmp, path)
end

function M.rename(from, to)
  local ok, err = uv().fs_rename(from, to)
  if not ok then error(("cannot rename %s to %s: %s"):format(from, to, err), 0) end
end

function M.remove(path) uv().fs_unlink(path) end

-- The names in a folder (none when it does not exist).
function M.list(dir)
  local out = {}
  local req = uv().fs_scandir(dir)
  while req do
    local name = uv().fs_scandir_next(req)
    if not name then break end
    out[#out + 1] = name
  end
  table.sort(out)
  return out
end

-- Whether two paths are the same file (a hard link of it).
function M.same_file(a, b)
  local sa, sb = uv().fs_stat(a), uv().fs_stat(b)
  return sa and sb and sa.ino == sb.ino and sa.dev == sb.dev
end

-- 'to' becomes a hard link of 'from' (a copy where links are not possible), atomically.
function M.link_or_copy(from, to)
  if M.same_file(from, to) then return end
  local tmp = M.temp_name(to)
  if not uv().fs_link(from, tmp) then
    local ok, err = uv().fs_copyfile(from, tmp)
    if not ok then error(("cannot copy %s to %s: %s"):format(from, to, err), 0) end
  end
  M.rename(tmp, to)
end

-- An exclusive lock on a folder: dir/.lock holds our process id. A lock left by a process
-- that no longer runs (killed) is taken over. Returns a value to close (<close>).
function M.lock(dir)
  local path = dir .. "/.lock"
  for _ = 1, 3 do
    local fd = uv().fs_open(path, "wx", 438)
    if fd then
      uv().fs_write(fd, tostring(pid()), 0)
      uv().fs_close(fd)
      return setmetatable({}, {__close = function() uv().fs_unlink(path) end})
    end
    local other = tonumber(M.read(path) or "")
    if other == pid() then
      error(("%s is already being rendered by this process"):format(dir), 0)
    end
    local alive = other and (uv().kill(other, 0) or select(3, uv().kill(other, 0)) == "EPERM")
    if alive then
      error(("%s is being rendered by process %d (remove %s if that is wrong)"):format(dir, other, path), 0)
    end
    uv().fs_unlink(path) -- stale: its process is gone
  end
  error(("cannot lock %s (%s)"):format(dir, path), 0)
end

return M
