-- The assembled video and the contact sheet of a storyboard, made from the shot files.
--
--   assemble.final(parts, path, {fps =, metadata =}) -> frames written
--     parts: {file =, skip_first =, fade_in =, fade_out =} per shot, in order
--   assemble.contact(parts, path) with parts {file =, label =}
--
-- Only the files are read (never frames held from rendering), so the same shot files give
-- the same final video, byte for byte, however and whenever they were made. Frames stay
-- u8 as decoded; only crossfades compute. A continued shot starts on the frame the one
-- before ends on, so its first frame is left out; a crossfade of n frames blends the last
-- n frames of one shot with the first n of the next, frame k weighing k/(n+1) on the new
-- shot. Shots stream through: at most one shot and the tail of the one before are in memory.
local zoe = require "zoe"
local T = zoe.tensor

local M = {}

-- Frames k = 1..n of a crossfade: tail * (1 - a) + head * a, a = k / (n + 1), rounded.
local function blend(tail, head)
  local n = head:size(1)
  local out = {}
  for k = 1, n do
    local a = k / (n + 1)
    local mix = tail:narrow(1, k, 1):to("f32") * (1 - a) + head:narrow(1, k, 1):to("f32") * a
    out[k] = (mix + 0.5):to("u8")
  end
  return T.cat(out, 1)
end

function M.final(parts, path, opts)
  local written = 0
  local w <close> = zoe.video.writer(path, {fps = opts.fps, metadata = opts.metadata})
  local function put(frames)
    if frames:size(1) > 0 then
      w:write(frames:contiguous())
      written = written + frames:size(1)
    end
  end
  local tail
  for i, p in ipairs(parts) do
    local v = zoe.video.read(p.file, {dtype = "u8"}) -- [T, H, W, 3]
    local n = v:size(1)
    local first = p.skip_first and 2 or 1
    if p.fade_in > 0 then
      if not tail then error(("shot %d: a crossfade with no shot before it"):format(i), 0) end
      put(blend(tail, v:narrow(1, first, p.fade_in)))
      first = first + p.fade_in
    end
    local last = n - p.fade_out
    if last >= first then put(v:narrow(1, first, last - first + 1)) end
    tail = p.fade_out > 0 and v:narrow(1, n - p.fade_out + 1, p.fade_out):contiguous() or nil
  end
  w:close()
  return written
end

-- One row per shot, captioned. Big videos are read small (the sheet's cells are small).
function M.contact(parts, path)
  local videos, labels = {}, {}
  for i, p in ipairs(parts) do
    local info = zoe.video.info(p.file)
    local opts = {dtype = "u8"}
    if info.width > 192 then
      opts.width, opts.height = 192, math.max(2, math.floor(info.height * 192 / info.width / 2 + 0.5) * 2)
    end
    videos[i] = zoe.video.read(p.file, opts)
    labels[i] = p.label
  end
  zoe.video.contact_sheet(videos, path, {labels = labels})
end

return M
