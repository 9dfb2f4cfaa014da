/*
** lvideo.c: zoe.video and zoe.image, the Lua face of runtime/io/video.h.
**   zoe.video.write(frames, path, opts)     zoe.video.read(path, opts) -> (3, T, H, W)
**   local w = zoe.video.writer(path, opts)  w:write(chunk) ... w:close()  (or w:abort())
**   zoe.video.info(path) -> table           zoe.video.contact_sheet(videos, path, opts)
**   zoe.image.read(path) -> (3, H, W)       zoe.image.write(img, path, opts)
** Encoding and decoding run as tasks (lz_task), so the loop can move them off
** its thread. A task owns copies of every string it needs (a Lua string may be
** collected while the compute thread runs).
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../io/video.h"
#include "ltask.h"
#include "lzlib.h"

#define LZ_VIDEO_WRITER "zoe.VideoWriter"
/*
** lz_task.cost is about nanoseconds of work (the loop learns the real ratio from
** what it measures): encoding costs some 50 per input value; a decode is
** guessed at 1e7 (10 ms) since its size is not known before it runs. Both are far
** above the inline threshold: a video never blocks the loop.
*/
#define ENCODE_COST_PER_VALUE 50.0
#define DECODE_COST 1e7
#define CLOSE_COST 1e7

/* ---- what a task owns ---- */

typedef struct io_task {
  lz_task base;
  zoe_tensor *frames;      /* what a write encodes */
  char *path;
  zoe_video_opts o;        /* preset, tune and meta point into 'strs' */
  zoe_video_read_opts r;
  zoe_sheet_opts s;        /* labels point into 'strs' */
  char **strs;
  int nstrs;
  zoe_kv *meta;
  const char **labels;
} io_task; /* a contact sheet's inputs are base.held[] */

static void free_io(lz_task *t) {
  io_task *j = (io_task *)t;
  for (int i = 0; i < j->nstrs; i++) free(j->strs[i]);
  free(j->strs);
  free(j->meta);
  free(j->labels);
  free(j->path);
}

/* Copy 's' into the task (freed with it); raises on out of memory. */
static const char *own(lua_State *L, io_task *j, const char *s) {
  char **strs = realloc(j->strs, (j->nstrs + 1) * sizeof *strs);
  if (!strs) luaL_error(L, "out of memory");
  j->strs = strs;
  if (!(strs[j->nstrs] = strdup(s))) luaL_error(L, "out of memory");
  return strs[j->nstrs++];
}

/* A task that owns a copy of 'path' (so a Lua error cannot leak anything). */
static io_task *new_io(lua_State *L, lz_run_fn run, const char *name, const char *path) {
  io_task *j = LZ_TASK_NEW(L, io_task, run, name);
  j->base.cleanup = free_io;
  if (!(j->path = strdup(path))) luaL_error(L, "out of memory");
  zoe_video_opts_default(&j->o);
  return j;
}

/* ---- options ---- */

static int opt_int(const lz_opts *o, const char *key, int def) {
  lua_Integer v = lz_opt_integer(o, key, def);
  if (v < -(1 << 30) || v > (1 << 30)) luaL_error(o->L, "%s: option '%s' is out of range", o->op, key);
  return (int)v;
}

static const char *opt_str(const lz_opts *o, const char *key, io_task *j) {
  const char *v = lz_opt_string(o, key, NULL);
  return v ? own(o->L, j, v) : NULL;
}

static int kv_cmp(const void *a, const void *b) { return strcmp(((const zoe_kv *)a)->key, ((const zoe_kv *)b)->key); }

