/*
** lhttp.c: zoe.http.listen, an HTTP/1.1 server on the loop (h2o's libuv build:
** h2o parses requests and writes responses on our uv_loop; the listening socket
** and the routing are ours). What a request may reach is decided here, before
** any Lua runs:
**   /                 the page (WEB/index.html)      /static/NAME  a file of WEB
**   /outputs/PATH     a file under OUT               /api/...      the Lua handler
** PATH is percent-decoded, then must pass zoe_http_safe_path (no "..", no hidden
** or absolute names) and resolve (symlinks followed) inside OUT; only known MIME
** types are served. With a token, every request carries it (Authorization:
** Bearer T, or ?token=T for what a page cannot give headers: EventSource, <video>).
** POSTs must say Content-Type: application/json (a cross-site form cannot), the
** body is limited (h2o answers 413), and every response carries a CSP.
**
**   srv = zoe.http.listen{host =, port =, token =, max_body =, web =, out =,
**                         handler = fn(req) -> status, body[, content_type]}
**   req = {method =, path =, query =, body =, id =}; handler returns "stream"
**   (and a first chunk) to keep the response open as server-sent events:
**   srv:send(id, text) -> false once the client left; srv:finish(id);
**   srv:port(); srv:streams(); srv:close()
*/
#include <h2o.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/http_req.h"
#include "lloop.h"
#include "lzaux.h"
#include "lzlib.h"

#define LZ_HTTP "zoe.HttpServer"

typedef struct hs_server hs_server;

typedef struct hs_stream {
  h2o_generator_t gen; /* first: h2o hands it back to proceed/stop */
  hs_server *srv;
  h2o_req_t *req;
  int id;
  bool busy;   /* h2o holds 'inflight' until it calls proceed */
  bool dead;   /* the client left (stop) or the final chunk went */
  bool ending; /* send the final chunk once what is pending went */
  char *pending, *inflight;
  size_t plen, pcap;
  struct hs_stream *prev, *next;
} hs_stream;

typedef struct hs_conn {
  uv_tcp_t tcp; /* first: h2o owns tcp.data, the close callback gets &tcp */
  hs_server *srv;
  struct hs_conn *prev, *next;
} hs_conn;

typedef struct {
  h2o_handler_t super;
  hs_server *srv;
} hs_handler;

struct hs_server {
  h2o_globalconf_t config;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept;
  uv_tcp_t listener;
  bool listening, closed, loopback;
  lua_State *L; /* the main thread: handlers run outside jobs, as luv's callbacks do */
  int handler_ref;
  char token[256];
  size_t token_len;
  char web[PATH_MAX], out[PATH_MAX];
  hs_stream *streams;
  hs_conn *conns;
  int nconns, port;
  hs_server *next_closed;
};

/* Closed servers stay for the process: h2o's timers, connections still open and
** the listener's close callback refer to them until the loop is gone. */
static hs_server *closed_servers;

static void add_header(h2o_req_t *req, const char *name, const char *value) {
  h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value, strlen(value));
}

static void security_headers(h2o_req_t *req) {
  add_header(req, "content-security-policy",
             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
             "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  add_header(req, "x-content-type-options", "nosniff");
  add_header(req, "referrer-policy", "no-referrer");
}

static void send_text(h2o_req_t *req, int status, const char *type, const char *body, size_t len) {
  req->res.status = status;
  req->res.reason = status == 200 ? "OK" : "Error";
  add_header(req, "content-type", type);
  add_header(req, "cache-control", "no-store");
  h2o_iovec_t copy = h2o_strdup(&req->pool, body, len);
  req->res.content_length = copy.len; /* not chunked: a client knows the end at once */
  h2o_send_inline(req, copy.base, copy.len);
}

static void send_error(h2o_req_t *req, int status, const char *msg) {
  char body[512];
  int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg); /* msg: our own text, no quotes */
  send_text(req, status, "application/json", body, (size_t)n);
}

/* ---- files ---- */

/* Serve ROOT/rel when rel is a safe path, of a type we serve, resolving inside ROOT. */
static void serve_file(h2o_req_t *req, const char *root, const char *rel) {
  char full[PATH_MAX + 300], real[PATH_MAX];
  const char *mime = zoe_http_mime(rel);
  if (!zoe_http_safe_path(rel) || !mime) return send_error(req, 404, "not found");
  snprintf(full, sizeof full, "%s/%s", root, rel);
  size_t rl = strlen(root);
  if (!realpath(full, real) || strncmp(real, root, rl) != 0 || real[rl] != '/')
    return send_error(req, 404, "not found");
  if (h2o_file_send(req, 200, "OK", real, h2o_iovec_init(mime, strlen(mime)), 0) != 0)
    send_error(req, 404, "not found");
}

/* ---- event streams ---- */

