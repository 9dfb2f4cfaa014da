-- zoe.lora: LoRA files applied to a Wan DiT's weights, in every key style Wan LoRAs come in
-- (../shared/fixtures/lora/README.md gives the rules this follows, from diffusers and PEFT):
--   ComfyUI / original names   diffusion_model.blocks.0.self_attn.q.lora_A.weight (or lora_down),
--                              .lora_B (lora_up), .alpha (0-d), .diff, .diff_b
--   kohya / musubi             lora_unet_blocks_0_self_attn_q.lora_down.weight, .lora_up, .alpha
--   diffusers / PEFT           transformer.blocks.0.attn1.to_q.lora_A.weight, .lora_B.weight and
--                              .lora_B.bias; the scale in lora_adapter_metadata when present
-- Per module M and strength s:  M.weight += s * scale * B @ A,  M.bias += s * diff_b (or
-- s * scale * lora_B.bias from a diffusers file with metadata, s * lora_B.bias without), and
-- M.weight += s * diff. scale = alpha / rank where the file carries alpha (else 1).
--
--   local w2, report = zoe.lora.apply(w, {{"style.safetensors", 1.0}, {"other.safetensors", 0.5}})
--   report.unmatched["style.safetensors"] = {keys that match no weight of the model}
--
-- f32/f16/bf16 weights get a merged private copy (summed in double, rounded once to f32);
-- quantized weights stay quantized and carry the updates as low-rank terms that the linear
-- layer adds (zoe.lora_lowrank), their full deltas (diff) merged into a private f32 copy.
local zoe = require "zoe"
local names = require "zoe.family.wan_names"

local lora = {}

local SUFFIXES = { -- longest first: ".lora_B.bias" before ".bias"-like endings
  {".lora_A.weight", "A"}, {".lora_B.weight", "B"}, {".lora_down.weight", "A"}, {".lora_up.weight", "B"},
  {".lora_B.bias", "bias_b"}, {".lora_up.bias", "bias_b"}, {".alpha", "alpha"}, {".diff_b", "diff_b"},
  {".diff", "diff"},
}

