/*
** spm.c: sentencepiece model files (spiece.model), read directly. The file is a
** ModelProto protobuf (sentencepiece_model.proto):
**   1 pieces (repeated SentencePiece: 1 piece, 2 score (float), 3 type)
**   2 trainer_spec (3 model_type, 24 treat_whitespace_as_suffix, 35 byte_fallback,
**     47 eos_piece, 48 pad_piece)
**   3 normalizer_spec (2 precompiled_charsmap, 3 add_dummy_prefix,
**     4 remove_extra_whitespaces, 5 escape_whitespaces)
**   4 self_test_data, 5 denormalizer_spec (not used for encoding)
** Unknown fields are skipped, as protobuf readers do; anything malformed (a field
** running past its message, a varint over 10 bytes, a group, a known field with the
** wrong wire type) is refused with what and at which byte.
**
** Encoding then follows the sentencepiece library, not the tokenizers library:
** its normalizer (longest charsmap rule at each position, whitespace rules) and its
** optimized Viterbi (float path scores). Checks the library makes when it loads a
** model are made here too: pieces non-empty and unique, exactly one unknown piece,
** byte pieces exactly when byte_fallback, which then needs all 256.
*/
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"
#include "unicode.h"

/* ---- protobuf wire format ---- */

typedef struct pb {
  const unsigned char *p, *end, *base; /* base: the file's first byte, for positions */
  const char *where;
  zoe_err *e;
} pb;

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

static int bad(pb *r, const char *what) {
  return zoe_errf(r->e, ZOE_EFORMAT, "%s: not a sentencepiece model: %s at byte %zu", r->where, what,
                  (size_t)(r->p - r->base));
}

static int varint(pb *r, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (r->p >= r->end) return bad(r, "a truncated varint");
    unsigned char b = *r->p++;
    if (shift == 63 && b > 1) return bad(r, "a varint over 64 bits");
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 0;
  }
  return bad(r, "a varint longer than 10 bytes");
}

/* The next field's number and wire type; 0 with *field = 0 at the end of the message. */
static int field(pb *r, uint32_t *num, int *wire) {
  *num = 0;
  if (r->p >= r->end) return 0;
  uint64_t key;
  int rc = varint(r, &key);
  if (rc) return rc;
  *wire = (int)(key & 7);
  if (key >> 3 == 0 || key >> 3 > 0x1fffffff) return bad(r, "a field number out of range");
  if (*wire == 3 || *wire == 4) return bad(r, "a group (deprecated wire types 3 and 4)");
  if (*wire > 5) return bad(r, "an unknown wire type");
  *num = (uint32_t)(key >> 3);
  return 0;
}

/* A length-delimited field's bytes, as a reader of their own. */
static int sub(pb *r, pb *out) {
  uint64_t n;
  int rc = varint(r, &n);
  if (rc) return rc;
  if (n > (uint64_t)(r->end - r->p)) return bad(r, "a field longer than its message");
  *out = *r;
  out->end = r->p + n;
  r->p += n;
  return 0;
}

static int skip(pb *r, int wire) {
  uint64_t v;
  pb s;
  if (wire == WIRE_VARINT) return varint(r, &v);
  if (wire == WIRE_LEN) return sub(r, &s);
  size_t n = wire == WIRE_I64 ? 8 : 4;
  if ((size_t)(r->end - r->p) < n) return bad(r, "a truncated fixed-size field");
  r->p += n;
  return 0;
}

static int expect(pb *r, int wire, int want, const char *name) {
  if (wire == want) return 0;
  char what[96];
  snprintf(what, sizeof what, "%s with wire type %d (expected %d)", name, wire, want);
  return bad(r, what);
}

static int read_bool(pb *r, int wire, const char *name, int *out) {
  uint64_t v = 0;
  int rc = expect(r, wire, WIRE_VARINT, name);
  if (!rc) rc = varint(r, &v);
  if (!rc) *out = v != 0;
  return rc;
}

/* ---- the messages ---- */

typedef struct piece {
  const unsigned char *s;
  size_t n;
  float score;
  int type;
} piece;

typedef struct proto {
  piece *pieces;
  size_t npieces, cap;
  int model_type, byte_fallback, ws_suffix;
  pb eos, pad;                  /* eos_piece, pad_piece (empty reader: the default) */
  int has_eos, has_pad;
  pb charsmap;                  /* precompiled_charsmap bytes */
  int dummy_prefix, remove_spaces, escape_spaces;
} proto;

