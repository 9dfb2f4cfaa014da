/*
** tok_model.c: the models. Unigram follows the library's encode_optimized: a Viterbi
** pass over byte positions (advancing by characters), every vocabulary piece found by
** common-prefix search as an edge scored by its log probability, an unknown edge of
** one character scored min_score - 10 where no piece covers that character alone,
** ties kept by the first edge found; then consecutive unknowns are fused into one
** token, which byte_fallback (when every <0xXX> piece exists) spells as bytes.
** WordLevel looks each piece up whole, else its unk_token.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"
#include "unicode.h"

#define UNK_PENALTY 10.0

static int set_token(tk_model *m, size_t id, const char *s, const char *where, zoe_err *e) {
  size_t n = strlen(s);
  if (n + 1 > m->blob_cap - m->blob_used) return zoe_errf(e, ZOE_EFORMAT, "%s: vocabulary changed size", where);
  m->tokens[id] = m->blob + m->blob_used;
  m->blob_used += n + 1;
  memcpy(m->tokens[id], s, n + 1);
  m->lens[id] = n;
  if (zoe_utf8_check(s, n) != n)
    return zoe_errf(e, ZOE_EFORMAT, "%s: vocabulary entry %zu is not UTF-8", where, id);
  return 0;
}

/* Room for n tokens of 'bytes' bytes in all (NULs included): one block, not 256k small ones. */
static int alloc_vocab(tk_model *m, size_t n, size_t bytes, int scores, const char *where, zoe_err *e) {
  m->size = n;
  m->blob_cap = bytes ? bytes : 1;
  m->blob = malloc(m->blob_cap);
  m->tokens = calloc(n ? n : 1, sizeof *m->tokens);
  m->lens = calloc(n ? n : 1, sizeof *m->lens);
  m->scores = scores ? calloc(n ? n : 1, sizeof *m->scores) : NULL;
  if (!m->blob || !m->tokens || !m->lens || (scores && !m->scores)) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  return 0;
}

static int parse_unigram(const cJSON *j, tk_model *m, const char *where, zoe_err *e) {
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(j, "vocab");
  const cJSON *unk = cJSON_GetObjectItemCaseSensitive(j, "unk_id");
  const cJSON *bf = cJSON_GetObjectItemCaseSensitive(j, "byte_fallback");
  if (!cJSON_IsArray(vocab))
    return zoe_errf(e, ZOE_EFORMAT, "%s: Unigram \"vocab\" is %s, not an array of [piece, score]", where,
                    tk_json_type(vocab));
  m->kind = TM_UNIGRAM;
  size_t bytes = 0, i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, vocab) {
    const cJSON *piece = cJSON_GetArrayItem(c, 0);
    if (cJSON_IsString(piece)) bytes += strlen(piece->valuestring) + 1;
  }
  int rc = alloc_vocab(m, (size_t)cJSON_GetArraySize(vocab), bytes, 1, where, e);
  if (rc) return rc;
  m->min_score = 1e300;
  cJSON_ArrayForEach(c, vocab) {
    const cJSON *piece = cJSON_GetArrayItem(c, 0), *score = cJSON_GetArrayItem(c, 1);
    if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 2 || !cJSON_IsString(piece) || !cJSON_IsNumber(score))
      return zoe_errf(e, ZOE_EFORMAT, "%s: Unigram vocab entry %zu is not a [piece, score] pair", where, i);
    if ((rc = set_token(m, i, piece->valuestring, where, e))) return rc;
    m->scores[i] = score->valuedouble;
    if (m->scores[i] < m->min_score) m->min_score = m->scores[i];
    i++;
  }
  m->unk_id = -1;
  if (unk && !cJSON_IsNull(unk)) {
    if (!cJSON_IsNumber(unk) || unk->valuedouble < 0 || unk->valuedouble >= (double)m->size ||
        unk->valuedouble != (double)(int32_t)unk->valuedouble)
      return zoe_errf(e, ZOE_EFORMAT, "%s: Unigram unk_id is not an id in the vocabulary (%zu entries)", where, m->size);
    m->unk_id = (int32_t)unk->valuedouble;
  }
  if (bf && !cJSON_IsNull(bf) && !cJSON_IsBool(bf))
    return zoe_errf(e, ZOE_EFORMAT, "%s: Unigram byte_fallback is %s, not a boolean", where, tk_json_type(bf));
  m->byte_fallback = cJSON_IsTrue(bf);
  int32_t *ids = malloc((m->size ? m->size : 1) * sizeof *ids);
  if (!ids) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  for (size_t k = 0; k < m->size; k++) ids[k] = (int32_t)k;
  rc = tk_trie_build(&m->trie, (const char *const *)m->tokens, m->lens, ids, m->size, e);
  free(ids);
  return rc;
}

