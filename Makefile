# Zoetrope build. `make run` and `make test` are the only commands a fresh
# Debian 12 machine needs: both install missing packages first (make deps).
#
#   make            build bin/zoe, lib/libzoe.a and lib/libzoe.so (the C core, include/zoe.h),
#                   lib/zoe.so (the Lua module)
#   make deps       install the Debian packages that are missing (apt-get, as root)
#   make run        run the default recipe (scripts/hello.lua)
#   make test       C unit tests + Lua tests; ends with "N passed, N failed, N skipped"
#   make test SAN=1 the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      speed ratios measured in one run
#   make fuzz       each fuzz/fuzz_*.c under libFuzzer + ASan for FUZZ_SECONDS (60) each
#   make bench-wan  Wan2.1-T2V-1.3B at full size (random weights) against PyTorch
#   make bench-cogvideox  CogVideoX-2B at full size (random weights) against PyTorch
#   make bench-ltx  LTX-Video 2B at full size (random weights) against PyTorch (LTX_RANDOM=dir)
#   make train-tiny / eval-tiny   train zoe-tiny again / its quality table
#   make eval-cache / bench-wan-cache   step caches: zoe-tiny's speed and quality / Wan2.1's speed
#   make refit-tiny               after new zoe-tiny weights: its preview projection and cache calibration
#   make install PREFIX=/usr/local   (also the header, zoe.pc for pkg-config, libzoe.so)
#   make rock-check luarocks installs zoe from its rockspec into a tree of its own, then loads it

PREFIX ?= /usr/local
SAN ?=
CC ?= cc

# Debian packages: build libraries, and the tools tests use (ffprobe, valgrind, redis-server, curl and chromium for zoe serve).
DEB_PACKAGES = build-essential pkg-config liblua5.4-dev lua5.4 libopenblas-dev libuv1-dev \
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev ffmpeg libcjson-dev \
  lua-luv-dev libedit-dev unicode-data libhiredis-dev redis-server luarocks libh2o-dev libssl-dev \
  curl chromium chromium-driver

# the C core's libraries, then the Lua binding's and the command's
CORE_PKGS = openblas libuv libavcodec libavformat libavutil libswscale libavfilter libcjson
PKGS = lua5.4 lua5.4-luv libedit hiredis libh2o $(CORE_PKGS)
# the version, from the public header
VERSION := $(shell sed -n 's/^\#define ZOE_VERSION "\(.*\)"/\1/p' include/zoe.h)

# BUILD may be overridden (make BUILD=build/mine) so several builds can live side by side.
ifeq ($(SAN),1)
  BUILD ?= build/san
  SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  OPT = -O1 -g
else
  BUILD ?= build/rel
  SANFLAGS =
  OPT = -O3 -g
endif
BIN = $(BUILD)/bin
LIB = $(BUILD)/lib

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CORE_LIBS = $(shell pkg-config --libs $(CORE_PKGS) 2>/dev/null) -lm -lpthread


CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
  -Wmissing-prototypes -fno-math-errno -fno-trapping-math -fPIC -fvisibility=hidden $(OPT) $(SANFLAGS) $(PKG_CFLAGS) \
  $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lm -lpthread $(LDLIBS)
LDFLAGS_ALL = $(SANFLAGS) $(LDFLAGS)

