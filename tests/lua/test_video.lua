-- zoe.video and zoe.image: files checked with ffprobe (codec, frames, fps, size,
-- our metadata), read back against the source (PSNR for H.264, exact for PNG),
-- the streaming writer against the one-shot writer, failures that leave no
-- file, and damaged inputs that give clear errors.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function at(name) return dir .. "/" .. name end

local has_ffprobe = os.execute("ffprobe -version >/dev/null 2>&1")

-- ffprobe's view of the first video stream (frames counted by decoding) and the tags
local function probe(path)
  local cmd = "ffprobe -v error -count_frames -select_streams v:0 -show_entries " ..
    "stream=codec_name,width,height,r_frame_rate,nb_read_frames,pix_fmt:format=duration:format_tags " ..
    "-of default=noprint_wrappers=1 '" .. path .. "' 2>&1"
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local r = {tags = {}}
  for k, v in out:gmatch("([%w_:]+)=([^\n]*)") do
    local tag = k:match("^TAG:(.*)")
    if tag then r.tags[tag:lower()] = v else r[k] = v end
  end
  return r, out
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path) return slurp(path) ~= nil end

local function temp_files()
  local p = io.popen("ls -a '" .. dir .. "'")
  local n = 0
  for name in p:lines() do if name:find("%.tmp$") then n = n + 1 end end
  p:close()
  return n
end

