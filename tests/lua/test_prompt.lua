-- Prompt workflows: templates, wildcards chosen by the seed, weighting, travel.
local t = require "testlib"
local prompt = require "zoe.prompt"

t.test("templates substitute variables, also nested ones", function()
  t.eq(prompt.expand("{hero} walks", {vars = {hero = "a red circle"}}), "a red circle walks")
  t.eq(prompt.expand("{a}", {vars = {a = "{b} too", b = "me"}}), "me too")
  t.eq(prompt.expand("literal {{braces}}"), "literal {braces}")
  t.raises(function() prompt.expand("{villain}", {vars = {hero = "x"}}) end, "unknown variable '{villain}' (hero)")
end)

t.test("wildcards are chosen by the seed, deterministically", function()
  local seen = {}
  for seed = 1, 40 do
    local s = prompt.expand("a {red|blue|green} {circle|square}", {seed = seed})
    t.eq(s, prompt.expand("a {red|blue|green} {circle|square}", {seed = seed}), "same seed, same text")
    seen[s] = true
  end
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  t.ok(n >= 5, "the seed varies the choice (" .. n .. " of 6 seen)")
end)

t.test("weighting: (word:w), (word) = 1.1, nesting multiplies, escapes", function()
  local spans = prompt.parse("a (red:1.5) circle ((big)) \\(x\\)")
  local by = {}
  for _, s in ipairs(spans) do by[s.text] = s.weight end
  t.near(by["red"], 1.5)
  t.near(by["big"], 1.21)
  t.eq(by["a "], 1.0)
  t.eq(prompt.plain("a (red:1.5) circle \\(x\\)"), "a red circle (x)")
  t.raises(function() prompt.parse("a (red") end, "'(' at position 3 is never closed")
  t.raises(function() prompt.parse("a red)") end, "')' at position 6 has no '('")
end)
t.done()