/* metadata = {key = "value" or number}: copied, sorted by key (the file must not depend on pairs' order). */
static void opt_meta(lua_State *L, int arg, io_task *j, const char *who) {
  if (lua_getfield(L, arg, "metadata") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "%s: option 'metadata' must be a table of strings", who);
  int tab = lua_gettop(L), n = 0;
  lua_pushnil(L);
  while (lua_next(L, tab)) n++, lua_pop(L, 1);
  if (!(j->meta = calloc(n ? n : 1, sizeof *j->meta))) luaL_error(L, "out of memory");
  lua_pushnil(L);
  while (lua_next(L, tab)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "%s: metadata keys must be strings (got a %s)", who, luaL_typename(L, -2));
    int t = lua_type(L, -1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
      luaL_error(L, "%s: metadata '%s' must be a string or a number (got a %s)", who, lua_tostring(L, -2), luaL_typename(L, -1));
    j->meta[j->o.nmeta].key = own(L, j, lua_tostring(L, -2));
    j->meta[j->o.nmeta].value = own(L, j, luaL_tolstring(L, -1, NULL));
    j->o.nmeta++;
    lua_pop(L, 2); /* the string and the value */
  }
  qsort(j->meta, j->o.nmeta, sizeof *j->meta, kv_cmp);
  j->o.meta = j->meta;
  lua_pop(L, 1);
}

static const char *const write_keys[] = {"fps", "crf", "preset", "tune", "speed", "quality", "threads",
                                         "start_number", "metadata", NULL};

/* Options of video.write, video.writer and image.write, at 'arg' (a table or nil). */
static void write_opts(lua_State *L, int arg, io_task *j, const char *who) {
  lz_opts opts = lz_opts_check(L, arg, who, write_keys);
  if (!opts.arg) return;
  const lz_opts *p = &opts;
  zoe_video_opts *o = &j->o;
  o->fps = lz_opt_number(p, "fps", o->fps);
  o->crf = opt_int(p, "crf", o->crf);
  o->speed = opt_int(p, "speed", o->speed);
  o->quality = opt_int(p, "quality", o->quality);
  o->start_number = opt_int(p, "start_number", o->start_number);
  o->preset = opt_str(p, "preset", j);
  o->tune = opt_str(p, "tune", j);
  if (lua_getfield(L, opts.arg, "threads") == LUA_TSTRING) {
    if (strcmp(lua_tostring(L, -1), "auto")) luaL_error(L, "%s: option 'threads' must be an integer or \"auto\"", who);
    o->threads = -1;
  } else if (!lua_isnil(L, -1)) {
    o->threads = opt_int(p, "threads", o->threads);
    if (o->threads < 0) luaL_error(L, "%s: option 'threads' must be >= 0 or \"auto\"", who);
  }
  lua_pop(L, 1);
  opt_meta(L, opts.arg, j, who);
}

static const char *const read_keys[] = {"frames", "fps", "width", "height", "dtype", NULL};

static void read_opts(lua_State *L, int arg, io_task *j, const char *who) {
  lz_opts opts = lz_opts_check(L, arg, who, read_keys);
  const lz_opts *p = &opts;
  zoe_video_read_opts *r = &j->r;
  r->max_frames = opt_int(p, "frames", 0);
  r->fps = lz_opt_number(p, "fps", 0);
  r->width = opt_int(p, "width", 0);
  r->height = opt_int(p, "height", 0);
  const char *dt = lz_opt_string(p, "dtype", NULL);
  if (dt && strcmp(dt, "u8") && strcmp(dt, "f32")) luaL_error(L, "%s: option 'dtype' must be \"f32\" or \"u8\"", who);
  r->u8 = dt && !strcmp(dt, "u8");
  if (r->max_frames < 0 || r->fps < 0 || r->width < 0 || r->height < 0)
    luaL_error(L, "%s: frames, fps, width and height must not be negative", who);
}

/* ---- tasks ---- */

static int run_video_write(lz_task *t, zoe_err *e) {
  io_task *j = (io_task *)t;
  return zoe_video_write(j->frames, j->path, &j->o, e);
}

static int run_image_write(lz_task *t, zoe_err *e) {
  io_task *j = (io_task *)t;
  return zoe_image_write(j->frames, j->path, &j->o, e);
}

static int run_sheet(lz_task *t, zoe_err *e) {
  io_task *j = (io_task *)t;
  return zoe_contact_sheet((const zoe_tensor *const *)t->held, t->nheld, j->path, &j->s, e);
}

static int run_video_read(lz_task *t, zoe_err *e) {
  io_task *j = (io_task *)t;
  return lz_task_result(t, zoe_video_read(j->path, &j->r, e), e);
}

static int run_image_read(lz_task *t, zoe_err *e) {
  io_task *j = (io_task *)t;
  return lz_task_result(t, zoe_image_read(j->path, e), e);
}

