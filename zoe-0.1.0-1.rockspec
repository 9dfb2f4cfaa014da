-- Zoetrope's Lua module for stock lua5.4: `luarocks --lua-version=5.4 make` in this folder
-- builds zoe.so (the C core and its binding) with the Makefile and installs it with the
-- Lua library (lua/zoe). The build needs the Debian packages `make deps` installs.
rockspec_format = "3.0"
package = "zoe"
version = "0.1.0-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "Zoetrope: a text-to-video runtime (C core, Lua 5.4 library, libuv loop)",
  detailed = [[
Tensors on OpenBLAS, the model blocks of video diffusion models, samplers,
pipelines, prompt workflows and storyboards, driven from Lua. require "zoe".]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "make",
  build_target = "all",
  build_variables = {},
  install_target = "install-rock",
  install_variables = {
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
  },
}
