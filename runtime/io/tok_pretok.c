/*
** tok_pretok.c: pre-tokenizers, cutting normalized text into the pieces the model
** sees. Metaspace: ' ' becomes '▁', a '▁' is prepended (prepend_scheme always, or
** first: only to the split that starts the input; the old spelling add_prefix_space
** true/false means always/never), then the text splits before each '▁'.
** Whitespace: runs of \w and runs of other non-space characters. WhitespaceSplit:
** runs of non-space characters. Empty pieces are dropped, as the library does.
*/
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"
#include "unicode.h"

int tk_metaspace_parse(const cJSON *j, tk_pretok *p, const char *where, zoe_err *e) {
  const cJSON *rep = cJSON_GetObjectItemCaseSensitive(j, "replacement");
  const cJSON *aps = cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space");
  const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
  const cJSON *split = cJSON_GetObjectItemCaseSensitive(j, "split");
  uint32_t c;
  if (!cJSON_IsString(rep) || zoe_utf8_decode(rep->valuestring, strlen(rep->valuestring), &c) !=
                                  (int)strlen(rep->valuestring) || !rep->valuestring[0])
    return zoe_errf(e, ZOE_EFORMAT, "%s: Metaspace \"replacement\" must be one character", where);
  p->kind = TP_METASPACE;
  p->nrep = (int)strlen(rep->valuestring);
  memcpy(p->rep, rep->valuestring, (size_t)p->nrep);
  p->prepend = TP_PREPEND_ALWAYS;
  if (cJSON_IsString(scheme)) {
    const char *s = scheme->valuestring;
    if (strcmp(s, "always") == 0) p->prepend = TP_PREPEND_ALWAYS;
    else if (strcmp(s, "first") == 0) p->prepend = TP_PREPEND_FIRST;
    else if (strcmp(s, "never") == 0) p->prepend = TP_PREPEND_NEVER;
    else return zoe_errf(e, ZOE_EFORMAT, "%s: Metaspace prepend_scheme '%.20s' (always, first, never)", where, s);
  } else if (scheme && !cJSON_IsNull(scheme)) {
    return zoe_errf(e, ZOE_EFORMAT, "%s: Metaspace prepend_scheme is %s, not a string", where, tk_json_type(scheme));
  }
  if (aps && !cJSON_IsNull(aps)) {
    if (!cJSON_IsBool(aps))
      return zoe_errf(e, ZOE_EFORMAT, "%s: Metaspace add_prefix_space is %s, not a boolean", where, tk_json_type(aps));
    if (cJSON_IsFalse(aps)) {
      if (cJSON_IsString(scheme) && p->prepend != TP_PREPEND_NEVER)
        return zoe_errf(e, ZOE_EFORMAT, "%s: Metaspace add_prefix_space false contradicts prepend_scheme", where);
      p->prepend = TP_PREPEND_NEVER;
    }
  }
  p->split = 1;
  if (split && !cJSON_IsNull(split)) {
    if (!cJSON_IsBool(split)) return zoe_errf(e, ZOE_EFORMAT, "%s: Metaspace split is not a boolean", where);
    p->split = cJSON_IsTrue(split);
  }
  return 0;
}

static int parse_one(const cJSON *j, tk_pretok **list, int *n, int depth, const char *where, zoe_err *e) {
  if (!j || cJSON_IsNull(j)) return 0; /* absent or null: none */
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
  if (!cJSON_IsString(type)) return zoe_errf(e, ZOE_EFORMAT, "%s: a pre_tokenizer without a \"type\" string", where);
  const char *t = type->valuestring;
  if (strcmp(t, "Sequence") == 0) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers"), *c;
    if (!cJSON_IsArray(items)) return zoe_errf(e, ZOE_EFORMAT, "%s: Sequence \"pretokenizers\" is not an array", where);
    if (depth > 8) return zoe_errf(e, ZOE_EFORMAT, "%s: pre_tokenizers nested too deep", where);
    cJSON_ArrayForEach(c, items) {
      int rc = parse_one(c, list, n, depth + 1, where, e);
      if (rc) return rc;
    }
    return 0;
  }
  tk_pretok p = {0};
  if (strcmp(t, "Metaspace") == 0) {
    int rc = tk_metaspace_parse(j, &p, where, e);
    if (rc) return rc;
  } else if (strcmp(t, "Whitespace") == 0) {
    p.kind = TP_WHITESPACE;
  } else if (strcmp(t, "WhitespaceSplit") == 0) {
    p.kind = TP_WHITESPACE_SPLIT;
  } else {
    return zoe_errf(e, ZOE_ENOTSUP, "%s: pre_tokenizer '%.40s' is not supported (Metaspace, Whitespace, "
                    "WhitespaceSplit, Sequence)", where, t);
  }
  tk_pretok *nl = realloc(*list, (size_t)(*n + 1) * sizeof *nl);
  if (!nl) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  *list = nl;
  nl[(*n)++] = p;
  return 0;
}