/* zoe.video.write(frames, path, opts) */
static int v_write(lua_State *L) {
  zoe_tensor *frames = lz_checktensor(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  io_task *j = new_io(L, run_video_write, "video.write", path);
  write_opts(L, 3, j, "video.write");
  j->frames = lz_task_hold(L, &j->base, frames);
  j->base.cost = (double)zoe_numel(frames) * ENCODE_COST_PER_VALUE;
  lua_settop(L, 4); /* the task on top */
  return lz_task_finish(L, &j->base);
}

/* zoe.video.read(path, {frames=, fps=, width=, height=, dtype=}) */
static int v_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  io_task *j = new_io(L, run_video_read, "video.read", path);
  read_opts(L, 2, j, "video.read");
  j->base.cost = DECODE_COST;
  lua_settop(L, 3);
  return lz_task_finish(L, &j->base);
}

static int i_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  io_task *j = new_io(L, run_image_read, "image.read", path);
  j->base.cost = DECODE_COST;
  return lz_task_finish(L, &j->base);
}

static int i_write(lua_State *L) {
  zoe_tensor *img = lz_checktensor(L, 1);
  const char *path = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  io_task *j = new_io(L, run_image_write, "image.write", path);
  write_opts(L, 3, j, "image.write");
  j->frames = lz_task_hold(L, &j->base, img);
  j->base.cost = (double)zoe_numel(img) * ENCODE_COST_PER_VALUE;
  lua_settop(L, 4);
  return lz_task_finish(L, &j->base);
}

static const char *const sheet_keys[] = {"cols", "every", "scale", "labels", NULL};