static int read_piece(pb *r, proto *m) {
  if (m->npieces == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 1024;
    piece *np = realloc(m->pieces, cap * sizeof *np);
    if (!np) return zoe_errf(r->e, ZOE_ENOMEM, "%s: out of memory", r->where);
    m->pieces = np;
    m->cap = cap;
  }
  piece *pc = &m->pieces[m->npieces++];
  *pc = (piece){NULL, 0, 0.0f, TK_SPM_NORMAL};
  uint32_t num;
  int wire, rc;
  while (!(rc = field(r, &num, &wire)) && num) {
    if (num == 1) {
      pb s = *r;
      if (!(rc = expect(r, wire, WIRE_LEN, "a piece's text"))) rc = sub(r, &s);
      pc->s = s.p;
      pc->n = rc ? 0 : (size_t)(s.end - s.p);
    } else if (num == 2) {
      if (!(rc = expect(r, wire, WIRE_I32, "a piece's score"))) {
        if (r->end - r->p < 4) return bad(r, "a truncated score");
        uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
        memcpy(&pc->score, &u, 4);
        r->p += 4;
      }
    } else if (num == 3) {
      uint64_t v = 0;
      if (!(rc = expect(r, wire, WIRE_VARINT, "a piece's type"))) rc = varint(r, &v);
      if (!rc && (v < TK_SPM_NORMAL || v > TK_SPM_BYTE)) return bad(r, "a piece type outside 1..6");
      pc->type = (int)v;
    } else {
      rc = skip(r, wire);
    }
    if (rc) return rc;
  }
  return rc;
}

static int read_trainer(pb *r, proto *m) {
  uint32_t num;
  int wire, rc;
  while (!(rc = field(r, &num, &wire)) && num) {
    if (num == 3) {
      uint64_t v = 0;
      if (!(rc = expect(r, wire, WIRE_VARINT, "model_type"))) rc = varint(r, &v);
      m->model_type = v > 100 ? 100 : (int)v;
    } else if (num == 24) {
      rc = read_bool(r, wire, "treat_whitespace_as_suffix", &m->ws_suffix);
    } else if (num == 35) {
      rc = read_bool(r, wire, "byte_fallback", &m->byte_fallback);
    } else if (num == 47 || num == 48) {
      if (!(rc = expect(r, wire, WIRE_LEN, num == 47 ? "eos_piece" : "pad_piece")))
        rc = sub(r, num == 47 ? &m->eos : &m->pad);
      *(num == 47 ? &m->has_eos : &m->has_pad) = 1;
    } else {
      rc = skip(r, wire);
    }
    if (rc) return rc;
  }
  return rc;
}

static int read_normalizer(pb *r, proto *m) {
  uint32_t num;
  int wire, rc;
  while (!(rc = field(r, &num, &wire)) && num) {
    if (num == 2) {
      if (!(rc = expect(r, wire, WIRE_LEN, "precompiled_charsmap"))) rc = sub(r, &m->charsmap);
    } else if (num == 3) {
      rc = read_bool(r, wire, "add_dummy_prefix", &m->dummy_prefix);
    } else if (num == 4) {
      rc = read_bool(r, wire, "remove_extra_whitespaces", &m->remove_spaces);
    } else if (num == 5) {
      rc = read_bool(r, wire, "escape_whitespaces", &m->escape_spaces);
    } else {
      rc = skip(r, wire);
    }
    if (rc) return rc;
  }
  return rc;
}

static int read_model(pb *r, proto *m) {
  uint32_t num;
  int wire, rc;
  while (!(rc = field(r, &num, &wire)) && num) {
    pb s;
    if (num >= 1 && num <= 3) {
      static const char *names[] = {"", "a piece", "trainer_spec", "normalizer_spec"};
      if ((rc = expect(r, wire, WIRE_LEN, names[num])) || (rc = sub(r, &s))) return rc;
      rc = num == 1 ? read_piece(&s, m) : num == 2 ? read_trainer(&s, m) : read_normalizer(&s, m);
    } else {
      rc = skip(r, wire);
    }
    if (rc) return rc;
  }
  return rc;
}

/* ---- the tokenizer's model and normalizer ---- */

