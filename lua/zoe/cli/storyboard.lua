-- The command `zoe storyboard board.lua [--out DIR] [--force] [--watch] [--trusted] [--jobs N]
-- [--queue redis://HOST:PORT/NAME]`:
-- a function taking the argument list (what follows "storyboard"). Errors in the board
-- are printed as one line (no traceback) and the command exits with status 1; bad
-- arguments exit with status 2.
local zoe = require "zoe"
local options = require "zoe.cli.options"

local USAGE = [[
usage: zoe storyboard BOARD.lua|BOARD.json [options]
  --out DIR                 where the shots, final.mp4, contact.png and manifest.json go
                            (default: out/<file name>/)
  --force                   render every shot again, even those in DIR/cache
  --watch                   render again whenever the file changes (only what changed)
  --trusted                 run a .lua board as code (by default it is read as data only)
  --jobs N                  chains of shots rendered side by side (default 2)
  --queue redis://HOST:PORT/NAME
                            put the shots on a farm's queue as jobs (zoe worker renders
                            them into DIR, a folder every worker sees), follow them and
                            assemble the final cut here (docs/DISTRIBUTED.md)
  --release-text-encoder    drop the text encoder once the prompts are encoded
                            (default: when the model takes more than half the memory)
  -h, --help                this help
]]

local function exit(code, msg)
  if msg then io.stderr:write(msg, "\n") end
  io.stderr:flush()
  io.stdout:flush()
  collectgarbage() -- writers left unfinished by an error drop their temporary files
  os.exit(code)
end

local function parse(args)
  local o = {}
  local function missing(key) exit(2, ("zoe storyboard: %s needs a value\n%s"):format(key, USAGE)) end
  for key, arg_value, a in options.each(args, missing) do
    if key == "-h" or key == "--help" then
      io.stdout:write(USAGE)
      o.help = true
      return o
    elseif key == "--out" or key == "-o" then o.out = arg_value()
    elseif key == "--force" then o.force = true
    elseif key == "--watch" then o.watch = true
    elseif key == "--trusted" then o.trusted = true
    elseif key == "--release-text-encoder" then o.release_text_encoder = true
    elseif key == "--queue" then
      o.queue = arg_value()
      local ok, err = require("zoe.queue.redis").parse(o.queue)
      if not ok then exit(2, "zoe storyboard: " .. err) end
    elseif key == "--jobs" or key == "-j" then
      o.jobs = math.tointeger(tonumber(arg_value()))
      if not o.jobs or o.jobs < 1 then exit(2, "zoe storyboard: --jobs takes a whole number >= 1") end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      exit(2, ("zoe storyboard: unknown option '%s'\n%s"):format(a, USAGE))
    elseif o.path then
      exit(2, ("zoe storyboard: one storyboard at a time (got %s and %s)"):format(o.path, a))
    else
      o.path = a
    end
  end
  if not o.path then exit(2, "zoe storyboard: which storyboard?\n" .. USAGE) end
  return o
end

local function summary(r)
  local lines = {}
  for _, s in ipairs(r.shots) do
    lines[#lines + 1] = ("  shot %02d  %-8s %3d frames  %s"):format(s.index, s.rendered and "rendered" or "cached",
      s.frames, s.file)
  end
  lines[#lines + 1] = ("storyboard: %d shots (%d rendered, %d from the cache) -> %s (%d frames), %s, %s"):format(
    #r.shots, r.rendered, r.reused, r.final, r.frames, r.contact, r.manifest)
  return table.concat(lines, "\n")
end

return function(args)
  local o = parse(args or {})
  if o.help then return end
  local ok, err = pcall(function()
    if o.watch then
      zoe.storyboard.watch(o.path, {out = o.out, force = o.force, jobs = o.jobs, trusted = o.trusted,
        release_text_encoder = o.release_text_encoder, queue = o.queue, on_render = function(result, e)
          if result then print(summary(result)) print("watching " .. o.path .. " (Ctrl-C stops)")
          else print("storyboard: " .. e) end
        end})
    else
      print(summary(zoe.storyboard.render(o.path, {out = o.out, force = o.force, jobs = o.jobs, trusted = o.trusted,
        release_text_encoder = o.release_text_encoder, queue = o.queue})))
    end
  end)
  if not ok then
    if tostring(err):find("job %d+ canceled") then
      -- Ctrl-C ends --watch, as its help says: not an error (the status still says Ctrl-C)
      if o.watch then exit(130, "zoe storyboard: stopped watching " .. o.path) end
      error(err, 0) -- the loop reports it
    end
    exit(1, "zoe storyboard: " .. tostring(err))
  end
end
