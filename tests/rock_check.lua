-- make rock-check: stock lua5.4 loads zoe from the tree luarocks installed it into (the
-- paths are that tree's alone) and computes with it.
local zoe = require "zoe"
assert(package.searchpath("zoe", package.path):find("rocktree", 1, true), "zoe.init from the rock tree")
assert((package.searchpath("zoe", package.cpath) or ""):find("rocktree", 1, true), "zoe.so from the rock tree")
local T, nn = zoe.tensor, zoe.nn
local y = nn.linear(T.ones(2, 3), T.full({4, 3}, 0.5), T.ones(4))
assert(y:sum():item() == 2 * 4 * 2.5, "linear through the rock's zoe.so")
local frames = zoe.pipeline.text2video{model = "models/zoe-tiny", prompt = "a red circle", steps = 2, frames = 5,
  width = 32, height = 32, seed = 1}
assert(frames:size(2) == 5, "a clip from the rock")
print(("rock-check: zoe %s from %s"):format(zoe.version, package.searchpath("zoe", package.path)))
