-- zoe.replay(path, {out =}): make a video again from the recipe it carries
-- (see zoe.pipeline.replay).
return function(path, opts) return require("zoe.pipeline").replay(path, opts) end
