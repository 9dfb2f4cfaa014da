-- zoe.models: find and load models by name or folder.
--
--   local m = zoe.models.load("zoe-tiny")            -- a name, looked up in zoe.models.path
--   local m = zoe.models.load("path/to/folder")      -- or a folder
--   local m = zoe.models.load{dit = "wan2.1-t2v-1.3b-q8_0.gguf", t5 = "umt5_xxl_fp16.safetensors",
--                             vae = "wan_2.1_vae.safetensors", tokenizer = "tokenizer.json"}  -- or files
--
-- A folder is recognized by what is in it: a model.lua (data: {family =, config =, ...})
-- or a config.json naming its "family" say which family loads it; otherwise each
-- registered family is asked in turn whether the folder is one of its own
-- (lua/zoe/family/README.md: what a family provides).
-- Loaded models are kept (weakly) by folder, so loading twice costs nothing.
local zoe = require "zoe"

local models = {}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function is_dir(path) return exists(path .. "/.") end

-- The Zoetrope root (where lua/ and models/ are): from the zoe command, or from
-- where this library was found.
function models.root()
  local reg = debug.getregistry()["zoe.root"]
  if reg then return reg end
  local init = package.searchpath("zoe", package.path) or ""
  local root = init:match("^(.*)/lua/zoe/init%.lua$") or init:match("^(.*)/share/lua/5%.4/zoe/init%.lua$")
  return root or "."
end

