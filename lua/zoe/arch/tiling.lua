-- Spatial tiling with overlap blending, for any family's VAE: the last two dims of the
-- input (height, width) are cut into tiles that overlap, each goes through the family's
-- own function (Wan: a whole decode over every frame, with the tile's own causal caches),
-- and the results are blended with weights that ramp linearly across each overlap, as
-- diffusers and ComfyUI blend Wan's tiles. A tile's border, where its receptive field was
-- cut, weighs least, and the weights of two neighbors sum to 1, so a seam is a crossfade.
-- The peak is one tile's plus the result, whatever the frame size.
--
--   local tiling = require "zoe.arch.tiling"
--   local plan = tiling.plan(h, w, {area = A, overlap = o, align = a})  -- {tile = {th, tw}, overlap = o}
--   y = tiling.map(x, fn, {tile = {th, tw}, overlap = o, scale = 8, align = a})
--
-- fn(x_tile) returns the tile's result, whose last two dims are the tile's times 'scale'
-- (8 for a decode, 1/8 for an encode); tiles start at multiples of 'align' (8 for an
-- encode, so that each tile's latent grid is the whole one's). An input that fits one tile
-- goes through fn whole: the same bits as without tiling.
local zoe = require "zoe"
local T = zoe.tensor

local M = {}

local function ceil_to(v, a) return math.ceil(v / a) * a end

-- Tiles of length t over n with at least o in common between neighbors: as few as that
-- takes, spread evenly (starts on multiples of align), the last ending at n. {{a, len}, ...}
local function cut(n, t, o, align)
  if n <= t then return {{0, n}} end
  local k = math.ceil((n - o) / (t - o))
  local list = {}
  for i = 0, k - 1 do
    local a = math.floor(i * (n - t) / (k - 1) / align + 0.5) * align
    list[#list + 1] = {math.min(a, n - t), t}
  end
  list[k][1] = n - t
  return list
end
M.cut = cut

-- The weights along one axis of tile i (output units): across its overlap of length o with
-- tile i - 1 or i + 1, 0 for the first m outputs from its edge (the reach of the cut), then
-- a linear ramp to 1 at o - m: (d - m + 0.5) / (o - 2m) at distance d, so that the weights
-- of two neighbors sum to 1.
local function ramp(tiles, i, s, margin)
  local a, len = tiles[i][1] * s, tiles[i][2] * s
  local left = i > 1 and (tiles[i - 1][1] + tiles[i - 1][2]) * s - a or 0
  local right = i < #tiles and a + len - tiles[i + 1][1] * s or 0
  local function up(d, o)
    local m = math.min(margin * s, (o - 1) / 2)
    return math.max(0, math.min(1, (d - m + 0.5) / (o - 2 * m)))
  end
  local w = {}
  for x = 0, len - 1 do
    local v = 1
    if x < left then v = up(x, left) end
    if len - 1 - x < right then v = math.min(v, up(len - 1 - x, right)) end
    w[x + 1] = v
  end
  return T.tensor(w)
end

local function check_opts(opts, where)
  local tile = opts and opts.tile
  if type(tile) ~= "table" or math.type(tile[1]) ~= "integer" or math.type(tile[2]) ~= "integer" or tile[1] < 1 or tile[2] < 1 then
    error(("%s: tile must be {height, width} in whole pixels of the input"):format(where), 3)
  end
  local o = opts.overlap or 0
  if math.type(o) ~= "integer" or o < 0 or (o >= tile[1] and o >= tile[2]) then
    error(("%s: overlap must be a whole number of pixels, smaller than the tile"):format(where), 3)
  end
end

function M.map(x, fn, opts)
  check_opts(opts, "tiling")
  local nd = x:dim()
  local H, W = x:size(nd - 1), x:size(nd)
  local s, align, o, margin = opts.scale or 1, opts.align or 1, opts.overlap or 0, opts.margin or 0
  local rows = cut(H, math.min(opts.tile[1], H), math.min(o, opts.tile[1] - 1), align)
  local cols = cut(W, math.min(opts.tile[2], W), math.min(o, opts.tile[2] - 1), align)
  if #rows == 1 and #cols == 1 then return fn(x) end
  local out, wsum
  for i, r in ipairs(rows) do
    local wy = ramp(rows, i, s, margin):view(-1, 1)
    for j, c in ipairs(cols) do
      local y <close> = fn(x:narrow(nd - 1, r[1] + 1, r[2]):narrow(nd, c[1] + 1, c[2]))
      if not out then
        local shape = y:shape()
        shape[nd - 1], shape[nd] = math.floor(H * s + 0.5), math.floor(W * s + 0.5)
        out, wsum = T.zeros(shape), T.zeros(shape[nd - 1], shape[nd])
      end
      local w <close> = wy * ramp(cols, j, s, margin):view(1, -1)
      local y0, x0 = math.floor(r[1] * s + 0.5) + 1, math.floor(c[1] * s + 0.5) + 1
      local part <close> = y * w
      out:narrow(nd - 1, y0, y:size(nd - 1)):narrow(nd, x0, y:size(nd)):add_(part)
      wsum:narrow(1, y0, y:size(nd - 1)):narrow(2, x0, y:size(nd)):add_(w)
    end
  end
  return out:div_(wsum)
end

-- The tiling of an h x w input with tiles of at most 'area' input pixels and at least
-- 'overlap' between neighbors that puts the fewest input pixels through fn in all (ties:
-- fewer tiles). Tile sides are multiples of 'align' (or the whole side).
function M.plan(h, w, opts)
  local o, align, area = opts.overlap or 0, opts.align or 1, opts.area or math.huge
  if h * w <= area then return {tile = {h, w}, overlap = o} end
  local function side(n, k) -- the tile length k tiles need
    if k == 1 then return n end
    return math.min(n, ceil_to(math.ceil((n + (k - 1) * o) / k), align))
  end
  local best
  for kh = 1, math.max(1, h // align) do
    local th = side(h, kh)
    if th <= o and kh > 1 then break end
    for kw = 1, math.max(1, w // align) do
      local tw = side(w, kw)
      if tw <= o and kw > 1 then break end
      if th * tw <= area then
        local nh, nw = #cut(h, th, math.min(o, th - 1), align), #cut(w, tw, math.min(o, tw - 1), align)
        local cost, count = nh * th * nw * tw, nh * nw
        if not best or cost < best.cost or (cost == best.cost and count < best.count) then
          best = {cost = cost, count = count, tile = {th, tw}}
        end
        break -- more tiles across only cost more
      end
    end
  end
  if not best then error(("tiling: no tile of at most %d pixels fits a %dx%d input with overlap %d"):format(area, h, w, o), 2) end
  return {tile = best.tile, overlap = o}
end

-- Bytes a run may use for its tiles: a tenth of the machine's memory (2.4 GiB of 24).
function M.budget()
  local f = io.open("/proc/meminfo")
  local total
  if f then
    for line in f:lines() do
      local kb = line:match("^MemTotal:%s+(%d+)")
      if kb then total = tonumber(kb) * 1024 break end
    end
    f:close()
  end
  return (total or 8 * 2 ^ 30) / 10
end

return M
