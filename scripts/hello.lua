-- hello.lua: the default recipe. Until zoe-tiny ships (issue 7) it shows the
-- tensor core doing real work: a seeded random latent, attention-style math,
-- and a check that the result is the same on every run.
local zoe = require "zoe"
local T = zoe.tensor

print("zoe " .. zoe.version .. " on " .. zoe.threads() .. " threads")

-- one self-attention head over 256 tokens of 64 dims, from seed 1
local x = T.randn({256, 64}, {seed = 1})
local wq, wk, wv = T.randn({64, 64}, {seed = 2}) / 8, T.randn({64, 64}, {seed = 3}) / 8, T.randn({64, 64}, {seed = 4}) / 8
local q, k, v = x:matmul(wq), x:matmul(wk), x:matmul(wv)
local scores = q:matmul(k:t()) / math.sqrt(64)
local out = scores:softmax(2):matmul(v)
print("attention output", out)
print(("mean %.6f, std %.6f"):format(out:mean():item(), math.sqrt(out:var():item())))
local m = zoe.mem()
print(("memory: %.1f MiB live, peak %.1f MiB"):format(m.live / 2 ^ 20, m.peak / 2 ^ 20))
