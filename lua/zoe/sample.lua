-- zoe.sample{...}: sample to the end and return the final latent (and the run: its sigmas,
-- timesteps). The settings are zoe.sampler's (docs/SAMPLING.md); on_step(state) is called
-- after each step. For step-by-step control use zoe.sampler.steps{...}.
return function(spec)
  return require("zoe.sampler").run(spec)
end
