-- Tensor methods written in Lua on top of the C core's (zoe.core.tensor): printing,
-- and the 1-based indices of max, min, argmax, argmin and index_select (the C methods
-- take and give indices as the kernels do, 0-based). lua/zoe/init.lua installs them
-- into every tensor's methods.
--
--   print(t)   [[ 0.1000, -2.0000], ...]  then  [zoe.Tensor f32 2x2]
--   t:tostring()  the same text
local T = require("zoe.core").tensor

local meta = getmetatable(T.empty(0))
local methods = meta.methods

local M = {}

local FLOATS = {f32 = true, f16 = true, bf16 = true, f64 = true, f8_e4m3 = true, f8_e5m2 = true}
-- quantized blocks (GGUF's types) are not printed entry by entry: t:to("f32") shows them
local QUANTIZED = {q4_0 = true, q4_1 = true, q5_0 = true, q5_1 = true, q8_0 = true, q2_k = true, q3_k = true,
                   q4_k = true, q5_k = true, q6_k = true}

-- ---------------------------------------------------------------- indices

local c_max, c_min, c_argmax, c_argmin, c_index_select =
  methods.max, methods.min, methods.argmax, methods.argmin, methods.index_select

-- t:max() -> the largest value; t:max(dim, keepdim) -> values, 1-based indices
function M.max(t, dim, keepdim)
  if dim == nil then return c_max(t) end
  local v, i = c_max(t, dim, keepdim)
  return v, i:add_(1)
end

function M.min(t, dim, keepdim)
  if dim == nil then return c_min(t) end
  local v, i = c_min(t, dim, keepdim)
  return v, i:add_(1)
end

-- 1-based positions of the largest (smallest) values, over everything or along dim
function M.argmax(t, dim, keepdim) return c_argmax(t, dim, keepdim):add_(1) end
function M.argmin(t, dim, keepdim) return c_argmin(t, dim, keepdim):add_(1) end

-- t:index_select(dim, index): the entries at the 1-based positions of index (1-D integers)
function M.index_select(t, dim, index)
  if T.is_tensor(index) and index:dim() == 1 and not FLOATS[index:dtype()] then index = index:sub(1) end
  return c_index_select(t, dim, index) -- anything else: the C method says what is wrong
end

-- ---------------------------------------------------------------- printing

-- Big tensors show the first and last EDGE entries of each dim, as torch does.
local EDGE, SUMMARIZE_OVER = 3, 1000

-- The shown entries of t: a number, or {items..., gap = k} where the gap comes before item k.
local function shown(t, summarize)
  if t:dim() == 0 then return t:item() end
  local n = t:size(1)
  local cut = summarize and n > 2 * EDGE
  local node = {}
  if t:dim() == 1 then
    local values = cut and {} or t:totable()
    if cut then
      for _, v in ipairs(t:narrow(1, 1, EDGE):totable()) do values[#values + 1] = v end
      for _, v in ipairs(t:narrow(1, n - EDGE + 1, EDGE):totable()) do values[#values + 1] = v end
    end
    node = values
  else
    for i = 1, n do
      if not cut or i <= EDGE or i > n - EDGE then node[#node + 1] = shown(t[i], summarize) end
    end
  end
  if cut then node.gap = EDGE + 1 end
  return node
end

local function extremes(node, acc)
  if type(node) == "number" then
    local a = math.abs(node)
    if a == a and a ~= math.huge then -- finite
      if a > acc.max then acc.max = a end
      if a > 0 and a < acc.min then acc.min = a end
    end
    return
  end
  for _, child in ipairs(node) do extremes(child, acc) end
end

local function formatter(is_float, sci, width)
  local spec = not is_float and "%" .. width .. "d" or sci and "%" .. width .. ".4e" or "%" .. width .. ".4f"
  return function(v)
    if not is_float then return spec:format(math.tointeger(v) or math.floor(v)) end
    return spec:format(v)
  end
end

local function emit(out, node, d, ndim, fmt)
  if type(node) == "number" then
    out[#out + 1] = fmt(node)
    return
  end
  out[#out + 1] = "["
  local last = ndim - 1
  for i, child in ipairs(node) do
    if node.gap == i then
      out[#out + 1] = d == last and "..., " or "...,\n" .. (" "):rep(d + 1)
    end
    emit(out, child, d + 1, ndim, fmt)
    if i < #node then
      out[#out + 1] = d == last and ", " or "," .. ("\n"):rep(last - d) .. (" "):rep(d + 1)
    end
  end
  out[#out + 1] = "]"
end

-- The text of a tensor: its entries (if any), then [zoe.Tensor dtype shape].
function M.tostring(t)
  local ok, ndim = pcall(t.dim, t)
  if not ok then return "zoe.Tensor (closed)" end
  local shape = ndim == 0 and "scalar" or table.concat(t:shape(), "x")
  local head = ("[zoe.Tensor %s %s]"):format(t:dtype(), shape)
  if t:numel() == 0 then return head end
  if QUANTIZED[t:dtype()] then return head .. " (quantized blocks)" end
  local node = shown(t, t:numel() > SUMMARIZE_OVER)
  local acc = {max = 0, min = math.huge}
  extremes(node, acc)
  local is_float = FLOATS[t:dtype()] or false
  local sci = is_float and (acc.max >= 1e5 or (acc.min < 1e-4 and acc.min > 0))
  local width = #formatter(is_float, sci, "")(-acc.max)
  local out = {}
  emit(out, node, 0, ndim, formatter(is_float, sci, width))
  out[#out + 1] = "\n"
  out[#out + 1] = head
  return table.concat(out)
end

for name, fn in pairs(M) do methods[name] = fn end
meta.__tostring = M.tostring

return M
