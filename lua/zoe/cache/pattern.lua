-- zoe.cache.pattern(recorded): replays the decisions of a recorded run (the record's cache
-- table: policy, settings, skipped = {branch = {evaluation numbers}}, reuse_from). The same
-- evaluations reuse, so the same bytes come out whatever policy made them, a user's own
-- included; name and settings stay the original's, so the replay's record is the same too.
-- A pattern made on one model can be laid on another (the Wan bench runs zoe-tiny's).
return function(rec)
  if type(rec) ~= "table" or type(rec.skipped) ~= "table" then
    error("zoe.cache.pattern: give a recorded cache table {policy =, settings =, skipped = {cond = {...}}}", 2)
  end
  local skip = {}
  for branch, list in pairs(rec.skipped) do
    skip[branch] = {}
    for _, e in ipairs(list) do skip[branch][e] = true end
  end
  return {
    name = rec.policy, settings = rec.settings, replay = true,
    signal = rec.reuse_from == 2 and "first_block" or nil,
    decide = function(_, s) return not (skip[s.branch] and skip[s.branch][s.evaluation]) end,
  }
end
