/*
** main.c: the 'zoe' command: run a script (or a -e chunk) as a job on the
** loop, or start the REPL. Exit status: 0, 1 on an error, 130 when Ctrl-C
** canceled the run.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/pool.h"
#include "io/tmpfiles.h"
#include "lua/lloop.h"
#include "lua/lzlib.h"

static const char *usage =
    "usage: zoe [options] [script.lua [args...]]\n"
    "  zoe script.lua args   run a Lua script as a job (its arguments are in 'arg')\n"
    "  zoe -e 'code'         run a chunk of Lua\n"
    "  zoe                   start the REPL\n"
    "  zoe storyboard FILE   render a storyboard (zoe storyboard --help)\n"
    "  zoe convert IN OUT --type T   write weights as GGUF (zoe convert --help)\n"
    "  zoe worker --queue redis://HOST:PORT/NAME   render a farm's jobs (zoe worker --help)\n"
    "  zoe queue status|cancel redis://...          the farm's workers and runs\n"
    "  zoe serve [--port N] [--out DIR] [--models DIR]   the web page and JSON API (zoe serve --help)\n"
    "  -q, --quiet           no progress display\n"
    "  --json                progress and job events as JSON lines on stdout (print goes to stderr)\n"
    "  -v, --verbose         errors in settings with their Lua traceback too (also ZOE_DEBUG=1)\n"
    "  -V, --version         print the version\n"
    "  -h, --help            print this help\n"
    "Ctrl-C cancels the running job; a second Ctrl-C within 2 s exits.\n"
    "Environment: ZOE_THREADS (compute threads), ZOE_HOME (where lua/ and models/ are),\n"
    "  ZOE_OFFLOAD_US (ops predicted to take longer run on the compute thread; default 100)\n";

/* The folder holding lua/zoe/init.lua: $ZOE_HOME, or found upward from the executable. */
static int find_root(char *out, size_t n) {
  /* 'out' gets at most n bytes; paths longer than PATH_MAX are not ours to find */
  const char *home = getenv("ZOE_HOME");
  if (home && *home) {
    snprintf(out, n, "%s", home);
    return 1;
  }
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return 0;
  exe[len] = '\0';
  for (int up = 0; up < 5; up++) {
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = '\0';
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/lua/zoe/init.lua", exe);
    if (access(probe, R_OK) == 0) {
      snprintf(out, n, "%s", exe);
      return 1;
    }
    snprintf(probe, sizeof probe, "%s/share/lua/5.4/zoe/init.lua", exe);
    if (access(probe, R_OK) == 0) { /* installed: PREFIX/bin/zoe */
      if (strlen(exe) + sizeof "/share/zoe" > n) return 0;
      memcpy(out, exe, strlen(exe));
      memcpy(out + strlen(exe), "/share/zoe", sizeof "/share/zoe");
      return 2;
    }
  }
  return 0;
}

/* package.path gets ROOT/lua first; package.loaded keeps the root for models and scripts. */
static void setup_paths(lua_State *L) {
  char root[PATH_MAX];
  int kind = find_root(root, sizeof root);
  lua_getglobal(L, "package");
  if (kind == 1) {
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", root, root);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
  } else if (kind == 2) { /* PREFIX/share/zoe: the library is in PREFIX/share/lua/5.4 */
    lua_pushfstring(L, "%s/../lua/5.4/?.lua;%s/../lua/5.4/?/init.lua;", root, root);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
  }
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_zoe_core);
  lua_setfield(L, -2, "zoe.core");
  lua_pop(L, 2);
  lua_pushstring(L, kind ? root : ".");
  lua_setfield(L, LUA_REGISTRYINDEX, "zoe.root");
}

static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/*
** print, as Lua's, but the progress bar steps aside while it writes, and with
** --json it writes to stderr so stdout carries only JSON events.
*/
static int l_print(lua_State *L) {
  zoe_display *d = lz_loop_display();
  FILE *f = d->mode == ZOE_DISPLAY_JSON ? stderr : stdout;
  int n = lua_gettop(L);
  zoe_display_clear(d);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', f);
    fwrite(s, 1, len, f);
    lua_pop(L, 1);
  }
  fputc('\n', f);
  fflush(f);
  zoe_display_redraw(d);
  return 0;
}

/* Load a chunk and run it as the main job; returns the exit status. */
static int run_main(lua_State *L, int status, const char *name, int nargs) {
  if (status != LUA_OK) {
    fprintf(stderr, "zoe: %s\n", lua_tostring(L, -1));
    lua_settop(L, 0);
    return 1;
  }
  return lz_job_main(L, nargs, name);
}

int main(int argc, char **argv) {
  int script = 0;
  const char *chunk = NULL;
  zoe_display_mode mode = zoe_display_auto();
  for (int i = 1; i < argc && !script; i++) {
    if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
      lz_loop_set_verbose(true);
    } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
      printf("zoe %s (%s)\n", zoe_version(), LUA_RELEASE);
      return 0;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage, stdout);
      return 0;
    } else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
      mode = ZOE_DISPLAY_QUIET;
    } else if (strcmp(argv[i], "--json") == 0) {
      mode = ZOE_DISPLAY_JSON;
    } else if (strcmp(argv[i], "-e") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "zoe: -e needs an argument\n%s", usage);
        return 2;
      }
      chunk = argv[++i];
    } else if (strcmp(argv[i], "--") == 0) {
      if (i + 1 < argc) script = i + 1;
      break;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "zoe: unknown option '%s'\n%s", argv[i], usage);
      return 2;
    } else {
      script = i;
    }
  }
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "zoe: cannot create a Lua state (out of memory)\n");
    return 1;
  }
  luaL_openlibs(L);
  setup_paths(L);
  lz_loop_set_display(mode);
  lua_pushcfunction(L, l_print);
  lua_setglobal(L, "print");
  lz_loop_watch_sigint(L);
  zoe_tmpfiles_on_signals(); /* SIGTERM while a video is written leaves no temporary file */
  int rc = 0;
  if (chunk) {
    create_arg_table(L, argv, argc, script ? script : argc - 1);
    rc = run_main(L, luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)"), "(command line)", 0);
  }
  if (rc == 0 && script) {
    create_arg_table(L, argv, argc, script);
    /* a command written in Lua: "zoe storyboard ARGS" runs require("zoe.cli.storyboard")({ARGS}) */
    static const char *const commands[] = {"storyboard", "convert", "worker", "queue", "serve"};
    const char *command = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof *commands; k++)
      if (strcmp(argv[script], commands[k]) == 0) command = commands[k];
    char loader[96];
    if (command) snprintf(loader, sizeof loader, "return require('zoe.cli.%s')({...})", command);
    int status = command ? luaL_loadstring(L, loader)
                         : luaL_loadfile(L, strcmp(argv[script], "-") == 0 ? NULL : argv[script]);
    int nargs = 0;
    if (status == LUA_OK) {
      nargs = argc - script - 1;
      luaL_checkstack(L, nargs, "too many arguments");
      for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    }
    rc = run_main(L, status, argv[script], nargs);
  } else if (!chunk && !script) {
    rc = lz_repl(L);
  }
  lz_loop_close(L);
  lua_close(L);
  lz_loop_shutdown();
  zoe_pool_shutdown();
  return rc;
}
