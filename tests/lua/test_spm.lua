-- zoe.tokenizer on sentencepiece model files (spiece.model): ids as the sentencepiece
-- library gives them, then </s> as T5Tokenizer appends it. References: the CogVideoX
-- fixture's 200 cases (../shared), and tests/fixtures/spm (made by
-- tools/fixtures/make_spm_fixtures.py with sentencepiece 0.1.97) for byte fallback,
-- user-defined pieces and the other whitespace settings. Malformed files are built here
-- with a small protobuf writer and must be refused with a message.
local t = require "testlib"
local zoe = require "zoe"

local SHARED = "../shared/fixtures/cogvideox-tiny/tokenizer/"
local DIR = "tests/fixtures/spm/"

-- the tests on the CogVideoX fixture's spiece.model skip, saying so, where ../shared is absent
local function shared_test(name, fn)
  t.test(name, function()
    if not t.exists(SHARED .. "spiece.model") then return t.skip(name, SHARED .. "spiece.model is absent") end
    fn()
  end)
end

local function list(x)
  if x:numel() == 0 then return {} end
  local v = x:totable()
  return type(v) == "table" and v or {v}
end

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local tmp = os.tmpname()
local function write(s)
  local f = assert(io.open(tmp, "wb"))
  f:write(s)
  f:close()
  return tmp
end

