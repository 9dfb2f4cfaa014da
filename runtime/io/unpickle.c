/*
** unpickle.c: the restricted pickle machine (see unpickle.h for what it accepts).
** Opcodes follow CPython's Lib/pickle.py. Every read is bounds-checked; values
** live in an arena, so shared (memoized) and even cyclic values free cleanly.
*/
#include "unpickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct machine {
  const unsigned char *p, *end, *start;
  pk_arena *arena;
  pk_value **stack;
  size_t sp, scap;
  size_t *marks;
  size_t nmarks, mcap;
  pk_value **memo;
  size_t nmemo, nset; /* table size; entries set (MEMOIZE's next index) */
  zoe_err *e;
} machine;

static size_t pos(const machine *m) { return (size_t)(m->p - m->start); }

static int fail(machine *m, const char *what) {
  return zoe_errf(m->e, ZOE_EFORMAT, "data.pkl: %s (at byte %zu)", what, pos(m));
}

static pk_value *new_value(machine *m, pk_kind kind) {
  pk_value *v = calloc(1, sizeof *v);
  if (!v) {
    zoe_errf(m->e, ZOE_ENOMEM, "data.pkl: out of memory");
    return NULL;
  }
  v->kind = kind;
  v->next_alloc = m->arena->all;
  m->arena->all = v;
  return v;
}

void pk_arena_free(pk_arena *arena) {
  pk_value *v = arena->all;
  while (v) {
    pk_value *next = v->next_alloc;
    free(v->items);
    free(v);
    v = next;
  }
  arena->all = NULL;
}

/* ---- stack ---- */

static int push(machine *m, pk_value *v) {
  if (!v) return ZOE_ENOMEM;
  if (m->sp == m->scap) {
    size_t cap = m->scap ? 2 * m->scap : 64;
    pk_value **ns = realloc(m->stack, cap * sizeof *ns);
    if (!ns) return zoe_errf(m->e, ZOE_ENOMEM, "data.pkl: out of memory");
    m->stack = ns;
    m->scap = cap;
  }
  m->stack[m->sp++] = v;
  return 0;
}

static pk_value *pop(machine *m) {
  size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
  if (m->sp <= floor) {
    fail(m, "stack underflow");
    return NULL;
  }
  return m->stack[--m->sp];
}

static pk_value *top(machine *m) {
  size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
  if (m->sp <= floor) {
    fail(m, "stack underflow");
    return NULL;
  }
  return m->stack[m->sp - 1];
}

/* Pop back to the last MARK; the items are stack[*base .. sp). */
static int pop_mark(machine *m, size_t *base) {
  if (m->nmarks == 0) return fail(m, "no MARK to pop to");
  *base = m->marks[--m->nmarks];
  return 0;
}

static int append_item(machine *m, pk_value *c, pk_value *v) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 8;
    pk_value **ni = realloc(c->items, cap * sizeof *ni);
    if (!ni) return zoe_errf(m->e, ZOE_ENOMEM, "data.pkl: out of memory");
    c->items = ni;
    c->cap = cap;
  }
  c->items[c->n++] = v;
  return 0;
}

/* A tuple or list of stack[base .. sp), which is popped. */
static int collect(machine *m, pk_kind kind, size_t base) {
  pk_value *c = new_value(m, kind);
  if (!c) return ZOE_ENOMEM;
  for (size_t i = base; i < m->sp; i++)
    if (append_item(m, c, m->stack[i])) return ZOE_ENOMEM;
  m->sp = base;
  return push(m, c);
}

/* ---- reading operands ---- */

static int need(machine *m, size_t n) {
  return (size_t)(m->end - m->p) < n ? fail(m, "truncated") : 0;
}

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static int read_le(machine *m, int n, uint64_t *out) {
  if (need(m, (size_t)n)) return ZOE_EFORMAT;
  *out = le(m->p, n);
  m->p += n;
  return 0;
}

static int push_str(machine *m, int lenbytes) {
  uint64_t n;
  if (read_le(m, lenbytes, &n)) return ZOE_EFORMAT;
  if (n > (uint64_t)(m->end - m->p)) return fail(m, "string runs past the end");
  pk_value *v = new_value(m, PK_STR);
  if (!v) return ZOE_ENOMEM;
  v->s = (const char *)m->p;
  v->len = (size_t)n;
  m->p += n;
  return push(m, v);
}

