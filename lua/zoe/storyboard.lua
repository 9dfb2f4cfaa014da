-- zoe.storyboard: multi-shot videos from one description (docs/STORYBOARDS.md).
--
--   local board = zoe.storyboard{title =, model =, size = {w, h}, fps =, style =, negative =,
--     characters = {hero = "a red circle"}, shots = {{prompt = "{hero} moving left", frames = 17}, ...}}
--   local board = zoe.storyboard.load("board.lua" or "board.json", {trusted = false})
--   local plan = zoe.storyboard.check(board)          -- every check, the model's included
--   local result = zoe.storyboard.render(board or path, {out = DIR, force =, jobs =, trusted =,
--     release_text_encoder =, queue = "redis://HOST:PORT/NAME" (workers render the shots)})
--   zoe.storyboard.watch(path, {out =, trusted =, force =, jobs =, on_render = fn(result, err, n)})
--
-- render writes DIR/shots/NN.mp4, DIR/final.mp4, DIR/contact.png, DIR/manifest.json and keeps
-- every rendered shot in DIR/cache by a hash of what made it, so running again renders only
-- what changed. DIR defaults to out/<file name>/.
local format = require "zoe.storyboard.format"
local loader = require "zoe.storyboard.load"

local storyboard = {}

storyboard.FIELDS = format.BOARD_FIELDS
storyboard.SHOT_FIELDS = format.SHOT_FIELDS

-- where each board came from, for its default output folder
local sources = setmetatable({}, {__mode = "k"})

local function new(t)
  local board = format.normalize(t)
  local info = debug.getinfo(3, "S")
  if info and info.source:sub(1, 1) == "@" then sources[board] = info.source:sub(2) end
  return board
end

function storyboard.load(path, opts)
  local board = loader.load(path, opts)
  sources[board] = path
  return board
end

local function check_opts(opts, allowed, who)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(who .. ": options must be a table", 3) end
  local ok = {}
  for _, k in ipairs(allowed) do ok[k] = true end
  for k in pairs(opts) do
    if not ok[k] then
      table.sort(allowed)
      error(("%s: unknown option '%s' (%s)"):format(who, tostring(k), table.concat(allowed, ", ")), 3)
    end
  end
  return opts
end

local function board_of(b, opts, who)
  if type(b) == "string" then return storyboard.load(b, {trusted = opts.trusted}) end
  if type(b) ~= "table" then error(who .. ": give a storyboard (a table) or the path of one", 3) end
  local board = format.normalize(b)
  sources[board] = sources[b]
  return board
end

-- out/<file name>/, or out/<title>/ for a board made in Lua with no file behind it.
function storyboard.default_out(board)
  local src = sources[board]
  local name = src and src:match("([^/]+)$"):gsub("%.[^.]*$", "")
  name = name or (board.title and board.title:lower():gsub("[^%w]+", "-"):gsub("^-+", ""):gsub("-+$", ""))
  if not name or name == "" then name = "storyboard" end
  return "out/" .. name
end

function storyboard.check(b, opts)
  opts = check_opts(opts, {"trusted"}, "zoe.storyboard.check")
  local board = board_of(b, opts, "zoe.storyboard.check")
  local zoe = require "zoe"
  return require("zoe.storyboard.plan").resolve(board, zoe.models.load(board.model))
end

local RENDER_OPTS = {"out", "force", "jobs", "trusted", "release_text_encoder", "on_shot", "text_cache", "queue"}

function storyboard.render(b, opts)
  opts = check_opts(opts, RENDER_OPTS, "zoe.storyboard.render")
  local board = board_of(b, opts, "zoe.storyboard.render")
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.out = (opts.out or storyboard.default_out(board)):gsub("/+$", "")
  if o.queue then return require("zoe.queue.submit").storyboard(board, o) end -- a farm renders the shots
  return require("zoe.storyboard.render").render(board, o)
end

function storyboard.watch(path, opts)
  opts = check_opts(opts, {"out", "force", "jobs", "trusted", "release_text_encoder", "on_render", "debounce_ms",
    "queue"}, "zoe.storyboard.watch")
  if type(path) ~= "string" then error("zoe.storyboard.watch: give the path of a storyboard file", 2) end
  local function load(p) return storyboard.load(p, {trusted = opts.trusted}) end
  local function render(board, extra)
    local o = {out = opts.out, jobs = opts.jobs, release_text_encoder = opts.release_text_encoder, queue = opts.queue}
    for k, v in pairs(extra) do o[k] = v end
    return storyboard.render(board, o)
  end
  return require("zoe.storyboard.watch").watch(path, opts, load, render)
end

return setmetatable(storyboard, {__call = function(_, t) return new(t) end})
