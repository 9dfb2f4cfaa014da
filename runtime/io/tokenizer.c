/*
** tokenizer.c: loading tokenizer.json (or a sentencepiece model, spm.c), added tokens,
** and the encode and decode pipelines (the stages live in tok_*.c). Added tokens are split out first, in two
** passes as the library does: tokens marked "normalized": false are matched in the
** raw text, the others in the normalized text; matching is leftmost-longest, then
** single_word, lstrip and rstrip apply.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapfile.h"
#include "tok_impl.h"
#include "unicode.h"

typedef struct tk_added {
  char *content, *pattern; /* pattern: what is matched (content, or its normalized form) */
  size_t len, plen;
  int32_t id;
  int special, normalized, lstrip, rstrip, single_word;
  int decode_only; /* a sentencepiece control piece: skipped by decode, never matched in text */
} tk_added;

struct zoe_tokenizer {
  char *name;
  tk_normalizer *norm;
  int nnorm;
  tk_pretok *pre;
  int npre;
  tk_model model;
  tk_decoder *dec;
  int ndec, have_decoder;
  char *dec_unsupported;
  tk_added *added;
  size_t nadded;
  size_t *by_len[2]; /* added tokens of each pass (raw, normalized), longest first */
  size_t nby[2];
  int32_t *tpl; /* single template: -1 the sequence, else a special id */
  int ntpl, nspecial;
  long truncation;
  int32_t pad_id;
  int pad_left;
  size_t vocab_size;
};

/* ---- loading ---- */

static int json_bool(const cJSON *o, const char *k, int def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

static int parse_added(zoe_tokenizer *t, const cJSON *arr, zoe_err *e) {
  if (!arr || cJSON_IsNull(arr)) return 0;
  if (!cJSON_IsArray(arr)) return zoe_errf(e, ZOE_EFORMAT, "%s: \"added_tokens\" is %s, not an array", t->name, tk_json_type(arr));
  t->added = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *t->added);
  if (!t->added) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", t->name);
  const cJSON *c;
  cJSON_ArrayForEach(c, arr) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id"), *content = cJSON_GetObjectItemCaseSensitive(c, "content");
    if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 2e9 || !cJSON_IsString(content))
      return zoe_errf(e, ZOE_EFORMAT, "%s: added_tokens entry %zu needs an \"id\" and a \"content\" string", t->name,
                      t->nadded + 1);
    size_t len = strlen(content->valuestring);
    if (zoe_utf8_check(content->valuestring, len) != len)
      return zoe_errf(e, ZOE_EFORMAT, "%s: added token %zu is not UTF-8", t->name, t->nadded + 1);
    if (len == 0) continue; /* the library ignores empty ones */
    tk_added *a = &t->added[t->nadded++];
    a->content = strdup(content->valuestring);
    if (!a->content) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", t->name);
    a->len = len;
    a->id = (int32_t)id->valuedouble;
    a->special = json_bool(c, "special", 0);
    a->normalized = json_bool(c, "normalized", !a->special);
    a->lstrip = json_bool(c, "lstrip", 0);
    a->rstrip = json_bool(c, "rstrip", 0);
    a->single_word = json_bool(c, "single_word", 0);
  }
  return 0;
}

static int cmp_len_desc(const void *x, const void *y, void *ctx) {
  const tk_added *a = ctx;
  size_t p = *(const size_t *)x, q = *(const size_t *)y;
  if (a[p].plen != a[q].plen) return a[p].plen > a[q].plen ? -1 : 1;
  return p < q ? -1 : p > q;
}