shared_test("the CogVideoX fixture's 200 cases, exact", function()
  local tok = zoe.tokenizer(SHARED .. "spiece.model")
  local cases = zoe.json.decode(read(SHARED .. "ids.json")).cases
  t.eq(#cases, 200)
  for i, c in ipairs(cases) do t.eq(list(tok:encode(c.text)), c.ids, ("case %d %q"):format(i, c.text)) end
  t.eq(tok:vocab_size(), 300)
  t.eq(tok:token_to_id("</s>"), 1)
  t.eq(tok:pad_id(), 0)
end)

local C = dofile(DIR .. "cases.lua")

for _, name in ipairs {"t5", "bytes", "raw", "suffix"} do
  local test = name == "t5" and shared_test or t.test
  test(("sentencepiece's ids on %d texts: %s"):format(#C.texts, name), function()
    local tok = zoe.tokenizer(name == "t5" and SHARED .. "spiece.model" or DIR .. name .. ".model")
    for i, text in ipairs(C.texts) do
      local want = {table.unpack(C.ids[name][i])}
      want[#want + 1] = 1
      t.eq(list(tok:encode(text)), want, ("%s text %d %q"):format(name, i, text))
      t.eq(list(tok:encode(text, {add_special_tokens = false})), C.ids[name][i], name .. " without </s>")
    end
  end)
end

shared_test("pads and truncates as the CogVideoX pipeline asks (226, </s> kept)", function()
  local tok = zoe.tokenizer(SHARED .. "spiece.model")
  local ids, mask = tok:encode("a red circle", {length = 226})
  local v, m = list(ids), list(mask)
  local short = list(tok:encode("a red circle"))
  t.eq(#v, 226)
  for i = 1, 226 do
    t.eq(v[i], short[i] or 0, "id " .. i)
    t.eq(m[i], short[i] and 1 or 0, "mask " .. i)
  end
  local long = list(tok:encode(("the quick brown fox "):rep(100), {length = 226}))
  t.eq(#long, 226)
  t.eq(long[226], 1, "the last id is </s>")
  t.ok(long[225] ~= 1 and long[225] ~= 0)
end)

shared_test("decode: pieces back to text, </s> and <pad> skipped", function()
  local tok = zoe.tokenizer(SHARED .. "spiece.model")
  local ids = tok:encode("a red circle moves left", {length = 40})
  t.eq(tok:decode(ids), "a red circle moves left")
  t.ok(tok:decode(ids, {skip_special_tokens = false}):find("</s>", 1, true))
  local b = zoe.tokenizer(DIR .. "bytes.model")
  t.eq(b:decode(b:encode("ok")), "ok")
end)

-- ---------------------------------------------------------------- a protobuf writer

local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = n // 128
    out[#out + 1] = string.char(n > 0 and b + 128 or b)
  until n == 0
  return table.concat(out)
end
local function key(f, w) return varint(f * 8 + w) end
local function bytes(f, s) return key(f, 2) .. varint(#s) .. s end
local function int(f, v) return key(f, 0) .. varint(v) end
local function float(f, x) return key(f, 5) .. string.pack("<f", x) end
local function piece(s, score, ty) return bytes(1, bytes(1, s) .. float(2, score) .. (ty and int(3, ty) or "")) end

-- pieces: {text, score, type}; the T5 specials first
local function model(pieces, trainer, normalizer)
  local out = {piece("<pad>", 0, 3), piece("</s>", 0, 3), piece("<unk>", 0, 2)}
  for _, p in ipairs(pieces) do out[#out + 1] = piece(p[1], p[2], p[3]) end
  out[#out + 1] = bytes(2, trainer or int(3, 1))
  out[#out + 1] = bytes(3, normalizer or "")
  return table.concat(out)
end

local LETTERS = {}
for c in ("abcdefghijklmnopqrstuvwxyz"):gmatch(".") do LETTERS[#LETTERS + 1] = {c, -5} end
local function with(extra)
  local p = {{"▁", -2}}
  for _, x in ipairs(LETTERS) do p[#p + 1] = x end
  for _, x in ipairs(extra) do p[#p + 1] = x end
  return p
end

local function enc(blob, text)
  local tok = zoe.tokenizer(write(blob))
  return list(tok:encode(text, {add_special_tokens = false}))
end

t.test("a model built here: Viterbi picks the best total score", function()
  local blob = model(with {{"▁ab", -3}, {"▁abc", -9}, {"cd", -1}})
  local ids = enc(blob, "abcd")
  t.eq(ids, {30, 32}, "▁ab + cd (-4) beats ▁abc + d (-14)") -- 30: ▁ab, 32: cd
end)

t.test("unused pieces are never produced; user-defined ones always win", function()
  -- ▁ab unused (type 5): ▁ + a + b; "xy" user-defined (type 4) beats x + y even at a bad score
  t.eq(enc(model(with {{"▁ab", -1, 5}}), "ab"), {3, 4, 5})
  t.eq(enc(model(with {{"xy", -100, 4}}), "axy"), {3, 4, 30})
end)

t.test("the normalizer spec's whitespace flags", function()
  -- add_dummy_prefix false, remove_extra_whitespaces false: "  a" keeps its spaces, no prefix
  local norm = int(3, 0) .. int(4, 0)
  t.eq(enc(model(with {}, nil, norm), "  a"), {3, 3, 4})
  t.eq(enc(model(with {}), "  a  "), {3, 4}, "defaults: one prefix, no trailing space")
  t.eq(enc(model(with {}, nil, int(5, 0)), "a b"), {2, 4, 2, 5}, "escape false: ' ' stays (unknown here)")
end)

t.test("malformed and unsupported files are refused with a message", function()
  local good = model(with {})
  local function refused(blob, pattern) t.raises(function() zoe.tokenizer(write(blob)) end, pattern) end
  refused(good:sub(1, #good - 3), "longer than its message")
  refused(good:sub(1, 20), "at byte")
  refused("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "varint")
  refused("\x0b\x00", "group")
  refused(key(1, 0) .. varint(5), "a piece with wire type 0")
  refused(bytes(1, key(2, 0) .. varint(3)), "score with wire type 0")
  refused(bytes(1, bytes(1, "a") .. int(3, 9)), "piece type outside 1..6")
  refused(model(with {}, int(3, 2)), "BPE model is not supported")
  refused(bytes(1, bytes(1, "a") .. float(2, -1)), "no unknown piece")
  refused(model(with {{"a", -1}}), "defined twice")
  refused(model(with {{"", -1}}), "empty")
  refused(model(with {{"\xff", -1}}), "not UTF-8")
  refused(model(with {{"<0x41>", 0, 6}}), "byte_fallback is false")
  refused(model(with {{"<0x41>", 0, 6}}, int(3, 1) .. int(35, 1)), "1 of the 256 byte pieces")
  refused(model(with {}, nil, bytes(2, "\x08\x00\x00\x00ab")), "charsmap is malformed")
  refused("", "no pieces")
  refused(bytes(2, int(3, 1)), "no pieces")
end)

t.test("tokenizer.json still loads (content decides, not the name)", function()
  local tok = zoe.tokenizer("tests/fixtures/tokenizer/uni.tokenizer.json")
  t.ok(tok:vocab_size() > 100)
end)

os.remove(tmp)
t.done()
