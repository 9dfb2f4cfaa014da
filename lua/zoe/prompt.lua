-- zoe.prompt: prompt workflows.
--   prompt.expand(text, {vars =, seed =})   templates "{name}" and wildcards "{red|blue|green}"
--   prompt.parse(text)                       "(word:1.3)" and "(word)" weighting -> spans
--   prompt.encode(model, text)               embeddings [L, dim], weights applied
--   prompt.travel(model, list, frames)       one blended embedding per latent frame
local zoe = require "zoe"
local T = zoe.tensor

local prompt = {}

-- A deterministic choice in 1..n for wildcard number k of a text under a seed.
local function pick(seed, k, n)
  local h = zoe.hash(("%s/%d"):format(tostring(seed), k))
  return tonumber(h:sub(1, 12), 16) % n + 1
end

-- "{name}" is vars[name]; "{a|b|c}" picks one (by the seed); "{{" and "}}" are literal braces.
function prompt.expand(text, opts)
  opts = opts or {}
  local vars, seed, k = opts.vars or {}, opts.seed or 0, 0
  local out = text:gsub("{{", "\1"):gsub("}}", "\2")
  for _ = 1, 10 do -- variables may hold templates of their own
    local changed
    out, changed = out:gsub("{([^{}]*)}", function(inner)
      if inner:find("|", 1, true) then
        k = k + 1
        local choices = {}
        for c in (inner .. "|"):gmatch("([^|]*)|") do choices[#choices + 1] = c end
        return choices[pick(seed, k, #choices)]
      end
      local name = inner:match("^%s*([%w_]+)%s*$")
      if not name then error(("prompt: '{%s}' is neither a variable nor a {a|b} choice"):format(inner), 0) end
      local v = vars[name]
      if v == nil then
        local known = {}
        for n in pairs(vars) do known[#known + 1] = n end
        table.sort(known)
        error(("prompt: unknown variable '{%s}' (%s)"):format(name, #known > 0 and table.concat(known, ", ") or "none defined"), 0)
      end
      return tostring(v)
    end)
    if changed == 0 then break end
  end
  return (out:gsub("\1", "{"):gsub("\2", "}"))
end

-- "a (red:1.3) circle ((big))" -> spans {text, weight}: "(x)" is 1.1x, "(x:w)" is w x,
-- nested parentheses multiply; "\(" and "\)" are literal.
function prompt.parse(text)
  local spans, stack, buf = {}, {1.0}, {}
  local function flush()
    if #buf > 0 then
      spans[#spans + 1] = {text = table.concat(buf), weight = stack[#stack]}
      buf = {}
    end
  end
  local i = 1
  while i <= #text do
    local c = text:sub(i, i)
    if c == "\\" and i < #text then
      buf[#buf + 1] = text:sub(i + 1, i + 1)
      i = i + 2
    elseif c == "(" then
      flush()
      -- "(...:w)": find the matching close and read the weight before it
      local depth, j = 1, i + 1
      while j <= #text and depth > 0 do
        local d = text:sub(j, j)
        if d == "\\" then j = j + 1
        elseif d == "(" then depth = depth + 1
        elseif d == ")" then depth = depth - 1 end
        j = j + 1
      end
      if depth > 0 then error(("prompt: '(' at position %d is never closed"):format(i), 0) end
      local inner = text:sub(i + 1, j - 2)
      local body, w = inner:match("^(.*):%s*([%d%.]+)%s*$")
      local weight = w and tonumber(w) or 1.1
      if w and not weight then error(("prompt: bad weight '%s'"):format(w), 0) end
      stack[#stack + 1] = stack[#stack] * weight
      for _, s in ipairs(prompt.parse(body or inner)) do
        spans[#spans + 1] = {text = s.text, weight = s.weight * stack[#stack]}
      end
      stack[#stack] = nil
      i = j
    elseif c == ")" then
      error(("prompt: ')' at position %d has no '('"):format(i), 0)
    else
      buf[#buf + 1] = c
      i = i + 1
    end
  end
  flush()
  return spans
end

-- The text of a prompt without its weighting marks.
function prompt.plain(text)
  local parts = {}
  for _, s in ipairs(prompt.parse(text)) do parts[#parts + 1] = s.text end
  return table.concat(parts)
end

-- Embeddings [L, dim] of a prompt. Weighted spans scale their tokens' rows, then the
-- whole is rescaled to the unweighted norm, so weights shift emphasis between tokens
-- without changing the overall magnitude. A caller that encodes many prompts up front
-- (zoe.storyboard) keeps them in model.text_cache (text -> embeddings): then the text
-- encoder can be released before the DiT runs.
function prompt.encode(model, text)
  local cached = model.text_cache and model.text_cache[text]
  if cached then return cached end
  local spans = prompt.parse(text)
  local weighted = false
  for _, s in ipairs(spans) do weighted = weighted or s.weight ~= 1 end
  if not weighted then return (model:encode_text(prompt.plain(text))) end
  local ids, weights = {}, {}
  for _, s in ipairs(spans) do
    for _, id in ipairs(model:tokenize(s.text)) do
      ids[#ids + 1] = id
      weights[#weights + 1] = s.weight
    end
  end
  ids[#ids + 1] = model:eos_id()
  weights[#weights + 1] = 1
  local emb = model:encode_ids(ids)
  -- a family that pads to a fixed length (CogVideoX: 226) gives rows past the ids weight 1; one
  -- that truncates keeps the first ids and the end token, as its tokenizer does
  local rows = emb:size(1)
  if #weights > rows then weights = {table.unpack(weights, 1, rows - 1)}; weights[rows] = 1 end
  for i = #weights + 1, rows do weights[i] = 1 end
  local scaled = emb * T.tensor(weights):unsqueeze(2)
  -- back to the unweighted norm (T5 embeddings have a mean near 0: A1111's rescale of
  -- the mean would divide by almost nothing)
  local after = scaled:norm():item()
  if after > 0 then scaled = scaled * (emb:norm():item() / after) end
  return scaled
end

-- Prompt travel: list = {{text =, from =, to =}, ...} over pixel frames 1..frames. Each latent
-- frame gets the average of the prompts' embeddings weighted by how many of the pixel frames
-- it stands for (model:frame_span) each covers; embeddings are zero-padded to one length first.
function prompt.travel(model, list, frames, text_len)
  local embs, len = {}, 0
  for i, p in ipairs(list) do
    if type(p.text) ~= "string" or type(p.from) ~= "number" or type(p.to) ~= "number" or p.from > p.to then
      error(("prompt travel: entry %d needs text, from and to (pixel frames, from <= to)"):format(i), 0)
    end
    embs[i] = prompt.encode(model, p.text)
    len = math.max(len, embs[i]:size(1))
  end
  len = math.min(text_len or len, len)
  for i, e in ipairs(embs) do
    if e:size(1) < len then embs[i] = T.cat({e, T.zeros(len - e:size(1), e:size(2))}, 1) end
    if e:size(1) > len then embs[i] = e:narrow(1, 1, len) end
  end
  local out = {}
  for f = 1, model:latent_frames(frames) do
    local first, last = model:frame_span(f)
    local acc, total = nil, 0
    for i, p in ipairs(list) do
      local cover = math.max(0, math.min(last, p.to) - math.max(first, p.from) + 1)
      if cover > 0 then
        acc = acc and acc + embs[i] * cover or embs[i] * cover
        total = total + cover
      end
    end
    if total == 0 then
      error(("prompt travel: no prompt covers frames %d..%d"):format(first, last), 0)
    end
    out[f] = acc / total
  end
  return out
end

return prompt
