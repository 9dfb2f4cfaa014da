/*
** lhiredis.c: zoe.hiredis, an asynchronous Redis connection (hiredis) on our
** loop. Replies come to Lua callbacks, so a job waits for one with zoe.await:
**
**   local c = zoe.hiredis.connect("127.0.0.1", 6379, function(ok, err) ... end)
**   c:command({"XADD", "s", "*", "k", "v"}, function(reply, err, kind) ... end)
**   c:status()  -> "connecting" | "connected" | "closed", and the last error
**   c:close()   (hard: pending callbacks get (nil, "closed", "io"))
**
** Replies: strings and status replies as strings, integers as integers, arrays
** as tables, a nil reply as false. A failure gives (nil, message, kind): kind
** "reply" for an error Redis sent (the command was wrong), "io" for a lost or
** refused connection (the command may or may not have run). Reconnecting is the
** Lua side's (lua/zoe/queue/redis.lua): a connection object lives once.
**
** Lifetime: while hiredis holds the context, the userdata is referenced from
** the registry, so it is never collected inside one of its own callbacks. The
** poll handle is our own adapter (hiredis' libuv.h ignores a poll error, and
** libuv reports a refused connection or a reset as one: the connection would
** hang); it is malloc'd and freed by uv_close's callback.
*/
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lloop.h"
#include "lzlib.h"

#define LZ_REDIS "zoe.hiredis"
/* A connection that has not answered by then is given up (a host that drops packets). */
#define CONNECT_TIMEOUT_MS 5000
#define ARGS_MAX 256

typedef enum { RC_CONNECTING, RC_CONNECTED, RC_CLOSED } rc_state;

typedef struct rd_conn {
  redisAsyncContext *ac;
  rc_state state;
  lua_State *M;       /* callbacks run here (as luv's do) ... */
  lua_State *cur;     /* ... or on the thread that called us, when hiredis calls back at once */
  int self_ref;       /* the userdata, while hiredis holds the context */
  int connect_ref;    /* the connect callback, until it is called */
  bool quiet;         /* being collected: callbacks are dropped, not called */
  uv_timer_t *timer;  /* the connect timeout */
  char err[128];
} rd_conn;

typedef struct rd_cmd {
  rd_conn *c;
  int ref;
} rd_cmd;

/* ---- the adapter: one uv_poll_t on the context's socket ---- */

typedef struct rd_poll {
  uv_poll_t h;
  redisAsyncContext *ac; /* NULL once hiredis let go of it */
  int events;
} rd_poll;

static void poll_cb(uv_poll_t *h, int status, int events) {
  rd_poll *p = h->data;
  if (!p->ac) return;
  if (status < 0) {
    /* libuv stopped the handle; hiredis finds the error itself: a connect that failed
       when it checks the socket, a reset connection when it reads */
    if (!(p->ac->c.flags & REDIS_CONNECTED)) redisAsyncHandleWrite(p->ac);
    else redisAsyncHandleRead(p->ac);
    return;
  }
  if (events & UV_READABLE) redisAsyncHandleRead(p->ac);
  if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void poll_update(rd_poll *p, int add, int del) {
  p->events = (p->events | add) & ~del;
  if (p->events) uv_poll_start(&p->h, p->events, poll_cb);
  else uv_poll_stop(&p->h);
}

static void add_read(void *d) { poll_update(d, UV_READABLE, 0); }
static void del_read(void *d) { poll_update(d, 0, UV_READABLE); }
static void add_write(void *d) { poll_update(d, UV_WRITABLE, 0); }
static void del_write(void *d) { poll_update(d, 0, UV_WRITABLE); }
static void free_handle(uv_handle_t *h) { free(h->data); }
static void release(rd_conn *c);
/* hiredis frees the context: every reply callback has been called, the disconnect one comes next */
static void cleanup(void *d) {
  rd_poll *p = d;
  release(p->ac->data);
  p->ac = NULL;
  uv_close((uv_handle_t *)&p->h, free_handle);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop) {
  rd_poll *p = calloc(1, sizeof *p);
  if (!p) return -1;
  if (uv_poll_init(loop, &p->h, ac->c.fd) != 0) {
    free(p);
    return -1;
  }
  p->h.data = p;
  p->ac = ac;
  ac->ev.data = p;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return 0;
}

/* ---- calling Lua back ---- */

static lua_State *cb_state(rd_conn *c) { return c->cur ? c->cur : c->M; }

/* Calls the function under 'nargs' values; an error is printed, never raised into hiredis. */
static void call_back(lua_State *L, int nargs) {
  if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
    lua_pushfstring(L, "error in a redis callback: %s", luaL_tolstring(L, -1, NULL));
    lz_loop_print(lua_tostring(L, -1));
    lua_pop(L, 2);
  }
}