static int push_int(machine *m, int64_t i) {
  pk_value *v = new_value(m, PK_INT);
  if (v) v->i = i;
  return push(m, v);
}

/* A line ending in '\n' (GLOBAL's operands). */
static int read_line(machine *m, const char **s, size_t *len) {
  const unsigned char *nl = memchr(m->p, '\n', (size_t)(m->end - m->p));
  if (!nl) return fail(m, "GLOBAL operand without a newline");
  *s = (const char *)m->p;
  *len = (size_t)(nl - m->p);
  m->p = nl + 1;
  return 0;
}

/* ---- the allowed globals ---- */

static const struct {
  const char *name;
  int dtype;
} storage_types[] = {
  {"FloatStorage", ZOE_F32}, {"HalfStorage", ZOE_F16}, {"BFloat16Storage", ZOE_BF16},
  {"IntStorage", ZOE_I32},   {"LongStorage", ZOE_I64}, {"ByteStorage", ZOE_U8},
  {"BoolStorage", ZOE_BOOL}, {"DoubleStorage", -1},    {"ShortStorage", -1},
  {"CharStorage", -1},       {"ComplexFloatStorage", -1}, {"ComplexDoubleStorage", -1},
};

static int eq(const char *s, size_t n, const char *lit) { return strlen(lit) == n && memcmp(s, lit, n) == 0; }

static int push_global(machine *m, const char *mod, size_t ml, const char *name, size_t nl) {
  pk_value *g = new_value(m, PK_GLOBAL);
  if (!g) return ZOE_ENOMEM;
  if (eq(mod, ml, "collections") && eq(name, nl, "OrderedDict")) g->global = PK_ORDERED_DICT;
  else if (eq(mod, ml, "torch._utils") && eq(name, nl, "_rebuild_tensor_v2")) g->global = PK_REBUILD_TENSOR_V2;
  else if (eq(mod, ml, "torch._utils") && eq(name, nl, "_rebuild_parameter")) g->global = PK_REBUILD_PARAMETER;
  else {
    size_t k = 0, nt = sizeof storage_types / sizeof storage_types[0];
    while (k < nt && !(eq(mod, ml, "torch") && eq(name, nl, storage_types[k].name))) k++;
    if (k == nt)
      return zoe_errf(m->e, ZOE_EFORMAT, "data.pkl: refusing global '%.*s.%.*s' (at byte %zu): a "
                      "checkpoint may only name collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
                      "torch._utils._rebuild_parameter and torch storage types; a pickle can run code",
                      (int)(ml > 64 ? 64 : ml), mod, (int)(nl > 64 ? 64 : nl), name, pos(m));
    g->global = PK_STORAGE_TYPE;
    g->type_name = storage_types[k].name;
    g->dtype = storage_types[k].dtype;
  }
  return push(m, g);
}

/* ---- calls (REDUCE) and persistent ids ---- */

static int int_tuple(const pk_value *t, int64_t *out, int *n) {
  if (!t || (t->kind != PK_TUPLE && t->kind != PK_LIST) || t->n > ZOE_MAX_DIMS) return -1;
  for (size_t i = 0; i < t->n; i++) {
    if (t->items[i]->kind != PK_INT || t->items[i]->i < 0) return -1;
    out[i] = t->items[i]->i;
  }
  *n = (int)t->n;
  return 0;
}

static int rebuild_tensor(machine *m, const pk_value *args) {
  if (args->n != 6 && args->n != 7) return fail(m, "_rebuild_tensor_v2 expects 6 or 7 arguments");
  pk_value *st = args->items[0], *off = args->items[1];
  if (st->kind != PK_STORAGE) return fail(m, "_rebuild_tensor_v2: first argument is not a storage");
  if (off->kind != PK_INT || off->i < 0) return fail(m, "_rebuild_tensor_v2: bad storage offset");
  pk_value *t = new_value(m, PK_TENSOR);
  if (!t) return ZOE_ENOMEM;
  int ns = 0;
  if (int_tuple(args->items[2], t->shape, &t->ndim) || int_tuple(args->items[3], t->stride, &ns) ||
      ns != t->ndim)
    return fail(m, "_rebuild_tensor_v2: size and stride must be tuples of the same length (<= 8) "
                   "of non-negative integers");
  t->storage = st;
  t->offset = off->i;
  return push(m, t);
}

