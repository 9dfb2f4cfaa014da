-- zoe.tokenizer against the Hugging Face tokenizers library: ids, decoded text, padding
-- and masks on several hundred strings for each tokenizer in tests/fixtures/tokenizer
-- (made by tools/fixtures/make_tokenizer_fixtures.py from spm_train models), and the
-- recorded differences between sentencepiece's spm_encode and HF.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local DIR = "tests/fixtures/tokenizer/"
local C = dofile(DIR .. "cases.lua")
local tmp = os.tmpname()
local made = {tmp}

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
  made[#made + 1] = p
  return p
end

local function replace_all(s, a, b)
  local out, pos = {}, 1
  while true do
    local i, j = s:find(a, pos, true)
    if not i then break end
    out[#out + 1] = s:sub(pos, i - 1)
    out[#out + 1] = b
    pos = j + 1
  end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

-- a tokenizer.json: a fixture file, or a variant made from uni's as the tool made it
local function path_of(name)
  if not C.variants[name] then return DIR .. name .. ".tokenizer.json" end
  local v = C.variants[name]
  local s = read(DIR .. v.base .. ".tokenizer.json")
  for _, r in ipairs(v.edits) do
    t.ok(s:find(r[1], 1, true), name .. ": the edit applies")
    s = replace_all(s, r[1], r[2])
  end
  return write(tmp .. "." .. name .. ".json", s)
end

local function list(x)
  if x:numel() == 0 then return {} end
  local v = x:totable()
  return type(v) == "table" and v or {v}
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

local function show(v) return "{" .. table.concat(v, ",") .. "}" end

local NAMES = {"uni", "uni_old", "uni_new", "uni_ws", "uni_first", "bytes", "bytes_llama", "ident", "words"}
local toks = {}

for _, name in ipairs(NAMES) do
  t.test(name .. ": ids, decoded text, padding and mask equal HF tokenizers'", function()
    local tok = zoe.tokenizer(path_of(name))
    toks[name] = tok
    local ref = C.models[name]
    t.eq(tok:vocab_size(), ref.vocab_size, "vocab size")
    if ref.same_as then ref = C.models[ref.same_as] end
    local bad = {}
    for i, text in ipairs(C.texts) do
      local ids, mask = tok:encode(text)
      t.eq(ids:dtype(), "i32")
      t.eq(list(mask), (function() local m = {} for k = 1, ids:numel() do m[k] = 1 end return m end)())
      if not same(list(ids), ref.ids[i]) then
        bad[#bad + 1] = string.format("%q: %s, HF %s", text, show(list(ids)), show(ref.ids[i]))
      end
      local padded, pmask = tok:encode(text, {length = C.length})
      if not same(list(padded), ref.padded[i]) or not same(list(pmask), ref.mask[i]) then
        bad[#bad + 1] = string.format("%q padded: %s %s, HF %s %s", text, show(list(padded)), show(list(pmask)),
                                      show(ref.padded[i]), show(ref.mask[i]))
      end
      local text_back = tok:decode(ref.ids[i])
      if text_back ~= ref.decoded[i] then
        bad[#bad + 1] = string.format("%q decoded %q, HF %q", text, text_back, ref.decoded[i])
      end
    end
    if #bad > 0 then error(#bad .. " differences from HF, first: " .. bad[1]) end
  end)
end

t.test("both Metaspace spellings and both T5 normalizer versions", function()
  local n = 0
  for _, text in ipairs(C.texts) do
    t.eq(list(toks.uni_old:encode(text)), list(toks.uni:encode(text)), string.format("%q", text))
    n = n + 1
  end
  t.ok(n > 400, "compared " .. n)
  -- the newer converter strips the right and turns runs of spaces into '▁': differs only there
  t.eq(list(toks.uni_new:encode("a  b")), list(toks.uni:encode("a  b")))
  t.ok(not same(list(toks.uni_new:encode("trailing ")), list(toks.uni:encode("trailing "))))
end)

-- sentencepiece differs from HF in known ways (../shared/reference/tokenizers.md): HF keeps a
-- final '▁' for trailing (and zero-width) whitespace and for whitespace-only text, splits
-- special tokens out, and applies the charsmap per grapheme cluster (combining marks, jamo).
local function known_difference(s)
  if s:find("<", 1, true) or s:find("\u{2795}", 1, true) then return "special tokens" end
  if s:find("[\204\205][\128-\191]") or s:find("\u{3099}", 1, true) or s:find("\225\132", 1, true) or
     s:find("\225\133", 1, true) or s:find("\225\134", 1, true) then
    return "combining marks and jamo"
  end
  local last
  for _, c in utf8.codes(s) do last = c end
  if last and (last <= 0x20 or last == 0xa0 or (last >= 0x2000 and last <= 0x200d) or last == 0x3000) then
    return "trailing whitespace or zero-width characters"
  end
  return nil
end

t.test("spm_encode agrees with HF except for the known differences", function()
  local counts, compared, unexplained = {}, 0, {}
  for i, text in ipairs(C.texts) do
    local s = C.spm[i]
    if s then
      compared = compared + 1
      local hf = C.models.uni.ids[i]
      local with_eos = {table.unpack(s)}
      with_eos[#with_eos + 1] = 1
      if not same(with_eos, hf) then
        local why = known_difference(text)
        if why then counts[why] = (counts[why] or 0) + 1
        else unexplained[#unexplained + 1] = string.format("%q", text) end
      end
    end
  end
  t.eq(#unexplained, 0, "unexplained spm differences: " .. table.concat(unexplained, " "))
  t.ok(compared > 400)
  local total, whys = 0, {}
  for why in pairs(counts) do whys[#whys + 1] = why end
  table.sort(whys)
  for _, why in ipairs(whys) do
    print(string.format("# spm_encode differs from HF (%s): %d of %d", why, counts[why], compared))
    total = total + counts[why]
  end
  t.ok(total > 0, "the comparison can find differences")
end)

t.test("padding, truncation, masks and batches", function()
  local tok = toks.uni
  local full = list(tok:encode("The blue square grows, then shrinks"))
  t.eq(full[#full], 1, "ends with </s>")
  local ids, mask = tok:encode("The blue square grows, then shrinks", {length = 5})
  t.eq(list(ids), {full[1], full[2], full[3], full[4], 1}, "cut to 4 then </s>")
  t.eq(list(mask), {1, 1, 1, 1, 1})
  ids, mask = tok:encode("a", {length = 6})
  t.eq(list(ids), {14, 1, 0, 0, 0, 0}, "padded with <pad> = 0")
  t.eq(list(mask), {1, 1, 0, 0, 0, 0})
  t.eq(list(tok:encode("a", {add_special_tokens = false})), {14})
  t.raises(function() tok:encode("The blue square grows", {length = 3, truncate = false}) end,
           "gives 7 tokens, more than length 3 (truncate = false)")
  t.raises(function() tok:encode("x", {length = 0}) end, "length must be 1..")
  local b, bm = tok:encode({"a", "The blue square", ""}, {length = 8})
  t.eq(b:shape(), {3, 8})
  t.eq(list(b:select(1, 1)), {14, 1, 0, 0, 0, 0, 0, 0})
  t.eq(list(bm:select(1, 3)), {1, 0, 0, 0, 0, 0, 0, 0}, "empty text: just </s>")
  local lb = tok:encode({"a", "The blue square"})
  t.eq(lb:shape(), {2, #list(tok:encode("The blue square"))}, "a batch pads to its longest")
  t.eq(tok:decode(b), {"a", "The blue square", ""}, "2-D ids decode to a table of texts")
  t.eq(tok:decode(tok:encode("a </s> b")), "a  b", "special tokens skipped (the space before </s> stays)")
  t.eq(tok:decode(tok:encode("a </s> b"), {skip_special_tokens = false}), "a </s> b</s>")
  t.raises(function() tok:decode({5, 100000}) end, "id 100000 is not in the vocabulary")
  t.raises(function() tok:decode({5, "x"}) end, "element 2 is not an integer id")
  -- the text is blamed (its 1-based byte, as Lua counts), not the tokenizer's file
  local err = t.raises(function() tok:encode("bad \255 utf8") end, "encode: the text is not valid UTF-8 (at byte 5)")
  t.ok(not err:find("tokenizer.json", 1, true) and not err:find(".json:", 1, true), err)
end)

t.test("vocabulary lookups", function()
  local tok = toks.uni
  t.eq(tok:token_to_id("</s>"), 1)
  t.eq(tok:token_to_id("<pad>"), 0)
  t.eq(tok:token_to_id("<extra_id_0>"), 3)
  t.eq(tok:token_to_id("no such token"), nil)
  t.eq(tok:id_to_token(2), "<unk>")
  t.eq(tok:id_to_token(tok:token_to_id("\u{2581}")), "\u{2581}")
  t.eq(tok:id_to_token(-1), nil)
  t.eq(tok:id_to_token(700), nil)
  t.eq(tok:pad_id(), 0)
  t.eq(toks.words:pad_id(), 0)
  t.eq(toks.words:token_to_id("[SEP]"), 2)
  t.ok(tostring(tok):find("zoe.Tokenizer(700 tokens)", 1, true))
  tok = zoe.tokenizer(DIR .. "uni.tokenizer.json")
  tok:close()
  t.raises(function() tok:encode("a") end, "tokenizer was closed")
end)

t.test("round trips through decode", function()
  for _, text in ipairs({"A red circle moves slowly to the left.", "Une voiture rouge roule en été.",
                         "一只小猫在花园里追逐蝴蝶", "hello world"}) do
    t.eq(toks.uni:decode(toks.uni:encode(text)), text)
    t.eq(toks.bytes_llama:decode(toks.bytes_llama:encode(text)), text)
  end
  t.eq(toks.words:decode(toks.words:encode("The cat walks .")), "The cat walks .")
  -- unknown characters come back only through byte fallback and a ByteFallback decoder
  t.eq(toks.uni:decode(toks.uni:encode("a ⵣ")), "a ")
  t.eq(toks.bytes:decode(toks.bytes:encode("ⵣ")), "<0xE2><0xB5><0xA3>")
  t.eq(toks.bytes_llama:decode(toks.bytes_llama:encode("ⵣ 𓀀")), "ⵣ 𓀀")
  t.eq(toks.bytes_llama:decode({toks.bytes_llama:token_to_id("<0xE2>"), 5}):sub(1, 3), "\u{fffd}",
       "a broken byte sequence decodes to U+FFFD")
end)

-- ---- malformed files: each a clear error naming the file ----

local function refuse(json, msg)
  local p = write(tmp .. ".bad" .. #made .. ".json", json)
  local err = t.raises(function() zoe.tokenizer(p) end, msg)
  t.ok(err:find(p, 1, true), "names the file: " .. err)
end

local UNI = '"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0], ["a", -1]]}'

t.test("malformed tokenizer.json files are refused clearly", function()
  refuse('{"normalizer": null', "not valid JSON")
  refuse('[1, 2]', "not a JSON object")
  refuse('{"normalizer": null}', 'no "model" (not a tokenizer.json?)')
  refuse('{"model": 5}', '"model" is a number, not an object')
  refuse('{"model": {"type": "BPE", "vocab": {}}}', "model 'BPE' is not supported (Unigram, WordLevel)")
  refuse('{"model": {"vocab": []}}', 'the model has no "type" string')
  refuse('{"model": {"type": "Unigram", "vocab": {"a": 1}}}', 'Unigram "vocab" is an object, not an array')
  refuse('{"model": {"type": "Unigram", "vocab": [["a", "x"]]}}', "Unigram vocab entry 0 is not a [piece, score] pair")
  refuse('{"model": {"type": "Unigram", "unk_id": 5, "vocab": [["a", 0]]}}', "unk_id is not an id in the vocabulary")
  refuse('{"model": {"type": "Unigram", "byte_fallback": 1, "vocab": [["a", 0]]}}', "byte_fallback is a number")
  refuse('{"model": {"type": "WordLevel", "vocab": [], "unk_token": "x"}}', 'WordLevel "vocab" is an array')
  refuse('{"model": {"type": "WordLevel", "vocab": {"a": -1}, "unk_token": "x"}}', "WordLevel id of 'a' is not an id")
  refuse('{"model": {"type": "WordLevel", "vocab": {"a": 0}}}', 'WordLevel "unk_token" is missing, not a string')
  refuse('{' .. UNI .. ', "normalizer": {"type": "NFKC"}}', "normalizer 'NFKC' is not supported")
  refuse('{' .. UNI .. ', "normalizer": {"type": "Precompiled", "precompiled_charsmap": "!!"}}', "not valid base64")
  refuse('{' .. UNI .. ', "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}}', "charsmap is malformed")
  refuse('{' .. UNI .. ', "normalizer": {"type": "Replace", "pattern": {"Regex": "(a|b)"}, "content": ""}}',
         "regex '(a|b)': groups, alternation and anchors are not supported")
  refuse('{' .. UNI .. ', "normalizer": {"type": "Replace", "pattern": {"Regex": " *"}, "content": ""}}',
         "regex ' *': matches the empty string")
  refuse('{' .. UNI .. ', "normalizer": {"type": "Replace", "pattern": {"Regex": " {2,}?"}, "content": ""}}',
         "lazy and possessive quantifiers are not supported")
  refuse('{' .. UNI .. ', "normalizer": {"type": "Replace", "pattern": " ", "content": ""}}',
         'Replace "pattern" must be {"String": ...} or {"Regex": ...}')
  refuse('{' .. UNI .. ', "normalizer": {"type": "Strip", "strip_left": 1}}', 'Strip needs booleans')
  refuse('{' .. UNI .. ', "pre_tokenizer": {"type": "ByteLevel"}}', "pre_tokenizer 'ByteLevel' is not supported")
  refuse('{' .. UNI .. ', "pre_tokenizer": {"type": "Metaspace", "replacement": "ab"}}',
         'Metaspace "replacement" must be one character')
  refuse('{' .. UNI .. ', "pre_tokenizer": {"type": "Metaspace", "replacement": "_", "prepend_scheme": "sometimes"}}',
         "Metaspace prepend_scheme 'sometimes'")
  refuse('{' .. UNI .. ', "pre_tokenizer": {"type": "Metaspace", "replacement": "_", "add_prefix_space": false, ' ..
         '"prepend_scheme": "always"}}', "add_prefix_space false contradicts prepend_scheme")
  refuse('{' .. UNI .. ', "post_processor": {"type": "BertProcessing"}}', "post_processor 'BertProcessing' is not supported")
  refuse('{' .. UNI .. ', "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "x"}}]}}',
         "neither a Sequence nor a known SpecialToken")
  refuse('{' .. UNI .. ', "added_tokens": [{"content": "x"}]}', 'added_tokens entry 1 needs an "id" and a "content"')
  refuse('{' .. UNI .. ', "added_tokens": {}}', '"added_tokens" is an object, not an array')
end)

t.test("an unsupported decoder still encodes; decoding says why not", function()
  local p = write(tmp .. ".dec.json", '{' .. UNI .. ', "decoder": {"type": "WordPiece"}}')
  local tok = zoe.tokenizer(p)
  t.eq(list(tok:encode("aa")), {1, 1})
  t.raises(function() tok:decode({1}) end, "decoder 'WordPiece' is not supported")
end)

t.test("hostile regex patterns fail instead of hanging", function()
  local p = write(tmp .. ".rx.json", '{' .. UNI .. ', "normalizer": {"type": "Replace", "pattern": ' ..
                  '{"Regex": "a*a*a*a*a*a*a*a*a*a*b"}, "content": "x"}}')
  local tok = zoe.tokenizer(p)
  t.raises(function() tok:encode(string.rep("a", 200)) end, "a Replace regex needs too many steps")
  t.eq(list(tok:encode("aab")), {0}, "a match: replaced by x, which is unknown (id 0)")
end)

for _, p in ipairs(made) do os.remove(p) end
-- fuzz/corpus/fuzz_tokenizer/crash-replace-literal-not-utf8.json, found by make fuzz: a
-- decoder Replace whose String pattern has a stray UTF-8 continuation byte wrote an atom
-- past its array (an ASan heap-buffer-overflow in tk_regex_free). Now a clean error.
t.test("a decoder Replace pattern that is not UTF-8 is an error, not a heap overflow", function()
  local f = assert(io.open("fuzz/corpus/fuzz_tokenizer/crash-replace-literal-not-utf8.json", "rb"))
  local json = f:read("a"):match("^[^%z]*")
  f:close()
  local path = os.tmpname()
  f = assert(io.open(path, "wb"))
  f:write(json)
  f:close()
  t.raises(function() zoe.tokenizer(path) end, "decoder Replace: Replace: pattern is not UTF-8 (at byte 2)")
  os.remove(path)
end)

t.done()