static void push_reply(lua_State *L, const redisReply *r, int depth) {
  luaL_checkstack(L, 4, "redis reply too deep");
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: lua_pushlstring(L, r->str, r->len); break;
    case REDIS_REPLY_INTEGER: lua_pushinteger(L, (lua_Integer)r->integer); break;
    case REDIS_REPLY_ARRAY:
      lua_createtable(L, (int)r->elements, 0);
      for (size_t i = 0; i < r->elements; i++) {
        if (depth > 32) lua_pushboolean(L, 0);
        else push_reply(L, r->element[i], depth + 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      break;
    default: lua_pushboolean(L, 0); break; /* nil */
  }
}

/* Drop the registry's hold on the userdata: hiredis lets go of the context. */
static void release(rd_conn *c) {
  c->ac = NULL;
  c->state = RC_CLOSED;
  if (c->timer) {
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, (uv_close_cb)free);
    c->timer = NULL;
  }
  if (c->self_ref != LUA_NOREF && !c->quiet) luaL_unref(c->M, LUA_REGISTRYINDEX, c->self_ref);
  c->self_ref = LUA_NOREF;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv) {
  rd_cmd *cmd = priv;
  rd_conn *c = cmd->c;
  int ref = cmd->ref;
  free(cmd);
  if (c->quiet) return;
  lua_State *L = cb_state(c);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  const redisReply *reply = r;
  if (!reply) {
    lua_pushnil(L);
    lua_pushstring(L, ac->errstr[0] ? ac->errstr : c->err[0] ? c->err : "connection closed");
    lua_pushliteral(L, "io");
    call_back(L, 3);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    push_reply(L, reply, 0);
    lua_pushliteral(L, "reply");
    call_back(L, 3);
  } else {
    push_reply(L, reply, 0);
    call_back(L, 1);
  }
}

static void connect_done(rd_conn *c, const char *err) {
  if (c->timer) {
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, (uv_close_cb)free);
    c->timer = NULL;
  }
  if (c->connect_ref == LUA_NOREF || c->quiet) return;
  lua_State *L = cb_state(c);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->connect_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, c->connect_ref);
  c->connect_ref = LUA_NOREF;
  lua_pushboolean(L, err == NULL);
  if (err) lua_pushstring(L, err);
  else lua_pushnil(L);
  call_back(L, 2);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rd_conn *c = ac->data;
  if (status != REDIS_OK) {
    snprintf(c->err, sizeof c->err, "%s", ac->errstr[0] ? ac->errstr : "cannot connect");
    c->state = RC_CLOSED; /* hiredis frees the context after this */
    connect_done(c, c->err);
    return;
  }
  c->state = RC_CONNECTED;
  connect_done(c, NULL);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rd_conn *c = ac->data;
  if (status != REDIS_OK) snprintf(c->err, sizeof c->err, "%s", ac->errstr[0] ? ac->errstr : "connection lost");
  else if (!c->err[0]) snprintf(c->err, sizeof c->err, "closed");
}

/* Free the context now (not from inside one of its callbacks: hiredis would use it after). */
static void hard_close(lua_State *L, rd_conn *c, const char *why) {
  if (!c->ac) return;
  snprintf(c->err, sizeof c->err, "%s", why);
  redisAsyncContext *ac = c->ac;
  c->cur = L;
  if (ac->c.flags & REDIS_IN_CALLBACK) redisAsyncDisconnect(ac);
  else redisAsyncFree(ac); /* pending callbacks get (nil, why) now, on L */
  c->cur = NULL;
  connect_done(c, why); /* when it had not connected yet */
}

