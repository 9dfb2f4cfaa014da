-- hello.lua: the default recipe (make run). One prompt on zoe-tiny, the model shipped in
-- models/, rendered to out/hello.mp4 with its record (out/hello.json) and a contact sheet
-- (out/hello.png). Change the prompt, seed or sampler here, or give them as arguments,
-- then a model (a folder or a name looked up in ZOE_MODELS) and settings as name=value:
--   zoe scripts/hello.lua "a blue square moving up on a black background" 7
--   zoe scripts/hello.lua "a cat walking on grass" 1 Wan2.1-T2V-1.3B width=320 height=192 frames=17 steps=10
local zoe = require "zoe"

local prompt = arg[1] or "a yellow triangle moving left on a navy background"
local seed = tonumber(arg[2]) or 1
local model = arg[3] or "zoe-tiny"

local settings = {
  model = model,
  prompt = prompt,
  seed = seed,
  out = "out/hello.mp4",
  -- everything else is the model's default (zoe-tiny: 64x64, 17 frames at 8 fps, 20 steps, cfg 4)
}
for i = 4, #arg do
  local name, value = arg[i]:match("^([%w_]+)=(.*)$")
  if not name then error(("hello.lua: argument %d is '%s'; settings are name=value (steps=10)"):format(i, arg[i]), 0) end
  settings[name] = tonumber(value) or value
end

os.execute("mkdir -p out")
local frames, record = zoe.pipeline.text2video(settings)
-- small frames are drawn 3x; large ones as they are
zoe.video.contact_sheet({frames}, "out/hello.png", {every = 2, scale = frames:size(4) <= 128 and 3 or 1, labels = {prompt}})

local r, t = record.recipe, record.timings
print(("%q, seed %d: %d frames of %dx%d, %s %d steps, cfg %g"):format(r.prompt_expanded, r.seed, frames:size(2),
  r.width, r.height, r.sampler, r.steps, r.cfg))
print(("text %.2f s, denoise %.2f s, decode %.2f s, write %.2f s: %.2f s in all"):format(t.encode, t.denoise,
  t.decode, t.write or 0, t.total))
print("wrote out/hello.mp4, out/hello.json and out/hello.png")
