-- zoe.models: find and load models by name or folder.
--
--   local m = zoe.models.load("zoe-tiny")            -- a name, looked up in zoe.models.path
--   local m = zoe.models.load("path/to/folder")      -- or a folder
--
-- A folder is recognized by what is in it:
--   model.lua                      a Zoetrope model: returns {family =, config =, weights =, ...}
--   config.json of a WanModel + diffusion_pytorch_model.safetensors + models_t5_*.pth + Wan2.1_VAE.pth
--                                  the official Wan2.1 release
--   model_index.json (WanPipeline) the diffusers layout
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

-- What kind of folder this is, and the description the family loader takes.
function models.describe(dir)
  if exists(dir .. "/model.lua") then
    local desc = read_model_lua(dir .. "/model.lua")
    desc.dir = dir
    return desc
  end
  local ok, desc = pcall(function() return require("zoe.family.wan_files").describe(dir) end)
  if ok and desc then return desc end
  if not ok then error(desc, 0) end
  error(("%s: not a model folder (no model.lua, no Wan2.1 or diffusers files)"):format(dir), 0)
end

local loaded = setmetatable({}, {__mode = "v"})

function models.load(spec, opts)
  if type(spec) == "table" then return spec end -- already a model
  if type(spec) ~= "string" then error("zoe.models.load: give a model name or a folder", 2) end
  local dir, tried = models.find(spec)
  if not dir then
    error(("zoe.models.load: no model '%s' (looked in %s)"):format(spec, table.concat(tried, ", ")), 2)
  end
  if loaded[dir] and not (opts and opts.fresh) then return loaded[dir] end
  local desc = models.describe(dir)
  local family = desc.family or "wan"
  local ok, fam = pcall(require, "zoe.family." .. family)
  if not ok then error(("%s: unknown model family '%s'"):format(dir, family), 2) end
  local model = fam.load(desc, opts or {})
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
