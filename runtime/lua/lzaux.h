/*
** lzaux.h: the binding's auxiliary library, used by every binding file (as
** lauxlib is by Lua's libraries): tensors as userdata, errors, dims and shapes,
** dtypes, and options tables. Uses only Lua's public API and the core's headers.
** Tensors are userdata boxes holding one reference to a C tensor.
*/
#ifndef LZAUX_H
#define LZAUX_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>

#include "../core/tensor.h"

#define LZ_TENSOR "zoe.Tensor"

typedef struct lz_tensor_box {
  zoe_tensor *t;
} lz_tensor_box;

/* ---- tensors ---- */
zoe_tensor *lz_checktensor(lua_State *L, int arg);
zoe_tensor *lz_totensor(lua_State *L, int arg); /* NULL when not a tensor; raises when closed */
zoe_tensor *lz_opttensor(lua_State *L, int arg); /* NULL when absent or nil, else a tensor */
/* Push 't', taking over the caller's reference. Nudges the GC as C memory grows. */
void lz_pushtensor(lua_State *L, zoe_tensor *t);
/* Raise a Lua error with e's message (the 'where' prefix says which line). */
int lz_error(lua_State *L, const zoe_err *e);
/* Push or raise: 't' non-NULL is pushed, NULL raises 'e'. */
int lz_result(lua_State *L, zoe_tensor *t, const zoe_err *e);

/* A Lua dim (1-based, or negative from the end) as a 0-based C dim; raises when out of range. */
int lz_checkdim(lua_State *L, int arg, const zoe_tensor *t, const char *op, int extra);
/* A shape from a table {2,3} or from the integers at arg.. (returns ndim). */
int lz_checkshape(lua_State *L, int arg, int64_t *shape, const char *op);
/* Optional dtype name at 'arg' (string) or in table field 'dtype'. */
zoe_dtype lz_optdtype(lua_State *L, int arg, zoe_dtype def);
zoe_dtype lz_checkdtype(lua_State *L, int arg);

/* ---- options ---- */
/*
** A binding's table of named settings (or of weights by role) at 'arg'. lz_opts_check
** raises for a key that is not one of 'known' (NULL-terminated), naming the nearest:
**   attention: unknown option 'scael' (did you mean 'scale'?); known: bias, mask, out, scale
** An absent or nil 'arg' is an empty table; anything else but a table is an error.
** The getters read one key each (absent or nil gives the default) and raise, naming
** the key, for a value of the wrong type. A tensor stays owned by the table: hold it
** (lz_task_hold) before the table can go.
*/
typedef struct lz_opts {
  lua_State *L;
  int arg;        /* 0: no table */
  const char *op; /* for messages */
  const char *what; /* "option" or "weight" */
} lz_opts;

lz_opts lz_opts_check(lua_State *L, int arg, const char *op, const char *const known[]);
/* The same for a table of weights by role: "t5_layer: unknown weight 'nrom1' (...)". */
lz_opts lz_roles_check(lua_State *L, int arg, const char *op, const char *const known[]);
bool lz_opt_has(const lz_opts *o, const char *key);
double lz_opt_number(const lz_opts *o, const char *key, double def);
lua_Integer lz_opt_integer(const lz_opts *o, const char *key, lua_Integer def);
bool lz_opt_boolean(const lz_opts *o, const char *key, bool def);
const char *lz_opt_string(const lz_opts *o, const char *key, const char *def);
zoe_tensor *lz_opt_tensor(const lz_opts *o, const char *key); /* NULL when absent */
/* A tensor that must be there: "wan_block: the weights have no 'modulation'". */
zoe_tensor *lz_opt_need_tensor(const lz_opts *o, const char *key);
/*
** An integer, or a table of min..max integers, into out[]; returns how many (0 when
** absent). A single integer fills one entry.
*/
int lz_opt_ints(const lz_opts *o, const char *key, int64_t *out, int min, int max);
/*
** The table at 'key' as an lz_opts of its own, its keys checked against 'known'; 'op'
** names it in messages ("wan_block: self_attn"). It stays on the stack (its values are
** the caller's) until the binding returns. Absent: an empty one.
*/
lz_opts lz_opt_table(const lz_opts *o, const char *key, const char *op, const char *const known[]);

#endif
