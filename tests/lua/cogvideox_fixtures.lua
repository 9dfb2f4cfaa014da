-- The CogVideoX reference fixtures in ../shared (see its README): where they are, each
-- part's config.json, and testlib's relative-error check. A test file calls
-- require_fixtures() first: without ../shared it reports a skip and ends.
local t = require "testlib"
local zoe = require "zoe"

local M = {root = "../shared/fixtures/cogvideox-tiny/"}

function M.require_fixtures(what)
  local f = io.open(M.root .. "README.md")
  if not f then
    t.skip(what, "../shared/fixtures/cogvideox-tiny is absent")
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

M.relerr, M.close = t.tensor_relerr, t.close

return M
