-- Previews (lua/zoe/preview.lua): the preview of a run's last step is the projection of its
-- final latent; zoe-tiny's fitted projection looks like the decoded video; Wan2.1's published
-- factors map each channel; the contact sheet beside the output; the job's "preview" events,
-- job:last and the REPL's :jobs; a storyboard's shots.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local model = zoe.models.load("zoe-tiny")
local dir = os.tmpname()
os.remove(dir)
assert(os.execute(("mkdir -p '%s'"):format(dir)))

local function psnr(a, b)
  local mse = ((a - b) * (a - b)):mean():item()
  return mse == 0 and math.huge or 10 * math.log(4 / mse, 10)
end

-- [3, 1 + 4k, H, W] -> [3, 1 + k, H/8, W/8]: each latent frame's pixels averaged (the VAE's
-- causal time stride and 8x8 blocks)
local function latent_grid(v)
  local c, n, h, w = table.unpack(v:shape())
  local k = (n - 1) // 4
  local rest = v:narrow(2, 2, 4 * k):contiguous():view(c, k, 4, h, w):mean(3)
  local frames = T.cat({v:narrow(2, 1, 1), rest}, 2):contiguous()
  return frames:view(c, k + 1, h // 8, 8, w // 8, 8):mean(6):mean(4)
end

local PROMPT = "a yellow square moving left and a blue circle growing on a black background"

t.test("the preview of the last step is the projection of the final latent; every N steps before", function()
  local seen, final = {}, nil
  local out = dir .. "/run.mp4"
  local frames = zoe.pipeline.text2video{model = model, prompt = PROMPT, seed = 9, steps = 10, preview_every = 3,
    out = out,
    on_preview = function(f, state) seen[#seen + 1] = {step = state.step, frames = f} end,
    on_step = function(state) if state.step == state.steps then final = state.x end end}
  local steps = {}
  for i, s in ipairs(seen) do steps[i] = s.step end
  t.eq(steps, {3, 6, 9, 10}, "every 3 steps and the last")
  local last = seen[#seen].frames
  t.eq(last:shape(), {3, 5, 8, 8}, "[3, latent frames, h, w]")
  t.ok((last - model:preview(final)):abs():max():item() == 0, "exactly the projection of the final latent")
  t.ok(last:max():item() <= 1 and last:min():item() >= -1, "in [-1, 1]")
  -- the fitted projection shows what the VAE decodes (same colours, same places)
  local p = psnr(last, latent_grid(frames))
  print(("# preview of the last step against the decoded video at latent size: %.1f dB"):format(p))
  -- (the best constant colour scores 14.5 dB here; the fitted map 21.4)
  t.ok(p > 18, ("preview against the decoded video at latent size: PSNR %.1f dB"):format(p))
  local early = psnr(seen[1].frames, latent_grid(frames))
  t.ok(early < p, ("step 3's x0 estimate is further from the video (%.1f dB) than the last (%.1f)"):format(early, p))
  -- the contact sheet beside the output, written atomically (no temporary left)
  local sheet = zoe.image.read(dir .. "/run.preview.png")
  t.ok(sheet:size(3) > 5 * 8 and sheet:size(1) == 3, "a sheet of the 5 frames")
  local leftovers = io.popen(("ls -a '%s' | grep -c tmp"):format(dir)):read("a")
  t.eq(tonumber(leftovers), 0, "no temporary files")
end)

t.test("preview = false writes no sheet; on_preview still sees the frames", function()
  local n = 0
  zoe.pipeline.text2video{model = model, prompt = PROMPT, seed = 9, steps = 4, preview = false,
    out = dir .. "/quiet.mp4", on_preview = function() n = n + 1 end}
  t.ok(not t.exists(dir .. "/quiet.preview.png"), "no sheet")
  t.eq(n, 4, "steps // 10 rounds up to every step")
  t.raises(function() zoe.pipeline.text2video{model = model, prompt = PROMPT, preview_every = 0} end,
           "preview_every must be a positive integer")
end)

t.test("Wan2.1's published factors: each latent channel maps to its row", function()
  local wan = require "zoe.family.wan"
  local m = wan.load({dir = "/nonexistent", name = "wan-shapes",
    config = {t5 = {}, dit = {dim = 1536, num_layers = 30, in_dim = 16, text_len = 512},
              vae = {dim = 96, z_dim = 16}, latent = {}, sampling = {}},
    files = {t5 = "t5", dit = "dit", vae = "vae"}})
  for c = 1, 16 do
    local z = T.zeros(16, 1, 1, 1)
    z:narrow(1, c, 1):fill_(1)
    local rgb = m:preview(z):view(3):totable()
    for k = 1, 3 do
      local want = math.max(-1, math.min(1, wan.WAN21_PREVIEW.factors[c][k] + wan.WAN21_PREVIEW.bias[k]))
      t.near(rgb[k], want, 1e-6, ("channel %d, colour %d"):format(c, k))
    end
  end
  t.ok(m.cache_defaults and #m.cache_defaults.teacache.coefficients == 5, "and TeaCache's published polynomial")
end)

t.test("LTX-Video's published factors (128 channels): rows 1, 36 and 128 as published", function()
  local P = require "zoe.family.ltx_preview"
  t.eq(#P.factors, 128)
  for c, row in pairs {[1] = {1.1202e-02, -6.3815e-04, -1.0021e-02}, [36] = {-1.3373e-01, -1.0720e-01, -5.3801e-02},
                       [128] = {-1.4605e-02, -6.7032e-03, 3.9675e-03}} do
    local z = T.zeros(128, 1, 1, 1)
    z:narrow(1, c, 1):fill_(1)
    local rgb = zoe.preview.project(z, P):view(3):totable()
    for k = 1, 3 do t.near(rgb[k], row[k] + P.bias[k], 1e-6, ("channel %d, colour %d"):format(c, k)) end
  end
end)

t.test("a job emits its previews: listeners, job:last and the REPL's :jobs", function()
  local events, listed = {}, nil
  local path = dir .. "/job.preview.png"
  local job = zoe.spawn(function()
    zoe.pipeline.text2video{model = model, prompt = PROMPT, seed = 2, steps = 6, preview = path, preview_every = 2,
      on_step = function(state)
        if state.step == 5 then listed = require("zoe.repl").jobs_table() end
      end}
  end)
  job:on("preview", function(e) events[#events + 1] = e end)
  job:wait()
  t.eq(#events, 3, "steps 2, 4, 6")
  t.eq(events[3].step, 6)
  t.eq(events[3].path, path)
  t.eq(events[3].frames:shape(), {3, 5, 8, 8})
  t.eq(job:last("preview").step, 6, "job:last keeps the latest")
  t.ok(listed and listed:find("preview: " .. path, 1, true), ":jobs shows the path: " .. tostring(listed))
  t.eq(zoe.emit("preview", {mark = 1}), true, "this file runs as a job too")
  t.eq(zoe.current():last("preview").mark, 1)
  t.raises(function() zoe.emit("done", {}) end, "'done' is the scheduler's")
end)

t.test("a storyboard previews each shot beside it", function()
  local board = zoe.storyboard{model = "zoe-tiny", size = {64, 64}, fps = 8, style = "on a white background",
    shots = {{prompt = "a red circle moving left", frames = 5, seed = 1, steps = 4},
             {prompt = "a green square moving up", frames = 5, seed = 2, steps = 4}}}
  local r = zoe.storyboard.render(board, {out = dir .. "/board"})
  t.eq(r.rendered, 2)
  for _, name in ipairs {"01", "02"} do
    t.ok(t.exists(("%s/board/shots/%s.preview.png"):format(dir, name)), "shot " .. name .. " has its preview")
  end
end)

os.execute(("rm -rf '%s'"):format(dir))
t.done()