static int parse_wordlevel(const cJSON *j, tk_model *m, const char *where, zoe_err *e) {
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(j, "vocab");
  const cJSON *unk = cJSON_GetObjectItemCaseSensitive(j, "unk_token");
  if (!cJSON_IsObject(vocab))
    return zoe_errf(e, ZOE_EFORMAT, "%s: WordLevel \"vocab\" is %s, not an object of token: id", where,
                    tk_json_type(vocab));
  m->kind = TM_WORDLEVEL;
  double max = -1;
  const cJSON *c;
  cJSON_ArrayForEach(c, vocab) {
    if (!cJSON_IsNumber(c) || c->valuedouble < 0 || c->valuedouble > 1e8 || c->valuedouble != (double)(int32_t)c->valuedouble)
      return zoe_errf(e, ZOE_EFORMAT, "%s: WordLevel id of '%.40s' is not an id", where, c->string);
    if (c->valuedouble > max) max = c->valuedouble;
  }
  size_t bytes = 0;
  cJSON_ArrayForEach(c, vocab) bytes += strlen(c->string) + 1;
  int rc = alloc_vocab(m, (size_t)(max + 1), bytes, 0, where, e);
  if (rc) return rc;
  cJSON_ArrayForEach(c, vocab) {
    size_t id = (size_t)c->valuedouble;
    if (m->tokens[id]) return zoe_errf(e, ZOE_EFORMAT, "%s: WordLevel id %zu is given twice", where, id);
    if ((rc = set_token(m, id, c->string, where, e))) return rc;
  }
  m->unk_id = -1;
  if (!cJSON_IsString(unk))
    return zoe_errf(e, ZOE_EFORMAT, "%s: WordLevel \"unk_token\" is %s, not a string", where, tk_json_type(unk));
  if (tk_map_build(&m->map, (const char *const *)m->tokens, m->lens, m->size, e)) return ZOE_ENOMEM;
  m->unk_id = tk_model_token_to_id(m, unk->valuestring, strlen(unk->valuestring));
  return 0;
}

int tk_model_parse(const cJSON *j, tk_model *m, const char *where, zoe_err *e) {
  memset(m, 0, sizeof *m);
  for (int b = 0; b < 256; b++) m->byte_ids[b] = -1;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
  if (!cJSON_IsObject(j)) return zoe_errf(e, ZOE_EFORMAT, "%s: \"model\" is %s, not an object", where, tk_json_type(j));
  int rc;
  if (cJSON_IsString(type) && strcmp(type->valuestring, "Unigram") == 0) rc = parse_unigram(j, m, where, e);
  else if (cJSON_IsString(type) && strcmp(type->valuestring, "WordLevel") == 0) rc = parse_wordlevel(j, m, where, e);
  else if (!cJSON_IsString(type)) return zoe_errf(e, ZOE_EFORMAT, "%s: the model has no \"type\" string", where);
  else return zoe_errf(e, ZOE_ENOTSUP, "%s: model '%.40s' is not supported (Unigram, WordLevel)", where, type->valuestring);
  if (rc) return rc;
  if (m->kind == TM_UNIGRAM && tk_map_build(&m->map, (const char *const *)m->tokens, m->lens, m->size, e))
    return ZOE_ENOMEM;
  char name[8];
  for (int b = 0; b < 256; b++) {
    snprintf(name, sizeof name, "<0x%02X>", b);
    m->byte_ids[b] = tk_model_token_to_id(m, name, 6);
  }
  return 0;
}

void tk_model_free(tk_model *m) {
  free(m->types);
  free(m->blob);
  free(m->tokens);
  free(m->lens);
  free(m->scores);
  tk_trie_free(&m->trie);
  tk_map_free(&m->map);
  memset(m, 0, sizeof *m);
}

int32_t tk_model_token_to_id(const tk_model *m, const char *s, size_t n) {
  long i = tk_map_find(&m->map, s, n);
  return (int32_t)i;
}

/* ---- encoding ---- */

static int push_id(int32_t **ids, size_t *n, size_t *cap, int32_t id) {
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 64;
    int32_t *ni = realloc(*ids, c * sizeof *ni);
    if (!ni) return ZOE_ENOMEM;
    *ids = ni;
    *cap = c;
  }
  (*ids)[(*n)++] = id;
  return 0;
}

/* One token of the best path (a piece, or fused unknowns): its id(s). 'lookup': by its text. */
static int emit(const tk_model *m, const char *s, size_t n, int lookup, int32_t **ids, size_t *nids, size_t *cap,
                zoe_err *e) {
  int32_t id = lookup ? tk_model_token_to_id(m, s, n) : -1;
  if (id >= 0) return push_id(ids, nids, cap, id);
  if (m->byte_fallback) {
    size_t k = 0;
    while (k < n && m->byte_ids[(unsigned char)s[k]] >= 0) k++;
    if (k == n) {
      for (k = 0; k < n; k++)
        if (push_id(ids, nids, cap, m->byte_ids[(unsigned char)s[k]])) return ZOE_ENOMEM;
      return 0;
    }
  }
  if (m->unk_id < 0)
    return zoe_errf(e, ZOE_EINVAL, "tokenizer: '%.*s' is not in the vocabulary and the model has no unknown token",
                    (int)(n > 40 ? 40 : n), s);
  return push_id(ids, nids, cap, m->unk_id);
}