int tk_pretoks_parse(const cJSON *j, tk_pretok **list, int *n, const char *where, zoe_err *e) {
  *list = NULL;
  *n = 0;
  return parse_one(j, list, n, 0, where, e);
}

/* ---- applying ---- */

static int metaspace(const tk_pretok *p, const tk_split *s, tk_splits *out) {
  tk_str t = {0};
  int rc = 0;
  int starts = (size_t)p->nrep <= s->n && memcmp(s->p, p->rep, (size_t)p->nrep) == 0;
  starts = starts || (s->n > 0 && s->p[0] == ' '); /* the space is about to become '▁' */
  if (!starts && (p->prepend == TP_PREPEND_ALWAYS || (p->prepend == TP_PREPEND_FIRST && s->first)))
    rc = tk_add(&t, p->rep, (size_t)p->nrep);
  for (size_t i = 0; i < s->n && !rc; i++)
    rc = s->p[i] == ' ' ? tk_add(&t, p->rep, (size_t)p->nrep) : tk_add(&t, s->p + i, 1);
  size_t begin = 0;
  for (size_t i = 0; i <= t.n && !rc && t.n; i++) {
    int at_rep = p->split && i < t.n && i > begin && i + (size_t)p->nrep <= t.n &&
                 memcmp(t.p + i, p->rep, (size_t)p->nrep) == 0;
    if (at_rep || i == t.n) { /* a piece ends before each '▁' (merged with the next) */
      if (i > begin) rc = tk_splits_add(out, t.p + begin, i - begin, -1, s->first && begin == 0);
      begin = i;
    }
  }
  tk_str_free(&t);
  return rc;
}

/* Whitespace (\w+|[^\w\s]+) when 'words', else WhitespaceSplit (runs of non-space). */
static int whitespace(const tk_split *s, int words, tk_splits *out) {
  size_t i = 0, begin = 0;
  int cur = -1; /* class of the current run: -1 none, 0 other, 1 word */
  while (i <= s->n) {
    int cls = -1;
    uint32_t c = 0;
    int l = 1;
    if (i < s->n) {
      l = zoe_utf8_decode(s->p + i, s->n - i, &c);
      if (l <= 0) l = 1;
      unsigned pr = zoe_unicode_props(c);
      cls = pr & ZOE_UP_SPACE ? -1 : words && (pr & ZOE_UP_WORD) ? 1 : 0;
    }
    if (cls != cur) {
      if (cur >= 0 && tk_splits_add(out, s->p + begin, i - begin, -1, s->first && begin == 0)) return ZOE_ENOMEM;
      begin = i;
      cur = cls;
    }
    i += (size_t)l;
  }
  return 0;
}

int tk_pretokenize(const tk_pretok *list, int n, tk_splits *in, tk_splits *out) {
  tk_splits cur = *in, next = {0};
  *in = (tk_splits){0};
  for (int k = 0; k < n; k++) {
    for (size_t i = 0; i < cur.n; i++) {
      tk_split *s = &cur.v[i];
      int rc;
      if (s->id >= 0) rc = tk_splits_add(&next, s->p, s->n, s->id, s->first);
      else if (list[k].kind == TP_METASPACE) rc = metaspace(&list[k], s, &next);
      else rc = whitespace(s, list[k].kind == TP_WHITESPACE, &next);
      if (rc) {
        tk_splits_free(&cur);
        tk_splits_free(&next);
        return rc;
      }
    }
    tk_splits_free(&cur);
    cur = next;
    next = (tk_splits){0};
  }
  *out = cur;
  return 0;
}
