/*
** tok_util.c: the tokenizer's containers: growable strings, split lists, a byte
** trie for common-prefix search, and a string -> index hash map.
*/
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

int tk_add(tk_str *s, const char *p, size_t n) {
  if (s->n + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 64;
    while (cap < s->n + n + 1) cap *= 2;
    char *np = realloc(s->p, cap);
    if (!np) return ZOE_ENOMEM;
    s->p = np;
    s->cap = cap;
  }
  if (n) memcpy(s->p + s->n, p, n);
  s->n += n;
  s->p[s->n] = '\0';
  return 0;
}

void tk_str_free(tk_str *s) {
  free(s->p);
  s->p = NULL;
  s->n = s->cap = 0;
}

int tk_splits_add(tk_splits *s, const char *p, size_t n, int32_t id, int first) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 16;
    tk_split *nv = realloc(s->v, cap * sizeof *nv);
    if (!nv) return ZOE_ENOMEM;
    s->v = nv;
    s->cap = cap;
  }
  char *c = malloc(n + 1);
  if (!c) return ZOE_ENOMEM;
  if (n) memcpy(c, p, n);
  c[n] = '\0';
  s->v[s->n++] = (tk_split){c, n, id, first};
  return 0;
}

void tk_splits_free(tk_splits *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i].p);
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

/* ---- trie ---- */

typedef struct entry {
  const unsigned char *s;
  size_t len;
  int32_t id;
  size_t order;
} entry;

static int cmp_entry(const void *a, const void *b) {
  const entry *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* A node to fill: the sorted entries [lo, hi) all share its 'depth' first bytes. */
typedef struct pending {
  size_t node, lo, hi, depth;
} pending;

int tk_trie_build(tk_trie *t, const char *const *strs, const size_t *lens, const int32_t *ids,
                  size_t count, zoe_err *e) {
  memset(t, 0, sizeof *t);
  entry *en = malloc((count ? count : 1) * sizeof *en);
  size_t cap = 1024, qcap = 1024, qhead = 0, qtail = 0;
  t->nodes = malloc(cap * sizeof *t->nodes);
  pending *q = malloc(qcap * sizeof *q);
  int rc = 0;
  if (!en || !t->nodes || !q) {
    rc = zoe_errf(e, ZOE_ENOMEM, "tokenizer: out of memory building the vocabulary trie");
    goto done;
  }
  size_t m = 0;
  for (size_t i = 0; i < count; i++)
    if (lens[i] > 0) en[m++] = (entry){(const unsigned char *)strs[i], lens[i], ids[i], i};
  qsort(en, m, sizeof *en, cmp_entry);
  t->nodes[0] = (tk_trie_node){0, 0, 0, -1};
  t->n = 1;
  q[qtail++] = (pending){0, 0, m, 0};
  while (qhead < qtail) { /* breadth first: each node's children are made together */
    pending p = q[qhead++];
    size_t lo = p.lo;
    while (lo < p.hi && en[lo].len == p.depth) t->nodes[p.node].id = en[lo++].id; /* last repeat wins */
    size_t k = 0;
    for (size_t i = lo; i < p.hi; i++)
      if (i == lo || en[i].s[p.depth] != en[i - 1].s[p.depth]) k++;
    if (k == 0) continue;
    if (t->n + k > cap || qtail + k > qcap) {
      while (t->n + k > cap) cap *= 2;
      while (qtail + k > qcap) qcap *= 2;
      tk_trie_node *nn = realloc(t->nodes, cap * sizeof *nn);
      if (nn) t->nodes = nn;
      pending *nq = nn ? realloc(q, qcap * sizeof *nq) : NULL;
      if (!nq) {
        rc = zoe_errf(e, ZOE_ENOMEM, "tokenizer: out of memory building the vocabulary trie");
        goto done;
      }
      q = nq;
    }
    t->nodes[p.node].child = (uint32_t)t->n;
    t->nodes[p.node].nchild = (uint32_t)k;
    for (size_t i = lo; i < p.hi;) {
      size_t j = i;
      unsigned char c = en[i].s[p.depth];
      while (j < p.hi && en[j].s[p.depth] == c) j++;
      t->nodes[t->n] = (tk_trie_node){0, 0, c, -1};
      q[qtail++] = (pending){t->n, i, j, p.depth + 1};
      t->n++;
      i = j;
    }
  }
done:
  free(en);
  free(q);
  if (rc) tk_trie_free(t);
  return rc;
}

void tk_trie_free(tk_trie *t) {
  free(t->nodes);
  t->nodes = NULL;
  t->n = 0;
}

long tk_trie_child(const tk_trie *t, size_t node, unsigned char c) {
  const tk_trie_node *nd = &t->nodes[node];
  size_t lo = nd->child, hi = nd->child + nd->nchild;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (t->nodes[mid].label < c) lo = mid + 1;
    else hi = mid;
  }
  return lo < nd->child + nd->nchild && t->nodes[lo].label == c ? (long)lo : -1;
}

size_t tk_trie_longest(const tk_trie *t, const char *s, size_t n) {
  size_t best = 0;
  long node = 0;
  for (size_t k = 0; t->nodes && k < n && (node = tk_trie_child(t, (size_t)node, (unsigned char)s[k])) >= 0; k++)
    if (t->nodes[node].id >= 0) best = k + 1;
  return best;
}

/* ---- map ---- */

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

int tk_map_build(tk_map *m, const char *const *keys, const size_t *lens, size_t count, zoe_err *e) {
  m->cap = 16;
  while (m->cap < 2 * count) m->cap *= 2;
  m->keys = keys;
  m->lens = lens;
  m->slots = calloc(m->cap, sizeof *m->slots);
  if (!m->slots || count >= UINT32_MAX) return zoe_errf(e, ZOE_ENOMEM, "tokenizer: out of memory");
  for (size_t i = 0; i < count; i++) {
    if (!keys[i]) continue; /* a hole in the ids */
    size_t k = hash(keys[i], lens[i]) & (m->cap - 1);
    while (m->slots[k]) {
      size_t o = m->slots[k] - 1;
      if (lens[o] == lens[i] && memcmp(keys[o], keys[i], lens[i]) == 0) break; /* a repeat: the last wins */
      k = (k + 1) & (m->cap - 1);
    }
    m->slots[k] = (uint32_t)(i + 1);
  }
  return 0;
}

long tk_map_find(const tk_map *m, const char *s, size_t n) {
  if (!m->slots) return -1;
  size_t k = hash(s, n) & (m->cap - 1);
  while (m->slots[k]) {
    size_t o = m->slots[k] - 1;
    if (m->lens[o] == n && memcmp(m->keys[o], s, n) == 0) return (long)o;
    k = (k + 1) & (m->cap - 1);
  }
  return -1;
}

void tk_map_free(tk_map *m) {
  free(m->slots);
  m->slots = NULL;
}

const char *tk_json_type(const cJSON *j) {
  if (!j) return "missing";
  if (cJSON_IsNull(j)) return "null";
  if (cJSON_IsBool(j)) return "a boolean";
  if (cJSON_IsNumber(j)) return "a number";
  if (cJSON_IsString(j)) return "a string";
  if (cJSON_IsArray(j)) return "an array";
  if (cJSON_IsObject(j)) return "an object";
  return "invalid";
}