/* Normalized patterns, and the two matching lists. */
static int prepare_added(zoe_tokenizer *t, zoe_err *e) {
  for (int pass = 0; pass < 2; pass++) {
    t->by_len[pass] = malloc((t->nadded + 1) * sizeof(size_t));
    if (!t->by_len[pass]) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", t->name);
  }
  for (size_t i = 0; i < t->nadded; i++) {
    tk_added *a = &t->added[i];
    if (a->normalized) {
      tk_str s = {0};
      if (tk_normalize(t->norm, t->nnorm, a->content, a->len, &s))
        return zoe_errf(e, ZOE_ENOMEM, "%s: cannot normalize added token '%s'", t->name, a->content);
      a->pattern = s.p ? s.p : strdup("");
      a->plen = s.n;
      if (!a->pattern) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", t->name);
    } else {
      a->pattern = a->content;
      a->plen = a->len;
    }
    if (a->plen && !a->decode_only) t->by_len[a->normalized][t->nby[a->normalized]++] = i;
  }
  for (int pass = 0; pass < 2; pass++) qsort_r(t->by_len[pass], t->nby[pass], sizeof(size_t), cmp_len_desc, t->added);
  return 0;
}

static int parse_template(zoe_tokenizer *t, const cJSON *pp, zoe_err *e) {
  if (!pp || cJSON_IsNull(pp)) return 0;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(pp, "type");
  if (!cJSON_IsString(type) || strcmp(type->valuestring, "TemplateProcessing") != 0)
    return zoe_errf(e, ZOE_ENOTSUP, "%s: post_processor '%.40s' is not supported (TemplateProcessing)", t->name,
                    cJSON_IsString(type) ? type->valuestring : "?");
  const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
  const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens"), *c;
  if (!cJSON_IsArray(single)) return zoe_errf(e, ZOE_EFORMAT, "%s: TemplateProcessing \"single\" is not an array", t->name);
  cJSON_ArrayForEach(c, single) {
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(c, "Sequence");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(c, "SpecialToken");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
    const cJSON *ids = NULL;
    if (cJSON_IsString(name)) ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(specials, name->valuestring), "ids");
    if (!seq && !cJSON_IsArray(ids))
      return zoe_errf(e, ZOE_EFORMAT, "%s: TemplateProcessing item is neither a Sequence nor a known SpecialToken", t->name);
    int add = seq ? 1 : cJSON_GetArraySize(ids);
    int32_t *nt = realloc(t->tpl, (size_t)(t->ntpl + add + 1) * sizeof *nt);
    if (!nt) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", t->name);
    t->tpl = nt;
    if (seq) {
      t->tpl[t->ntpl++] = -1;
      continue;
    }
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
      if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 2e9)
        return zoe_errf(e, ZOE_EFORMAT, "%s: TemplateProcessing special token id is not an id", t->name);
      t->tpl[t->ntpl++] = (int32_t)id->valuedouble;
      t->nspecial++;
    }
  }
  return 0;
}

static int parse_settings(zoe_tokenizer *t, const cJSON *root, zoe_err *e) {
  const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncation");
  const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
  t->truncation = -1;
  if (cJSON_IsObject(tr)) {
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(tr, "max_length");
    if (!cJSON_IsNumber(ml) || ml->valuedouble < 0 || ml->valuedouble > 1e9)
      return zoe_errf(e, ZOE_EFORMAT, "%s: truncation \"max_length\" is not a length", t->name);
    t->truncation = (long)ml->valuedouble;
  }
  t->pad_id = zoe_tokenizer_token_to_id(t, "<pad>", 5);
  if (t->pad_id < 0) t->pad_id = 0;
  if (cJSON_IsObject(pad)) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(pad, "pad_id");
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(pad, "direction");
    if (cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble < 2e9) t->pad_id = (int32_t)id->valuedouble;
    t->pad_left = cJSON_IsString(dir) && strcmp(dir->valuestring, "Left") == 0;
  }
  /* distinct tokens, as the library counts them */
  size_t n = 0;
  for (size_t k = 0; k < t->model.map.cap; k++) n += t->model.map.slots[k] != 0;
  for (size_t i = 0; i < t->nadded; i++) {
    int seen = tk_model_token_to_id(&t->model, t->added[i].content, t->added[i].len) >= 0;
    for (size_t k = 0; k < i && !seen; k++)
      seen = t->added[k].len == t->added[i].len && memcmp(t->added[k].content, t->added[i].content, t->added[i].len) == 0;
    n += !seen;
  }
  t->vocab_size = n;
  return 0;
}