/* zoe.video.contact_sheet(video or {videos or frames}, path, {cols=, every=, scale=, labels=}) */
static int v_contact_sheet(lua_State *L) {
  const char *who = "video.contact_sheet";
  if (!lz_totensor(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  const char *path = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  io_task *j = new_io(L, run_sheet, who, path);
  lz_task *t = &j->base;
  lua_Integer len = lz_totensor(L, 1) ? 1 : luaL_len(L, 1);
  if (len < 1) luaL_error(L, "%s: no videos or frames given", who);
  if (len > 100000) luaL_error(L, "%s: %d items (at most 100000)", who, (int)len);
  int n = (int)len;
  for (int i = 0; i < n; i++) {
    zoe_tensor *x = lz_totensor(L, 1);
    if (!x) {
      lua_geti(L, 1, i + 1);
      x = lz_totensor(L, -1);
      if (!x) luaL_error(L, "%s: item %d is a %s, not a tensor", who, i + 1, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
    lz_task_hold(L, t, x);
    t->cost += (double)zoe_numel(x) * ENCODE_COST_PER_VALUE;
  }
  lz_opts o = lz_opts_check(L, 3, who, sheet_keys);
  if (o.arg) {
    j->s.cols = opt_int(&o, "cols", 0);
    j->s.every = opt_int(&o, "every", 0);
    j->s.scale = opt_int(&o, "scale", 0);
    if (lua_getfield(L, 3, "labels") != LUA_TNIL) {
      if (!lua_istable(L, -1)) luaL_error(L, "%s: option 'labels' must be a table of strings", who);
      size_t nl = lua_rawlen(L, -1);
      if (nl > 100000) luaL_error(L, "%s: too many labels", who);
      if (nl > 0 && !(j->labels = calloc(nl, sizeof *j->labels))) luaL_error(L, "out of memory");
      for (int i = 0; i < (int)nl; i++) {
        int tt = lua_rawgeti(L, -1, i + 1);
        if (tt == LUA_TSTRING || tt == LUA_TNUMBER) j->labels[i] = own(L, j, lua_tostring(L, -1));
        else if (tt != LUA_TNIL && tt != LUA_TBOOLEAN) luaL_error(L, "%s: label %d must be a string", who, i + 1);
        lua_pop(L, 1);
      }
      j->s.nlabels = (int)nl;
      j->s.labels = j->labels;
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 4);
  return lz_task_finish(L, t);
}

/* ---- zoe.video.info ---- */

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static int v_info(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  zoe_video_info info;
  zoe_err e = {0};
  if (zoe_video_probe(path, &info, &e)) return lz_error(L, &e);
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, info.width);
  lua_setfield(L, -2, "width");
  lua_pushinteger(L, info.height);
  lua_setfield(L, -2, "height");
  lua_pushinteger(L, info.frames);
  lua_setfield(L, -2, "frames");
  set_num(L, "fps", info.fps);
  set_num(L, "duration", info.duration);
  lua_pushstring(L, info.codec);
  lua_setfield(L, -2, "codec");
  lua_pushstring(L, info.format);
  lua_setfield(L, -2, "format");
  lua_pushstring(L, info.pix_fmt);
  lua_setfield(L, -2, "pix_fmt");
  lua_createtable(L, 0, info.nmeta);
  for (int i = 0; i < info.nmeta; i++) {
    lua_pushstring(L, info.values[i]);
    lua_setfield(L, -2, info.keys[i]);
  }
  lua_setfield(L, -2, "metadata");
  zoe_video_info_free(&info);
  return 1;
}

/* ---- the streaming writer ---- */

/*
** The C writer lives in a shared record: the Lua box holds one reference, and
** each running task another, so a box collected while its task still runs on
** the compute thread does not pull the writer from under it. The last
** reference to go aborts a writer that was never closed.
*/
typedef struct shared_writer {
  atomic_int refs;
  atomic_int busy;        /* a write or close task is running */
  zoe_video_writer *w;    /* NULL once closed or aborted */
} shared_writer;

typedef struct writer_box {
  shared_writer *s;       /* NULL once closed */
} writer_box;

static void shared_release(shared_writer *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
    zoe_video_writer_abort(s->w);
    free(s);
  }
}

/* The box lets go: drop the file now unless a task is still writing (then the task's release does). */
static void shared_drop(shared_writer *s) {
  if (!s) return;
  if (!atomic_load(&s->busy)) {
    zoe_video_writer_abort(s->w);
    s->w = NULL;
  }
  shared_release(s);
}

static shared_writer *check_writer(lua_State *L) {
  writer_box *b = luaL_checkudata(L, 1, LZ_VIDEO_WRITER);
  if (!b->s) luaL_error(L, "video writer: already closed");
  if (atomic_load(&b->s->busy)) luaL_error(L, "video writer '%s': a write is still running", zoe_video_writer_path(b->s->w));
  return b->s;
}

typedef struct stream_task {
  lz_task base;
  shared_writer *s; /* one reference, released with the task */
  zoe_tensor *chunk; /* NULL: close */
} stream_task;

static void stream_release(lz_task *t) { shared_release(((stream_task *)t)->s); }

static int run_stream(lz_task *t, zoe_err *e) {
  stream_task *k = (stream_task *)t;
  int rc;
  if (k->chunk) {
    rc = zoe_video_writer_write(k->s->w, k->chunk, e);
  } else {
    rc = zoe_video_writer_close(k->s->w, e);
    k->s->w = NULL;
  }
  atomic_store(&k->s->busy, 0);
  return rc;
}

/* zoe.video.writer(path, opts) */
static int v_writer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 2);
  writer_box *b = lua_newuserdatauv(L, sizeof *b, 0); /* the box first: a later error leaks nothing */
  b->s = NULL;
  luaL_setmetatable(L, LZ_VIDEO_WRITER);
  /* the options are copied by the writer; a scratch task owns them until then */
  io_task *j = new_io(L, run_video_write, "video.writer", path);
  write_opts(L, 2, j, "video.writer");
  shared_writer *s = calloc(1, sizeof *s);
  if (!s) return luaL_error(L, "out of memory");
  zoe_err e = {0};
  if (!(s->w = zoe_video_writer_open(path, &j->o, &e))) {
    free(s);
    return lz_error(L, &e);
  }
  atomic_init(&s->refs, 1);
  atomic_init(&s->busy, 0);
  b->s = s;
  lua_settop(L, 3); /* the box */
  return 1;
}

/* w:write(chunk): (C, t, H, W) f32 or (t, H, W, C) u8 */
static int w_write(lua_State *L) {
  shared_writer *s = check_writer(L);
  zoe_tensor *chunk = lz_checktensor(L, 2);
  lua_settop(L, 2);
  stream_task *k = LZ_TASK_NEW(L, stream_task, run_stream, "video.write");
  atomic_fetch_add(&s->refs, 1);
  k->s = s;
  k->base.cleanup = stream_release;
  k->chunk = lz_task_hold(L, &k->base, chunk);
  k->base.cost = (double)zoe_numel(chunk) * ENCODE_COST_PER_VALUE;
  atomic_store(&s->busy, 1);
  return lz_task_finish(L, &k->base); /* the task is on the top */
}

/* w:close(): finish and rename the file; raises if that fails (the file is then removed) */
static int w_close(lua_State *L) {
  shared_writer *s = check_writer(L);
  writer_box *b = lua_touserdata(L, 1);
  lua_settop(L, 1);
  stream_task *k = LZ_TASK_NEW(L, stream_task, run_stream, "video.close");
  k->s = s; /* the box's reference moves to the task */
  k->base.cleanup = stream_release;
  b->s = NULL;
  k->base.cost = CLOSE_COST;
  atomic_store(&s->busy, 1);
  return lz_task_finish(L, &k->base);
}

/* w:abort(): drop what was written */
static int w_abort(lua_State *L) {
  writer_box *b = luaL_checkudata(L, 1, LZ_VIDEO_WRITER);
  if (b->s && atomic_load(&b->s->busy)) return luaL_error(L, "video writer: a write is still running");
  shared_drop(b->s);
  b->s = NULL;
  return 0;
}

/* __close(w, err): on an error exit drop the file; on a normal exit finish it (inline) */
static int w_toclose(lua_State *L) {
  writer_box *b = luaL_checkudata(L, 1, LZ_VIDEO_WRITER);
  if (!b->s || !lua_isnil(L, 2)) return w_abort(L);
  if (atomic_load(&b->s->busy)) return luaL_error(L, "video writer: a write is still running");
  shared_writer *s = b->s;
  b->s = NULL;
  zoe_err e = {0};
  int rc = zoe_video_writer_close(s->w, &e);
  s->w = NULL;
  shared_release(s);
  return rc ? lz_error(L, &e) : 0;
}

static int w_gc(lua_State *L) {
  writer_box *b = luaL_checkudata(L, 1, LZ_VIDEO_WRITER);
  shared_drop(b->s); /* a running task keeps its own reference */
  b->s = NULL;
  return 0;
}

static int w_frames(lua_State *L) {
  writer_box *b = luaL_checkudata(L, 1, LZ_VIDEO_WRITER);
  lua_pushinteger(L, b->s && b->s->w ? zoe_video_writer_frames(b->s->w) : 0);
  return 1;
}

static int w_tostring(lua_State *L) {
  writer_box *b = luaL_checkudata(L, 1, LZ_VIDEO_WRITER);
  if (!b->s || !b->s->w) lua_pushliteral(L, "zoe.VideoWriter (closed)");
  else
    lua_pushfstring(L, "zoe.VideoWriter '%s' (%d frames)", zoe_video_writer_path(b->s->w),
                    (int)zoe_video_writer_frames(b->s->w));
  return 1;
}

static const luaL_Reg writer_methods[] = {
  {"write", w_write}, {"close", w_close}, {"abort", w_abort}, {"frames", w_frames}, {NULL, NULL},
};

static const luaL_Reg writer_meta[] = {
  {"__gc", w_gc}, {"__close", w_toclose}, {"__tostring", w_tostring}, {"__index", NULL}, {NULL, NULL},
};

static const luaL_Reg video_funcs[] = {
  {"write", v_write}, {"read", v_read}, {"info", v_info}, {"writer", v_writer},
  {"contact_sheet", v_contact_sheet}, {NULL, NULL},
};

static const luaL_Reg image_funcs[] = {
  {"read", i_read}, {"write", i_write}, {NULL, NULL},
};

int lz_open_video(lua_State *L) {
  luaL_newmetatable(L, LZ_VIDEO_WRITER);
  luaL_setfuncs(L, writer_meta, 0);
  luaL_newlib(L, writer_methods);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, LZ_VIDEO_WRITER);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_newlib(L, video_funcs);
  return 1;
}

int lz_open_image(lua_State *L) {
  luaL_newlib(L, image_funcs);
  return 1;
}