static void stream_flush(hs_stream *st) {
  if (st->busy || st->dead || (st->plen == 0 && !st->ending)) return;
  free(st->inflight);
  st->inflight = st->pending;
  h2o_iovec_t buf = h2o_iovec_init(st->inflight, st->plen);
  st->pending = NULL;
  st->plen = st->pcap = 0;
  st->busy = true;
  if (st->ending) st->dead = true;
  h2o_send(st->req, &buf, buf.len ? 1 : 0, st->ending ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  hs_stream *st = (hs_stream *)g;
  st->busy = false;
  stream_flush(st);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  ((hs_stream *)g)->dead = true;
}

/* The request's pool is cleared: the stream leaves the list. */
static void stream_dispose(void *p) {
  hs_stream *st = p;
  if (st->prev) st->prev->next = st->next;
  else if (st->srv->streams == st) st->srv->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  free(st->pending);
  free(st->inflight);
}

static bool stream_append(hs_stream *st, const char *s, size_t n) {
  if (st->plen + n > st->pcap) {
    size_t cap = st->pcap ? st->pcap : 256;
    while (cap < st->plen + n) cap *= 2;
    char *p = realloc(st->pending, cap);
    if (!p) return false;
    st->pending = p;
    st->pcap = cap;
  }
  memcpy(st->pending + st->plen, s, n);
  st->plen += n;
  return true;
}

static void stream_start(hs_server *s, h2o_req_t *req, int id, const char *first, size_t n) {
  hs_stream *st = h2o_mem_alloc_shared(&req->pool, sizeof *st, stream_dispose);
  memset(st, 0, sizeof *st);
  st->gen.proceed = stream_proceed;
  st->gen.stop = stream_stop;
  st->srv = s;
  st->req = req;
  st->id = id;
  st->next = s->streams;
  if (s->streams) s->streams->prev = st;
  s->streams = st;
  req->res.status = 200;
  req->res.reason = "OK";
  add_header(req, "content-type", "text/event-stream");
  add_header(req, "cache-control", "no-store");
  h2o_start_response(req, &st->gen);
  static const char open[] = ": open\n\n";
  stream_append(st, first && n ? first : open, first && n ? n : sizeof open - 1);
  stream_flush(st);
}

static hs_stream *stream_find(hs_server *s, int id) {
  for (hs_stream *st = s->streams; st; st = st->next)
    if (st->id == id && !st->dead && !st->ending) return st;
  return NULL;
}

/* ---- requests ---- */

static int next_request_id;

static void call_handler(hs_server *s, h2o_req_t *req, const char *path, const char *query, size_t qlen) {
  lua_State *L = s->L;
  int top = lua_gettop(L);
  int id = ++next_request_id;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->handler_ref);
  lua_createtable(L, 0, 5);
  lua_pushlstring(L, req->method.base, req->method.len);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  lua_pushlstring(L, query, qlen);
  lua_setfield(L, -2, "query");
  lua_pushlstring(L, req->entity.base ? req->entity.base : "", req->entity.base ? req->entity.len : 0);
  lua_setfield(L, -2, "body");
  lua_pushinteger(L, id);
  lua_setfield(L, -2, "id");
  if (lua_pcall(L, 1, 3, 0) != LUA_OK) {
    fprintf(stderr, "zoe.http: %s: %s\n", path, lua_tostring(L, -1));
    lua_settop(L, top);
    return send_error(req, 500, "internal error (the server printed it)");
  }
  size_t blen = 0;
  const char *body = lua_tolstring(L, top + 2, &blen);
  if (lua_type(L, top + 1) == LUA_TSTRING && strcmp(lua_tostring(L, top + 1), "stream") == 0) {
    stream_start(s, req, id, body, blen);
  } else {
    int status = (int)luaL_optinteger(L, top + 1, 200);
    const char *type = luaL_optstring(L, top + 3, "application/json");
    send_text(req, status < 100 || status > 599 ? 500 : status, type, body ? body : "", blen);
  }
  lua_settop(L, top);
}

/* Whether the request carries the token (header or query). */
static bool authorized(hs_server *s, h2o_req_t *req, const char *q, size_t qlen) {
  if (!s->token_len) return true;
  ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
  if (i >= 0) {
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len > 7 && strncmp(v.base, "Bearer ", 7) == 0 &&
        zoe_http_token_equal(v.base + 7, v.len - 7, s->token, s->token_len))
      return true;
  }
  char t[256];
  int n = zoe_http_query(q, qlen, "token", t, sizeof t);
  return n >= 0 && zoe_http_token_equal(t, (size_t)n, s->token, s->token_len);
}