static void connect_timeout(uv_timer_t *t) {
  rd_conn *c = t->data;
  if (c->state == RC_CONNECTING && c->ac) hard_close(NULL, c, "timed out connecting");
}

/* ---- the Lua side ---- */

static rd_conn *check(lua_State *L) { return luaL_checkudata(L, 1, LZ_REDIS); }

static int r_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  luaL_argcheck(L, port > 0 && port < 65536, 2, "port out of range");
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lz_loop_init(L);
  rd_conn *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  c->self_ref = c->connect_ref = LUA_NOREF;
  c->state = RC_CLOSED;
  luaL_setmetatable(L, LZ_REDIS);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  c->M = lua_tothread(L, -1);
  lua_pop(L, 1);
  redisAsyncContext *ac = redisAsyncConnect(host, (int)port);
  if (!ac) return luaL_error(L, "zoe.hiredis.connect: out of memory");
  if (ac->err) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot connect to %s:%d: %s", host, (int)port, ac->errstr);
    redisAsyncFree(ac);
    return 2;
  }
  c->timer = malloc(sizeof *c->timer);
  if (!c->timer || attach(ac, lz_loop_uv()) != 0) {
    free(c->timer);
    c->timer = NULL;
    redisAsyncFree(ac);
    return luaL_error(L, "zoe.hiredis.connect: cannot watch the socket");
  }
  ac->data = c;
  c->ac = ac;
  c->state = RC_CONNECTING;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  uv_timer_init(lz_loop_uv(), c->timer);
  c->timer->data = c;
  uv_timer_start(c->timer, connect_timeout, CONNECT_TIMEOUT_MS, 0);
  lua_pushvalue(L, 3);
  c->connect_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* c:command({args...}, cb) -> true, or nil and why when it cannot be sent. */
static int r_command(lua_State *L) {
  rd_conn *c = check(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_Integer n = luaL_len(L, 2);
  luaL_argcheck(L, n >= 1 && n <= ARGS_MAX, 2, "a command is 1 to 256 words");
  const char *argv[ARGS_MAX];
  size_t lens[ARGS_MAX];
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      return luaL_error(L, "redis command: word %d is a %s (strings and numbers only)", (int)i, luaL_typename(L, -1));
    argv[i - 1] = lua_tolstring(L, -1, &lens[i - 1]); /* the strings stay on the stack */
  }
  if (!c->ac || c->state == RC_CLOSED) {
    lua_pushnil(L);
    lua_pushstring(L, c->err[0] ? c->err : "not connected");
    return 2;
  }
  rd_cmd *cmd = malloc(sizeof *cmd);
  if (!cmd) return luaL_error(L, "redis command: out of memory");
  cmd->c = c;
  lua_pushvalue(L, 3);
  cmd->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (redisAsyncCommandArgv(c->ac, on_reply, cmd, (int)n, argv, lens) != REDIS_OK) {
    luaL_unref(L, LUA_REGISTRYINDEX, cmd->ref);
    free(cmd);
    lua_pushnil(L);
    lua_pushstring(L, "the connection is closing");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int r_status(lua_State *L) {
  rd_conn *c = check(L);
  static const char *const names[] = {"connecting", "connected", "closed"};
  lua_pushstring(L, names[c->state]);
  if (c->err[0]) lua_pushstring(L, c->err);
  else lua_pushnil(L);
  return 2;
}

static int r_close(lua_State *L) {
  rd_conn *c = check(L);
  hard_close(L, c, "closed");
  return 0;
}

static int r_gc(lua_State *L) {
  rd_conn *c = check(L);
  c->quiet = true; /* lua_close: nothing is called back into the state being closed */
  if (c->ac) hard_close(L, c, "closed");
  if (c->timer) {
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, (uv_close_cb)free);
    c->timer = NULL;
  }
  return 0;
}

int lz_open_hiredis(lua_State *L) {
  static const luaL_Reg meth[] = {{"command", r_command}, {"status", r_status}, {"close", r_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, LZ_REDIS)) {
    luaL_newlib(L, meth);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, r_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  static const luaL_Reg funcs[] = {{"connect", r_connect}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