local function split(key)
  for _, s in ipairs(SUFFIXES) do
    if key:sub(-#s[1]) == s[1] then return key:sub(1, -#s[1] - 1), s[2] end
  end
end

-- The module names of a model's weights ("blocks.0.self_attn.q" for blocks.0.self_attn.q.weight).
function lora.modules(w)
  local set = {}
  for _, name in ipairs(w:keys()) do
    local m = name:match("^(.*)%.weight$")
    if m then set[m] = true end
  end
  return set
end

-- The style of a file from its keys, as diffusers picks its converter.
local function style_of(keys)
  for _, k in ipairs(keys) do
    if k:find("^diffusion_model%.") then return "comfy" end
  end
  for _, k in ipairs(keys) do
    if k:find("^lora_unet_") then return "kohya" end
  end
  return "diffusers"
end

-- key module part -> Wan module name (or nil), per style
local function mapper(style, modules)
  if style == "comfy" then
    return function(m) return m:match("^diffusion_model%.(.*)$") end
  elseif style == "kohya" then
    local under = {}
    for m in pairs(modules) do under[(m:gsub("%.", "_"))] = m end -- module names contain '_': match whole names
    return function(m)
      local rest = m:match("^lora_unet_(.*)$")
      return rest and (under[rest] or rest)
    end
  end
  local inverse = {}
  for m in pairs(modules) do
    local d = names.dit_diffusers(m .. ".weight")
    if d then inverse[d:match("^(.*)%.weight$")] = m end
  end
  return function(m)
    m = m:match("^transformer%.(.*)$") or m
    if inverse[m] then return inverse[m] end
    -- diffusers names of modules this model lacks (the unmatched list shows them as they came)
    return (m:gsub("%.add_k_proj$", ".k_img"):gsub("%.add_v_proj$", ".v_img"))
  end
end

-- diffusers' LoraConfig from lora_adapter_metadata: r and lora_alpha, per module through the patterns
local function metadata_scale(meta)
  local text = meta and meta.lora_adapter_metadata
  if not text then return nil end
  local ok, cfg = pcall(zoe.json.decode, text)
  if not ok or type(cfg) ~= "table" then error("lora: lora_adapter_metadata is not JSON", 0) end
  local function get(k) return cfg["transformer." .. k] or cfg[k] end
  local r, alpha = get("r"), get("lora_alpha") or get("r")
  local rp, ap = get("rank_pattern") or {}, get("alpha_pattern") or {}
  return function(dmodule)
    local rr, aa = r, alpha
    for pat, v in pairs(rp) do
      if dmodule:find(pat) or ("^" .. dmodule):find(pat, 1, true) then rr = v end
    end
    for pat, v in pairs(ap) do
      if dmodule:find(pat) or ("^" .. dmodule):find(pat, 1, true) then aa = v end
    end
    return aa / rr
  end
end

-- One LoRA file against a model's module names: {modules = {[M] = {A=, B=, scale=, diff=, bias=, bias_scale=}},
-- unmatched = {keys}, style =}. A key is unmatched when its module is not the model's, or its
-- pair is missing.
function lora.read(path, modules)
  local w = zoe.load(path)
  local keys = w:keys()
  local style = style_of(keys)
  local meta = w:metadata()
  local meta_scale = style == "diffusers" and metadata_scale(meta)
  local to_wan = mapper(style, modules)
  local groups, unmatched, order = {}, {}, {}
  for _, key in ipairs(keys) do
    local mod, part = split(key)
    local m = mod and to_wan(mod)
    if not part or not m or not modules[m] then
      unmatched[#unmatched + 1] = key
    else
      local g = groups[m]
      if not g then
        g = {keys = {}, dmodule = mod:match("^transformer%.(.*)$") or mod}
        groups[m] = g
        order[#order + 1] = m
      end
      g[part] = w[key]
      g.keys[#g.keys + 1] = key
    end
  end
  local out = {}
  for _, m in ipairs(order) do
    local g = groups[m]
    if (g.A == nil) ~= (g.B == nil) then -- half a pair updates nothing: report its keys
      for _, k in ipairs(g.keys) do unmatched[#unmatched + 1] = k end
    else
      local e = {}
      if g.A then
        local rank = g.A:size(1)
        e.A, e.B = g.A, g.B
        if style == "diffusers" then
          e.scale = meta_scale and meta_scale(g.dmodule) or 1
        else
          e.scale = g.alpha and g.alpha:item() / rank or 1
        end
      end
      if g.diff then e.diff = g.diff end
      if g.diff_b then e.bias, e.bias_scale = g.diff_b, 1 end
      if g.bias_b then e.bias, e.bias_scale = g.bias_b, (meta_scale and meta_scale(g.dmodule) or 1) end
      out[m] = e
    end
  end
  table.sort(unmatched)
  return {modules = out, unmatched = unmatched, style = style, path = path}
end

local QUANTIZED = {q4_0 = true, q4_1 = true, q5_0 = true, q5_1 = true, q8_0 = true, q2_k = true, q3_k = true,
                   q4_k = true, q5_k = true, q6_k = true}

-- The weights 'w' with the LoRAs {{path, strength}, ...} applied: a view answering the updated
-- tensors (made once, on first use) and every other one as it is. Returns it and a report:
-- {loras = {{path =, strength =, style =, unmatched = {keys}}}}. Keys matching nothing are
-- printed as a warning unless opts.quiet; opts.strict makes them an error.
function lora.apply(w, list, opts)
  opts = opts or {}
  local modules = lora.modules(w)
  local per = {} -- module -> {lowrank = {{A, B, scale}}, diffs = {{D, s}}, bias = {{b, s}}}
  local report = {loras = {}}
  for _, item in ipairs(list) do
    local path, strength = item[1] or item.path, item[2] or item.strength or 1.0
    if type(path) ~= "string" then error("lora: each LoRA is {path, strength}", 2) end
    local f = lora.read(path, modules)
    report.loras[#report.loras + 1] = {path = path, strength = strength, style = f.style, unmatched = f.unmatched}
    if #f.unmatched > 0 then
      local msg = ("lora %s: %d key%s match%s no weight of the model: %s"):format(path, #f.unmatched,
        #f.unmatched == 1 and "" or "s", #f.unmatched == 1 and "es" or "", table.concat(f.unmatched, ", "))
      if opts.strict then error(msg, 0) end
      if not opts.quiet then io.stderr:write("warning: ", msg, "\n") end
    end
    for m, e in pairs(f.modules) do
      local p = per[m] or {lowrank = {}, diffs = {}, bias = {}}
      per[m] = p
      if e.A then p.lowrank[#p.lowrank + 1] = {e.A, e.B, strength * e.scale} end
      if e.diff then p.diffs[#p.diffs + 1] = {e.diff, strength} end
      if e.bias then p.bias[#p.bias + 1] = {e.bias, strength * e.bias_scale} end
    end
  end
  local made = {}
  local function updated(name)
    local m, leaf = name:match("^(.*)%.(%a+)$")
    local p = m and per[m]
    if not p then return nil end
    local base = w[name]
    if leaf == "bias" and #p.bias > 0 then
      return zoe.lora_merge(base, {}, p.bias)
    elseif leaf == "weight" and (#p.lowrank > 0 or #p.diffs > 0) then
      if QUANTIZED[base:dtype()] then
        if #p.diffs > 0 then return zoe.lora_merge(base, p.lowrank, p.diffs) end -- a full delta: no longer quantized
        return zoe.lora_lowrank(base, p.lowrank)
      end
      return zoe.lora_merge(base, p.lowrank, p.diffs)
    end
  end
  local view = setmetatable({}, {__index = function(_, name)
    if made[name] == nil then made[name] = updated(name) or false end
    return made[name] or w[name]
  end})
  -- the view answers what a weights object does that the architectures use
  view.keys = function() return w:keys() end
  view.get = function(_, name) return view[name] or w:get(name) end
  return view, report
end

-- What a recipe keeps of each LoRA: path, content hash, strength (replay loads the same).
function lora.record(list)
  local models = require "zoe.models"
  local out = {}
  for i, item in ipairs(list or {}) do
    local path, strength = item[1] or item.path, item[2] or item.strength or 1.0
    out[i] = {path = path, hash = models.hash_file(path), strength = strength}
  end
  return out
end

return lora
