-- Helpers the architectures share: weights under a prefix, and renamed weights.
local util = {}

-- The weights whose names start with 'prefix', looked up by the rest of the name:
-- under(w, "blocks.3.")["attn.q.weight"] is w["blocks.3.attn.q.weight"].
-- Works on a weights object (zoe.load) or a plain table.
function util.under(w, prefix)
  return setmetatable({}, {
    __index = function(_, name) return w[prefix .. name] end,
    __name = "weights under " .. prefix,
  })
end

-- A weights view that answers our names from a checkpoint that uses other ones:
-- 'rename(name)' gives the checkpoint's name for one of ours, or a list of candidates
-- (the first present wins), or nil for the same name.
function util.renamed(w, rename)
  return setmetatable({}, {
    __index = function(_, name)
      local r = rename(name)
      if type(r) == "table" then
        for _, n in ipairs(r) do
          local t = w[n]
          if t ~= nil then return t end
        end
        return nil
      end
      return w[r or name]
    end,
  })
end

-- ComfyUI's scaled fp8 files: a weight X.weight in float8 with X.scale_weight (a 0-d f32) is
-- worth scale_weight * X.weight. The view answers such weights as they are in the file, carrying
-- the scale (zoe.weight_scaled), so the products multiply the fp8 values exactly in bf16 and
-- scale the result. X.scale_input (for fp8 activations on GPUs) is not used: on a CPU ComfyUI
-- also computes with the weights dequantized. nil when the file has no such weights.
function util.scaled_fp8(w)
  local any = false
  for _, name in ipairs(w:keys()) do
    if name:find("%.scale_weight$") then any = true break end
  end
  if not any then return nil end
  local zoe = require "zoe"
  local made = {}
  local view = setmetatable({}, {__index = function(_, name)
    if made[name] then return made[name] end
    local t = w[name]
    local base = t and name:match("^(.*)%.weight$")
    local s = base and t:dim() == 2 and w[base .. ".scale_weight"]
    if not s then return t end
    made[name] = zoe.weight_scaled(t, s:item())
    return made[name]
  end})
  view.keys = function() return w:keys() end
  view.get = function(_, name) return view[name] or w:get(name) end
  return view
end

-- w[name], or an error that names the architecture and the missing tensor.
function util.need(w, name, arch)
  local t = w[name]
  if t == nil then error(("%s: the weights have no '%s'"):format(arch, name), 3) end
  return t
end

return util
