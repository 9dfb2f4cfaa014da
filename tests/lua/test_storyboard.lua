-- zoe.storyboard on a small random-weight Wan-family model (tests/lua/tiny_wan.lua): the
-- format and its errors, the data-only sandbox, rendering (shots, frame counts, final
-- video, contact sheet, manifest), continuity, the cache (what renders again after an
-- edit), determinism, temporary files and locks, the text encoder released, --watch.
-- The CLI and SIGKILL-resume tests are in test_storyboard_cli.lua; the continuity PSNR
-- test on the trained zoe-tiny is at the end (skipped until models/zoe-tiny lands).
local t = require "testlib"
local zoe = require "zoe"
local tiny = require "tiny_wan"
local files = require "zoe.storyboard.files"

local root = os.tmpname()
os.remove(root)
files.mkdir_p(root .. "/model")
tiny.write(root .. "/model")
local MODEL = root .. "/model"

local function read(path) return files.read(path) end
local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A board in the tiny model's vocabulary: shot 2 continues shot 1, shot 4 cross-fades in.
local function board(edit)
  local b = {
    title = "test board", model = MODEL, size = {32, 32}, fps = 8, style = "on a white background",
    characters = {hero = "a red circle", foe = "a blue square", pal = "a green triangle"},
    shots = {
      {prompt = "{hero} moving left", frames = 5, seed = 1},
      {prompt = "{hero} moving right", frames = 5, continuity = "continue"},
      {prompt = "{foe} moving left", frames = 9, seed = 3},
      {prompt = "{pal} and {foe}", frames = 5, seed = 4, transition = {"crossfade", frames = 2}},
    },
  }
  if edit then edit(b) end
  return b
end

