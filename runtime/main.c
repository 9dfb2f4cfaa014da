/*
** main.c: the 'zoe' command: run a script, a -e chunk, or the REPL.
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

#ifndef ZOE_VERSION
#define ZOE_VERSION "0.1.0"
#endif

int luaopen_zoe_core(lua_State *L);

static const char *usage =
    "usage: zoe [options] [script.lua [args...]]\n"
    "  zoe script.lua args   run a Lua script (its arguments are in 'arg')\n"
    "  zoe -e 'code'         run a chunk of Lua\n"
    "  zoe                   start the REPL\n"
    "  -v, --version         print the version\n"
    "  -h, --help            print this help\n"
    "Environment: ZOE_THREADS (compute threads), ZOE_HOME (where lua/ and models/ are)\n";

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
  }
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_zoe_core);
  lua_setfield(L, -2, "zoe.core");
  lua_pop(L, 2);
  lua_pushstring(L, kind ? root : ".");
  lua_setfield(L, LUA_REGISTRYINDEX, "zoe.root");
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    fprintf(stderr, "zoe: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_script(lua_State *L, const char *path, int argc, char **argv, int script) {
  create_arg_table(L, argv, argc, script);
  int status = luaL_loadfile(L, path);
  if (status != LUA_OK) return report(L, status);
  int nargs = argc - script - 1;
  luaL_checkstack(L, nargs, "too many arguments");
  for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return report(L, docall(L, nargs, 0));
}

/* A plain REPL: an expression prints its value; statements run. */
static int repl(lua_State *L) {
  char line[8192];
  lua_getglobal(L, "require");
  lua_pushliteral(L, "zoe");
  if (report(L, docall(L, 1, 1)) == LUA_OK) lua_setglobal(L, "zoe");
  printf("Zoetrope %s (Lua 5.4) -- zoe is loaded; Ctrl-D exits\n", ZOE_VERSION);
  for (;;) {
    fputs("> ", stdout);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) break;
    lua_pushfstring(L, "return %s", line);
    int status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
    lua_remove(L, -2);
    if (status != LUA_OK) {
      lua_pop(L, 1);
      status = luaL_loadbuffer(L, line, strlen(line), "=stdin");
    }
    if (status != LUA_OK) {
      report(L, status);
      continue;
    }
    int top = lua_gettop(L) - 1;
    if (report(L, docall(L, 0, LUA_MULTRET)) != LUA_OK) continue;
    int n = lua_gettop(L) - top;
    for (int i = 1; i <= n; i++) {
      printf("%s%s", i > 1 ? "\t" : "", luaL_tolstring(L, top + i, NULL));
      lua_pop(L, 1);
    }
    if (n) putchar('\n');
    lua_settop(L, top);
  }
  putchar('\n');
  return LUA_OK;
}

int main(int argc, char **argv) {
  int script = 0;
  const char *chunk = NULL;
  for (int i = 1; i < argc && !script; i++) {
    if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--version") == 0) {
      printf("zoe %s (%s)\n", ZOE_VERSION, LUA_RELEASE);
      return 0;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage, stdout);
      return 0;
    } else if (strcmp(argv[i], "-e") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "zoe: -e needs an argument\n%s", usage);
        return 2;
      }
      chunk = argv[++i];
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
  int status = LUA_OK;
  if (chunk) {
    create_arg_table(L, argv, argc, script ? script : argc - 1);
    status = luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)");
    status = status == LUA_OK ? docall(L, 0, 0) : status;
    report(L, status);
  }
  if (status == LUA_OK && script) status = run_script(L, argv[script], argc, argv, script);
  else if (!chunk && !script) status = repl(L);
  lua_close(L);
  zoe_pool_shutdown();
  return status == LUA_OK ? 0 : 1;
}