static int reduce(machine *m) {
  pk_value *args = pop(m), *fn = pop(m);
  if (!args || !fn) return ZOE_EFORMAT;
  if (fn->kind != PK_GLOBAL || args->kind != PK_TUPLE)
    return fail(m, "REDUCE of something that is not an allowed callable with a tuple of arguments");
  switch (fn->global) {
    case PK_ORDERED_DICT:
      if (args->n != 0) return fail(m, "OrderedDict called with arguments");
      return push(m, new_value(m, PK_DICT));
    case PK_REBUILD_TENSOR_V2:
      return rebuild_tensor(m, args);
    case PK_REBUILD_PARAMETER:
      if (args->n < 1 || args->items[0]->kind != PK_TENSOR)
        return fail(m, "_rebuild_parameter without a tensor");
      return push(m, args->items[0]);
    default:
      return zoe_errf(m->e, ZOE_EFORMAT, "data.pkl: refusing to call storage type torch.%s (at byte %zu)",
                      fn->type_name, pos(m));
  }
}

/* ('storage', storage_type, key, location, numel) */
static int persistent_load(machine *m) {
  pk_value *pid = pop(m);
  if (!pid) return ZOE_EFORMAT;
  if (pid->kind != PK_TUPLE || pid->n != 5 || pid->items[0]->kind != PK_STR ||
      !eq(pid->items[0]->s, pid->items[0]->len, "storage") || pid->items[1]->kind != PK_GLOBAL ||
      pid->items[1]->global != PK_STORAGE_TYPE || pid->items[2]->kind != PK_STR ||
      pid->items[4]->kind != PK_INT || pid->items[4]->i < 0)
    return fail(m, "persistent id is not ('storage', type, key, location, numel)");
  pk_value *s = new_value(m, PK_STORAGE);
  if (!s) return ZOE_ENOMEM;
  s->type_name = pid->items[1]->type_name;
  s->dtype = pid->items[1]->dtype;
  s->s = pid->items[2]->s;
  s->len = pid->items[2]->len;
  s->i = pid->items[4]->i;
  return push(m, s);
}

/* ---- memo ---- */

static int memo_put(machine *m, uint64_t idx) {
  pk_value *v = top(m);
  if (!v) return ZOE_EFORMAT;
  /* a real pickler numbers memo entries 0, 1, 2, ...: bound the table by the input size */
  if (idx > (uint64_t)(m->end - m->start) + 1024) return fail(m, "memo index out of range");
  if (idx >= m->nmemo) {
    size_t n = (size_t)idx + 1 > 2 * m->nmemo ? (size_t)idx + 1 : 2 * m->nmemo;
    pk_value **nm = realloc(m->memo, n * sizeof *nm);
    if (!nm) return zoe_errf(m->e, ZOE_ENOMEM, "data.pkl: out of memory");
    memset(nm + m->nmemo, 0, (n - m->nmemo) * sizeof *nm);
    m->memo = nm;
    m->nmemo = n;
  }
  if (!m->memo[idx]) m->nset++;
  m->memo[idx] = v;
  return 0;
}

static int memo_get(machine *m, uint64_t idx) {
  if (idx >= m->nmemo || !m->memo[idx]) return fail(m, "memo entry read before it was written");
  return push(m, m->memo[idx]);
}

/* ---- the loop ---- */

static int set_items(machine *m, size_t base) {
  size_t n = m->sp - base;
  if (n % 2) return fail(m, "SETITEMS with an odd number of items");
  if (base == 0 || (m->nmarks && base <= m->marks[m->nmarks - 1]))
    return fail(m, "SETITEMS without a dict");
  pk_value *d = m->stack[base - 1];
  if (d->kind != PK_DICT) return fail(m, "SETITEMS on something that is not a dict");
  for (size_t i = base; i < m->sp; i++)
    if (append_item(m, d, m->stack[i])) return ZOE_ENOMEM;
  m->sp = base;
  return 0;
}