/* A loopback server answers only requests addressed to a loopback name (DNS rebinding). */
static bool host_ok(hs_server *s, h2o_req_t *req) {
  if (!s->loopback) return true;
  h2o_iovec_t a = req->input.authority;
  size_t n = a.len;
  for (size_t i = a.len; i > 0; i--) {
    if (a.base[i - 1] == ':') { n = i - 1; break; }
    if (a.base[i - 1] < '0' || a.base[i - 1] > '9') break;
  }
  return (n == 9 && memcmp(a.base, "127.0.0.1", 9) == 0) || (n == 9 && memcmp(a.base, "localhost", 9) == 0) ||
         (n == 5 && memcmp(a.base, "[::1]", 5) == 0);
}

static bool is_method(h2o_req_t *req, const char *m) {
  return req->method.len == strlen(m) && memcmp(req->method.base, m, req->method.len) == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  hs_server *s = ((hs_handler *)self)->srv;
  security_headers(req);
  if (s->closed) {
    send_error(req, 503, "the server is stopping");
    return 0;
  }
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  const char *q = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
  size_t qlen = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
  char path[1024];
  if (!host_ok(s, req)) {
    send_error(req, 403, "this server answers requests to 127.0.0.1 or localhost only");
  } else if (!authorized(s, req, q, qlen)) {
    send_error(req, 401, "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN");
  } else if (zoe_http_decode(req->path.base, plen, path, sizeof path) < 0) {
    send_error(req, 400, "bad path");
  } else if (strncmp(path, "/api/", 5) == 0) {
    if (is_method(req, "POST")) {
      ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
      h2o_iovec_t v = i >= 0 ? req->headers.entries[i].value : h2o_iovec_init("", 0);
      if (v.len < 16 || strncmp(v.base, "application/json", 16) != 0) {
        send_error(req, 415, "POST a body with Content-Type: application/json");
        return 0;
      }
    } else if (!is_method(req, "GET") && !is_method(req, "DELETE")) {
      send_error(req, 405, "method not allowed");
      return 0;
    }
    call_handler(s, req, path, q, qlen);
  } else if (!is_method(req, "GET") && !is_method(req, "HEAD")) {
    send_error(req, 405, "method not allowed");
  } else if (strcmp(path, "/") == 0) {
    serve_file(req, s->web, "index.html");
  } else if (strncmp(path, "/static/", 8) == 0) {
    serve_file(req, s->web, path + 8);
  } else if (strncmp(path, "/outputs/", 9) == 0 && s->out[0]) {
    serve_file(req, s->out, path + 9);
  } else {
    send_error(req, 404, "not found");
  }
  return 0;
}

/* ---- connections ---- */

static void on_conn_close(uv_handle_t *h) {
  hs_conn *c = (hs_conn *)h;
  hs_server *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  free(c);
}

static void on_accept(uv_stream_t *listener, int status) {
  hs_server *s = listener->data;
  if (status != 0) return;
  hs_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  uv_tcp_init(listener->loop, &c->tcp);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    return;
  }
  c->srv = s;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
  h2o_accept(&s->accept, sock);
}

/* ---- the Lua side ---- */

static hs_server *checkserver(lua_State *L) {
  hs_server **p = luaL_checkudata(L, 1, LZ_HTTP);
  if (!*p) luaL_error(L, "the server is closed");
  return *p;
}

static void timers_unref(h2o_context_t *c) {
  h2o_timeout_t *t[] = {&c->zero_timeout, &c->one_sec_timeout, &c->hundred_ms_timeout, &c->handshake_timeout,
                        &c->http1.req_timeout, &c->http2.idle_timeout, &c->http2.graceful_shutdown_timeout,
                        &c->proxy.io_timeout};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) uv_unref((uv_handle_t *)&t[i]->_backend.timer);
}

static void listener_closed(uv_handle_t *h) { (void)h; }

/* Stop listening, end every stream; idle keep-alive connections no longer hold the loop. */
static void server_close(lua_State *L, hs_server *s) {
  if (s->closed) return;
  s->closed = true;
  if (s->listening) uv_close((uv_handle_t *)&s->listener, listener_closed);
  s->listening = false;
  for (hs_stream *st = s->streams; st; st = st->next) {
    if (st->dead || st->ending) continue;
    st->ending = true;
    stream_flush(st);
  }
  for (hs_conn *c = s->conns; c; c = c->next) uv_unref((uv_handle_t *)&c->tcp);
  luaL_unref(L, LUA_REGISTRYINDEX, s->handler_ref);
  s->handler_ref = LUA_NOREF;
}

static void server_park(hs_server *s) {
  s->next_closed = closed_servers;
  closed_servers = s;
}

static int s_close(lua_State *L) {
  hs_server **p = luaL_checkudata(L, 1, LZ_HTTP);
  if (*p) server_close(L, *p);
  return 0;
}