-- Folders searched for model names: ZOE_MODELS (colon-separated), then the shipped ones.
-- A recipe may add its own: table.insert(zoe.models.path, 1, "/data/models").
models.path = {}
for dir in (os.getenv("ZOE_MODELS") or ""):gmatch("[^:]+") do models.path[#models.path + 1] = dir end
models.path[#models.path + 1] = models.root() .. "/models"
models.path[#models.path + 1] = models.root() .. "/share/zoe/models"

-- name or folder -> folder (or nil and the places looked at)
function models.find(spec)
  if spec:find("/") or is_dir(spec) then
    if is_dir(spec) then return (spec:gsub("/+$", "")) end
    return nil, {spec}
  end
  local tried = {}
  for _, dir in ipairs(models.path) do
    local p = dir .. "/" .. spec
    tried[#tried + 1] = p
    if is_dir(p) then return p end
  end
  return nil, tried
end

local function read_json(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local ok, v = pcall(zoe.json.decode, text)
  if not ok then error(("%s: %s"):format(path, v), 0) end
  return v
end
models.read_json = read_json

-- model.lua is data: it runs with no access to io, os, require or load.
local function read_model_lua(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then error(("%s: %s"):format(path, err), 0) end
  local ok, desc = pcall(chunk)
  if not ok then error(("%s: %s"):format(path, desc), 0) end
  if type(desc) ~= "table" then error(("%s: must return a table describing the model"):format(path), 0) end
  return desc
end

-- ---------------------------------------------------------------- families

-- The families zoe knows, asked in this order about a folder that does not name its
-- family. A family is the module zoe.family.NAME (lua/zoe/family/README.md).
models.families = {"wan", "ltx", "cogvideox"}

-- Adds a family (a module zoe.family.NAME) to those asked about folders.
function models.register_family(name)
  for _, f in ipairs(models.families) do
    if f == name then return end
  end
  models.families[#models.families + 1] = name
end

-- The family module NAME, or an error that lists the known ones.
function models.family(name, where)
  local ok, fam = pcall(require, "zoe.family." .. tostring(name))
  if ok and type(fam) == "table" and fam.load then return fam end
  if ok or tostring(fam):find("module 'zoe.family.", 1, true) then
    error(("%s: unknown model family '%s' (%s)"):format(where, tostring(name), table.concat(models.families, ", ")), 0)
  end
  error(fam, 0)
end

-- What kind of folder this is, and the description its family's load takes.
function models.describe(dir)
  if exists(dir .. "/model.lua") then
    local desc = read_model_lua(dir .. "/model.lua")
    if type(desc.family) ~= "string" then
      error(("%s/model.lua: name the model's family (family = \"%s\")"):format(dir, models.families[1]), 0)
    end
    desc.dir = dir
    return desc
  end
  if exists(dir .. "/config.json") then -- a config that names its family
    local cfg = read_json(dir .. "/config.json")
    if type(cfg.family) == "string" then
      return {dir = dir, name = cfg.name, family = cfg.family, config = cfg}
    end
  end
  local asked = {}
  for _, name in ipairs(models.families) do
    local fam = models.family(name, dir)
    local desc = fam.recognize and fam.recognize(dir)
    if desc then
      desc.dir, desc.family = desc.dir or dir, desc.family or name
      return desc
    end
    asked[#asked + 1] = fam.folders and ("%s (%s)"):format(name, fam.folders) or name
  end
  error(("%s: not a model folder: no model.lua, and no family recognizes it: %s"):format(dir, table.concat(asked, "; ")), 0)
end

-- ---------------------------------------------------------------- content hashes

-- Hashes of big files are kept in ~/.cache/zoe/file-hashes.json, keyed by path, size
-- and modification time, so a 10 GB checkpoint is read once, not on every run.
local function cache_path()
  local base = os.getenv("XDG_CACHE_HOME") or ((os.getenv("HOME") or "/tmp") .. "/.cache")
  return base .. "/zoe/file-hashes.json"
end

local function read_cache()
  local f = io.open(cache_path(), "rb")
  if not f then return {} end
  local ok, t = pcall(zoe.json.decode, f:read("a"))
  f:close()
  return ok and type(t) == "table" and t or {}
end

local function write_cache(t)
  local path = cache_path()
  os.execute(("mkdir -p '%s'"):format(path:match("^(.*)/")))
  local tmp = ("%s.%d.tmp"):format(path, math.random(1, 1e9))
  local f = io.open(tmp, "wb")
  if not f then return end -- a read-only home: hashing still works, it is just not kept
  f:write(zoe.json.encode(t))
  f:close()
  os.rename(tmp, path)
end

local function hash_one(path)
  local st = zoe.uv.fs_stat(path)
  if not st then error(("cannot read '%s'"):format(path), 0) end
  local stamp = ("%d:%d.%09d"):format(st.size, st.mtime.sec, st.mtime.nsec)
  local cache = read_cache()
  local e = cache[path]
  if e and e.stamp == stamp then return e.hash end
  local h = zoe.hash_file(path)
  cache = read_cache() -- another process may have written meanwhile
  for p in pairs(cache) do -- forget files that are gone
    if not exists(p) then cache[p] = nil end
  end
  cache[path] = {stamp = stamp, hash = h}
  write_cache(cache)
  return h
end

-- Content hash of a weights file; a sharded checkpoint's index hashes its shards too.
function models.hash_file(path)
  if path:match("%.index%.json$") then
    local index = read_json(path)
    local shards, seen = {}, {}
    for _, file in pairs(index.weight_map or {}) do
      if not seen[file] then
        seen[file] = true
        shards[#shards + 1] = file
      end
    end
    table.sort(shards)
    local dir = path:match("^(.*)/") or "."
    local parts = {hash_one(path)}
    for _, file in ipairs(shards) do parts[#parts + 1] = hash_one(dir .. "/" .. file) end
    return zoe.hash(table.concat(parts, ":"))
  end
  return hash_one(path)
end

local loaded = setmetatable({}, {__mode = "v"})

-- The parts as files ({dit =, t5 =, vae =, tokenizer =}): the family named (family =), else
-- those of models.families that take files (describe_files), in order; the first whose
-- describe_files gives a description loads them. With one such family its error is the
-- user's; with several, an error names each family's reason.
local function load_files(spec, opts)
  if spec.family then
    local fam = models.family(spec.family, "zoe.models.load")
    if not fam.describe_files then
      error(("zoe.models.load: family '%s' takes folders, not files"):format(spec.family), 0)
    end
    return fam.load(fam.describe_files(spec), opts)
  end
  local takers = {}
  for _, name in ipairs(models.families) do
    local fam = models.family(name, "zoe.models.load")
    if fam.describe_files then takers[#takers + 1] = {name = name, fam = fam} end
  end
  if #takers == 0 then error("zoe.models.load: no family takes single files; give a folder", 0) end
  if #takers == 1 then return takers[1].fam.load(takers[1].fam.describe_files(spec), opts) end
  local why = {}
  for _, k in ipairs(takers) do
    local ok, desc = pcall(k.fam.describe_files, spec)
    if ok and desc then return k.fam.load(desc, opts) end
    why[#why + 1] = ("%s: %s"):format(k.name, (tostring(desc):gsub("^zoe%.models%.load: ", "")))
  end
  error("zoe.models.load: no family takes these files (" .. table.concat(why, "; ") .. ")", 0)
end

function models.load(spec, opts)
  if type(spec) == "table" and (type(spec.dit) == "string" or type(spec.transformer) == "string") then
    return load_files(spec, opts or {})
  end
  if type(spec) == "table" then return spec end -- already a model
  if type(spec) ~= "string" then error("zoe.models.load: give a model name or a folder", 2) end
  local dir, tried = models.find(spec)
  if not dir then
    error(("zoe.models.load: no model '%s' (looked in %s)"):format(spec, table.concat(tried, ", ")), 2)
  end
  if loaded[dir] and not (opts and opts.fresh) then return loaded[dir] end
  local desc = models.describe(dir)
  local model = models.family(desc.family, dir).load(desc, opts or {})
  loaded[dir] = model
  return model
end

-- The names of the models in the search path.
function models.list()
  local out = {}
  for _, dir in ipairs(models.path) do
    local req = zoe.uv.fs_scandir(dir)
    while req do
      local name = zoe.uv.fs_scandir_next(req)
      if not name then break end
      if exists(dir .. "/" .. name .. "/model.lua") or exists(dir .. "/" .. name .. "/config.json") then
        out[#out + 1] = name
      end
    end
  end
  return out
end

return models
