-- testlib: the Lua test harness. A test file:
--   local t = require "testlib"
--   t.test("adds", function() t.eq(1 + 1, 2) end)
--   t.done()
-- prints "ok - name" / "not ok - name: message" and "# passed N failed M skipped K".
-- t.skip(name, why) reports a skip: for a whole file (then t.done()), or from inside a test,
-- which then counts as skipped, not passed. t.exists(path): a fixture file is there to read.
local M = {}
local passed, failed, skipped = 0, 0, 0

local function fmt(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = fmt(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

function M.test(name, fn)
  local before = skipped
  local ok, err = xpcall(fn, debug.traceback)
  if ok and skipped > before then return end -- it said why it skipped
  if ok then
    passed = passed + 1
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name .. ": " .. tostring(err))
  end
end

function M.skip(name, why)
  skipped = skipped + 1
  print("ok - " .. name .. " # SKIP " .. why)
end

function M.eq(a, b, what)
  if type(a) == "table" and type(b) == "table" then
    if #a ~= #b then error((what or "") .. " expected " .. fmt(b) .. ", got " .. fmt(a), 2) end
    for i = 1, #a do
      if a[i] ~= b[i] then error((what or "") .. " expected " .. fmt(b) .. ", got " .. fmt(a), 2) end
    end
    return
  end
  if a ~= b then error((what or "") .. " expected " .. fmt(b) .. ", got " .. fmt(a), 2) end
end

function M.ok(cond, msg)
  if not cond then error(msg or "expected a true value", 2) end
end

function M.near(a, b, tol, what)
  tol = tol or 1e-6
  if math.abs(a - b) > tol * math.max(1, math.abs(b)) then
    error(string.format("%s expected %.9g, got %.9g (tol %g)", what or "", b, a, tol), 2)
  end
end

-- fn must raise an error whose message contains 'pattern' (plain text)
function M.raises(fn, pattern)
  local ok, err = pcall(fn)
  if ok then error("expected an error matching '" .. pattern .. "', got none", 2) end
  err = tostring(err)
  if not err:find(pattern, 1, true) then
    error("expected an error matching '" .. pattern .. "', got: " .. err, 2)
  end
  return err
end

-- relative error ||a - b|| / ||b|| of two flat number arrays
function M.relerr(a, b)
  local num, den = 0, 0
  for i = 1, #b do
    local d = a[i] - b[i]
    num = num + d * d
    den = den + b[i] * b[i]
  end
  if den == 0 then return math.sqrt(num) end
  return math.sqrt(num / den)
end

-- relative error ||a - b|| / ||b|| of two tensors, computed in f32 (bf16 outputs too)
function M.tensor_relerr(a, b)
  local d = (a:to("f32") - b:to("f32")):norm():item()
  local n = b:to("f32"):norm():item()
  return n > 0 and d / n or d
end

-- a tensor against a reference: same shape, relative error at most 'tol' (else the test
-- fails); the error is printed as a comment line and returned
function M.close(got, want, tol, what)
  what = what or ""
  M.eq(got:shape(), want:shape(), what .. " shape")
  local err = M.tensor_relerr(got, want)
  if err > tol then error(("%s: relative error %.3g > %g"):format(what, err, tol), 2) end
  print(("# %s: relative error %.3g"):format(what, err))
  return err
end

function M.done()
  print(string.format("# passed %d failed %d skipped %d", passed, failed, skipped))
  os.exit(failed == 0 and 0 or 1, true)
end

return M
