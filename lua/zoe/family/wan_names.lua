-- Weight names of the Wan family in diffusers' layout: WanTransformer3DModel and
-- AutoencoderKLWan (scripts/convert_wan_to_diffusers.py). Each function maps one of our
-- (the official release's) names to the other layout's name. (The text encoder's
-- layouts are T5's: lua/zoe/arch/t5.lua.)
local names = {}

local DIT_TOP = {
  ["text_embedding.0"] = "condition_embedder.text_embedder.linear_1",
  ["text_embedding.2"] = "condition_embedder.text_embedder.linear_2",
  ["time_embedding.0"] = "condition_embedder.time_embedder.linear_1",
  ["time_embedding.2"] = "condition_embedder.time_embedder.linear_2",
  ["time_projection.1"] = "condition_embedder.time_proj",
  ["head.head"] = "proj_out",
}

-- official WanModel name -> diffusers WanTransformer3DModel name
function names.dit_diffusers(n)
  if n == "head.modulation" then return "scale_shift_table" end
  if n:match("^patch_embedding%.") then return n end
  local mod, leaf = n:match("^(.*)%.(%a+)$")
  if mod and DIT_TOP[mod] then return DIT_TOP[mod] .. "." .. leaf end
  local i, rest = n:match("^blocks%.(%d+)%.(.*)$")
  if not i then return nil end
  local b = "blocks." .. i .. "."
  if rest == "modulation" then return b .. "scale_shift_table" end
  local attn, part, tail = rest:match("^(%a+_attn)%.([%w_]+)%.(.*)$")
  if attn then
    local a = attn == "self_attn" and "attn1." or "attn2."
    local proj = {q = "to_q", k = "to_k", v = "to_v", o = "to_out.0", norm_q = "norm_q", norm_k = "norm_k"}
    return proj[part] and b .. a .. proj[part] .. "." .. tail or nil
  end
  local which, tail2 = rest:match("^ffn%.(%d)%.(.*)$")
  if which then return b .. (which == "0" and "ffn.net.0.proj." or "ffn.net.2.") .. tail2 end
  if rest:match("^norm3%.") then return b .. "norm2." .. rest:sub(7) end -- the converter swaps them
  return nil
end

-- the resolution levels of the decoder's flat 'upsamples' list: blocks of (res x3, upsampler)
local function up_block(k, per)
  local level, r = k // (per + 1), k % (per + 1)
  if r == per then return ("up_blocks.%d.upsamplers.0."):format(level) end
  return ("up_blocks.%d.resnets.%d."):format(level, r)
end

local RES = {["residual.0.gamma"] = "norm1.gamma", ["residual.2.weight"] = "conv1.weight",
             ["residual.2.bias"] = "conv1.bias", ["residual.3.gamma"] = "norm2.gamma",
             ["residual.6.weight"] = "conv2.weight", ["residual.6.bias"] = "conv2.bias",
             ["shortcut.weight"] = "conv_shortcut.weight", ["shortcut.bias"] = "conv_shortcut.bias"}

local function block_leaf(rest)
  return RES[rest] or (rest:match("^resample%.") or rest:match("^time_conv%.")) and rest or nil
end

-- official WanVAE_ name -> diffusers AutoencoderKLWan name ('per' = num_res_blocks + 1 in the decoder)
function names.vae_diffusers(n, per)
  per = per or 3
  if n:match("^conv1%.") then return "quant_conv." .. n:sub(7) end
  if n:match("^conv2%.") then return "post_quant_conv." .. n:sub(7) end
  local side, rest = n:match("^(%a+coder)%.(.*)$")
  if not side then return nil end
  local s = side .. "."
  if rest:match("^conv1%.") then return s .. "conv_in." .. rest:sub(7) end
  if rest == "head.0.gamma" then return s .. "norm_out.gamma" end
  if rest:match("^head%.2%.") then return s .. "conv_out." .. rest:sub(8) end
  local m, mrest = rest:match("^middle%.(%d)%.(.*)$")
  if m then
    if m == "1" then return s .. "mid_block.attentions.0." .. mrest end
    local leaf = block_leaf(mrest)
    return leaf and ("%smid_block.resnets.%d.%s"):format(s, m == "0" and 0 or 1, leaf) or nil
  end
  local k, brest = rest:match("^%a+samples%.(%d+)%.(.*)$")
  if not k then return nil end
  local leaf = block_leaf(brest)
  if not leaf then return nil end
  if side == "encoder" then return ("%sdown_blocks.%s.%s"):format(s, k, leaf) end
  return s .. up_block(tonumber(k), per) .. leaf
end

return names
