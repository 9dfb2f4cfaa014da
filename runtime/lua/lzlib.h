/*
** lzlib.h: the openers of the parts of the zoe module, each in its own binding
** file (as lualib.h lists Lua's libraries); lzoe.c calls them from one table.
** An opener either pushes its module table (zoe.NAME) and returns 1, or sets its
** functions into the zoe table on the top of the stack and returns 0.
*/
#ifndef LZLIB_H
#define LZLIB_H

#include <lua.h>

#include "../../include/zoe.h"

/* modules: zoe.tensor, zoe.nn, zoe.video, zoe.image, zoe.json, zoe.hiredis */
int lz_open_tensor(lua_State *L); /* ltensor.c */
int lz_open_nn(lua_State *L);     /* lnn.c */
int lz_open_video(lua_State *L);  /* lvideo.c */
int lz_open_image(lua_State *L);  /* lvideo.c */
int lz_open_json(lua_State *L);   /* ljson.c */
int lz_open_hiredis(lua_State *L); /* lhiredis.c: an asynchronous Redis connection on the loop */
int lz_open_http(lua_State *L);   /* lhttp.c: listen (an HTTP server on the loop) */

/* functions in the zoe table itself */
int lz_open_runtime(lua_State *L);   /* lruntime.c: version, mem, threads, precision, gemm_backend */
int lz_open_weights(lua_State *L);   /* lweights.c: load, save */
int lz_open_gguf(lua_State *L);      /* lgguf.c: gguf_writer */
int lz_open_lora(lua_State *L);      /* llora.c: lora_merge, lora_lowrank */
int lz_open_tokenizer(lua_State *L); /* ltokenizer.c: tokenizer */
int lz_open_hash(lua_State *L);      /* lhash.c: hash, hash_file */
int lz_open_pages(lua_State *L);     /* lpages.c: drop_pages */
int lz_open_sandbox(lua_State *L);   /* lsandbox.c: memory_limited */
int lz_open_loop(lua_State *L);      /* lloop.c: sleep, await, run, uv, ... (first of the loop's) */
int lz_open_job(lua_State *L);       /* ljob.c: spawn, jobs, current, and zoe.Job */
int lz_open_offload(lua_State *L);   /* loffload.c: the offload hook; offload_us, _rates, _stats */
int lz_open_progress(lua_State *L);  /* lprogress.c: progress */
int lz_open_coroutines(lua_State *L); /* lcoro.c: coroutine.resume, wrap, close for jobs (globals) */

/* the module itself (lzoe.c): the C core, and stock lua5.4's entry (zoe.so exports these) */
ZOE_API int luaopen_zoe_core(lua_State *L);
ZOE_API int luaopen_zoe(lua_State *L);

#endif