static int32_t find(const tk_model *t, const pb *s, int given, const char *dflt) {
  if (!given) return tk_model_token_to_id(t, dflt, strlen(dflt));
  return tk_model_token_to_id(t, (const char *)s->p, (size_t)(s->end - s->p));
}

/* The byte a piece <0xXX> stands for (upper-case hex, as the library writes them), or -1. */
static int byte_of(const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
  const char *h = s[3] ? strchr(hex, s[3]) : NULL, *l = s[4] ? strchr(hex, s[4]) : NULL;
  return h && l ? (int)(h - hex) * 16 + (int)(l - hex) : -1;
}

static int build_model(const proto *m, tk_spm *out, const char *where, zoe_err *e) {
  tk_model *t = &out->model;
  size_t n = m->npieces, bytes = 0;
  if (n == 0) return zoe_errf(e, ZOE_EFORMAT, "%s: the sentencepiece model has no pieces", where);
  if (n > INT32_MAX) return zoe_errf(e, ZOE_EFORMAT, "%s: too many pieces", where);
  for (size_t i = 0; i < n; i++) {
    const piece *p = &m->pieces[i];
    if (p->n == 0) return zoe_errf(e, ZOE_EFORMAT, "%s: piece %zu is empty", where, i);
    if (memchr(p->s, 0, p->n) || zoe_utf8_check((const char *)p->s, p->n) != p->n)
      return zoe_errf(e, ZOE_EFORMAT, "%s: piece %zu is not UTF-8 text", where, i);
    if (p->type == TK_SPM_NORMAL && !isfinite(p->score))
      return zoe_errf(e, ZOE_EFORMAT, "%s: piece %zu has score %g", where, i, (double)p->score);
    bytes += p->n + 1;
  }
  t->kind = TM_UNIGRAM;
  t->spm = 1;
  t->size = n;
  t->blob = malloc(bytes);
  t->tokens = calloc(n, sizeof *t->tokens);
  t->lens = calloc(n, sizeof *t->lens);
  t->scores = calloc(n, sizeof *t->scores);
  t->types = calloc(n, 1);
  int32_t *ids = malloc(n * sizeof *ids);
  const char **keys = malloc(n * sizeof *keys);
  size_t *klens = malloc(n * sizeof *klens);
  int rc = 0;
  if (!t->blob || !t->tokens || !t->lens || !t->scores || !t->types || !ids || !keys || !klens) {
    rc = zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
    goto done;
  }
  float lo = FLT_MAX, hi = FLT_MIN; /* over normal pieces, as the library starts them */
  size_t at = 0, nkeys = 0;
  t->unk_id = -1;
  for (size_t i = 0; i < n; i++) {
    const piece *p = &m->pieces[i];
    t->tokens[i] = memcpy(t->blob + at, p->s, p->n);
    t->blob[at + p->n] = '\0';
    at += p->n + 1;
    t->lens[i] = p->n;
    t->scores[i] = p->score;
    t->types[i] = (unsigned char)p->type;
    if (p->type == TK_SPM_NORMAL) lo = p->score < lo ? p->score : lo, hi = p->score > hi ? p->score : hi;
    if (p->type == TK_SPM_NORMAL || p->type == TK_SPM_USER) { /* what the text can match */
      keys[nkeys] = t->tokens[i];
      klens[nkeys] = p->n;
      ids[nkeys++] = (int32_t)i;
    }
    if (p->type == TK_SPM_UNKNOWN) {
      if (t->unk_id >= 0) {
        rc = zoe_errf(e, ZOE_EFORMAT, "%s: two unknown pieces (ids %d and %zu)", where, (int)t->unk_id, i);
        goto done;
      }
      t->unk_id = (int32_t)i;
    }
  }
  t->min_score = lo;
  t->max_score = hi;
  if (t->unk_id < 0) {
    rc = zoe_errf(e, ZOE_EFORMAT, "%s: no unknown piece (a piece of type UNKNOWN, such as <unk>)", where);
    goto done;
  }
  if ((rc = tk_map_build(&t->map, (const char *const *)t->tokens, t->lens, n, e))) goto done;
  for (size_t i = 0; i < n; i++) {
    long k = tk_map_find(&t->map, t->tokens[i], t->lens[i]);
    if (k != (long)i) {
      rc = zoe_errf(e, ZOE_EFORMAT, "%s: piece '%.40s' is defined twice (ids %zu and %ld)", where, t->tokens[i], i, k);
      goto done;
    }
  }
  if ((rc = tk_trie_build(&t->trie, keys, klens, ids, nkeys, e))) goto done;
  t->byte_fallback = m->byte_fallback;
  int nbytes = 0;
  for (int b = 0; b < 256; b++) t->byte_ids[b] = -1;
  for (size_t i = 0; i < n; i++) {
    if (t->types[i] != TK_SPM_BYTE) continue;
    if (!m->byte_fallback) {
      rc = zoe_errf(e, ZOE_EFORMAT, "%s: byte piece '%.40s' although byte_fallback is false", where, t->tokens[i]);
      goto done;
    }
    int v = byte_of(t->tokens[i], t->lens[i]);
    if (v < 0) {
      rc = zoe_errf(e, ZOE_EFORMAT, "%s: byte piece '%.40s' is not <0xXX>", where, t->tokens[i]);
      goto done;
    }
    nbytes += t->byte_ids[v] < 0;
    t->byte_ids[v] = (int32_t)i;
  }
  if (m->byte_fallback && nbytes != 256)
    rc = zoe_errf(e, ZOE_EFORMAT, "%s: byte_fallback is true but %d of the 256 byte pieces are there", where, nbytes);
done:
  free(ids);
  free(keys);
  free(klens);
  return rc;
}