typedef struct best {
  double score;
  long start; /* -1: not reached */
  int32_t id;
} best;

/*
** A piece's edge score. sentencepiece adds a piece's float score to the float path
** score in double and keeps the sum as a float, and gives a user-defined piece
** length * max_score - 0.1 so that it always wins (unigram_model.cc EncodeOptimized).
*/
static double edge_score(const tk_model *m, int32_t id, size_t len, double here) {
  if (!m->spm) return here + m->scores[id];
  double score = m->types[id] == TK_SPM_USER ? (double)len * m->max_score - 0.1 : m->scores[id];
  return here + score;
}

static int emit_ids(const tk_model *m, const char *s, const best *b, size_t n, int32_t **ids, size_t *nids,
                    size_t *cap, zoe_err *e);

static int unigram(const tk_model *m, const char *s, size_t n, int32_t **ids, size_t *nids, size_t *cap, zoe_err *e) {
  best *b = malloc((n + 1) * sizeof *b);
  if (!b) return zoe_errf(e, ZOE_ENOMEM, "tokenizer: out of memory");
  for (size_t i = 0; i <= n; i++) b[i] = (best){0, -1, 0};
  double unk_score = m->spm ? (double)((float)m->min_score - 10.0f) : m->min_score - UNK_PENALTY;
  int rc = 0;
  for (size_t at = 0; at < n;) {
    uint32_t c;
    int l = zoe_utf8_decode(s + at, n - at, &c);
    size_t mblen = l > 0 ? (size_t)l : 1;
    double here = b[at].score;
    int single = 0;
    long node = 0;
    for (size_t k = at; k < n && (node = tk_trie_child(&m->trie, (size_t)node, (unsigned char)s[k])) >= 0; k++) {
      int32_t id = m->trie.nodes[node].id; /* common prefix search: walk the trie along s */
      if (id < 0) continue;
      size_t end = k + 1;
      double cand = edge_score(m, id, end - at, here);
      if (b[end].start < 0 || cand > b[end].score) b[end] = (best){m->spm ? (double)(float)cand : cand, (long)at, id};
      if (end - at == mblen) single = 1;
    }
    if (!single) {
      if (m->unk_id < 0) {
        rc = zoe_errf(e, ZOE_EINVAL, "tokenizer: no piece covers '%.*s' and the model has no unk_id", (int)mblen, s + at);
        break;
      }
      size_t end = at + mblen;
      double cand = m->spm ? (double)((float)here + (float)unk_score) : here + unk_score;
      if (b[end].start < 0 || cand > b[end].score) b[end] = (best){cand, (long)at, m->unk_id};
    }
    at += mblen;
  }
  if (!rc) rc = emit_ids(m, s, b, n, ids, nids, cap, e);
  free(b);
  return rc;
}

/*
** Backtrack the best path and emit its tokens, fusing consecutive unknowns. The
** library looks each token's text up (a fused unknown may spell a piece); sentencepiece
** emits the path's ids, and an unknown as its unk id or, with byte fallback, its bytes.
*/
static int emit_ids(const tk_model *m, const char *s, const best *b, size_t n, int32_t **ids, size_t *nids,
                    size_t *cap, zoe_err *e) {
  size_t *cuts = malloc((n + 1) * sizeof *cuts);
  if (!cuts) return zoe_errf(e, ZOE_ENOMEM, "tokenizer: out of memory");
  size_t nc = 0;
  for (size_t end = n; end > 0;) { /* token ends, right to left */
    size_t start = (size_t)b[end].start;
    int unk = b[end].id == m->unk_id;
    if (!(unk && nc > 0 && b[cuts[nc - 1]].id == m->unk_id)) cuts[nc++] = end; /* else: extend the fused unk */
    end = start;
  }
  int rc = 0;
  size_t prev = 0;
  for (size_t k = nc; !rc && k-- > 0;) {
    int32_t id = b[cuts[k]].id;
    if (m->spm && id != m->unk_id) rc = push_id(ids, nids, cap, id);
    else rc = emit(m, s + prev, cuts[k] - prev, !m->spm, ids, nids, cap, e);
    prev = cuts[k];
  }
  free(cuts);
  return rc;
}

int tk_model_tokenize(const tk_model *m, const char *s, size_t n, int32_t **ids, size_t *nids, size_t *cap, zoe_err *e) {
  if (n == 0) return 0;
  if (m->kind == TM_UNIGRAM) return unigram(m, s, n, ids, nids, cap, e);
  int32_t id = tk_model_token_to_id(m, s, n);
  if (id < 0) id = m->unk_id;
  if (id < 0) return zoe_errf(e, ZOE_EINVAL, "tokenizer: '%.*s' is not in the vocabulary and unk_token is not either",
                              (int)(n > 40 ? 40 : n), s);
  return push_id(ids, nids, cap, id);
}
