-- The generation pipeline end to end on a small random-weight Wan-family model built
-- here (tests/lua/tiny_wan.lua): shapes, determinism across thread counts, records and
-- replay, image-to-video and extend, and the errors bad settings give.
local t = require "testlib"
local zoe = require "zoe"
local tiny = require "tiny_wan"
local T = zoe.tensor

local dir = os.tmpname()
os.remove(dir)
assert(os.execute(("mkdir -p '%s'"):format(dir)))
tiny.write(dir)
local model = zoe.models.load(dir)

local function same(a, b) return a:shape()[1] == b:shape()[1] and (a - b):abs():max():item() == 0 end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

t.test("text2video gives [3, T, H, W] in [-1, 1] with the model's defaults", function()
  local frames, record = zoe.pipeline.text2video{model = model, prompt = "a red circle moving left", seed = 1}
  t.eq(frames:shape(), {3, 5, 32, 32})
  t.ok(frames:max():item() <= 1 and frames:min():item() >= -1, "range")
  t.eq(record.recipe.steps, 4, "model default steps")
  t.eq(record.recipe.seed, 1)
  t.eq(record.recipe.model_name, "tiny-random")
  t.ok(#record.recipe.weights_hash == 16, "weights hash")
  t.ok(record.timings.denoise >= 0 and record.timings.total >= record.timings.denoise, "timings")
  local f2 = zoe.pipeline.text2video{model = model, prompt = "a red circle moving left", seed = 1, frames = 9,
    width = 48, height = 32, steps = 2, sampler = "unipc", cfg = 1}
  t.eq(f2:shape(), {3, 9, 32, 48})
end)

t.test("a DiT whose pages were given back after a render computes the same next time", function()
  local spec = {model = model, prompt = "a green triangle", seed = 3, steps = 2}
  local before = zoe.pipeline.text2video(spec)
  model.release_bytes = 0 -- what a DiT over 1 GB does after every denoise
  local first = zoe.pipeline.text2video(spec)
  local again = zoe.pipeline.text2video(spec)
  model.release_bytes = nil
  t.ok(same(before, first) and same(first, again), "identical frames")
end)

t.test("the same seed gives identical frames on 1 and on 2 threads; another seed differs", function()
  local spec = {model = model, prompt = "a blue square", seed = 7, steps = 3}
  local n = zoe.threads()
  zoe.threads(1)
  local a = zoe.pipeline.text2video(spec)
  zoe.threads(2)
  local b = zoe.pipeline.text2video(spec)
  zoe.threads(n)
  t.ok(same(a, b), "identical on 1 and 2 threads")
  spec.seed = 8
  t.ok(not same(a, zoe.pipeline.text2video(spec)), "another seed")
end)

t.test("on_step sees every step and can change the next step's cfg", function()
  local seen = {}
  zoe.pipeline.text2video{model = model, prompt = "a circle", seed = 2, steps = 4, on_step = function(s)
    seen[#seen + 1] = s.step
    if s.step == 2 then s.settings.cfg = 1 end
  end}
  t.eq(seen, {1, 2, 3, 4})
end)

t.test("bad settings say what is allowed", function()
  t.raises(function() zoe.pipeline.text2video{model = model, prompt = "x", frames = 6} end,
    "frames must be 4n+1 (1, 5, 9, 13, 17, ...), got 6")
  t.raises(function() zoe.pipeline.text2video{model = model, prompt = "x", width = 40} end,
    "width must be a positive multiple of 16")
  t.raises(function() zoe.pipeline.text2video{model = model, prompt = "x", sampler = "magic"} end,
    "unknown sampler 'magic' (euler, euler_ancestral")
  t.raises(function() zoe.pipeline.text2video{model = model, prompt = "x", stpes = 3} end,
    "unknown setting 'stpes'")
  t.raises(function() zoe.pipeline.text2video{model = model} end, "prompt must be a text")
  t.raises(function() zoe.pipeline.text2video{model = "no-such-model", prompt = "x"} end,
    "zoe.models.load: no model 'no-such-model'")
  t.raises(function() zoe.pipeline.text2video{model = model, prompt = "x", steps = 0} end,
    "steps must be an integer from 1 to 1000, got 0")
end)

t.test("an error during denoising leaves no file under the output name", function()
  local out = dir .. "/interrupted.mp4"
  t.raises(function()
    zoe.pipeline.text2video{model = model, prompt = "x", seed = 3, out = out, on_step = function(s)
      if s.step == 2 then error("stop here") end
    end}
  end, "stop here")
  t.eq(read(out), nil, "no video")
  t.eq(read(dir .. "/interrupted.json"), nil, "no record")
end)

t.test("out = writes the video as it decodes, its record beside it, and replay makes the same bytes", function()
  if not zoe.video then return t.skip("video output", "zoe.video is not built") end
  local out = dir .. "/first.mp4"
  local frames = zoe.pipeline.text2video{model = model, prompt = "a {red|blue|green} circle", seed = 11, out = out}
  local info = zoe.video.info(out)
  t.eq(info.frames, frames:size(2), "frame count")
  t.eq(info.width, 32)
  local rec = zoe.json.decode(read(dir .. "/first.json"))
  t.eq(rec.recipe.seed, 11)
  t.ok(rec.recipe.prompt_expanded:find("circle"), "expanded prompt recorded")
  local recipe = zoe.pipeline.recipe(out)
  t.eq(recipe.weights_hash, model:hash(), "recipe in the file's metadata")
  zoe.replay(out, {out = dir .. "/again.mp4"})
  t.ok(read(out) == read(dir .. "/again.mp4"), "replay gives the same bytes")
end)

t.test("image2video and extend", function()
  local img = T.rand({3, 32, 32}, {seed = 5}) * 2 - 1
  local frames = zoe.pipeline.image2video{model = model, prompt = "a circle", image = img, seed = 4}
  t.eq(frames:shape(), {3, 5, 32, 32})
  local ext = zoe.pipeline.extend{model = model, prompt = "a circle", video = frames, seed = 5}
  t.eq(ext:shape(), {3, 9, 32, 32}, "5 frames + 5 new - 1 shared")
  t.ok(same(ext:narrow(2, 1, 5), frames), "the source frames are kept")
  t.raises(function() zoe.pipeline.extend{model = model, prompt = "a", video = frames, context_frames = 3} end,
    "context_frames must be 4n+1")
end)
t.test("prompt weighting scales the weighted tokens' embeddings", function()
  local plain = zoe.prompt.encode(model, "a red circle")
  local same = zoe.prompt.encode(model, "a (red:1) circle")
  t.eq((plain - same):abs():max():item(), 0, "weight 1 changes nothing")
  local heavy = zoe.prompt.encode(model, "a (red:1.5) circle")
  t.eq(heavy:shape(), plain:shape())
  -- the weighted token's row grows 1.5x relative to the others, whose direction stays
  local ratio = function(i) return heavy[i]:norm():item() / plain[i]:norm():item() end
  t.near(ratio(2) / ratio(1), 1.5, 1e-5, "token 2 against token 1")
  t.near(ratio(3) / ratio(1), 1.0, 1e-5, "token 3 against token 1")
  t.near(heavy:norm():item(), plain:norm():item(), 1e-5, "the overall norm is kept")
  local frames = zoe.pipeline.text2video{model = model, prompt = "a (red:1.5) circle", seed = 1, steps = 2}
  t.eq(frames:shape(), {3, 5, 32, 32})
end)

t.test("prompt travel gives each latent frame its own blend of the prompts", function()
  local list = {{text = "a red circle", from = 1, to = 5}, {text = "a blue square", from = 6, to = 9}}
  local per = zoe.prompt.travel(model, list, 9, model.text_len)
  t.eq(#per, 3, "latent frames of a 9-frame clip")
  local a, b = zoe.prompt.encode(model, "a red circle"), zoe.prompt.encode(model, "a blue square")
  t.eq((per[1] - a):abs():max():item(), 0, "frame 1 is the first prompt")
  t.ok((per[3] - b):abs():max():item() == 0, "frames 6-9 are the second prompt")
  local frames = zoe.pipeline.text2video{model = model, prompt = list, frames = 9, seed = 2, steps = 2}
  t.eq(frames:shape(), {3, 9, 32, 32})
  t.raises(function() zoe.prompt.travel(model, {{text = "x", from = 1, to = 1}}, 9) end, "no prompt covers frames 2..5")
end)

t.test("a sweep renders every combination and one labelled contact sheet", function()
  local out = dir .. "/sweep"
  local results = zoe.sweep{model = model, prompt = "a circle", seed = 3, cfg = {1, 3}, steps = {1, 2}, out = out}
  t.eq(#results, 4)
  local labels = {}
  for i, r in ipairs(results) do
    labels[i] = r.label
    t.ok(read(("%s/%03d.mp4"):format(out, i)), "video " .. i)
  end
  t.eq(labels, {"cfg=1 steps=1", "cfg=1 steps=2", "cfg=3 steps=1", "cfg=3 steps=2"})
  local sheet = zoe.image.read(out .. "/sheet.png")
  t.ok(sheet:size(2) > 4 * 32, "one row per combination")
  t.raises(function() zoe.sweep{model = model, prompt = "x"} end, "give at least one setting as a list")
end)

os.execute(("rm -rf '%s'"):format(dir))
t.done()
