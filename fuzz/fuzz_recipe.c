/*
** fuzz_recipe: JSON from the web through zoe serve's recipe check (lua/zoe/serve/recipe.lua,
** run as it is in a plain Lua state; cJSON decodes, as zoe.json does). The check must never
** raise, must return a spec or (nil, message), and a spec it returns must hold only known
** fields of the right types and ranges, with a prompt: anything else is a crash.
** Run from the repository root (make fuzz does).
*/
#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

/* Lua's lines as coverage: libFuzzer reads this section as extra counters, so the mutations
** that reach new lines of the checker are kept (the C of Lua itself is not instrumented). */
__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_lines[4096];

static void line_hook(lua_State *S, lua_Debug *ar) {
  static int prev;
  if (!lua_getinfo(S, "S", ar)) return;
  int here = ar->currentline * 7 + (int)(((uintptr_t)ar->source >> 4) & 63);
  lua_lines[(unsigned)(here * 33 + prev) & 4095]++; /* edges between lines, as SanitizerCoverage counts */
  prev = here;
}

/* what a returned spec must satisfy, checked by code other than the checker's */
static const char verify[] =
    "local spec, why, null = ...\n"
    "if spec == nil then assert(type(why) == 'string' and #why > 0, 'no message') return end\n"
    "assert(type(spec) == 'table', 'not a table')\n"
    "local kinds = {model = 'string', prompt = 'string', negative = 'string', sampler = 'string', schedule = 'string',\n"
    "  cache = 'string', width = 'i', height = 'i', frames = 'i', fps = 'i', steps = 'i', seed = 'i', shift = 'n',\n"
    "  cfg = 'n', cache_threshold = 'n'}\n"
    "for k, v in pairs(spec) do\n"
    "  local kind = kinds[k]\n"
    "  assert(kind, 'unknown field ' .. tostring(k))\n"
    "  assert(v ~= null, 'a null got through')\n"
    "  if kind == 'string' then assert(type(v) == 'string' and #v <= 2000)\n"
    "  elseif kind == 'i' then assert(math.type(v) == 'integer' and v >= 0 and v <= 2^53)\n"
    "  else assert(type(v) == 'number' and v == v and v >= 0 and v <= 100) end\n"
    "end\n"
    "assert(type(spec.prompt) == 'string' and spec.prompt:find('%S'), 'no prompt')\n"
    "if spec.model then assert(spec.model == 'zoe-tiny', 'a model not in the list') end\n"
    "if spec.sampler then assert(spec.sampler == 'euler' or spec.sampler == 'unipc', 'a sampler not in the list') end\n";

static void push_json(const cJSON *v, int depth) {
  if (depth > 64 || !lua_checkstack(L, 4)) {
    lua_pushnil(L);
    return;
  }
  if (cJSON_IsNull(v)) lua_pushlightuserdata(L, NULL);
  else if (cJSON_IsBool(v)) lua_pushboolean(L, cJSON_IsTrue(v));
  else if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (d == (double)(lua_Integer)d && d > -9.2e18 && d < 9.2e18) lua_pushinteger(L, (lua_Integer)d);
    else lua_pushnumber(L, d);
  } else if (cJSON_IsString(v)) lua_pushstring(L, v->valuestring);
  else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
    lua_newtable(L);
    int i = 1;
    for (const cJSON *c = v->child; c; c = c->next) {
      push_json(c, depth + 1);
      if (cJSON_IsArray(v)) lua_rawseti(L, -2, i++);
      else lua_setfield(L, -2, c->string ? c->string : "");
    }
  } else lua_pushnil(L);
}

static void init(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_loadfile(L, "lua/zoe/serve/recipe.lua") != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_recipe: %s (run from the repository root)\n", lua_tostring(L, -1));
    exit(1);
  }
  lua_getfield(L, -1, "check");
  lua_setglobal(L, "CHECK");
  lua_pop(L, 1);
  if (luaL_loadstring(L, verify) != LUA_OK) abort();
  lua_setglobal(L, "VERIFY");
  lua_newtable(L); /* ctx */
  const char *lists[][4] = {{"models", "zoe-tiny", NULL, NULL}, {"samplers", "euler", "unipc", NULL},
                            {"schedules", "flow", "karras", NULL}, {"caches", "none", "teacache", NULL}};
  for (int i = 0; i < 4; i++) {
    lua_newtable(L);
    for (int j = 1; j < 4 && lists[i][j]; j++) {
      lua_pushstring(L, lists[i][j]);
      lua_rawseti(L, -2, j);
    }
    lua_setfield(L, -2, lists[i][0]);
  }
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_setglobal(L, "CTX");
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) init();
  cJSON *j = cJSON_ParseWithLength((const char *)data, size);
  if (!j) return 0;
  lua_getglobal(L, "CHECK");
  push_json(j, 0);
  cJSON_Delete(j);
  lua_getglobal(L, "CTX");
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
    fprintf(stderr, "the check raised: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_getglobal(L, "VERIFY");
  lua_insert(L, -3);
  lua_pushlightuserdata(L, NULL);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    fprintf(stderr, "a spec the check returned is wrong: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
  /* what this input allocated is freed within it: libFuzzer runs LeakSanitizer's whole-heap
     scan after every input whose mallocs and frees differ (80% of the time, before) */
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
