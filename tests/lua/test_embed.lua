-- The public C API: examples/embed.c, built by make test against the library installed
-- into a prefix inside the build folder (include/zoe.h and pkg-config only), runs T5's
-- encoder from C and gives what the Lua side gives; the shared libraries export what
-- zoe.h declares (and zoe.so its luaopen_*) and nothing else.
local t = require "testlib"
local zoe = require "zoe"
local t5 = require "zoe.arch.t5"

local embed, stage = os.getenv("ZOE_EMBED"), os.getenv("ZOE_STAGE")
if not embed or not stage then
  t.skip("the embedding example", "run by make test (ZOE_EMBED, ZOE_STAGE)")
  t.done()
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function exported(lib)
  local names = {}
  local out = run("nm -D --defined-only '" .. lib .. "'")
  for name in out:gmatch("%S+ %S+ (%S+)") do
    if not name:find("^_") then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

local function declared()
  local names = {}
  for line in io.lines("include/zoe.h") do
    local name = line:match("^ZOE_API[^(]-([%w_]+)%(")
    if name then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

t.test("the example, built against the installed header, encodes as the Lua side does", function()
  local ids = {12, 31, 7, 1}
  local out, code = run(("%s %s/share/zoe/models/zoe-tiny/t5.safetensors 4 %s"):format(embed, stage, table.concat(ids, " ")))
  t.eq(code, 0, out)
  t.ok(out:find("zoe " .. zoe.version .. ", safetensors", 1, true), out)
  local model = zoe.models.load("zoe-tiny")
  local want = t5.encoder(model.cfg.t5, zoe.load("models/zoe-tiny/t5.safetensors"))(zoe.tensor.tensor(ids, "i32"))
  t.ok(out:find("shape " .. table.concat(want:shape(), "x"), 1, true), out)
  local a, b, c, d = out:match("first (%S+) (%S+) (%S+) (%S+)")
  local row = want[1][1]:totable()
  for i, v in ipairs {a, b, c, d} do t.near(tonumber(v), row[i], 1e-6, "value " .. i) end
  t.near(tonumber(out:match("norm (%S+)")), want:norm():item(), 1e-5, "norm")
end)

t.test("the example's errors come back as messages", function()
  local out, code = run(("%s %s/share/zoe/models/zoe-tiny/dit.safetensors 4 1"):format(embed, stage))
  t.eq(code, 1)
  t.ok(out:find("no tensor named 'token_embedding.weight'", 1, true), out)
end)

t.test("pkg-config gives the installed header and library, nothing of the source tree", function()
  local out, code = run(("PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs zoe"):format(stage))
  t.eq(code, 0, out)
  t.ok(out:find("-I" .. stage .. "/include", 1, true) and out:find("-lzoe", 1, true), out)
  t.ok(not out:find("runtime/", 1, true), out)
  local version = run(("PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --modversion zoe"):format(stage))
  t.eq(version:match("%S+"), zoe.version)
end)

t.test("libzoe.so exports exactly what zoe.h declares; zoe.so that and its luaopen_*", function()
  local want = declared()
  t.ok(#want > 50, "zoe.h declares the API")
  t.eq(exported(stage .. "/lib/libzoe.so.0"), want, "libzoe.so")
  local lua_mod = {"luaopen_zoe", "luaopen_zoe_core"}
  for _, n in ipairs(want) do lua_mod[#lua_mod + 1] = n end
  table.sort(lua_mod)
  t.eq(exported(stage .. "/lib/lua/5.4/zoe.so"), lua_mod, "zoe.so")
end)

t.done()
