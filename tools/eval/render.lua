-- Renders the evaluation set with the runtime: zoe tools/eval/render.lua pairs.json OUTDIR [model]
-- pairs.json is a list of {prompt =, seed =}; each goes to OUTDIR/NNNN.mp4 with the model's
-- default settings (what make run uses).
local zoe = require "zoe"
local f = assert(io.open(arg[1], "rb"))
local pairs_ = zoe.json.decode(f:read("a"))
f:close()
local out, model = arg[2], zoe.models.load(arg[3] or "zoe-tiny")
for i, p in ipairs(pairs_) do
  zoe.pipeline.text2video{model = model, prompt = p.prompt, seed = p.seed, out = ("%s/%04d.mp4"):format(out, i),
                          crf = 10}
  if i % 20 == 0 then io.stderr:write(("rendered %d/%d\n"):format(i, #pairs_)) end
end
