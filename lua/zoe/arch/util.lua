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

-- w[name], or an error that names the architecture and the missing tensor.
function util.need(w, name, arch)
  local t = w[name]
  if t == nil then error(("%s: the weights have no '%s'"):format(arch, name), 3) end
  return t
end

return util