static int appends(machine *m, size_t base) {
  if (base == 0 || (m->nmarks && base <= m->marks[m->nmarks - 1])) return fail(m, "APPENDS without a list");
  pk_value *l = m->stack[base - 1];
  if (l->kind != PK_LIST) return fail(m, "APPENDS on something that is not a list");
  for (size_t i = base; i < m->sp; i++)
    if (append_item(m, l, m->stack[i])) return ZOE_ENOMEM;
  m->sp = base;
  return 0;
}

static int step(machine *m, int op, pk_value **result) {
  uint64_t u = 0;
  size_t base = 0;
  pk_value *a, *b, *v;
  switch (op) {
    case 0x80: /* PROTO */
      if (read_le(m, 1, &u)) return ZOE_EFORMAT;
      return u >= 2 && u <= 5 ? 0 : fail(m, "pickle protocol other than 2..5");
    case 0x95: return read_le(m, 8, &u); /* FRAME: a size hint */
    case '.': /* STOP */
      if (!(*result = pop(m))) return ZOE_EFORMAT;
      return 0;
    case '(': /* MARK */
      if (m->nmarks == m->mcap) {
        size_t cap = m->mcap ? 2 * m->mcap : 16;
        size_t *nm = realloc(m->marks, cap * sizeof *nm);
        if (!nm) return zoe_errf(m->e, ZOE_ENOMEM, "data.pkl: out of memory");
        m->marks = nm;
        m->mcap = cap;
      }
      m->marks[m->nmarks++] = m->sp;
      return 0;
    case '}': return push(m, new_value(m, PK_DICT));
    case ']': return push(m, new_value(m, PK_LIST));
    case ')': return push(m, new_value(m, PK_TUPLE));
    case 't': return pop_mark(m, &base) ? ZOE_EFORMAT : collect(m, PK_TUPLE, base);
    case 'l': return pop_mark(m, &base) ? ZOE_EFORMAT : collect(m, PK_LIST, base);
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
      size_t n = (size_t)(op - 0x84), floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
      if (m->sp < floor + n) return fail(m, "stack underflow");
      return collect(m, PK_TUPLE, m->sp - n);
    }
    case 'd': /* DICT */
      if (pop_mark(m, &base)) return ZOE_EFORMAT;
      if (push(m, new_value(m, PK_DICT))) return ZOE_ENOMEM;
      v = m->stack[--m->sp]; /* move the new dict below the items */
      memmove(m->stack + base + 1, m->stack + base, (m->sp - base) * sizeof *m->stack);
      m->stack[base] = v;
      m->sp++;
      return set_items(m, base + 1);
    case 's': /* SETITEM */
      if (!(b = pop(m)) || !(a = pop(m)) || !(v = top(m))) return ZOE_EFORMAT;
      if (v->kind != PK_DICT) return fail(m, "SETITEM on something that is not a dict");
      return append_item(m, v, a) || append_item(m, v, b) ? ZOE_ENOMEM : 0;
    case 'u': return pop_mark(m, &base) ? ZOE_EFORMAT : set_items(m, base);
    case 'a': /* APPEND */
      if (!(a = pop(m)) || !(v = top(m))) return ZOE_EFORMAT;
      if (v->kind != PK_LIST) return fail(m, "APPEND on something that is not a list");
      return append_item(m, v, a);
    case 'e': return pop_mark(m, &base) ? ZOE_EFORMAT : appends(m, base);
    case 'J': /* BININT */
      if (read_le(m, 4, &u)) return ZOE_EFORMAT;
      return push_int(m, (int32_t)(uint32_t)u);
    case 'K': return read_le(m, 1, &u) ? ZOE_EFORMAT : push_int(m, (int64_t)u);
    case 'M': return read_le(m, 2, &u) ? ZOE_EFORMAT : push_int(m, (int64_t)u);
    case 0x8a: { /* LONG1: little-endian two's complement */
      if (read_le(m, 1, &u)) return ZOE_EFORMAT;
      int n = (int)u;
      if (n > 8) return fail(m, "integer wider than 64 bits");
      if (need(m, (size_t)n)) return ZOE_EFORMAT;
      uint64_t x = le(m->p, n);
      if (n > 0 && n < 8 && (m->p[n - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * n);
      m->p += n;
      return push_int(m, (int64_t)x);
    }
    case 'G': { /* BINFLOAT: big-endian double */
      if (need(m, 8)) return ZOE_EFORMAT;
      uint64_t x = 0;
      for (int i = 0; i < 8; i++) x = x << 8 | m->p[i];
      m->p += 8;
      if (!(v = new_value(m, PK_FLOAT))) return ZOE_ENOMEM;
      memcpy(&v->f, &x, 8);
      return push(m, v);
    }
    case 'N': return push(m, new_value(m, PK_NONE));
    case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
      if (!(v = new_value(m, PK_BOOL))) return ZOE_ENOMEM;
      v->i = op == 0x88;
      return push(m, v);
    case 'X': case 'T': case 'B': return push_str(m, 4); /* BINUNICODE, BINSTRING, BINBYTES */
    case 0x8c: case 'U': case 'C': return push_str(m, 1); /* SHORT_ variants */
    case 0x8d: case 0x8e: return push_str(m, 8);          /* BINUNICODE8, BINBYTES8 */
    case 'c': { /* GLOBAL module\nname\n */
      const char *mod = NULL, *name = NULL;
      size_t ml = 0, nl = 0;
      if (read_line(m, &mod, &ml) || read_line(m, &name, &nl)) return ZOE_EFORMAT;
      return push_global(m, mod, ml, name, nl);
    }
    case 0x93: /* STACK_GLOBAL */
      if (!(b = pop(m)) || !(a = pop(m))) return ZOE_EFORMAT;
      if (a->kind != PK_STR || b->kind != PK_STR) return fail(m, "STACK_GLOBAL of non-strings");
      return push_global(m, a->s, a->len, b->s, b->len);
    case 'Q': return persistent_load(m); /* BINPERSID */
    case 'R': return reduce(m);
    case 'b': /* BUILD: only the attributes torch sets on a state dict (_metadata), ignored */
      if (!(a = pop(m)) || !(v = top(m))) return ZOE_EFORMAT;
      return v->kind == PK_DICT ? 0 : fail(m, "BUILD on something that is not a dict");
    case 'q': return read_le(m, 1, &u) ? ZOE_EFORMAT : memo_put(m, u);
    case 'r': return read_le(m, 4, &u) ? ZOE_EFORMAT : memo_put(m, u);
    case 0x94: return memo_put(m, m->nset);
    case 'h': return read_le(m, 1, &u) ? ZOE_EFORMAT : memo_get(m, u);
    case 'j': return read_le(m, 4, &u) ? ZOE_EFORMAT : memo_get(m, u);
    case '0': return pop(m) ? 0 : ZOE_EFORMAT;
    case '1': return pop_mark(m, &base) ? ZOE_EFORMAT : (m->sp = base, 0);
    case '2': return (v = top(m)) ? push(m, v) : ZOE_EFORMAT;
    default: {
      char what[96];
      snprintf(what, sizeof what, "opcode 0x%02x%s%c%s is not allowed in a checkpoint", op,
               op >= 32 && op < 127 ? " ('" : "", op >= 32 && op < 127 ? op : ' ',
               op >= 32 && op < 127 ? "')" : "");
      return zoe_errf(m->e, ZOE_EFORMAT, "data.pkl: %s (at byte %zu)", what, pos(m) - 1);
    }
  }
}

pk_value *pk_load(const unsigned char *data, size_t len, pk_arena *arena, zoe_err *e) {
  machine m = {.p = data, .end = data + len, .start = data, .arena = arena, .e = e};
  pk_value *result = NULL;
  int rc = 0;
  while (!rc && !result) {
    if (m.p >= m.end) {
      rc = fail(&m, "ends without STOP");
      break;
    }
    int op = *m.p++;
    rc = step(&m, op, &result);
  }
  free(m.stack);
  free(m.marks);
  free(m.memo);
  return rc ? NULL : result;
}