static int build_normalizer(const proto *m, tk_spm *out, const char *where, zoe_err *e) {
  tk_normalizer *nz = &out->norm;
  const tk_model *t = &out->model;
  nz->kind = TN_SPM;
  nz->dummy_prefix = m->dummy_prefix;
  nz->remove_spaces = m->remove_spaces;
  nz->escape_spaces = m->escape_spaces;
  nz->ws_suffix = m->ws_suffix;
  size_t blen = (size_t)(m->charsmap.end - m->charsmap.p);
  int rc = blen ? tk_charsmap_set(nz, m->charsmap.p, blen, where, e) : 0;
  if (rc) return rc;
  size_t nuser = 0; /* user-defined pieces: the normalizer keeps them as they are */
  for (size_t i = 0; i < t->size; i++) nuser += t->types[i] == TK_SPM_USER;
  const char **keys = malloc((nuser + 1) * sizeof *keys);
  size_t *lens = malloc((nuser + 1) * sizeof *lens);
  int32_t *ids = malloc((nuser + 1) * sizeof *ids);
  if (!keys || !lens || !ids) rc = zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  nuser = 0;
  for (size_t i = 0; !rc && i < t->size; i++)
    if (t->types[i] == TK_SPM_USER) keys[nuser] = t->tokens[i], lens[nuser] = t->lens[i], ids[nuser++] = (int32_t)i;
  if (!rc && nuser) rc = tk_trie_build(&nz->user, keys, lens, ids, nuser, e);
  free(keys);
  free(lens);
  free(ids);
  return rc;
}

int tk_spm_parse(const unsigned char *buf, size_t len, tk_spm *out, const char *where, zoe_err *e) {
  memset(out, 0, sizeof *out);
  proto m = {.model_type = 1, .dummy_prefix = 1, .remove_spaces = 1, .escape_spaces = 1};
  pb r = {buf, buf + len, buf, where, e};
  int rc = read_model(&r, &m);
  if (!rc && m.model_type != 1) {
    static const char *types[] = {"", "Unigram", "BPE", "Word", "Char"};
    rc = zoe_errf(e, ZOE_ENOTSUP, "%s: a sentencepiece %s model is not supported (Unigram only)", where,
                  m.model_type >= 1 && m.model_type <= 4 ? types[m.model_type] : "unknown-type");
  }
  if (!rc) rc = build_model(&m, out, where, e);
  if (!rc) rc = build_normalizer(&m, out, where, e);
  if (!rc) {
    out->eos_id = find(&out->model, &m.eos, m.has_eos, "</s>");
    out->pad_id = find(&out->model, &m.pad, m.has_pad, "<pad>");
  }
  free(m.pieces);
  if (rc) {
    tk_model_free(&out->model);
    free(out->norm.units);
    free(out->norm.repl);
    tk_trie_free(&out->norm.user);
    memset(out, 0, sizeof *out);
  }
  return rc;
}