static int parse_root(zoe_tokenizer *t, const cJSON *root, zoe_err *e) {
  if (!cJSON_IsObject(root)) return zoe_errf(e, ZOE_EFORMAT, "%s: not a JSON object", t->name);
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!model) return zoe_errf(e, ZOE_EFORMAT, "%s: no \"model\" (not a tokenizer.json?)", t->name);
  const char *unsupported = NULL;
  int rc = tk_model_parse(model, &t->model, t->name, e);
  if (!rc) rc = tk_normalizers_parse(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), &t->norm, &t->nnorm, t->name, e);
  if (!rc) rc = tk_pretoks_parse(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), &t->pre, &t->npre, t->name, e);
  const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
  if (!rc) rc = tk_decoders_parse(dec, &t->dec, &t->ndec, &unsupported, t->name, e);
  t->have_decoder = dec && !cJSON_IsNull(dec);
  if (!rc && unsupported && !(t->dec_unsupported = strdup(unsupported))) rc = zoe_errf(e, ZOE_ENOMEM, "out of memory");
  if (!rc) rc = parse_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), e);
  if (!rc) rc = prepare_added(t, e);
  if (!rc) rc = parse_template(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), e);
  if (!rc) rc = parse_settings(t, root, e);
  return rc;
}

zoe_tokenizer *zoe_tokenizer_from_json(const char *json, size_t len, const char *name, zoe_err *e) {
  zoe_tokenizer *t = calloc(1, sizeof *t);
  if (!t || !(t->name = strdup(name))) {
    free(t);
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", name);
    return NULL;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  int rc;
  if (!root) {
    size_t at = end && end >= json ? (size_t)(end - json) : 0;
    rc = zoe_errf(e, ZOE_EFORMAT, "%s: not valid JSON (error near byte %zu)", name, at);
  } else {
    rc = parse_root(t, root, e);
  }
  cJSON_Delete(root);
  if (rc) {
    zoe_tokenizer_free(t);
    return NULL;
  }
  return t;
}

/*
** A sentencepiece model as T5Tokenizer uses it: sentencepiece's normalizer and Unigram
** Viterbi, then </s> appended. Control and unknown pieces are special for decode; like
** the sentencepiece library (and unlike T5Tokenizer), text spelling one is not split out.
*/
zoe_tokenizer *zoe_tokenizer_from_spm(const void *buf, size_t len, const char *name, zoe_err *e) {
  zoe_tokenizer *t = calloc(1, sizeof *t);
  tk_spm sp;
  if (!t || !(t->name = strdup(name))) {
    free(t);
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", name);
    return NULL;
  }
  int rc = tk_spm_parse(buf, len, &sp, name, e);
  if (!rc) {
    t->model = sp.model;
    t->norm = malloc(sizeof *t->norm);
    t->nnorm = t->norm ? 1 : 0;
    if (t->norm) *t->norm = sp.norm;
    else {
      free(sp.norm.units);
      free(sp.norm.repl);
      tk_trie_free(&sp.norm.user);
    }
    t->dec = calloc(1, sizeof *t->dec);
    t->added = calloc(t->model.size + 1, sizeof *t->added);
    t->tpl = malloc(2 * sizeof *t->tpl);
    if (!t->norm || !t->dec || !t->added || !t->tpl) rc = zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", name);
  }
  if (!rc) {
    t->dec[0] = (tk_decoder){.kind = TD_METASPACE, .rep = "\xe2\x96\x81", .nrep = 3, .prepend = 1};
    t->ndec = t->have_decoder = 1;
    for (size_t i = 0; i < t->model.size && !rc; i++) {
      int ty = t->model.types[i];
      if (ty != TK_SPM_CONTROL && ty != TK_SPM_UNKNOWN) continue;
      tk_added *a = &t->added[t->nadded++];
      a->content = strdup(t->model.tokens[i]);
      a->len = t->model.lens[i];
      a->id = (int32_t)i;
      a->special = a->decode_only = 1;
      if (!a->content) rc = zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", name);
    }
  }
  if (!rc) rc = prepare_added(t, e);
  if (!rc && sp.eos_id >= 0) {
    t->tpl[0] = -1;
    t->tpl[1] = sp.eos_id;
    t->ntpl = 2;
    t->nspecial = 1;
  }
  if (!rc) rc = parse_settings(t, NULL, e);
  if (!rc && sp.pad_id >= 0) t->pad_id = sp.pad_id;
  if (rc) {
    zoe_tokenizer_free(t);
    return NULL;
  }
  return t;
}

/*
** A tokenizer.json (JSON: '{' or '[' after any whitespace), else a sentencepiece model.
** A model's first bytes can look like JSON after whitespace (it starts with byte 0x0a,
** a newline, then a length), so such a file is tried as a model first.
*/
zoe_tokenizer *zoe_tokenizer_load(const char *path, zoe_err *e) {
  size_t len;
  char *text = zoe_read_small_file(path, (size_t)1 << 30, &len, e);
  if (!text) return NULL;
  size_t i = 0;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
  int json = i < len && (text[i] == '{' || text[i] == '[');
  zoe_tokenizer *t = json && text[0] == '\n' ? zoe_tokenizer_from_spm(text, len, path, NULL) : NULL;
  if (!t) t = json ? zoe_tokenizer_from_json(text, len, path, e) : zoe_tokenizer_from_spm(text, len, path, e);
  free(text);
  return t;
}

void zoe_tokenizer_free(zoe_tokenizer *t) {
  if (!t) return;
  tk_normalizers_free(t->norm, t->nnorm);
  free(t->pre);
  tk_model_free(&t->model);
  tk_decoders_free(t->dec, t->ndec);
  free(t->dec_unsupported);
  for (size_t i = 0; i < t->nadded; i++) {
    if (t->added[i].pattern != t->added[i].content) free(t->added[i].pattern);
    free(t->added[i].content);
  }
  free(t->added);
  free(t->by_len[0]);
  free(t->by_len[1]);
  free(t->tpl);
  free(t->name);
  free(t);
}

/* ---- queries ---- */

static const tk_added *added_by_id(const zoe_tokenizer *t, int32_t id) {
  for (size_t i = t->nadded; i-- > 0;)
    if (t->added[i].id == id) return &t->added[i];
  return NULL;
}

int32_t zoe_tokenizer_token_to_id(const zoe_tokenizer *t, const char *s, size_t len) {
  for (size_t i = t->nadded; i-- > 0;)
    if (t->added[i].len == len && memcmp(t->added[i].content, s, len) == 0) return t->added[i].id;
  return tk_model_token_to_id(&t->model, s, len);
}

const char *zoe_tokenizer_id_to_token(const zoe_tokenizer *t, int32_t id, size_t *len) {
  const tk_added *a = added_by_id(t, id);
  if (a) {
    *len = a->plen;
    return a->pattern;
  }
  if (id < 0 || (size_t)id >= t->model.size || !t->model.tokens[id]) return NULL;
  *len = t->model.lens[id];
  return t->model.tokens[id];
}

size_t zoe_tokenizer_vocab_size(const zoe_tokenizer *t) { return t->vocab_size; }
int32_t zoe_tokenizer_pad_id(const zoe_tokenizer *t) { return t->pad_id; }
int zoe_tokenizer_pad_left(const zoe_tokenizer *t) { return t->pad_left; }

/* ---- added tokens ---- */

static int is_word_at(const char *s, size_t n, size_t i) {
  uint32_t c;
  return i < n && zoe_utf8_decode(s + i, n - i, &c) > 0 && (zoe_unicode_props(c) & ZOE_UP_WORD);
}

static int word_before(const char *s, size_t i) {
  if (i == 0) return 0;
  size_t k = i - 1;
  while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
  return is_word_at(s, i, k);
}

/* Leftmost-longest match of the pass's added tokens at or after 'from'. */
static const tk_added *find_added(const zoe_tokenizer *t, int pass, const char *s, size_t n, size_t from, size_t *at) {
  for (size_t i = from; i < n; i++) {
    if (((unsigned char)s[i] & 0xc0) == 0x80) continue;
    for (size_t k = 0; k < t->nby[pass]; k++) {
      const tk_added *a = &t->added[t->by_len[pass][k]];
      if (a->plen <= n - i && memcmp(s + i, a->pattern, a->plen) == 0) {
        *at = i;
        return a;
      }
    }
  }
  return NULL;
}

static size_t space_run_back(const char *s, size_t from, size_t to) {
  size_t i = to; /* start of the run of whitespace ending at 'to', not before 'from' */
  while (i > from) {
    size_t k = i - 1;
    while (k > from && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
    uint32_t c;
    if (zoe_utf8_decode(s + k, i - k, &c) <= 0 || !(zoe_unicode_props(c) & ZOE_UP_SPACE)) break;
    i = k;
  }
  return i;
}

static size_t space_run(const char *s, size_t n, size_t i) {
  uint32_t c;
  int l;
  while (i < n && (l = zoe_utf8_decode(s + i, n - i, &c)) > 0 && (zoe_unicode_props(c) & ZOE_UP_SPACE)) i += (size_t)l;
  return i;
}

/* Split one text split around the pass's added tokens (the library's find_matches). */
static int split_added(const zoe_tokenizer *t, int pass, const tk_split *in, tk_splits *out) {
  const char *s = in->p;
  size_t n = in->n, from = 0, offset = 0, at = 0;
  const tk_added *a;
  int rc = 0;
  while (!rc && (a = find_added(t, pass, s, n, from, &at)) != NULL) {
    size_t start = at, stop = at + a->plen;
    from = stop;
    if (a->single_word && (word_before(s, start) || is_word_at(s, n, stop))) continue;
    if (a->lstrip) start = space_run_back(s, offset, start);
    if (a->rstrip) stop = space_run(s, n, stop);
    if (start < offset) start = offset;
    if (offset < start) rc = tk_splits_add(out, s + offset, start - offset, -1, in->first && offset == 0);
    if (!rc) rc = tk_splits_add(out, s + start, stop - start, a->id, 0);
    offset = from = stop;
  }
  if (!rc && offset < n) rc = tk_splits_add(out, s + offset, n - offset, -1, in->first && offset == 0);
  return rc;
}

/* ---- encoding ---- */

static int encode_text(const zoe_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *nids, zoe_err *e) {
  tk_splits a = {0}, b = {0}, c = {0};
  size_t cap = 0;
  int rc = tk_splits_add(&a, text, len, -1, 1);
  for (size_t i = 0; i < a.n && !rc; i++) /* pass 1: tokens matched in the raw text */
    rc = a.v[i].id >= 0 ? tk_splits_add(&b, a.v[i].p, a.v[i].n, a.v[i].id, 0) : split_added(t, 0, &a.v[i], &b);
  for (size_t i = 0; i < b.n && !rc; i++) { /* normalize, then pass 2 in the normalized text */
    if (b.v[i].id >= 0) {
      rc = tk_splits_add(&c, b.v[i].p, b.v[i].n, b.v[i].id, 0);
      continue;
    }
    tk_str norm = {0};
    rc = tk_normalize(t->norm, t->nnorm, b.v[i].p, b.v[i].n, &norm);
    if (rc == ZOE_ERANGE) rc = zoe_errf(e, ZOE_ERANGE, "%s: a Replace regex needs too many steps on this text", t->name);
    if (!rc && norm.n > 0) {
      tk_split ns = {norm.p, norm.n, -1, b.v[i].first};
      rc = split_added(t, 1, &ns, &c);
    }
    tk_str_free(&norm);
  }
  tk_splits_free(&a);
  tk_splits_free(&b);
  tk_splits d = {0};
  if (!rc) rc = tk_pretokenize(t->pre, t->npre, &c, &d);
  for (size_t i = 0; i < d.n && !rc; i++) {
    if (d.v[i].id >= 0) {
      if (*nids == cap) {
        cap = cap ? 2 * cap : 64;
        int32_t *ni = realloc(*ids, cap * sizeof *ni);
        if (!ni) {
          rc = ZOE_ENOMEM;
          break;
        }
        *ids = ni;
      }
      (*ids)[(*nids)++] = d.v[i].id;
    } else {
      rc = tk_model_tokenize(&t->model, d.v[i].p, d.v[i].n, ids, nids, &cap, e);
    }
  }
  tk_splits_free(&c);
  tk_splits_free(&d);
  if (rc == ZOE_ENOMEM && (!e || !e->code)) zoe_errf(e, rc, "%s: out of memory", t->name);
  return rc;
}

int zoe_tokenizer_encode(const zoe_tokenizer *t, const char *text, size_t len, int add_special, long max_len,
                         int32_t **out, size_t *nout, zoe_err *e) {
  *out = NULL;
  *nout = 0;
  size_t ok = zoe_utf8_check(text, len);
  /* the text is the caller's, not the tokenizer file's: the message names no file */
  if (ok != len) return zoe_errf(e, ZOE_EINVAL, "encode: the text is not valid UTF-8 (at byte %zu)", ok + 1);
  int32_t *ids = NULL;
  size_t n = 0;
  int rc = encode_text(t, text, len, &ids, &n, e);
  if (rc) {
    free(ids);
    return rc;
  }
  int special = add_special && t->tpl ? t->nspecial : 0;
  long limit = max_len >= 0 ? max_len : t->truncation;
  if (limit >= 0 && limit < special) {
    free(ids);
    return zoe_errf(e, ZOE_EINVAL, "%s: length %ld cannot hold the %d special tokens", t->name, limit, special);
  }
  if (limit >= 0 && n > (size_t)(limit - special)) n = (size_t)(limit - special);
  size_t total = n + (size_t)special;
  int32_t *res = malloc((total ? total : 1) * sizeof *res);
  if (!res) {
    free(ids);
    return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", t->name);
  }
  if (add_special && t->tpl) {
    size_t k = 0;
    for (int i = 0; i < t->ntpl; i++) {
      if (t->tpl[i] >= 0) res[k++] = t->tpl[i];
      else {
        if (n) memcpy(res + k, ids, n * sizeof *ids);
        k += n;
      }
    }
    total = k;
  } else if (n) {
    memcpy(res, ids, n * sizeof *ids);
  }
  free(ids);
  *out = res;
  *nout = total;
  return 0;
}

/* ---- decoding ---- */

char *zoe_tokenizer_decode(const zoe_tokenizer *t, const int32_t *ids, size_t n, int skip_special, size_t *len,
                           zoe_err *e) {
  if (t->dec_unsupported) {
    zoe_errf(e, ZOE_ENOTSUP, "%s: decoder '%s' is not supported (Metaspace, Replace, ByteFallback, Fuse, Strip)",
             t->name, t->dec_unsupported);
    return NULL;
  }
  char **toks = malloc((n ? n : 1) * sizeof *toks);
  size_t *lens = malloc((n ? n : 1) * sizeof *lens), m = 0;
  if (!toks || !lens) {
    free(toks);
    free(lens);
    zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", t->name);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const tk_added *a = added_by_id(t, ids[i]);
    size_t l;
    const char *s = zoe_tokenizer_id_to_token(t, ids[i], &l);
    if (!s) {
      free(toks);
      free(lens);
      zoe_errf(e, ZOE_ERANGE, "%s: id %ld is not in the vocabulary", t->name, (long)ids[i]);
      return NULL;
    }
    if (skip_special && !a) { /* a model token spelled like a special added token */
      int32_t k = zoe_tokenizer_token_to_id(t, s, l);
      a = k >= 0 ? added_by_id(t, k) : NULL;
      if (a && (a->len != l || memcmp(a->content, s, l) != 0)) a = NULL;
    }
    if (skip_special && a && a->special) continue;
    toks[m] = (char *)s;
    lens[m++] = l;
  }
  tk_str out = {0};
  int rc = tk_decode_tokens(t->dec, t->ndec, t->have_decoder, toks, lens, m, &out);
  free(toks);
  free(lens);
  if (rc) {
    tk_str_free(&out);
    zoe_errf(e, rc == ZOE_ERANGE ? rc : ZOE_ENOMEM, "%s: %s", t->name,
             rc == ZOE_ERANGE ? "a Replace regex needs too many steps" : "out of memory");
    return NULL;
  }
  *len = out.n;
  return out.p;
}