static int s_gc(lua_State *L) {
  hs_server **p = luaL_checkudata(L, 1, LZ_HTTP);
  if (*p) {
    server_close(L, *p);
    server_park(*p);
    *p = NULL;
  }
  return 0;
}

static int s_send(lua_State *L) {
  hs_server *s = checkserver(L);
  int id = (int)luaL_checkinteger(L, 2);
  size_t n;
  const char *text = luaL_checklstring(L, 3, &n);
  hs_stream *st = stream_find(s, id);
  bool ok = st && stream_append(st, text, n);
  if (ok) stream_flush(st);
  lua_pushboolean(L, ok);
  return 1;
}

static int s_finish(lua_State *L) {
  hs_server *s = checkserver(L);
  hs_stream *st = stream_find(s, (int)luaL_checkinteger(L, 2));
  if (st) {
    st->ending = true;
    stream_flush(st);
  }
  return 0;
}

static int s_port(lua_State *L) {
  lua_pushinteger(L, checkserver(L)->port);
  return 1;
}

static int s_streams(lua_State *L) {
  int n = 0;
  for (hs_stream *st = checkserver(L)->streams; st; st = st->next) n += !st->dead;
  lua_pushinteger(L, n);
  return 1;
}

static void copy_dir(lua_State *L, const lz_opts *o, const char *key, char *out) {
  const char *dir = lz_opt_string(o, key, NULL);
  out[0] = '\0';
  if (dir && !realpath(dir, out)) luaL_error(L, "zoe.http.listen: %s folder '%s' does not exist", key, dir);
}

static int bind_listener(hs_server *s, uv_loop_t *loop, const char *host, int port) {
  struct sockaddr_storage addr;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
    return UV_EINVAL;
  s->loopback = strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->listening = true;
  int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN, on_accept);
  if (rc == 0) {
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                              : ((struct sockaddr_in *)&got)->sin_port);
  }
  return rc;
}

static const char *const listen_opts[] = {"handler", "host", "max_body", "out", "port", "token", "web", NULL};

static int z_listen(lua_State *L) {
  lz_opts o = lz_opts_check(L, 1, "zoe.http.listen", listen_opts);
  lua_getfield(L, 1, "handler");
  luaL_argcheck(L, lua_isfunction(L, -1), 1, "handler must be a function");
  const char *host = lz_opt_string(&o, "host", "127.0.0.1");
  int port = (int)lz_opt_integer(&o, "port", 8188);
  size_t tlen = 0;
  const char *token = lz_opt_string(&o, "token", NULL);
  if (token && ((tlen = strlen(token)) == 0 || tlen >= 256)) return luaL_error(L, "zoe.http.listen: token of 1 to 255 bytes");
  luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be 0..65535");
  hs_server **p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = NULL;
  luaL_setmetatable(L, LZ_HTTP);
  hs_server *s = calloc(1, sizeof *s);
  if (!s) return luaL_error(L, "zoe.http.listen: out of memory");
  *p = s;
  s->handler_ref = LUA_NOREF;
  copy_dir(L, &o, "web", s->web);
  copy_dir(L, &o, "out", s->out);
  if (token) memcpy(s->token, token, tlen + 1);
  s->token_len = tlen;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  s->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  h2o_config_init(&s->config);
  s->config.server_name = h2o_iovec_init(H2O_STRLIT("zoe"));
  s->config.max_request_entity_size = (size_t)lz_opt_integer(&o, "max_body", 1 << 20);
  h2o_hostconf_t *hc = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
  hs_handler *h = (hs_handler *)h2o_create_handler(pc, sizeof *h);
  h->super.on_req = on_req;
  h->srv = s;
  lz_loop_init(L);
  /* a client that left makes a write fail with EPIPE; by default the signal would end the process */
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = lz_loop_uv();
  h2o_context_init(&s->ctx, loop, &s->config);
  timers_unref(&s->ctx);
  s->accept.ctx = &s->ctx;
  s->accept.hosts = s->config.hosts;
  int rc = bind_listener(s, loop, host, port);
  if (rc != 0) {
    s->closed = true;
    if (s->listening) uv_close((uv_handle_t *)&s->listener, listener_closed);
    s->listening = false;
    return luaL_error(L, "zoe.http.listen: cannot listen on %s port %d: %s", host, port, uv_strerror(rc));
  }
  lua_getfield(L, 1, "handler");
  s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static const luaL_Reg server_methods[] = {
  {"send", s_send}, {"finish", s_finish}, {"port", s_port}, {"streams", s_streams}, {"close", s_close}, {NULL, NULL},
};

int lz_open_http(lua_State *L) {
  if (luaL_newmetatable(L, LZ_HTTP)) {
    luaL_newlib(L, server_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, s_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, z_listen);
  lua_setfield(L, -2, "listen");
  return 1;
}