CORE_SRC = $(sort $(wildcard runtime/core/*.c runtime/ops/*.c runtime/nn/*.c runtime/nn/*/*.c runtime/io/*.c \
  runtime/loop/*.c))
LUA_SRC = $(sort $(wildcard runtime/lua/*.c))
CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
LUA_OBJ = $(LUA_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ = $(BUILD)/obj/runtime/main.o
TEST_SRC = $(sort $(wildcard tests/c/test_*.c))
TEST_BIN = $(TEST_SRC:tests/c/%.c=$(BIN)/tests/%)
BENCH_SRC = $(sort $(wildcard bench/*.c))
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BIN)/bench/%)

.PHONY: all deps run test bench bench-wan bench-cogvideox bench-ltx bench-wan-cache fuzz train-tiny eval-tiny eval-cache refit-tiny tools-deps install clean FORCE
.DEFAULT_GOAL := all

all: $(BIN)/zoe $(LIB)/libzoe.a $(LIB)/libzoe.so $(LIB)/zoe.so
ifeq ($(BUILD),build/rel)
	@mkdir -p bin lib
	@ln -sf ../$(BIN)/zoe bin/zoe
	@ln -sf ../$(LIB)/zoe.so lib/zoe.so
	@ln -sf ../$(LIB)/libzoe.a lib/libzoe.a
	@ln -sf ../$(LIB)/libzoe.so lib/libzoe.so
endif

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "make deps: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else \
	  echo "make deps: missing Debian packages; run as root:"; \
	  echo "  apt-get install -y$$missing"; exit 1; \
	fi

# Objects depend on the flags they were built with: a changed flag rebuilds everything.
FLAGS_STAMP = $(BUILD)/flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL)' | cmp -s - $@ || echo '$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL)' > $@

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIB)/libzoe.a: $(CORE_OBJ)
	@mkdir -p $(LIB)
	rm -f $@ && ar rcs $@ $^

# The core for C programs (include/zoe.h): built with -fvisibility=hidden, it exports
# what zoe.h declares (ZOE_API) and nothing else.
$(LIB)/libzoe.so: $(CORE_OBJ)
	@mkdir -p $(LIB)
	$(CC) -shared $(LDFLAGS_ALL) -Wl,-soname,libzoe.so.0 -o $(LIB)/libzoe.so.0 $^ $(CORE_LIBS)
	ln -sf libzoe.so.0 $@

$(LIB)/zoe.so: $(CORE_OBJ) $(LUA_OBJ)
	@mkdir -p $(LIB)
	$(CC) -shared $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BIN)/zoe: $(MAIN_OBJ) $(LUA_OBJ) $(LIB)/libzoe.a
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS_ALL) -rdynamic -o $@ $(MAIN_OBJ) $(LUA_OBJ) $(LIB)/libzoe.a $(LDLIBS_ALL)

$(BIN)/tests/%: tests/c/%.c tests/c/test.h $(LIB)/libzoe.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIB)/libzoe.a $(LDLIBS_ALL)

$(BIN)/bench/%: bench/%.c $(LIB)/libzoe.a $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIB)/libzoe.a $(LDLIBS_ALL)

run: deps all
	$(BIN)/zoe scripts/hello.lua

# examples/embed.c against the installed library only: installed into a prefix inside the
# build folder, compiled with what pkg-config says (the header and -lzoe, nothing of the tree)
STAGE = $(abspath $(BUILD))/stage
# the stage holds copies of lua/zoe and models/ too: a change to any of them makes it again
$(STAGE)/lib/pkgconfig/zoe.pc: $(BIN)/zoe $(LIB)/libzoe.a $(LIB)/libzoe.so $(LIB)/zoe.so include/zoe.h \
  $(shell find lua/zoe models -type f 2>/dev/null)
	@rm -rf $(STAGE)
	@$(MAKE) --no-print-directory install PREFIX=$(STAGE) BUILD=$(BUILD) SAN=$(SAN) >/dev/null

$(BIN)/embed: examples/embed.c $(STAGE)/lib/pkgconfig/zoe.pc
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror $(SANFLAGS) -o $@ $< \
	  $$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config --cflags --libs zoe) -lm -Wl,-rpath,$(STAGE)/lib

test: deps all $(TEST_BIN) $(BIN)/embed
	@ZOE="$(BIN)/zoe" TEST_BIN_DIR="$(BIN)/tests" SAN="$(SAN)" ZOE_EMBED="$(BIN)/embed" ZOE_STAGE="$(STAGE)" \
	  sh tests/run.sh

# the PyTorch sides of the benches (and training) run on Debian's torch
TOOLS_DEB_PACKAGES = python3-torch python3-numpy sentencepiece
tools-deps:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(TOOLS_DEB_PACKAGES)"

bench: deps tools-deps all $(BENCH_BIN)
	@ZOE="$(BIN)/zoe" BENCH_BIN_DIR="$(BIN)/bench" ZOE_WAN_RANDOM="$(WAN_RANDOM)" sh bench/run.sh

# clang is needed only here, not for make test
FUZZ_SECONDS ?= 60
FUZZ_DEB_PACKAGES = clang libclang-rt-14-dev
fuzz: $(LIB)/libzoe.a
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(FUZZ_DEB_PACKAGES)"
	@FUZZ_SECONDS=$(FUZZ_SECONDS) CORE_OBJ_DIR=$(BUILD)/obj PKG_CFLAGS="$(PKG_CFLAGS)" \
	  PKG_LIBS="$(LDLIBS_ALL)" sh fuzz/run.sh

# Wan2.1-T2V-1.3B at full size on random weights (about 15 GB on disk, made once).
WAN_RANDOM ?= build/wan-random
$(WAN_RANDOM)/Wan2.1_VAE.pth: | tools-deps
	/usr/bin/python3 tools/wan_random.py $(WAN_RANDOM)

# ours, then the same stages in PyTorch (tools/train/wan.py) on the same files and threads,
# then the ratio of each stage
bench-wan: deps tools-deps all $(WAN_RANDOM)/Wan2.1_VAE.pth
	ZOE="$(BIN)/zoe" sh bench/bench_wan.sh $(WAN_RANDOM)

# CogVideoX-2B at full size on random weights in the diffusers layout (tools/cogvideox_random.py:
# 2B and 5B, about 26 GB, made once; a copy beside the repository, ../cogvideox-random, is used when there).
COGVIDEOX_RANDOM ?= $(if $(wildcard ../cogvideox-random/CogVideoX-2b/model_index.json),../cogvideox-random,build/cogvideox-random)
$(COGVIDEOX_RANDOM)/CogVideoX-2b/model_index.json: | tools-deps
	/usr/bin/python3 tools/cogvideox_random.py $(COGVIDEOX_RANDOM)

# ours, then the same stages in PyTorch (tools/cogvideox_torch.py) on the same files and threads,
# then the ratio of each stage and the pipeline's peak memory; one 5B transformer forward too
bench-cogvideox: deps tools-deps all $(COGVIDEOX_RANDOM)/CogVideoX-2b/model_index.json
	ZOE="$(BIN)/zoe" sh bench/bench_cogvideox.sh $(COGVIDEOX_RANDOM)/CogVideoX-2b $(COGVIDEOX_RANDOM)/CogVideoX-5b
# LTX-Video 2B at full size on random weights (about 21 GB on disk, made once: the diffusers
# layout with T5 v1.1 XXL, and the same weights as an official single file; a copy beside
# the repository, ../ltx-random, is used when there)
LTX_RANDOM ?= $(if $(wildcard ../ltx-random/single/ltx-video-2b-v0.9.1.safetensors),../ltx-random,build/ltx-random)
$(LTX_RANDOM)/single/ltx-video-2b-v0.9.1.safetensors: | tools-deps
	/usr/bin/python3 tools/ltx_random.py $(LTX_RANDOM)

# ours, then the same stages in PyTorch (tools/ltx_mirror.py), then each ratio; then the
# whole pipeline at 704x512x161 estimated from parts measured at full size
bench-ltx: deps tools-deps all $(LTX_RANDOM)/single/ltx-video-2b-v0.9.1.safetensors
	ZOE="$(BIN)/zoe" sh bench/bench_ltx.sh $(LTX_RANDOM)

# zoe-tiny: train the shipped weights again from nothing (2 cores, nothing downloaded) as stages
# of at most 75 minutes, each from the model the one before left in models/zoe-tiny
# (make train-tiny STAGE=N runs one), and measure them as the runtime renders them (the table
# in models/zoe-tiny/MODEL_CARD.md)
STAGE ?=
train-tiny: tools-deps
	STAGE="$(STAGE)" sh tools/train/train_tiny.sh

eval-tiny: tools-deps all
	/usr/bin/python3 tools/eval/eval_zoe.py --zoe $(BIN)/zoe

# the step caches' table in docs/SAMPLING.md: eval-tiny's pairs, uncached and with each policy
# (EVAL_N pairs x 13 settings: about 10 s a pair on two free cores)
EVAL_N ?= 240
eval-cache: tools-deps all
	/usr/bin/python3 tools/eval/eval_cache.py --zoe $(BIN)/zoe --n $(EVAL_N)

# a step cache's skip pattern (teacache 0.2 on zoe-tiny) on the full-size Wan2.1, 20 steps,
# against uncached in the same process (docs/SAMPLING.md; about 40 minutes on two cores)
bench-wan-cache: deps tools-deps all $(WAN_RANDOM)/Wan2.1_VAE.pth
	$(BIN)/zoe bench/cache_wan.lua $(WAN_RANDOM) teacache 0.2

# after new zoe-tiny weights: what is fitted on them beside the model, again (the preview
# projection in config.json, the step caches' cache_calibration.json)
refit-tiny: tools-deps all
	/usr/bin/python3 tools/train/fit_preview.py
	$(BIN)/zoe --quiet tools/calibrate_cache.lua models/zoe-tiny

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/lua/5.4 $(DESTDIR)$(PREFIX)/share/lua/5.4 \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/zoe
	install -m 755 $(BIN)/zoe $(DESTDIR)$(PREFIX)/bin/zoe
	install -m 644 $(LIB)/zoe.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/zoe.so
	install -m 644 $(LIB)/libzoe.a $(DESTDIR)$(PREFIX)/lib/libzoe.a
	install -m 755 $(LIB)/libzoe.so.0 $(DESTDIR)$(PREFIX)/lib/libzoe.so.0
	ln -sf libzoe.so.0 $(DESTDIR)$(PREFIX)/lib/libzoe.so
	install -m 644 include/zoe.h $(DESTDIR)$(PREFIX)/include/zoe.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(CORE_PKGS)|' zoe.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/zoe.pc
	cp -r lua/zoe $(DESTDIR)$(PREFIX)/share/lua/5.4/
	if [ -d models ]; then cp -r models $(DESTDIR)$(PREFIX)/share/zoe/; fi

# luarocks' make build (zoe-VERSION-1.rockspec): the Lua module and library into the rock's
# folders (LIBDIR, LUADIR, BINDIR as luarocks gives them)
install-rock: $(LIB)/zoe.so
	install -d $(LIBDIR) $(LUADIR)
	install -m 644 $(LIB)/zoe.so $(LIBDIR)/zoe.so
	cp -r lua/zoe $(LUADIR)/

# the rockspec installs and loads with Debian's luarocks, into a tree inside the build folder
ROCKTREE = $(abspath $(BUILD))/rocktree
rock-check: deps
	rm -rf $(ROCKTREE)
	luarocks --lua-version=5.4 --tree=$(ROCKTREE) make zoe-$(VERSION)-1.rockspec
	LUA_PATH="$(ROCKTREE)/share/lua/5.4/?.lua;$(ROCKTREE)/share/lua/5.4/?/init.lua;;" \
	  LUA_CPATH="$(ROCKTREE)/lib/lua/5.4/?.so;;" lua5.4 tests/rock_check.lua

clean:
	rm -rf build bin lib

-include $(CORE_OBJ:.o=.d) $(LUA_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
