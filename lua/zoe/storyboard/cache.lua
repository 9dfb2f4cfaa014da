-- The shot cache of a storyboard's output folder: DIR/cache/<key>.mp4 and <key>.json.
--
-- A shot renders to a staging name (cache/.<key>.render-N.mp4, itself written under a
-- temporary name by the video writer), then its record goes to <key>.json, and last the
-- video is renamed to <key>.mp4: that rename is the commit. An entry counts only when both
-- files are there, the record names the key, and the video's hash is the one recorded, so
-- a crash at any moment leaves either a whole entry or nothing that is used.
local zoe = require "zoe"
local files = require "zoe.storyboard.files"

local Cache = {}
Cache.__index = Cache

local M = {}

-- Videos hashed in this process: path -> stamp of the version that matched its record.
local verified = {}

-- What identifies a version of a file, so it is hashed again only when it changed.
local function stamp(st) return ("%d:%d:%d.%d"):format(st.ino, st.size, st.mtime.sec, st.mtime.nsec) end

function M.open(dir)
  local self = setmetatable({dir = dir .. "/cache", staged = 0}, Cache)
  files.mkdir_p(self.dir)
  return self
end

function Cache:video(key) return self.dir .. "/" .. key .. ".mp4" end
function Cache:record_path(key) return self.dir .. "/" .. key .. ".json" end

-- Temporary files of runs that were killed: every name starting with "." (staging videos,
-- their records, the writers' temporaries). Call with the folder locked.
function Cache:clean()
  for _, name in ipairs(files.list(self.dir)) do
    if name:sub(1, 1) == "." then files.remove(self.dir .. "/" .. name) end
  end
end

-- The entry of 'key', or nil. Hashes the video once per process and file version.
function Cache:lookup(key)
  local video = self:video(key)
  local st = files.stat(video)
  if not st then return nil end
  local text = files.read(self:record_path(key))
  if not text then return nil end
  local ok, rec = pcall(zoe.json.decode, text)
  if not ok or type(rec) ~= "table" or rec.key ~= key or type(rec.output_hash) ~= "string" then return nil end
  if verified[video] ~= stamp(st) then
    if zoe.hash_file(video) ~= rec.output_hash then return nil end -- damaged or edited in place
    verified[video] = stamp(st)
  end
  rec.file = video
  return rec
end

-- A fresh staging path for rendering 'key'.
function Cache:staging(key)
  self.staged = self.staged + 1
  return ("%s/.%s.render-%d-%d.mp4"):format(self.dir, key, math.tointeger(zoe.uv.os_getpid()), self.staged)
end

-- Makes the rendered staging video the entry of 'key'; returns the entry.
function Cache:commit(key, staging, entry)
  entry.key = key
  entry.output_hash = zoe.hash_file(staging)
  files.remove((staging:gsub("%.mp4$", ".json"))) -- the pipeline's record: it is in ours
  files.write_atomic(self:record_path(key), zoe.json.encode(entry, {indent = true}) .. "\n")
  local video = self:video(key)
  files.rename(staging, video)
  local st = files.stat(video)
  verified[video] = stamp(st)
  entry.file = video
  return entry
end

return M
