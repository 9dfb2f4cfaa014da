-- zoe-tiny: a Wan2.1-style model (umT5-style encoder, DiT, causal 3-D VAE) in miniature.
-- Read as data by zoe.models (no io, os or require); the parts' configs are in config.json.
return {family = "wan", name = "zoe-tiny", config = "config.json"}
