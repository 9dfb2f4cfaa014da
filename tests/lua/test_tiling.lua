-- zoe.arch.tiling (spatial tiles with overlap blending, for any family's VAE) on functions
-- whose untiled result is known, then the Wan VAE tiled against itself untiled on the
-- official fixture's weights (../shared), decode and encode, and what tiling does to memory.
local t = require "testlib"
local zoe = require "zoe"
local tiling = require "zoe.arch.tiling"
local T, nn = zoe.tensor, zoe.nn

local function maxdiff(a, b) return (a - b):abs():max():item() end

t.test("cut covers the axis with tiles that overlap by at least the overlap, aligned, evenly", function()
  for _, c in ipairs {{100, 32, 8, 1}, {104, 40, 12, 1}, {60, 60, 8, 1}, {61, 17, 3, 1}, {832, 256, 64, 8},
                      {480, 128, 64, 8}, {7, 3, 1, 1}, {33, 32, 31, 1}} do
    local n, len, o, align = table.unpack(c)
    local tiles = tiling.cut(n, len, o, align)
    t.eq(tiles[1][1], 0, "first start")
    t.eq(tiles[#tiles][1] + tiles[#tiles][2], n, "last end")
    if n > len then t.eq(#tiles, math.ceil((n - o) / (len - o)), "as few tiles as the overlap allows") end
    for i, tl in ipairs(tiles) do
      t.eq(tl[2], math.min(len, n), "tile length")
      t.eq(tl[1] % align, 0, "aligned start")
      if i > 1 then
        local common = tiles[i - 1][1] + tiles[i - 1][2] - tl[1]
        t.ok(common >= o, ("%d: tiles %d and %d share %d < %d"):format(n, i - 1, i, common, o))
        t.ok(tl[1] > tiles[i - 1][1], "starts increase")
      end
    end
  end
end)

t.test("blending weights sum to one: the identity comes back, on any tiling", function()
  local x = T.randn({2, 3, 37, 53}, {seed = 1})
  for _, o in ipairs {{{16, 20}, 5, 0}, {{10, 10}, 4, 1}, {{37, 7}, 2, 0}, {{5, 53}, 4, 2}} do
    local y = tiling.map(x, function(p) return p:clone() end, {tile = o[1], overlap = o[2], margin = o[3]})
    t.ok(maxdiff(y, x) < 1e-6, ("tile %dx%d overlap %d: %g"):format(o[1][1], o[1][2], o[2], maxdiff(y, x)))
  end
end)

t.test("one tile is the function itself: the same bits", function()
  local x = T.randn({3, 20, 30}, {seed = 2})
  local y = tiling.map(x, function(p) return p * 3 end, {tile = {20, 30}, overlap = 4})
  t.eq(maxdiff(y, x * 3), 0)
end)

t.test("a function that reaches r pixels is exact with a margin of r, not without", function()
  local x = T.randn({1, 2, 40, 50}, {seed = 3})
  local w = T.ones(2, 2, 3, 3) / 18 -- reaches 1 pixel; zero padding at a tile's cut edge
  local function blur(p) return nn.conv2d(p, w, nil, {padding = {1, 1}}) end
  local whole = blur(x)
  local exact = tiling.map(x, blur, {tile = {16, 16}, overlap = 4, margin = 1})
  t.ok(maxdiff(exact, whole) < 1e-5, ("margin 1: %g"):format(maxdiff(exact, whole)))
  local seams = tiling.map(x, blur, {tile = {16, 16}, overlap = 4, margin = 0})
  t.ok(maxdiff(seams, whole) > 1e-3, "margin 0 shows the cut edges")
  -- an upscale (scale 2) and a downscale (scale 1/2, tiles on even pixels) of reach 0
  local up = tiling.map(x, function(p) return nn.upsample_nearest(p, {2, 2}) end, {tile = {16, 16}, overlap = 4, scale = 2})
  t.ok(maxdiff(up, nn.upsample_nearest(x, {2, 2})) < 1e-6, "upsample")
  local pool = T.ones(1, 1, 2, 2) / 4
  local function down(p) return nn.conv2d(p:reshape(2, 1, p:size(3), p:size(4)), pool, nil, {stride = {2, 2}}):view(1, 2, p:size(3) // 2, p:size(4) // 2) end
  local d = tiling.map(x, down, {tile = {16, 16}, overlap = 6, scale = 1 / 2, align = 2})
  t.ok(maxdiff(d, down(x)) < 1e-6, "downsample")
end)

t.test("plan: tiles within the area, the overlap kept, the fewest pixels in all", function()
  for _, c in ipairs {{60, 104, 1600, 8}, {60, 104, 400, 8}, {30, 52, 10000, 8}, {90, 160, 2500, 8}, {24, 24, 200, 4}} do
    local h, w, area, o = table.unpack(c)
    local p = tiling.plan(h, w, {area = area, overlap = o})
    local th, tw = p.tile[1], p.tile[2]
    t.ok(th * tw <= area or (th == h and tw == w and h * w <= area), "within the area")
    local function total(a, b) return #tiling.cut(h, a, o, 1) * a * #tiling.cut(w, b, o, 1) * b end
    local best = math.huge
    for a = o + 1, h do
      for b = o + 1, w do
        if a * b <= area then best = math.min(best, total(a, b)) end
      end
    end
    if h * w > area then t.eq(total(th, tw), best, ("%dx%d within %d: pixels in all"):format(h, w, area)) end
  end
  t.raises(function() tiling.plan(60, 104, {area = 50, overlap = 8}) end, "no tile of at most 50 pixels")
  t.raises(function() tiling.map(T.zeros(1, 8, 8), function(p) return p end, {tile = {4, 4}, overlap = 4}) end,
    "smaller than the tile")
end)

local fx = require "wan_fixtures"
fx.require_fixtures("the Wan VAE tiled")
local wan_vae = require "zoe.arch.wan_vae"
local cfg, io_ = fx.config("vae"), zoe.load(fx.root .. "vae/io.safetensors")
local vae = wan_vae.new(cfg, zoe.load(fx.root .. "vae/weights.safetensors"))
local mean, std = io_.latent_mean, io_.latent_std

t.test("the Wan VAE tiled at the default overlap is within 1e-3 of untiled (decode and encode)", function()
  local z = T.randn({cfg.z_dim, 2, 16, 24}, {seed = 4})
  local whole = vae:decode(z, mean, std)
  local chunks = {}
  local tiled = vae:decode(z, mean, std, {tile = {12, 12}, on_frames = function(c) chunks[#chunks + 1] = c end})
  fx.close(tiled, whole, 1e-3, "decode, 16x24 latent in tiles of 12, overlap 8 margin 3")
  t.eq(#chunks, 2, "chunks streamed")
  t.eq({chunks[1]:size(2), chunks[2]:size(2)}, {1, 4}, "frames per chunk")
  t.eq(maxdiff(T.cat(chunks, 2), tiled), 0, "the chunks are the video")
  -- what overlap and margin give what error (the README's table)
  local plain = vae:decode(z, mean, std, {tile = {12, 12}, overlap = 8, margin = 0})
  t.ok(fx.relerr(plain, whole) > 1e-2, "a ramp over the whole overlap (margin 0) blends in the cut edges")
  local video = whole:narrow(2, 1, 5)
  local enc = vae:encode(video, mean, std)
  fx.close(vae:encode(video, mean, std, {tile = {96, 96}}), enc, 1e-3, "encode, 128x192 in tiles of 96, overlap 64 margin 24")
end)

t.test("a tiled decode's memory does not grow with the frame", function()
  local function peak(h, w, opts)
    local z = T.randn({cfg.z_dim, 2, h, w}, {seed = 5})
    collectgarbage()
    zoe.mem_trim()
    zoe.mem_reset_peak()
    local before = zoe.mem().live
    local v = vae:decode(z, mean, std, opts)
    local out = v:numel() * 4 * 2 -- the result and its accumulator
    return zoe.mem().peak - before - out
  end
  local small, big = peak(16, 16, {tile = {12, 12}}), peak(48, 48, {tile = {12, 12}})
  local usmall, ubig = peak(16, 16), peak(48, 48)
  print(("# peak past the output: tiled %.1f -> %.1f MB, untiled %.1f -> %.1f MB for 9x the frame"):format(
    small / 2 ^ 20, big / 2 ^ 20, usmall / 2 ^ 20, ubig / 2 ^ 20))
  t.ok(big < 2 * small, "tiled: at most twice")
  t.ok(ubig > 4 * usmall, "untiled: grows with the frame")
end)

t.done()
