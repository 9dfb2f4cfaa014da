-- zoe.cli.options: how every command (storyboard, worker, serve) reads its arguments.
local t = require "testlib"
local options = require "zoe.cli.options"

-- Collects what a parser sees: key, value (for the keys in takes) and word, per argument.
local function walk(args, takes)
  local seen, missing = {}, nil
  local ok, err = pcall(function()
    for key, value, word in options.each(args, function(k) missing = k; error("missing " .. k) end) do
      seen[#seen + 1] = {key, takes[key] and value() or false, word}
    end
  end)
  return seen, ok, err, missing
end

t.test("--key value, --key=value, flags and words, in order", function()
  local seen, ok = walk({"board.lua", "--out", "dir", "--jobs=3", "--force", "--eq=a=b", "-", "-o", "x"},
    {["--out"] = true, ["--jobs"] = true, ["--eq"] = true, ["-o"] = true})
  t.ok(ok)
  t.eq(#seen, 7)
  t.eq(seen[1], {"board.lua", false, "board.lua"})
  t.eq(seen[2], {"--out", "dir", "--out"})
  t.eq(seen[3], {"--jobs", "3", "--jobs=3"})
  t.eq(seen[4], {"--force", false, "--force"})
  t.eq(seen[5][2], "a=b", "only the first = splits")
  t.eq(seen[6], {"-", false, "-"})
  t.eq(seen[7], {"-o", "x", "-o"})
end)

t.test("an option without its value calls missing with its name", function()
  local seen, ok, _, missing = walk({"--force", "--out"}, {["--out"] = true})
  t.eq(ok, false)
  t.eq(missing, "--out")
  t.eq(#seen, 1)
  local _, ok2 = walk({"--out="}, {["--out"] = true})
  t.ok(ok2, "--out= gives the empty value, not a missing one")
end)

t.test("a flag given a value with = keeps it for the caller to refuse", function()
  local seen = walk({"--force=yes"}, {})
  t.eq(seen[1], {"--force", false, "--force=yes"})
end)
t.done()
