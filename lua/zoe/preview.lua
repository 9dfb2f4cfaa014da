-- zoe.preview: what a run is making, while it runs. A family gives a linear latent -> RGB
-- projection (model:preview(z)); applied to a step's x0 estimate it shows a small video at
-- latent resolution for almost no work, every few steps.
--
--   preview.project(z, {factors = {{r, g, b} per latent channel}, bias = {r, g, b}})
--        -> [3, F, h, w] in [-1, 1]
--   preview.sheet(frames, path, label)   a one-row contact sheet, replaced atomically
--   preview.emit(event)                  to the running job's "preview" listeners
--
-- A preview is an event a job emits, as progress is: job:on("preview", fn(event)) sees
-- {frames =, step =, steps =, sigma =, path =} and job:last("preview") the latest (the REPL's
-- :jobs shows its path). The pipeline makes them (lua/zoe/pipeline.lua: on_preview,
-- preview_every, preview).
local zoe = require "zoe"
local T = zoe.tensor

local M = {}

-- The projection as tensors, made once per table.
local made = setmetatable({}, {__mode = "k"})

local function tensors(proj)
  local t = made[proj]
  if t then return t end
  local f, b = proj.factors, proj.bias
  if type(f) ~= "table" or type(f[1]) ~= "table" or #f[1] ~= 3 then
    error("preview: the projection's factors must be one {r, g, b} per latent channel", 3)
  end
  local w = T.tensor(f):t():contiguous() -- [3, C]
  local bias = T.tensor(b or {0, 0, 0}):view(3, 1)
  t = {w = w, bias = bias, channels = #f}
  made[proj] = t
  return t
end

-- z [C, F, h, w] (the sampler's latent) -> [3, F, h, w] in [-1, 1]
function M.project(z, proj)
  local t = tensors(proj)
  local c, f, h, w = table.unpack(z:shape())
  if c ~= t.channels then
    error(("preview: the latent has %d channels, the projection takes %d"):format(c, t.channels), 2)
  end
  local rgb = t.w:matmul(z:contiguous():view(c, f * h * w)) + t.bias
  return rgb:clamp(-1, 1):view(3, f, h, w)
end

-- A one-row contact sheet of the preview's frames (at most 8, evenly taken), captioned;
-- written under a temporary name and renamed, so a viewer never sees half a file.
function M.sheet(frames, path, label)
  local n = frames:size(2)
  zoe.video.contact_sheet({frames}, path, {cols = math.min(n, 8), every = math.max(1, math.ceil(n / 8)),
                                           labels = label and {label} or nil})
end

-- The preview path of an output: out/NAME.mp4 -> out/NAME.preview.png
function M.path_for(out)
  if type(out) ~= "string" then return nil end
  return (out:gsub("%.[^./]*$", "")) .. ".preview.png"
end

-- To the running job's "preview" listeners (nothing outside a job).
function M.emit(event)
  if zoe.emit then zoe.emit("preview", event) end
end

return M
