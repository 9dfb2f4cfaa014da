-- safetensors through zoe.load / zoe.save: round trips of every dtype, views,
-- zero-copy mapping, sharded indexes, atomic writes, and hostile headers.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local SHARED = "../shared/fixtures/wan2.1-tiny/"
local tmp = os.tmpname() -- a unique base name; files are tmp .. suffix
local made = {}

local function path(suffix)
  made[#made + 1] = tmp .. suffix
  return tmp .. suffix
end

local function flat(x)
  local n = x:numel()
  if n == 0 then return {} end
  local v = x:reshape(n):totable()
  return type(v) == "table" and v or {v}
end

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
end

-- a file with the given header text (not padded) and data bytes
local function raw_file(header, data)
  local p = path(".raw" .. #made .. ".safetensors")
  write(p, string.pack("<I8", #header) .. header .. (data or ""))
  return p
end

local function dir_entries(dir)
  local out, h = {}, io.popen('ls -a "' .. dir .. '"')
  for l in h:lines() do out[#out + 1] = l end
  h:close()
  return out
end

t.test("save and load every dtype with metadata", function()
  local p = path(".all.safetensors")
  local src = {
    f32 = T.tensor({{1.5, -2}, {3, 4}}),
    f16 = T.tensor({0.1, 65504, -1e-7}, "f16"),
    bf16 = T.tensor({{1e30, -3.140625}}, "bf16"),
    i32 = T.tensor({-2147483648, 7}, "i32"),
    i64 = T.tensor({2 ^ 52, -5}, "i64"),
    u8 = T.tensor({0, 255}, "u8"),
    bool = T.tensor({1, 0, 0}, "bool"),
    scalar = T.tensor(3.25),
    empty = T.zeros({2, 0}),
  }
  zoe.save(p, src, {format = "pt", note = "zoe test", n = 3})
  local w = zoe.load(p)
  t.eq(w:keys(), {"bf16", "bool", "empty", "f16", "f32", "i32", "i64", "scalar", "u8"}, "sorted keys")
  for name, x in pairs(src) do
    t.eq(w[name]:dtype(), x:dtype(), name)
    t.eq(w[name]:shape(), x:shape(), name)
    t.eq(flat(w[name]), flat(x), name)
  end
  t.eq(type(w:metadata()), "table")
  local m = w:metadata()
  t.eq(m.format, "pt")
  t.eq(m.note, "zoe test")
  t.eq(m.n, "3")
  t.eq(w:path(), p)
  t.eq(w:format(), "safetensors")
end)

t.test("the written file follows the format: padded header, back-to-back data", function()
  local p = path(".layout.safetensors")
  zoe.save(p, {b = T.tensor({1, 2, 3}), a = T.tensor({{1, 2}}, "f16")})
  local s = read(p)
  local n = string.unpack("<I8", s)
  t.eq(n % 8, 0, "header length is a multiple of 8")
  local header = s:sub(9, 8 + n)
  t.ok(header:match("^{") and header:match("} *$"), "JSON padded with spaces: " .. header)
  t.ok(header:find('"a":{"dtype":"F16","shape":[1,2],"data_offsets":[0,4]}', 1, true), header)
  t.ok(header:find('"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}', 1, true), header)
  t.eq(#s, 8 + n + 16, "file size")
  t.eq(s:sub(8 + n + 5), string.pack("<fff", 1, 2, 3), "b's bytes")
end)

t.test("reads files written by Python (the Wan2.1 fixtures)", function()
  if not t.exists(SHARED .. "dit/weights.safetensors") then return t.skip("shared", "../shared is absent") end
  local w = zoe.load(SHARED .. "dit/weights.safetensors")
  t.ok(#w > 20)
  local x = w:get("patch_embedding.weight")
  t.eq(x:dim(), 5)
  local io_ = zoe.load(SHARED .. "dit/io.safetensors")
  t.eq(io_.t:item(), 725.0, "the fixture's timestep")
end)

t.test("non-contiguous tensors are written contiguous", function()
  local p = path(".views.safetensors")
  local a = T.arange(0, 12):view(3, 4)
  zoe.save(p, {t = a:t(), n = a:narrow(2, 2, 2)})
  local w = zoe.load(p)
  t.eq(w.t:shape(), {4, 3})
  t.ok(w.t:is_contiguous())
  t.eq(flat(w.t), {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11})
  t.eq(flat(w.n), {1, 2, 5, 6, 9, 10})
end)

t.test("zoe.save copies a weights object or a prefix of it", function()
  local p1, p2 = path(".src.safetensors"), path(".dst.safetensors")
  zoe.save(p1, {["blocks.0.w"] = T.tensor({1, 2}), ["blocks.1.w"] = T.tensor({3}), head = T.tensor({4})})
  local w = zoe.load(p1)
  zoe.save(p2, w:prefix("blocks."))
  t.eq(zoe.load(p2):keys(), {"0.w", "1.w"})
  t.eq(flat(zoe.load(p2)["1.w"]), {3})
end)

t.test("tensors are views over the mapping: nothing copied, the file never written", function()
  local p = path(".map.safetensors")
  zoe.save(p, {x = T.full({1024, 256}, 2.0)}) -- 1 MiB
  collectgarbage()
  local before = zoe.mem(true)
  local w = zoe.load(p)
  local x = w.x
  local after = zoe.mem()
  t.eq(after.mapped - before.mapped, #read(p), "the whole file is mapped")
  t.eq(after.live - before.live, 0, "no tensor memory was allocated")
  t.eq(x:sum():item(), 2.0 * 1024 * 256)
  x:fill_(5) -- copy-on-write: this process's pages only
  t.eq(w.x:max():item(), 5, "other views of the mapping see the write")
  t.eq(zoe.load(p).x:max():item(), 2, "the file is unchanged")
  w:close()
  x = nil
  collectgarbage()
  t.eq(zoe.mem().mapped, before.mapped, "unmapped when the last view went")
end)

t.test("misaligned tensors are copied, not refused", function()
  -- F32 data at offset 2 of the data: misaligned for 4-byte loads
  local header = '{"pad":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},' ..
                 '"x":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}'
  header = header .. string.rep(" ", (8 - #header % 8) % 8)
  local p = raw_file(header, "\1\2" .. string.pack("<ff", 1.5, -2))
  local w = zoe.load(p)
  t.eq(flat(w.x), {1.5, -2})
  t.eq(flat(w.pad), {1, 2})
end)

t.test("w[key] is nil for unknown names; w:get names the file and close matches", function()
  local p = path(".names.safetensors")
  zoe.save(p, {["blocks.0.self_attn.q.weight"] = T.zeros(1), ["blocks.0.self_attn.k.weight"] = T.zeros(1),
               keys = T.ones(1)})
  local w = zoe.load(p)
  t.eq(w["blocks.0.self_attn.q.wieght"], nil)
  t.eq(w[1], nil)
  local err = t.raises(function() w:get("blocks.0.self_attn.q.wieght") end,
    p .. " has no tensor 'blocks.0.self_attn.q.wieght' (did you mean 'blocks.0.self_attn.q.weight'")
  t.ok(err:find("test_safetensors.lua:%d+:"), "says where: " .. err)
  t.raises(function() w:get("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz") end, "has no tensor 'zzzz")
  t.eq(type(w.keys), "function", "methods win over tensor names")
  t.eq(flat(w:get("keys")), {1}, "get reaches a tensor named like a method")
  local b = w:prefix("blocks.0.self_attn.")
  t.eq(b:keys(), {"k.weight", "q.weight"})
  t.eq(#b, 2)
  t.ok(b:has("q.weight") and not b:has("blocks.0.self_attn.q.weight"))
  t.raises(function() b:get("q.wieght") end, "(did you mean 'q.weight'")
  t.eq(#b:prefix("q."):keys(), 1, "prefixes nest")
  local seen = {}
  for name, x in pairs(b) do seen[#seen + 1] = name .. "=" .. x:numel() end
  t.eq(seen, {"k.weight=1", "q.weight=1"})
  t.ok(tostring(b):find("prefix 'blocks.0.self_attn.', 2 tensors", 1, true), tostring(b))
  w:close()
  t.raises(function() w:keys() end, "weights were closed")
  t.eq(#b:keys(), 2, "a prefix view keeps the file open")
end)

t.test("sharded checkpoints through an index, opened lazily", function()
  local dir = path(".shards")
  os.execute('mkdir -p "' .. dir .. '"')
  zoe.save(dir .. "/model-00001-of-00002.safetensors", {a = T.tensor({1, 2}), b = T.tensor({3})})
  zoe.save(dir .. "/model-00002-of-00002.safetensors", {c = T.tensor({4, 5, 6}, "bf16")})
  write(dir .. "/model.safetensors.index.json", [[
{"metadata": {"total_size": 18, "format": "pt"},
 "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                "c": "model-00002-of-00002.safetensors", "gone": "model-00003-of-00002.safetensors",
                "lost": "model-00002-of-00002.safetensors"}}]])
  local before = zoe.mem().mapped
  local w = zoe.load(dir .. "/model.safetensors.index.json")
  t.eq(w:format(), "safetensors index")
  t.eq(w:keys(), {"a", "b", "c", "gone", "lost"})
  t.eq(zoe.mem().mapped, before, "no shard is opened before a tensor is asked for")
  t.eq(w:metadata().total_size, "18")
  t.eq(flat(w.c), {4, 5, 6})
  t.eq(w.c:dtype(), "bf16")
  t.eq(flat(w:get("a")), {1, 2})
  t.raises(function() return w.gone end, "model-00003-of-00002.safetensors: No such file")
  t.raises(function() return w.lost end, "the index puts tensor 'lost' in")
  write(dir .. "/evil.index.json", '{"weight_map": {"a": "../../etc/passwd"}}')
  t.raises(function() zoe.load(dir .. "/evil.index.json") end, "outside the index's directory")
  write(dir .. "/nomap.json", '{"metadata": {}}')
  t.raises(function() zoe.load(dir .. "/nomap.json") end, "no \"weight_map\" object")
  os.execute('rm -rf "' .. dir .. '"')
end)

t.test("saving is atomic: a failed save leaves no file and no temporary", function()
  local dir = path(".atomic")
  os.execute('mkdir -p "' .. dir .. '"')
  local p = dir .. "/w.safetensors"
  zoe.save(p, {x = T.tensor({1, 2})})
  local old = read(p)
  t.raises(function() zoe.save(p, {x = T.tensor({3}), y = "not a tensor"}) end, "'y' is a string, not a tensor")
  t.raises(function() zoe.save(p, {[1] = T.tensor({3})}) end, "tensor names must be strings")
  t.raises(function() zoe.save(p, {__metadata__ = T.tensor({3})}) end, "'__metadata__' is reserved")
  t.raises(function() zoe.save(p, {x = T.tensor({3})}, {k = {}}) end, "metadata must map strings to strings")
  t.eq(read(p), old, "the old file is untouched")
  t.raises(function() zoe.save(dir .. "/no/such/dir/w.safetensors", {x = T.tensor({1})}) end,
           "cannot create a temporary file beside it")
  zoe.save(p, {x = T.tensor({7})})
  t.eq(flat(zoe.load(p).x), {7}, "replaced whole")
  t.eq(dir_entries(dir), {".", "..", "w.safetensors"}, "no temporary left behind")
  os.execute('rm -rf "' .. dir .. '"')
end)

-- ---- hostile and broken files: each a clear error naming the file and the tensor ----

local function refuse(file, msg)
  local err = t.raises(function() zoe.load(file) end, msg)
  t.ok(err:find(file, 1, true), "names the file: " .. err)
  return err
end

local E = '"e":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'

t.test("truncated files and lying header lengths", function()
  local p = path(".short.safetensors")
  write(p, "\1\0\0")
  refuse(p, "3 bytes, too short for a safetensors file")
  write(p, string.pack("<I8", 1000) .. "{}")
  refuse(p, "header length 1000 runs past the end of the file (10 bytes; truncated?)")
  write(p, string.pack("<I8", 1 << 40) .. "{}")
  refuse(p, "header length 1099511627776 is over the 100 MiB limit")
  local good = path(".good.safetensors")
  zoe.save(good, {e = T.tensor({1, 2})})
  local s = read(good)
  write(p, s:sub(1, #s - 4)) -- the data cut short
  refuse(p, "tensor 'e': data_offsets [0, 8] lie outside the 4 data bytes")
  write(p, "")
  refuse(p, "0 bytes, too short")
end)

t.test("malformed JSON headers", function()
  refuse(raw_file('{"e": {"dtype": "F32",'), "the header is not valid JSON")
  refuse(raw_file('[1, 2]'), "the header is JSON but not an object")
  refuse(raw_file('{}xx'), "stray bytes after the JSON header")
  refuse(raw_file('{"e": 5}'), "tensor 'e': entry is not a JSON object")
  refuse(raw_file('{"e": {"shape": [1], "data_offsets": [0, 4]}}'), "tensor 'e': \"dtype\" missing")
  refuse(raw_file('{"e": {"dtype": "F32", "data_offsets": [0, 4]}}', "1234"), "tensor 'e': \"shape\" missing")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [1]}}', "1234"), "tensor 'e': \"data_offsets\" must be")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}}', "1234"),
         "tensor 'e': data_offsets are not non-negative integers")
  refuse(raw_file('{"__metadata__": {"k": 1}}'), "__metadata__ 'k' is not a string")
  refuse(raw_file('{"__metadata__": [1]}'), "__metadata__ is not a JSON object")
  refuse(raw_file('{' .. E .. ',' .. E .. '}', string.rep("\0", 8)), "tensor 'e' is listed twice")
end)

t.test("unknown dtypes, bad shapes, lying offsets, overlaps", function()
  refuse(raw_file('{"e": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}', string.rep("\0", 8)),
         "tensor 'e': dtype 'C64' is not supported (F32, F16, BF16, I32, I64, U8, BOOL, F64, F8_E4M3, F8_E5M2)")
  refuse(raw_file('{"e": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}', "\0"), "dtype 'Q4'")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', "1234"),
         "tensor 'e': size 1 of the shape is not a non-negative integer")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}', "1234"), "size 1 of the shape")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}}', "1234"),
         "tensor 'e': 9 dims (at most 8)")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}', "1234"),
         "tensor 'e': shape 4294967296x4294967296 of F32 needs more than 2^64 bytes")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 4]}}', "1234"),
         "needs a different number of bytes, but its data_offsets span 4")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', "1234"),
         "tensor 'e': data_offsets [0, 8] lie outside the 4 data bytes")
  refuse(raw_file('{"e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}}', "1234"), "lie outside")
  refuse(raw_file('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},' ..
                  '"b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', string.rep("\0", 12)),
         "tensors 'a' (bytes 0..8) and 'b' (bytes 4..12) overlap")
  refuse(raw_file('{"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},' ..
                  '"b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}', string.rep("\0", 8)),
         "tensors 'a' (bytes 0..8) and 'b' (bytes 2..4) overlap")
  -- empty tensors overlap nothing, and holes between tensors are allowed
  local w = zoe.load(raw_file('{"a": {"dtype": "U8", "shape": [0], "data_offsets": [1, 1]},' ..
                              '"b": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},' ..
                              '"c": {"dtype": "U8", "shape": [1], "data_offsets": [5, 6]}}', "\1\2\3\4\5\6"))
  t.eq(flat(w.b), {1, 2})
  t.eq(flat(w.c), {6})
  t.eq(w.a:numel(), 0)
end)

t.test("missing files and directories", function()
  t.raises(function() zoe.load(tmp .. ".does-not-exist") end, "No such file or directory")
  t.raises(function() zoe.load("tests") end, "tests: is a directory")
end)

for _, p in ipairs(made) do os.remove(p) end
os.remove(tmp)
-- The length field of a header of 0x80 + 256k bytes (128, 384, 640, ...) begins 0x80, k: a
-- pickle's protocol mark. Such files are safetensors by their structure, not legacy .pth.
t.test("headers whose length begins like a pickle (0x80, 0..5) are read as safetensors", function()
  for k = 0, 5 do
    local n = 0x80 + 256 * k
    local head = '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    head = head .. (" "):rep(n - #head)
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(string.pack("<I8", n), head, string.pack("<f", 2.5))
    f:close()
    local bytes = io.open(path, "rb"):read(2)
    t.eq({bytes:byte(1, 2)}, {0x80, k}, "the first two bytes")
    local w = zoe.load(path)
    t.eq(w.x:item(), 2.5, ("a header of %d bytes"):format(n))
    os.remove(path)
  end
end)

t.done()
