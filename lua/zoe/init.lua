-- zoe: the Lua library. The C core (zoe.core) gives tensors, blocks and I/O;
-- the Lua modules (samplers, pipelines, storyboards, ...) load on first use:
-- zoe.pipeline is lua/zoe/pipeline.lua, required the first time it is touched.
local core = require "zoe.core"

local zoe = {}
for k, v in pairs(core) do zoe[k] = v end
require "zoe.tensorlib" -- printing and 1-based indices, in Lua on the core's tensors

return setmetatable(zoe, {
  __index = function(t, name)
    if type(name) ~= "string" then return nil end
    local ok, mod = pcall(require, "zoe." .. name)
    if not ok then
      if type(mod) == "string" and mod:find("module 'zoe." .. name .. "' not found", 1, true) then
        return nil
      end
      error(mod, 2)
    end
    rawset(t, name, mod)
    return mod
  end,
})
