-- The family seam: zoe.models asks registered families to recognize a folder, and the
-- pipeline and prompt code ask the model (the Model contract, lua/zoe/family/README.md)
-- for everything model-specific. A toy family defined here, pure Lua, compresses time
-- 3x (clips of 3n+1 frames) and space 4x, unlike Wan's 4x and 8x: the pipeline must
-- follow it, not Wan's numbers.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local models = zoe.models

-- ---------------------------------------------------------------- the toy family

local calls = {}
local Toy = {}
Toy.__index = Toy

local toy = {folders = "toy.json"}
function toy.recognize(dir)
  local f = io.open(dir .. "/toy.json", "rb")
  if not f then return nil end
  f:close()
  return {name = "toy-" .. dir:match("([^/]+)$")}
end
function toy.load(desc)
  return setmetatable({
    name = desc.name, family = "toy", dir = desc.dir, files = {}, kind = "flow", text_len = 8,
    supports_i2v = true,
    defaults = {sampler = "euler", schedule = "flow", steps = 2, shift = 1, cfg = 2, fps = 8, width = 16,
                height = 8, frames = 7, negative = ""},
  }, Toy)
end

function Toy:hash() return zoe.hash("toy") end
function Toy:tokenize(text)
  local ids = {}
  for w in text:gmatch("%S+") do ids[#ids + 1] = #w end
  return ids
end
function Toy:eos_id() return 0 end
function Toy:encode_ids(ids)
  local rows = {}
  for i, id in ipairs(ids) do rows[i] = {id, 1} end
  return T.tensor(rows)
end
function Toy:encode_text(text)
  local ids = self:tokenize(text)
  ids[#ids + 1] = self:eos_id()
  return self:encode_ids(ids), T.tensor(ids, "i32")
end
function Toy:release_text_encoder() calls.release_text = true end
function Toy:frames_ok(n)
  if type(n) == "number" and n >= 1 and (n - 1) % 3 == 0 then return true end
  return false, "must be 3n+1"
end
function Toy:latent_frames(n) return (n - 1) // 3 + 1 end
function Toy:frame_span(k)
  calls.spans = (calls.spans or 0) + 1
  if k == 1 then return 1, 1 end
  return 3 * k - 4, 3 * k - 2
end
function Toy:latent_shape(frames, height, width)
  local ok, why = self:frames_ok(frames)
  if not ok then error(self.name .. ": frames " .. why .. ", got " .. tostring(frames), 3) end
  return {2, self:latent_frames(frames), height // 4, width // 4}
end
function Toy:text_condition(cond, uncond)
  calls.text_condition = true
  return {emb = cond}, uncond and {emb = uncond} or nil
end
function Toy:condition(frames, shape, opts)
  local _, fl, h, w = table.unpack(shape)
  calls.condition, calls.condition_tile = frames:size(2), opts and opts.tile
  return T.zeros(1, fl, h, w), T.full({2, self:latent_frames(frames:size(2)), h, w}, 0.25)
end
-- the velocity that carries any latent to 0.5 (flow: x0 = x - sigma * v)
function Toy:denoiser(extra)
  calls.extra = extra ~= nil
  return function(xs, t_, conds)
    t.eq(#conds, xs:size(1), "a condition per batch entry")
    for _, c in ipairs(conds) do t.ok(c.emb ~= nil, "the denoiser gets text_condition's result") end
    local sigma = type(t_) == "number" and t_ / 1000 or t_[1]:item() / 1000
    return (xs - 0.5) / math.max(sigma, 1e-3)
  end
end
function Toy:release_denoiser() calls.release_denoiser = true end
function Toy:decode(z, opts)
  calls.decode_tile = opts and opts.tile
  local c, fl, h, w = table.unpack(z:shape())
  assert(c == 2)
  local mean = z:mean():item()
  return T.full({3, 3 * (fl - 1) + 1, 4 * h, 4 * w}, math.max(-1, math.min(1, mean)))
end

package.preload["zoe.family.toy"] = function() return toy end

-- ---------------------------------------------------------------- folders

local root = os.tmpname()
os.remove(root)
local function folder(name, files)
  local dir = root .. "/" .. name
  assert(os.execute(("mkdir -p '%s'"):format(dir)))
  for file, text in pairs(files) do
    local f = assert(io.open(dir .. "/" .. file, "wb"))
    f:write(text)
    f:close()
  end
  return dir
end

t.test("a folder no family recognizes names every family asked and what it looks for", function()
  local dir = folder("plain", {["toy.json"] = "{}"})
  t.raises(function() models.load(dir) end, "no family recognizes it: wan (config.json with t5, dit and vae")
end)

t.test("a registered family recognizes its folders; model.lua and config.json may name it", function()
  models.register_family("toy")
  models.register_family("toy") -- once is enough
  t.eq(models.families, {"wan", "ltx", "cogvideox", "toy"})
  local m = models.load(folder("one", {["toy.json"] = "{}"}))
  t.eq(m.family, "toy")
  t.eq(m.name, "toy-one")
  local named = models.load(folder("two", {["model.lua"] = 'return {family = "toy", name = "named"}'}))
  t.eq(named.name, "named")
  local cfg = models.load(folder("three", {["config.json"] = '{"family": "toy", "name": "from-config"}'}))
  t.eq(cfg.family, "toy")
end)

t.test("files go to the family that takes them; when none does, each family says why", function()
  toy.describe_files = function(spec)
    if not spec.dit:match("%.toy$") then error("zoe.models.load: " .. spec.dit .. " is not a toy file", 0) end
    return {name = "toy-files", dir = "."}
  end
  local m = models.load{dit = "x.toy", t5 = "x.toy", vae = "x.toy", tokenizer = "t.json"}
  t.eq(m.family, "toy")
  t.eq(m.name, "toy-files")
  local other = {dit = root .. "/none.bin", t5 = root .. "/none.bin", vae = root .. "/none.bin", tokenizer = "t.json"}
  t.raises(function() models.load(other) end, "zoe.models.load: no family takes these files (wan: ")
  t.raises(function() models.load(other) end, "; toy: " .. root .. "/none.bin is not a toy file)")
  other.family = "toy"
  t.raises(function() models.load(other) end, "none.bin is not a toy file")
  t.raises(function() models.load{family = "cogvideox", dit = "x.toy"} end, "family 'cogvideox' takes folders, not files")
  toy.describe_files = nil
end)

t.test("a model.lua must name its family; an unknown family lists the known ones", function()
  t.raises(function() models.load(folder("nofam", {["model.lua"] = 'return {name = "x"}'})) end,
    "model.lua: name the model's family")
  t.raises(function() models.load(folder("badfam", {["model.lua"] = 'return {family = "nope"}'})) end,
    "unknown model family 'nope' (wan, ltx, cogvideox, toy)")
end)

-- ---------------------------------------------------------------- the pipeline asks the model

local model = models.load(root .. "/one")

t.test("text2video follows the model's frame counts, latent shape and decode", function()
  local frames, record = zoe.pipeline.text2video{model = model, prompt = "a b c", seed = 1}
  t.eq(frames:shape(), {3, 7, 8, 16}, "3n+1 frames, 4x space")
  t.near(frames:mean():item(), 0.5, 1e-6, "the toy's denoiser carries the latent to 0.5")
  t.eq(record.recipe.frames, 7)
  t.ok(calls.text_condition and calls.release_denoiser, "text_condition and release_denoiser were asked")
  t.raises(function() zoe.pipeline.text2video{model = model, prompt = "x", frames = 5} end, "frames must be 3n+1, got 5")
  local ten = zoe.pipeline.text2video{model = model, prompt = "x", frames = 10, steps = 1}
  t.eq(ten:size(2), 10, "10 = 3 * 3 + 1 is a clip here (not for Wan)")
end)

t.test("prompt travel blends over the model's frame spans", function()
  calls.spans = 0
  local list = {{text = "a", from = 1, to = 4}, {text = "bbb", from = 5, to = 7}}
  local per = zoe.prompt.travel(model, list, 7, model.text_len)
  t.eq(#per, 3, "latent frames of a 7-frame clip")
  t.eq(calls.spans, 3, "one span per latent frame")
  -- latent frame 2 stands for pixel frames 2..4 (all "a"), frame 3 for 5..7 (all "bbb")
  t.close(per[2], T.tensor({{1, 1}, {0, 1}}), 0, "frame 2")
  t.close(per[3], T.tensor({{3, 1}, {0, 1}}), 0, "frame 3")
end)

t.test("image2video and extend ask the model for conditioning and valid context lengths", function()
  local img = T.zeros(3, 8, 16)
  local frames = zoe.pipeline.image2video{model = model, prompt = "x", image = img, steps = 1, cfg = 1}
  t.eq(frames:shape(), {3, 7, 8, 16})
  t.eq(calls.condition, 1, "the model got the one frame")
  t.ok(calls.extra, "the denoiser got the extra channels")
  local video = T.zeros(3, 7, 8, 16)
  local ext = zoe.pipeline.extend{model = model, prompt = "x", video = video, context_frames = 4, steps = 1, cfg = 1}
  t.eq(calls.condition, 4, "4 = 3 + 1 context frames are valid here")
  t.eq(ext:size(2), 7 + 7 - 4, "the source, then the new frames after the context")
  -- the VAE's tiles, as given, reach the image's encode and the decode
  zoe.pipeline.image2video{model = model, prompt = "x", image = img, steps = 1, cfg = 1, vae_tile = {2, 3}}
  t.eq(calls.condition_tile, {2, 3}, "condition's tiles")
  t.eq(calls.decode_tile, {2, 3}, "decode's tiles")
  t.raises(function()
    zoe.pipeline.extend{model = model, prompt = "x", video = video, context_frames = 5, steps = 1}
  end, "context_frames must be 3n+1, got 5")
end)

os.execute(("rm -rf '%s'"):format(root))
t.done()