-- A video that moves: a diagonal ramp (tinted per channel) drifting right and a
-- disc crossing it; (3, T, H, W) in [-1, 1].
local function moving(nt, h, w)
  local v = {}
  for c = 1, 3 do
    v[c] = {}
    for k = 1, nt do
      local frame = {}
      for y = 1, h do
        local row = {}
        for x = 1, w do
          local a = -0.8 + 1.4 * ((x + 2 * k + y // 2) % w) / w + 0.1 * (c - 1)
          local dx, dy = x - (w // 4 + 3 * k), y - h / 2
          if dx * dx + dy * dy < h * h / 25 then a = c == 2 and 0.7 or 0.2 end
          row[x] = a
        end
        frame[y] = row
      end
      v[c][k] = frame
    end
  end
  return T.tensor(v)
end

local function psnr(a, b)
  local mse = (a - b):pow(2):mean():item()
  return mse == 0 and math.huge or 10 * math.log(4 / mse, 10)
end

local video = moving(16, 48, 64)
local meta = {prompt = "a fox at dawn, 35mm", seed = 1234, sampler = "unipc"}

t.test("mp4: H.264 file with our size, rate, frame count and metadata", function()
  zoe.video.write(video, at("a.mp4"), {fps = 12, crf = 10, preset = "veryfast", metadata = meta})
  local info = zoe.video.info(at("a.mp4"))
  t.eq(info.codec, "h264")
  t.eq({info.width, info.height, info.frames}, {64, 48, 16})
  t.near(info.fps, 12, 1e-9)
  t.near(info.duration, 16 / 12, 1e-3, "duration keeps the last frame")
  t.eq(info.metadata.prompt, meta.prompt)
  t.eq(info.metadata.seed, "1234")
  if not has_ffprobe then return t.skip("ffprobe mp4", "ffprobe not installed") end
  local p, raw = probe(at("a.mp4"))
  t.eq(p.codec_name, "h264", raw)
  t.eq({p.width, p.height, p.nb_read_frames, p.r_frame_rate, p.pix_fmt}, {"64", "48", "16", "12/1", "yuv420p"})
  t.near(tonumber(p.duration), 16 / 12, 1e-3)
  t.eq(p.tags.prompt, meta.prompt)
  t.eq(p.tags.seed, "1234")
  t.eq(p.tags.sampler, "unipc")
end)

t.test("mp4 read back at crf 10: PSNR >= 35 dB", function()
  local r = zoe.video.read(at("a.mp4"))
  t.eq(r:shape(), {3, 16, 48, 64})
  t.eq(r:dtype(), "f32")
  local db = psnr(r, video)
  t.ok(db >= 35, string.format("PSNR %.2f dB", db))
  t.ok(r:min():item() >= -1 and r:max():item() <= 1, "values in [-1, 1]")
end)

t.test("webm (VP9) and gif: codec, frames, rate, metadata", function()
  zoe.video.write(video, at("a.webm"), {fps = 8, metadata = meta})
  zoe.video.write(video, at("a.gif"), {fps = 10})
  local w, g = zoe.video.info(at("a.webm")), zoe.video.info(at("a.gif"))
  t.eq({w.codec, w.width, w.height, w.frames}, {"vp9", 64, 48, 16})
  t.near(w.fps, 8, 1e-9)
  t.eq(w.metadata.prompt, meta.prompt)
  t.eq({g.codec, g.width, g.height, g.frames}, {"gif", 64, 48, 16})
  local db = psnr(zoe.video.read(at("a.webm")), video)
  t.ok(db >= 30, string.format("VP9 PSNR %.2f dB", db))
  if not has_ffprobe then return t.skip("ffprobe webm", "ffprobe not installed") end
  local p = probe(at("a.webm"))
  t.eq({p.codec_name, p.nb_read_frames, p.r_frame_rate}, {"vp9", "16", "8/1"})
  t.eq(p.tags.prompt, meta.prompt)
  p = probe(at("a.gif"))
  t.eq({p.codec_name, p.nb_read_frames, p.width}, {"gif", "16", "64"})
end)

t.test("gif palette comes from the video (a green ramp keeps its many levels)", function()
  -- 3 x 4 x 8 x 160: green from dark to light, red and blue fixed
  local v = {{}, {}, {}}
  for k = 1, 4 do
    for c = 1, 3 do
      local frame = {}
      for y = 1, 8 do
        local row = {}
        for x = 1, 160 do row[x] = c == 2 and (-0.9 + 1.8 * (x - 1) / 159) or (c == 1 and -0.6 or -0.7) end
        frame[y] = row
      end
      v[c][k] = frame
    end
  end
  v = T.tensor(v)
  zoe.video.write(v, at("ramp.gif"), {fps = 4})
  local r = zoe.video.read(at("ramp.gif"), {dtype = "u8"})
  local levels, row = {}, r[1][4]:totable() -- frame 1, row 4: (W, 3)
  for x = 1, 160 do levels[row[x][2]] = true end
  local n = 0
  for _ in pairs(levels) do n = n + 1 end
  t.ok(n >= 100, "distinct green levels in a GIF row: " .. n)
  t.ok(psnr(zoe.video.read(at("ramp.gif")), v) >= 35, "ramp PSNR")
end)

t.test("png: one frame and a %04d pattern give back exact values", function()
  -- u8 frames (T, H, W, C) with every value a u8 level
  local px = {}
  for k = 1, 3 do
    px[k] = {}
    for y = 1, 10 do
      px[k][y] = {}
      for x = 1, 13 do px[k][y][x] = {(x * 19 + k * 7) % 256, (y * 23 + x) % 256, (k * 80 + y * x) % 256} end
    end
  end
  local u8 = T.tensor(px, "u8")
  assert(os.execute("mkdir -p '" .. at("frames") .. "'"))
  zoe.video.write(u8, at("frames/%04d.png"))
  t.ok(exists(at("frames/0001.png")) and exists(at("frames/0003.png")) and not exists(at("frames/0004.png")))
  local back = zoe.video.read(at("frames/%04d.png"), {dtype = "u8"})
  t.eq(back:shape(), {3, 10, 13, 3})
  t.eq((back:to("f32") - u8:to("f32")):abs():max():item(), 0, "u8 values")
  -- float frames that are u8 levels survive exactly too
  local f = zoe.video.read(at("frames/%04d.png"))
  zoe.image.write(f:select(2, 2), at("one.png"))
  t.eq((zoe.image.read(at("one.png")) - f:select(2, 2)):abs():max():item(), 0, "f32 values")
  if has_ffprobe then
    local p = probe(at("one.png"))
    t.eq({p.codec_name, p.width, p.height}, {"png", "13", "10"})
  end
end)

t.test("png keeps metadata as text chunks", function()
  zoe.image.write(video:select(2, 1), at("meta.png"), {metadata = {prompt = "über café", seed = 7}})
  local info = zoe.video.info(at("meta.png"))
  t.eq(info.metadata.prompt, "über café")
  t.eq(info.metadata.seed, "7")
  t.raises(function() zoe.image.write(video:select(2, 1), at("bad.png"), {metadata = {[""] = "x"}}) end, "metadata")
end)

t.test("jpeg and webp images", function()
  local img = video:select(2, 5)
  zoe.image.write(img, at("i.jpg"), {quality = 95})
  zoe.image.write(img, at("i.webp"), {quality = 90})
  zoe.image.write(zoe.image.read(at("one.png")), at("lossless.webp"), {quality = 100})
  local j, w = zoe.image.read(at("i.jpg")), zoe.image.read(at("i.webp"))
  t.eq(j:shape(), {3, 48, 64})
  t.ok(psnr(j, img) >= 30, string.format("jpeg PSNR %.2f", psnr(j, img)))
  t.ok(psnr(w, img) >= 28, string.format("webp PSNR %.2f", psnr(w, img)))
  t.eq((zoe.image.read(at("lossless.webp")) - zoe.image.read(at("one.png"))):abs():max():item(), 0, "quality 100 is lossless")
  t.eq(zoe.video.info(at("i.jpg")).codec, "mjpeg")
  t.eq(zoe.video.info(at("i.webp")).codec, "webp")
end)

t.test("streaming writer gives the same bytes as the one-shot writer", function()
  for _, ext in ipairs{"mp4", "webm", "gif"} do
    zoe.video.write(video, at("one." .. ext), {metadata = meta})
    local w = zoe.video.writer(at("stream." .. ext), {metadata = meta})
    w:write(video:narrow(2, 1, 5))
    w:write(video:narrow(2, 6, 1))
    w:write(video:narrow(2, 7, 10))
    t.eq(w:frames(), 16)
    t.ok(not exists(at("stream." .. ext)), "nothing under the real name before close")
    w:close()
    local a, b = slurp(at("one." .. ext)), slurp(at("stream." .. ext))
    t.ok(a and #a > 1000 and a == b, ext .. ": streamed file differs from the one-shot file")
  end
end)

t.test("same frames and options give byte-identical files", function()
  for _, ext in ipairs{"mp4", "webm"} do
    zoe.video.write(video, at("r1." .. ext), {preset = "fast", metadata = meta})
    zoe.video.write(video, at("r2." .. ext), {preset = "fast", metadata = meta})
    t.ok(slurp(at("r1." .. ext)) == slurp(at("r2." .. ext)), ext)
  end
end)

t.test("a write that fails midway leaves no file under the real name", function()
  -- a bad chunk after some frames; the script then gives up on the writer
  local w = zoe.video.writer(at("fail.mp4"))
  w:write(video:narrow(2, 1, 4))
  local err = t.raises(function() w:write(T.zeros(3, 2, 48, 60)) end, "fail.mp4")
  t.ok(err:find("3x2x48x60", 1, true) and err:find("64x48", 1, true), err)
  w = nil
  collectgarbage()
  collectgarbage()
  t.ok(not exists(at("fail.mp4")), "no file after the writer was collected")
  -- an error inside a <close> scope drops the file; an existing file stays as it was
  local f = io.open(at("keep.mp4"), "wb")
  f:write("old")
  f:close()
  local ok = pcall(function()
    local w2 <close> = zoe.video.writer(at("keep.mp4"))
    w2:write(video:narrow(2, 1, 3))
    error("the sampler blew up")
  end)
  t.ok(not ok)
  t.eq(slurp(at("keep.mp4")), "old", "the old file is untouched")
  -- a normal exit from the scope finishes the file
  do
    local w3 <close> = zoe.video.writer(at("scoped.mp4"))
    w3:write(video:narrow(2, 1, 3))
  end
  t.eq(zoe.video.info(at("scoped.mp4")).frames, 3)
  -- one-shot writes that fail
  t.raises(function() zoe.video.write(T.zeros(2, 3, 8, 8), at("two.mp4")) end, "2 channels")
  t.raises(function() zoe.video.write(video, at("many.png")) end, "one frame")
  t.raises(function() zoe.video.write(video, "/nonexistent/folder/x.mp4") end, "/nonexistent/folder")
  t.raises(function() zoe.video.write(video, "/proc/x.mp4") end, "/proc")
  t.raises(function() zoe.video.write(video, at("x.avi")) end, "unknown extension")
  t.raises(function() zoe.video.write(video, at("x.mp4"), {crf = 99}) end, "crf")
  t.raises(function() zoe.video.write(video, at("x.mp4"), {fsp = 3}) end, "unknown option 'fsp'")
  t.raises(function() zoe.video.writer(at("x.mp4")):close() end, "no frames")
  for _, name in ipairs{"two.mp4", "many.png", "x.avi", "x.mp4"} do t.ok(not exists(at(name)), name) end
  t.eq(temp_files(), 0, "temporary files left")
end)

t.test("a closed writer refuses more work", function()
  local w = zoe.video.writer(at("closed.gif"))
  w:write(video:narrow(2, 1, 2))
  w:close()
  t.raises(function() w:write(video) end, "closed")
  t.ok(tostring(w):find("closed", 1, true))
  local w2 = zoe.video.writer(at("aborted.gif"))
  w2:write(video:narrow(2, 1, 2))
  w2:abort()
  t.ok(not exists(at("aborted.gif")))
end)

t.test("reading missing, empty, truncated or non-video files gives clear errors", function()
  t.raises(function() zoe.video.read(at("missing.mp4")) end, "missing.mp4': No such file")
  local f = io.open(at("empty.mp4"), "wb")
  f:close()
  t.raises(function() zoe.video.read(at("empty.mp4")) end, "empty")
  local whole = slurp(at("a.mp4"))
  for _, cut in ipairs{#whole // 2, 100} do
    f = io.open(at("cut.mp4"), "wb")
    f:write(whole:sub(1, cut))
    f:close()
    t.raises(function() zoe.video.read(at("cut.mp4")) end, "cut.mp4")
  end
  whole = slurp(at("a.webm"))
  f = io.open(at("cut.webm"), "wb")
  f:write(whole:sub(1, #whole * 2 // 3))
  f:close()
  t.raises(function() zoe.video.read(at("cut.webm")) end, "truncated")
  local src = debug.getinfo(1, "S").source:sub(2)
  t.raises(function() zoe.video.read(src) end, "test_video.lua")
  t.raises(function() zoe.image.read(src) end, "image.read")
  t.raises(function() zoe.video.info(at("missing.gif")) end, "missing.gif")
  t.raises(function() zoe.video.read(dir) end, "folder")
end)

t.test("read options: frames, fps resampling, size", function()
  zoe.video.write(video, at("lossless.mp4"), {crf = 0, fps = 16})
  local all = zoe.video.read(at("lossless.mp4"))
  local half = zoe.video.read(at("lossless.mp4"), {fps = 8})
  t.eq(half:shape(), {3, 8, 48, 64})
  for k = 1, 8 do t.eq((half:select(2, k) - all:select(2, 2 * k - 1)):abs():max():item(), 0, "frame " .. k) end
  local dbl = zoe.video.read(at("lossless.mp4"), {fps = 32, frames = 6})
  t.eq(dbl:size(2), 6)
  t.eq((dbl:select(2, 4) - all:select(2, 2)):abs():max():item(), 0, "32 fps repeats frames")
  t.eq(zoe.video.read(at("lossless.mp4"), {frames = 3}):shape(), {3, 3, 48, 64})
  t.eq(zoe.video.read(at("lossless.mp4"), {width = 32}):shape(), {3, 16, 24, 32})
  t.eq(zoe.video.read(at("lossless.mp4"), {width = 20, height = 10, frames = 1}):shape(), {3, 1, 10, 20})
  t.raises(function() zoe.video.read(at("lossless.mp4"), {frames = -1}) end, "negative")
  t.raises(function() zoe.video.read(at("lossless.mp4"), {dtype = "f16"}) end, "dtype")
end)

t.test("contact sheet: a grid of upscaled frames with captions, as many columns as fit the count", function()
  local tiny = video:narrow(3, 1, 16):narrow(4, 1, 16) -- 3 x 16 x 16 x 16
  zoe.video.contact_sheet({tiny, tiny:narrow(2, 1, 8)}, at("sheet.png"), {cols = 4, labels = {"prompt one", "two"}})
  local s = zoe.image.read(at("sheet.png"))
  -- scale 8 (16 -> 128 pixels), 4 cells of 128 + 2 gaps; two rows under 22-pixel caption strips
  t.eq(s:shape(), {3, 2 + 2 * (22 + 130), 2 + 4 * 130})
  -- cell 2 of the first video is frame 5 (every 4 = 16 / 4 cols); pixel (3, 9) sits at 8x
  local want = tiny[1][5][3][9]:item()
  t.near(s[1][2 + 22 + 2 * 8 + 4][2 + 130 + 8 * 8 + 4]:item(), want, 1 / 255)
  -- a single video, defaults; frames given one by one
  zoe.video.contact_sheet(tiny, at("sheet2.png"))
  t.eq(zoe.image.read(at("sheet2.png")):shape(), {3, 2 + 130, 2 + 8 * 130})
  zoe.video.contact_sheet({tiny:select(2, 1), video:select(2, 1)}, at("frames.png"), {scale = 1})
  t.eq(zoe.image.read(at("frames.png")):shape(), {3, 2 + 50, 2 + 2 * 66})
  -- the default grid fits the count: 9 cells (17 frames every 2, as hello.lua's sheet) are
  -- rows of 5 and 4, not 8 and 1 with 7 empty cells; so are 9 single frames
  local seventeen = T.cat({tiny, tiny:narrow(2, 1, 1)}, 2) -- 3 x 17 x 16 x 16
  zoe.video.contact_sheet({seventeen}, at("nine.png"), {every = 2})
  t.eq(zoe.image.read(at("nine.png")):shape(), {3, 2 + 2 * 130, 2 + 5 * 130})
  local nine = {}
  for i = 1, 9 do nine[i] = tiny:select(2, i) end
  zoe.video.contact_sheet(nine, at("nine_frames.png"))
  t.eq(zoe.image.read(at("nine_frames.png")):shape(), {3, 2 + 2 * 130, 2 + 5 * 130})
  -- 17 frames by default: every 3, 6 cells in one row
  zoe.video.contact_sheet(seventeen, at("six.png"))
  t.eq(zoe.image.read(at("six.png")):shape(), {3, 2 + 130, 2 + 6 * 130})
  t.raises(function() zoe.video.contact_sheet({}, at("none.png")) end, "no videos")
  t.raises(function() zoe.video.contact_sheet({video, "x"}, at("none.png")) end, "item 2")
  t.raises(function() zoe.video.contact_sheet(video, at("sheet.mp4")) end, "image")
end)

t.test("encoding and decoding run off the loop thread: other jobs go on meanwhile", function()
  if not zoe.spawn then return t.skip("offload", "no job loop in this build") end
  local big = T.rand(3, 24, 192, 192)
  local done, ticks = false, 0
  local a = zoe.spawn(function()
    zoe.video.write(big, at("bg.mp4"), {preset = "medium"})
    local w = zoe.video.writer(at("bg2.mp4"))
    w:write(big)
    w:close()
    t.eq(zoe.video.read(at("bg.mp4")):size(2), 24)
    done = true
  end)
  local b = zoe.spawn(function()
    while not done do
      ticks = ticks + 1
      zoe.sleep(1)
    end
  end)
  a:wait()
  b:wait()
  t.ok(done, "the encoding job finished")
  t.ok(ticks >= 2, "the other job ran " .. ticks .. " times while the video was encoded")
  t.eq(zoe.video.info(at("bg2.mp4")).frames, 24)
end)

os.execute("rm -rf '" .. dir .. "'")
t.done()
