-- Walks a command's arguments the way every zoe command reads them: "--key value",
-- "--key=value", flags, and plain words (paths).
local M = {}

-- An iterator over args yielding (key, value, word): key is the option's name ("--out" of
-- "--out=x") or the word itself; value() reads the option's value (the text after "=" or
-- the next argument) and calls missing(key) when there is none; word is the argument as given.
function M.each(args, missing)
  local i = 0
  return function()
    i = i + 1
    local word = args[i]
    if word == nil then return nil end
    local key, inline = word:match("^(%-%-[%w-]+)=(.*)$")
    key = key or word
    local function value()
      if inline then return inline end
      i = i + 1
      if args[i] == nil then missing(key) end
      return args[i]
    end
    return key, value, word
  end
end

return M
