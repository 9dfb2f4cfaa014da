-- Re-rendering a storyboard file whenever it changes (libuv fs events through zoe.uv).
-- The cache does the rest: only the shots that changed, and those continuing from them,
-- render again. A render in progress finishes before the next one starts; changes that
-- come meanwhile give one more render. A file that fails to load or render is reported
-- and watching goes on. Runs until its job is canceled (Ctrl-C) or on_render returns false.
local zoe = require "zoe"
local files = require "zoe.storyboard.files"

local M = {}

local function is_cancel(err) return tostring(err):find("job %d+ canceled") ~= nil end

-- load(path) -> board; render(board, opts) -> result; opts as zoe.storyboard.watch's.
function M.watch(path, opts, load, render)
  local uv = zoe.uv
  local base = files.basename(path)
  local dirty, wake = false, nil
  local event, timer = uv.new_fs_event(), uv.new_timer()
  local function wake_up()
    dirty = true
    if wake then
      local w = wake
      wake = nil
      w()
    end
  end
  -- editors save by writing a new file and renaming it: watch the folder, not the file
  local ok, err = event:start(files.dirname(path), {}, function(e, name)
    if not e and name == base then
      timer:stop()
      timer:start(opts.debounce_ms or 100, 0, wake_up) -- one render for a burst of writes
    end
  end)
  if not ok then error(("cannot watch %s: %s"):format(path, err), 0) end
  local stop <close> = setmetatable({}, {__close = function()
    event:stop()
    event:close()
    timer:stop()
    timer:close()
  end})

  local text_cache, models = {}, {}
  local last_text, last_ok -- the file as last rendered, and whether that worked
  local n = 0
  while true do
    local text = files.read(path)
    if n == 0 or text ~= last_text or not last_ok then
      n = n + 1
      local rok, result = pcall(function()
        local board = load(path)
        models[board.model] = models[board.model] or zoe.models.load(board.model) -- kept between renders
        return render(board, {text_cache = text_cache, force = n == 1 and opts.force or nil})
      end)
      if not rok and is_cancel(result) then error(result, 0) end
      last_text, last_ok = text, rok
      local go_on
      if opts.on_render then
        go_on = opts.on_render(rok and result or nil, not rok and tostring(result) or nil, n)
      elseif rok then
        print(("storyboard: %d shots, %d rendered, %d from the cache -> %s (%d frames); watching %s"):format(
          #result.shots, result.rendered, result.reused, result.final, result.frames, path))
      else
        print(("storyboard: %s; watching %s"):format(tostring(result), path))
      end
      if go_on == false then return n end
    end
    if not dirty then zoe.await(function(cb) wake = cb end) end
    dirty = false
  end
end

return M