local function rendered_list(r)
  local out = {}
  for _, s in ipairs(r.shots) do
    if s.rendered then out[#out + 1] = s.index end
  end
  return out
end

local n_dirs = 0
local function fresh_dir()
  n_dirs = n_dirs + 1
  return ("%s/out%d"):format(root, n_dirs)
end

-- ------------------------------------------------------------------ the format

t.test("malformed storyboards name the shot and the field", function()
  local function bad(edit, msg) t.raises(function() zoe.storyboard(board(edit)) end, msg) end
  bad(function(b) b.shots[2].prompt = nil end, "shot 2: field 'prompt' is missing")
  bad(function(b) b.shots[3].frames = 0 end, "shot 3: field 'frames' must be > 0, got 0")
  bad(function(b) b.shots[1].frames = -4 end, "shot 1: field 'frames' must be > 0, got -4")
  bad(function(b) b.shots[1].frames = 4.5 end, "shot 1: field 'frames' must be a whole number, got 4.5")
  bad(function(b) b.shots[3].prompt = "{villain} moving up" end,
    "shot 3: field 'prompt': unknown character '{villain}' (characters: foe, hero, pal)")
  local e = t.raises(function() zoe.storyboard(board(function(b) b.shots[4].frame = 5 end)) end,
    "shot 4: unknown field 'frame' (did you mean 'frames'?); allowed: caption, cfg, continuity, frames, lora, negative, prompt, sampler, schedule, seconds, seed, shift, steps, transition")
  t.ok(e, "listed")
  bad(function(b) b.colour = "red" end, "storyboard: unknown field 'colour'")
  bad(function(b) b.shots[1].continuity = "continue" end,
    "shot 1: field 'continuity': the first shot has no shot before it to continue")
  bad(function(b) b.shots[1].transition = "crossfade" end,
    "shot 1: field 'transition': the first shot has no shot before it to cross-fade from")
  bad(function(b) b.shots[2].transition = "crossfade" end,
    "shot 2: field 'transition': a continued shot starts on the last frame of the one before")
  bad(function(b) b.shots[3].transition = {"wipe"} end, "shot 3: field 'transition': unknown transition \"wipe\"")
  bad(function(b) b.shots[3].continuity = "next" end, "shot 3: field 'continuity' must be \"cut\" or \"continue\"")
  bad(function(b) b.shots[3].seconds = 1 end, "shot 3: give frames or seconds, not both")
  bad(function(b) b.shots[3].sampler = "magic" end, "shot 3: field 'sampler': unknown sampler 'magic'")
  bad(function(b) b.shots[3].prompt = "(red circle" end, "shot 3: field 'prompt': '(' at position 1 is never closed")
  bad(function(b) b.characters.hero = "a {hero}" end, "characters: 'hero' mentions itself (hero -> hero)")
  bad(function(b) b.style = "with {ghost}" end, "storyboard: field 'style': unknown character '{ghost}'")
  bad(function(b) b.shots = {} end, "storyboard: field 'shots' must be a list of one or more shots")
  bad(function(b) b.size = {32} end, "storyboard: field 'size' must be {width, height}")
end)

t.test("a normalized board is valid input again and equal to itself", function()
  local b = zoe.storyboard(board())
  local again = zoe.storyboard(b)
  t.eq(zoe.json.encode(again), zoe.json.encode(b))
  t.eq(b.width, 32)
  t.eq(b.shots[4].transition.type, "crossfade")
  t.eq(b.shots[4].transition.frames, 2)
  t.eq(b.shots[1].transition, "cut")
end)

t.test("checks against the model: frame counts, seconds, crossfade lengths, image-to-video", function()
  t.raises(function() zoe.storyboard.check(board(function(b) b.shots[3].frames = 6 end)) end,
    "shot 3: field 'frames': frames must be 4n+1 (1, 5, 9, 13, 17, ...), got 6 (model tiny-random)")
  t.raises(function() zoe.storyboard.check(board(function(b) b.size = {40, 32} end)) end,
    "storyboard: field 'size': width must be a positive multiple of 16")
  local function frames_for(seconds)
    return zoe.storyboard.check(board(function(b) b.shots[3].frames, b.shots[3].seconds = nil, seconds end)).shots[3].frames
  end
  t.eq(frames_for(1), 9, "8 frames -> 9")
  t.eq(frames_for(0.75), 5, "6 frames -> 5")
  t.eq(frames_for(0.875), 9, "7 frames: a tie goes to the longer")
  t.eq(frames_for(2.1), 17, "16.8 frames -> 17")
  t.raises(function() zoe.storyboard.check(board(function(b) b.shots[4].transition = {"crossfade", frames = 6} end)) end,
    "shot 4: field 'transition': a crossfade of 6 frames is longer than the shot (5 frames)")
  t.raises(function()
    zoe.storyboard.check(board(function(b)
      b.shots[3].frames = 5
      b.shots[3].transition = {"crossfade", frames = 4}
      b.shots[4].transition = {"crossfade", frames = 2}
    end))
  end, "shot 4: field 'transition': a crossfade of 2 frames is longer than what shot 3 leaves (1 frames)")
  local p = zoe.storyboard.check(board(function(b) b.shots[4].transition = {"crossfade", seconds = 0.5} end))
  t.eq(p.shots[4].fade_in, 4, "0.5 s at 8 fps")
  t.eq(p.shots[3].fade_out, 4)
  -- a model without image-to-video cannot continue a shot
  local saved = tiny.config.dit.in_dim
  files.mkdir_p(root .. "/t2v")
  tiny.write(root .. "/t2v", {i2v = false})
  tiny.config.dit.in_dim = saved -- tiny.write changes its shared config
  t.raises(function() zoe.storyboard.check(board(function(b) b.model = root .. "/t2v" end)) end,
    "shot 2: field 'continuity': model tiny-random cannot do image-to-video")
end)

-- ------------------------------------------------------------------ loading files

t.test("JSON and data-only Lua storyboards load; malformed JSON says where", function()
  local b = board()
  b.shots[4].transition = {type = "crossfade", frames = 2} -- JSON has no {"crossfade", frames = 2}
  write(root .. "/b.json", zoe.json.encode(b))
  local from_json = zoe.storyboard.load(root .. "/b.json")
  t.eq(zoe.json.encode(from_json), zoe.json.encode(zoe.storyboard(b)))
  write(root .. "/b.lua", ([[
    local shots = {}
    for i, motion in ipairs {"left", "right"} do
      shots[i] = {prompt = "{hero} moving " .. motion, frames = 5, seed = i}
    end
    return zoe.storyboard{model = %q, characters = {hero = "a red circle"}, shots = shots}
  ]]):format(MODEL))
  local from_lua = zoe.storyboard.load(root .. "/b.lua")
  t.eq(#from_lua.shots, 2)
  t.eq(from_lua.shots[2].prompt, "{hero} moving right")
  t.eq(zoe.storyboard.default_out(from_lua), "out/b")
  write(root .. "/broken.json", '{"shots": [\n  {"prompt": "a"},,\n]}')
  t.raises(function() zoe.storyboard.load(root .. "/broken.json") end, "broken.json: json: malformed input near byte")
  -- the position of the offending character itself: the second comma, line 2, column 19
  t.raises(function() zoe.storyboard.load(root .. "/broken.json") end, "(line 2, column 19)")
  write(root .. "/bad.json", zoe.json.encode(board(function(x)
    x.shots[2].frames = 0
    x.shots[4].transition = nil
  end)))
  t.raises(function() zoe.storyboard.load(root .. "/bad.json") end, "bad.json: shot 2: field 'frames' must be > 0, got 0")
  t.raises(function() zoe.storyboard.load(root .. "/b.txt") end, "a storyboard is a .lua or a .json file")
end)

t.test("the data-only sandbox refuses code; --trusted runs it", function()
  local marker = root .. "/ran"
  write(root .. "/evil.lua", ("os.execute('touch %s') return {shots = {{prompt = 'a'}}}"):format(marker))
  t.raises(function() zoe.storyboard.load(root .. "/evil.lua") end,
    "attempt to index a nil value (global 'os')")
  t.raises(function() zoe.storyboard.load(root .. "/evil.lua") end, "load it with --trusted")
  t.eq(read(marker), nil, "os.execute never ran")
  for _, code in ipairs {"require('zoe')", "io.open('/etc/passwd')", "load('return 1')()", "dofile('x')",
                         "setmetatable({}, {})", "pcall(print)", "debug.getinfo(1)", "string.dump(print)",
                         "collectgarbage()", "rawset(_G, 'x', 1)"} do
    write(root .. "/code.lua", code .. " return {shots = {{prompt = 'a'}}}")
    t.raises(function() zoe.storyboard.load(root .. "/code.lua") end, "code.lua:1: attempt to")
  end
  write(root .. "/loop.lua", "while true do end")
  local err = t.raises(function() zoe.storyboard.load(root .. "/loop.lua") end, "still running after 10000000 instructions")
  t.eq(select(2, err:gsub("%-%-trusted", "")), 1, "the hint once: " .. err)
  -- memory is capped: one allocation past it, or a doubling the instruction count never sees
  for _, code in ipairs {'local s = string.rep("x", 2^30)', 'local s = "x" for i = 1, 40 do s = s .. s end',
                         'local t = {} for i = 1, 8 do t[i] = string.rep("y", 1e9) end'} do
    write(root .. "/big.lua", code .. " return {shots = {{prompt = 'a'}}}")
    t.raises(function() zoe.storyboard.load(root .. "/big.lua") end, "using more than 256 MB of memory; a storyboard loads as data")
  end
  t.ok(collectgarbage("count") < 256 * 1024, "the memory came back")
  -- the cap itself: results and errors pass through; a small cap is told in bytes
  t.eq({zoe.memory_limited(1e6, function(a, b) return a + b, "ok" end, 1, 2)}, {3, "ok"})
  t.eq(select(2, pcall(zoe.memory_limited, 1e6, function() error("boom", 0) end)), "boom")
  t.eq(select(2, pcall(zoe.memory_limited, 1e6, string.rep, "z", 2e6)), "using more than 1000000 bytes of memory")
  t.eq(select(2, pcall(zoe.memory_limited, 3 * 2 ^ 20, string.rep, "z", 4 * 2 ^ 20)), "using more than 3 MB of memory")
  write(root .. "/bytecode.lua", string.dump(function() return {} end))
  t.raises(function() zoe.storyboard.load(root .. "/bytecode.lua") end, "attempt to load a binary chunk")
  write(root .. "/trusted.lua", ("return zoe.storyboard{model = %q, shots = {{prompt = os.getenv('ZOE_TEST_COLOUR') or 'a red circle'}}}")
    :format(MODEL))
  t.eq(zoe.storyboard.load(root .. "/trusted.lua", {trusted = true}).shots[1].prompt, "a red circle")
  t.raises(function() zoe.storyboard.load(root .. "/trusted.lua") end, "(global 'os')")
  -- pure functions are there, as copies: a board cannot change them for the rest of the process
  write(root .. "/pure.lua", "string.upper = nil return {shots = {{prompt = string.format('a %s circle', 'red')}}}")
  t.eq(zoe.storyboard.load(root .. "/pure.lua").shots[1].prompt, "a red circle")
  t.eq(string.upper("x"), "X", "the real string table is untouched")
end)

-- ------------------------------------------------------------------ rendering

local dir1 = fresh_dir()
local first_final -- the bytes of the first render of board()

t.test("a 4-shot board: shots, frame counts, final video, contact sheet, manifest", function()
  local first = zoe.storyboard.render(board(), {out = dir1})
  first_final = read(dir1 .. "/final.mp4")
  t.eq(first.rendered, 4)
  t.eq(first.reused, 0)
  for i, want in ipairs {5, 5, 9, 5} do
    local path = ("%s/shots/%02d.mp4"):format(dir1, i)
    local info = zoe.video.info(path)
    t.eq(info.frames, want, "shot " .. i .. " frames")
    t.eq(info.width, 32)
    t.eq(files.same_file(path, ("%s/cache/%s.mp4"):format(dir1, first.shots[i].key)), true, "a link of the cache entry")
  end
  -- 5 + (5 - 1 shared with shot 1) + 9 + (5 - 2 cross-faded) = 21
  t.eq(first.frames, 21)
  t.eq(zoe.video.info(dir1 .. "/final.mp4").frames, 21)
  local probe = io.popen(("ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 '%s'")
    :format(dir1 .. "/final.mp4"))
  t.eq(probe:read("a"):gsub("%s+", ""), "21", "ffprobe counts the decoded frames")
  probe:close()
  local sheet = zoe.image.read(dir1 .. "/contact.png")
  t.ok(sheet:size(2) > 4 * 32, "four rows with captions")
  local m = zoe.json.decode(read(dir1 .. "/manifest.json"))
  t.eq(#m.shots, 4)
  for i, s in ipairs(m.shots) do
    t.eq(s.output_hash, zoe.hash_file(("%s/shots/%02d.mp4"):format(dir1, i)), "manifest hash of shot " .. i)
    t.eq(s.record.recipe.seed, s.settings.seed)
  end
  t.eq(m.shots[1].prompt, "a red circle moving left on a white background")
  t.eq(m.shots[4].caption, "a green triangle and a blue square")
  t.eq(m.final.hash, zoe.hash_file(dir1 .. "/final.mp4"))
  t.eq(m.shots[2].settings.from, m.shots[1].output_hash, "a continued shot's key holds its parent's video")
  t.eq(m.shots[2].record.recipe.mode, "image2video")
  t.eq(m.shots[3].record.recipe.mode, "text2video")
  for _, name in ipairs(files.list(dir1 .. "/cache")) do t.ok(name:sub(1, 1) ~= ".", "no temporary left: " .. name) end
end)

t.test("a continued shot is image-to-video from the last frame of the shot before", function()
  local prev = zoe.video.read(dir1 .. "/shots/01.mp4")
  local last = prev:select(2, prev:size(2)):contiguous()
  local b = zoe.storyboard.check(board())
  local s = b.shots[2]
  zoe.pipeline.image2video{model = MODEL, prompt = s.prompt, vars = s.vars, negative = s.negative, width = 32,
    height = 32, frames = 5, fps = 8, steps = s.steps, sampler = s.sampler, schedule = s.schedule, shift = s.shift,
    cfg = s.cfg, seed = s.seed, image = last, out = root .. "/by_hand.mp4"}
  t.ok(read(root .. "/by_hand.mp4") == read(dir1 .. "/shots/02.mp4"), "the same bytes as shot 2")
  -- the final video: shot 2's first frame is not repeated after shot 1's last
  local final = zoe.video.read(dir1 .. "/final.mp4")
  local shot2 = zoe.video.read(dir1 .. "/shots/02.mp4")
  -- (final.mp4 is coded again: its frames are near what went in, not equal)
  local function diff(a, b) return (a - b):abs():mean():item() end
  t.ok(diff(final:select(2, 6), shot2:select(2, 2)) < 0.08, "frame 6 of final is frame 2 of shot 2")
  t.ok(diff(final:select(2, 6), shot2:select(2, 2)) < diff(final:select(2, 6), shot2:select(2, 1)) / 4, "not frame 1")
end)

t.test("crossfades blend the overlapping frames", function()
  -- the final video is coded again, so its frames are close to what went in, not equal
  local final = zoe.video.read(dir1 .. "/final.mp4")
  local s3 = zoe.video.read(dir1 .. "/shots/03.mp4")
  local s4 = zoe.video.read(dir1 .. "/shots/04.mp4")
  local function diff(a, b) return (a - b):abs():mean():item() end
  -- final frames 10..16 are shot 3's first 7; 17 and 18 blend shot 3's 8, 9 with shot 4's 1, 2
  t.ok(diff(final:select(2, 10), s3:select(2, 1)) < 0.08, "shot 3 starts at frame 10")
  for k = 1, 2 do
    local a = k / 3
    local want = s3:select(2, 7 + k) * (1 - a) + s4:select(2, k) * a
    local got = final:select(2, 16 + k)
    t.ok(diff(got, want) < 0.08, ("blend %d within coding error (%.4f)"):format(k, diff(got, want)))
    t.ok(diff(got, want) < diff(got, s4:select(2, k)) / 2, "closer to the blend than to the new shot alone")
    t.ok(diff(got, want) < diff(got, s3:select(2, 7 + k)) / 2, "closer to the blend than to the old shot alone")
  end
  t.ok(diff(final:select(2, 19), s4:select(2, 3)) < 0.08, "then shot 4 from its third frame")
  t.eq(final:size(2), 21)
end)

t.test("running again renders nothing; an edit renders that shot and those continuing from it", function()
  local again = zoe.storyboard.render(board(), {out = dir1})
  t.eq(rendered_list(again), {})
  t.ok(read(dir1 .. "/final.mp4") == first_final, "final kept")
  -- shot 1 changes: shot 2 continues from it
  local r = zoe.storyboard.render(board(function(b) b.shots[1].seed = 11 end), {out = dir1})
  t.eq(rendered_list(r), {1, 2})
  -- shot 3 changes: shot 4 only cross-fades from it, it does not continue
  r = zoe.storyboard.render(board(function(b) b.shots[3].prompt = "{foe} moving up" end), {out = dir1})
  t.eq(rendered_list(r), {3})
  -- a character used by shot 4 only
  r = zoe.storyboard.render(board(function(b) b.characters.pal = "a yellow triangle" end), {out = dir1})
  t.eq(rendered_list(r), {4})
  -- a transition changes the assembly only
  r = zoe.storyboard.render(board(function(b) b.shots[4].transition = "cut" end), {out = dir1})
  t.eq(rendered_list(r), {})
  t.eq(r.frames, 23)
  -- the style is in every shot
  r = zoe.storyboard.render(board(function(b) b.style = "on a black background" end), {out = dir1})
  t.eq(rendered_list(r), {1, 2, 3, 4})
  -- back to the first board: everything from the cache, the same final bytes
  r = zoe.storyboard.render(board(), {out = dir1})
  t.eq(rendered_list(r), {})
  t.eq(zoe.hash_file(r.final), zoe.json.decode(read(dir1 .. "/manifest.json")).final.hash)
  t.ok(read(r.final) == first_final, "the first final's bytes")
  -- force renders all again, to the same bytes
  local before = read(dir1 .. "/final.mp4")
  r = zoe.storyboard.render(board(), {out = dir1, force = true})
  t.eq(rendered_list(r), {1, 2, 3, 4})
  t.ok(read(dir1 .. "/final.mp4") == before, "forced render: the same final bytes")
end)

t.test("the same shots give the same final bytes in a fresh folder, one job or several", function()
  local want = first_final
  local d2, d3 = fresh_dir(), fresh_dir()
  zoe.storyboard.render(board(), {out = d2, jobs = 1})
  zoe.storyboard.render(board(), {out = d3, jobs = 3})
  t.ok(read(d2 .. "/final.mp4") == want, "one job")
  t.ok(read(d3 .. "/final.mp4") == want, "three jobs")
  t.ok(read(d2 .. "/contact.png") == read(dir1 .. "/contact.png"), "contact sheet")
end)

t.test("a damaged cache entry or record renders again; temporaries of killed runs go", function()
  local m = zoe.json.decode(read(dir1 .. "/manifest.json"))
  local want = read(dir1 .. "/final.mp4")
  -- overwrite shot 3's cached video in place (shots/03.mp4 is the same file)
  local video = dir1 .. "/" .. m.shots[3].cache
  local bytes = read(video)
  write(video, bytes:sub(1, #bytes // 2))
  -- drop shot 1's record: its video no longer counts
  os.remove(dir1 .. "/cache/" .. m.shots[1].key .. ".json")
  write(dir1 .. "/cache/.x.render-1-1.mp4", "half")
  write(dir1 .. "/shots/.01.mp4.99-1.tmp", "half")
  write(dir1 .. "/.final.mp4.99-1.tmp", "half")
  local r = zoe.storyboard.render(board(), {out = dir1})
  t.eq(rendered_list(r), {1, 3}, "shot 2's parent came out the same, so shot 2 stays")
  t.ok(read(dir1 .. "/final.mp4") == want, "the same final bytes")
  t.eq(read(dir1 .. "/cache/.x.render-1-1.mp4"), nil)
  t.eq(read(dir1 .. "/shots/.01.mp4.99-1.tmp"), nil)
  t.eq(read(dir1 .. "/.final.mp4.99-1.tmp"), nil)
end)

t.test("a folder being rendered by a live process is refused; a stale lock is taken over", function()
  local d = fresh_dir()
  files.mkdir_p(d)
  write(d .. "/.lock", "1") -- init: alive
  t.raises(function() zoe.storyboard.render(board(), {out = d}) end, "is being rendered by process 1")
  write(d .. "/.lock", "999999999") -- no such process
  local r = zoe.storyboard.render(board(function(b) b.shots = {b.shots[1]} end), {out = d})
  t.eq(r.rendered, 1)
  t.eq(read(d .. "/.lock"), nil, "released")
end)

t.test("shots beyond a shortened board go; the same shot twice renders once", function()
  local d = fresh_dir()
  zoe.storyboard.render(board(), {out = d})
  local r = zoe.storyboard.render(board(function(b) b.shots[3], b.shots[4] = nil, nil end), {out = d})
  t.eq(#files.list(d .. "/shots"), 2)
  t.eq(r.frames, 9)
  local twice = zoe.storyboard.render(board(function(b)
    b.shots = {{prompt = "a small circle", frames = 5, seed = 9}, {prompt = "a small circle", frames = 5, seed = 9}}
  end), {out = fresh_dir(), jobs = 2})
  t.eq(twice.rendered, 1)
  t.eq(twice.shots[1].key, twice.shots[2].key)
  t.eq(twice.frames, 10)
end)

t.test("prompts are encoded first; with the text encoder released the video is the same", function()
  local model = zoe.models.load(MODEL)
  local d = fresh_dir()
  local r = zoe.storyboard.render(board(function(b) b.style = "on a green background" end),
    {out = d, release_text_encoder = true})
  t.eq(r.rendered, 4)
  t.eq(rawget(model, "_t5"), nil, "released, and no shot loaded it again")
  t.eq(model.text_cache, nil, "the embeddings are not kept on the model")
  local d2 = fresh_dir()
  zoe.storyboard.render(board(function(b) b.style = "on a green background" end), {out = d2, release_text_encoder = false})
  t.ok(read(d .. "/final.mp4") == read(d2 .. "/final.mp4"), "the same final bytes")
end)

t.test("a render error names the shot and leaves no cache entry", function()
  local d = fresh_dir()
  t.raises(function()
    zoe.storyboard.render(board(function(b) b.shots[3].schedule = "wobbly" end), {out = d})
  end, "shot 3: ")
  local m = read(d .. "/manifest.json")
  t.eq(m, nil, "no manifest")
  for _, name in ipairs(files.list(d .. "/cache")) do t.ok(name:sub(1, 1) ~= ".", "no temporary: " .. name) end
  t.eq(read(d .. "/.lock"), nil, "the lock is released")
end)

t.test("watch renders again when the file changes, only what changed", function()
  local path = root .. "/watched.json"
  local function json(edit) return zoe.json.encode(zoe.storyboard(board(edit))) end
  write(path, json())
  local d = fresh_dir()
  local seen = {}
  local n = zoe.storyboard.watch(path, {out = d, debounce_ms = 20, on_render = function(r, err, k)
    seen[k] = r and rendered_list(r) or err
    if k == 1 then
      write(path, json(function(b) b.shots[3].seed = 33 end))
    elseif k == 2 then
      write(path, '{"shots": [{"prompt": "a", "frames": 0}]}')
    elseif k == 3 then
      write(path, json(function(b) b.shots[3].seed = 33 end))
    else
      return false
    end
  end})
  t.eq(n, 4)
  t.eq(seen[1], {1, 2, 3, 4})
  t.eq(seen[2], {3})
  t.ok(type(seen[3]) == "string" and seen[3]:find("shot 1: field 'frames' must be > 0", 1, true), "an error is reported")
  t.eq(seen[4], {}, "fixed again: all from the cache")
end)

t.test("the example storyboards in scripts/ load as data and pass every check on zoe-tiny", function()
  for _, p in ipairs {"scripts/storyboards/chase.lua", "scripts/storyboards/day_and_night.json"} do
    local b = zoe.storyboard.load(p)
    t.ok(#b.shots >= 4, p .. ": four shots or more")
    t.ok(next(b.characters) ~= nil, p .. ": characters")
    local continued, faded = 0, 0
    for _, s in ipairs(b.shots) do
      if s.continuity == "continue" then continued = continued + 1 end
      if type(s.transition) == "table" then faded = faded + 1 end
    end
    t.ok(continued >= 2 and faded >= 2, p .. ": continuity and crossfades")
    t.eq(b.model, "zoe-tiny")
    local plan = zoe.storyboard.check(b)
    t.eq(#plan.shots, #b.shots)
    t.eq(plan.width, 64)
  end
  local chase = zoe.storyboard.load("scripts/storyboards/chase.lua")
  t.eq(zoe.storyboard.check(chase).shots[2].prompt_expanded,
    "a red circle moving right and a blue square moving right on a navy background")
end)

-- ------------------------------------------------------------------ the trained model

t.test("zoe-tiny: a continued shot's first frame is close to the last frame before it (PSNR >= 25 dB)", function()
  local model = zoe.models.load("zoe-tiny")
  t.ok(model.supports_i2v, "zoe-tiny does image-to-video")
  local r = zoe.storyboard.render({
    model = "zoe-tiny", characters = {hero = "a red circle"}, style = "on a white background",
    shots = {{prompt = "{hero} moving right", seed = 1}, {prompt = "{hero} moving up", continuity = "continue"}},
  }, {out = fresh_dir()})
  local a, b = zoe.video.read(r.shots[1].file), zoe.video.read(r.shots[2].file)
  local mse = ((a:select(2, a:size(2)) - b:select(2, 1)) / 2):pow(2):mean():item() -- in [0, 1] units
  local psnr = 10 * math.log(1 / mse, 10)
  t.ok(psnr >= 25, ("PSNR %.1f dB"):format(psnr))
end)

os.execute(("rm -rf '%s'"):format(root))
t.done()
