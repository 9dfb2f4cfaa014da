-- The official Wan2.1 fixtures in ../shared (see its README): where they are, each part's
-- config.json, and a relative-error check. A test file calls require_fixtures() first:
-- without ../shared it reports a skip and ends.
local t = require "testlib"
local zoe = require "zoe"

local M = {root = "../shared/fixtures/wan2.1-tiny/"}

function M.require_fixtures(what)
  local f = io.open(M.root .. "README.md")
  if not f then
    t.skip(what, "../shared/fixtures/wan2.1-tiny is absent")
    t.done()
  end
  f:close()
end

function M.config(dir)
  local fh = assert(io.open(M.root .. dir .. "/config.json"))
  local cfg = zoe.json.decode(fh:read("a"))
  fh:close()
  return cfg
end

function M.relerr(a, b) return (a - b):norm():item() / b:norm():item() end

-- errors past 'tol' fail the test; the error is printed as a comment line
function M.close(got, want, tol, what)
  t.eq(got:shape(), want:shape(), what .. " shape")
  local err = M.relerr(got, want)
  if err > tol then error(("%s: relative error %.3g > %g"):format(what, err, tol), 2) end
  print(("# %s: relative error %.3g"):format(what, err))
  return err
end

return M
