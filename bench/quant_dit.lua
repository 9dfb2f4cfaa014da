-- One DiT forward of Wan2.1-1.3B at 320x192x17 (1200 tokens, no guidance) on one weights file,
-- for bench/bench_quant.sh, which runs each file in a process of its own (so each peak RSS is
-- its own) and prints the ratios. Prints: RESULT <label> <seconds> <peak RSS bytes> <weight bytes> <cpu seconds>
-- usage: zoe bench/quant_dit.lua CONFIG.json WEIGHTS LABEL [REPEATS]
local zoe = require "zoe"
local T = zoe.tensor
local wan = require "zoe.arch.wan"

local cfg_path, weights, label, repeats = arg[1], arg[2], arg[3], tonumber(arg[4]) or 2
local f = assert(io.open(cfg_path))
local cfg = require("zoe.family.wan_files").dit_config(zoe.json.decode(f:read("a")))
f:close()

local function now() return zoe.uv.hrtime() / 1e9 end
local function status(field)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. field .. ":%s+(%d+)")
    if v then return tonumber(v) * 1024 end
  end
end

local w = zoe.load(weights)
w = require("zoe.arch.util").scaled_fp8(w) or w -- ComfyUI's scaled fp8
local bytes = 0
for _, name in ipairs(w:keys()) do
  local t = w:get(name)
  bytes = bytes + t:nbytes()
end
zoe.precision("bf16") -- as the pipeline runs a bf16 or quantized DiT
local dit = wan.dit(cfg, w)
local kv = dit.cross_kv({T.randn({40, 4096}, {seed = 3})})
local x = T.randn({16, 5, 24, 40}, {seed = 5})
dit.forward({x}, 500, kv) -- pages the weights in
local best, cpu = math.huge, math.huge
for _ = 1, repeats do
  local t0, c0 = now(), os.clock()
  dit.forward({x}, 500, kv)
  best, cpu = math.min(best, now() - t0), math.min(cpu, os.clock() - c0)
end
-- wall time, and the process's CPU time (both threads), which other work on the machine disturbs less
print(("RESULT %s %.4f %d %d %.4f"):format(label, best, status("VmHWM"), bytes, cpu))
