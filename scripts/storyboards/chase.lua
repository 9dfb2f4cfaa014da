-- The chase: a blue square follows a red circle across a navy night.
-- Render with:  zoe storyboard scripts/storyboards/chase.lua
-- (out/chase/: shots/01..07.mp4, final.mp4, contact.png, manifest.json)
--
-- A data-only board: it loads without --trusted (no io, os or require here), yet it is
-- Lua, so a loop can build shots. Characters are whole noun phrases of zoe-tiny's world
-- ("a red circle"), so "{hero} moving right" reads the way the model was trained.
local shots = {
  -- 1. the hero crosses the frame
  {prompt = "{hero} moving right", seed = 11},
  -- 2. the same moment goes on (it starts from shot 1's last frame): the rival follows
  {prompt = "{hero} moving right and {rival} moving right", continuity = "continue"},
  -- 3. a soft cut to the rival, looming
  {prompt = "{rival} growing", seed = 12, transition = {"crossfade", frames = 4}},
  -- 4. ... and falling back
  {prompt = "{rival} shrinking", continuity = "continue"},
  -- 5. the hero gets away, cross-faded in over half a second
  {prompt = "{hero} moving left", seed = 13, transition = {"crossfade", seconds = 0.5}},
}
-- 6 and 7: the escape goes on, each shot continuing the one before
for _, motion in ipairs {"moving down", "shrinking"} do
  shots[#shots + 1] = {prompt = "{hero} " .. motion, continuity = "continue"}
end

return zoe.storyboard {
  title = "The chase",
  model = "zoe-tiny",
  size = {64, 64},
  fps = 8,
  style = "on a navy background",
  characters = {hero = "a red circle", rival = "a blue square"},
  shots = shots,
}
