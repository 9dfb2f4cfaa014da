/*
** tok_decode.c: decoders, turning tokens back into text as the library does: each
** decoder maps the list of token strings to a new list, and the result is joined.
** Without a decoder, tokens are joined with spaces.
*/
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"
#include "unicode.h"

static int parse_one(const cJSON *j, tk_decoder **list, int *n, const char **unsupported, int depth,
                     const char *where, zoe_err *e) {
  if (!j || cJSON_IsNull(j)) return 0; /* absent or null: none */
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
  if (!cJSON_IsString(type)) return zoe_errf(e, ZOE_EFORMAT, "%s: a decoder without a \"type\" string", where);
  const char *t = type->valuestring;
  if (strcmp(t, "Sequence") == 0) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "decoders"), *c;
    if (!cJSON_IsArray(items)) return zoe_errf(e, ZOE_EFORMAT, "%s: Sequence \"decoders\" is not an array", where);
    if (depth > 8) return zoe_errf(e, ZOE_EFORMAT, "%s: decoders nested too deep", where);
    cJSON_ArrayForEach(c, items) {
      int rc = parse_one(c, list, n, unsupported, depth + 1, where, e);
      if (rc) return rc;
    }
    return 0;
  }
  tk_decoder d = {0};
  int rc = 0;
  if (strcmp(t, "Metaspace") == 0) {
    tk_pretok p = {0};
    rc = tk_metaspace_parse(j, &p, where, e);
    d.kind = TD_METASPACE;
    memcpy(d.rep, p.rep, sizeof d.rep);
    d.nrep = p.nrep;
    d.prepend = p.prepend != TP_PREPEND_NEVER;
  } else if (strcmp(t, "Replace") == 0) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(j, "content");
    const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
    const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
    d.kind = TD_REPLACE;
    if (!cJSON_IsString(content)) return zoe_errf(e, ZOE_EFORMAT, "%s: decoder Replace \"content\" is not a string", where);
    if (cJSON_IsString(str)) rc = tk_regex_literal(&d.re, str->valuestring, strlen(str->valuestring), e);
    else if (cJSON_IsString(rx)) rc = tk_regex_compile(&d.re, rx->valuestring, strlen(rx->valuestring), e);
    else return zoe_errf(e, ZOE_EFORMAT, "%s: decoder Replace \"pattern\" must be a String or a Regex", where);
    if (rc) return zoe_err_prefix(e, "%s: decoder Replace", where);
    d.content = strdup(content->valuestring);
    d.ncontent = strlen(content->valuestring);
    if (!d.content) rc = zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  } else if (strcmp(t, "ByteFallback") == 0) {
    d.kind = TD_BYTE_FALLBACK;
  } else if (strcmp(t, "Fuse") == 0) {
    d.kind = TD_FUSE;
  } else if (strcmp(t, "Strip") == 0) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(j, "content");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(j, "start");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(j, "stop");
    d.kind = TD_STRIP;
    if (!cJSON_IsString(content) || !cJSON_IsNumber(start) || !cJSON_IsNumber(stop) ||
        zoe_utf8_decode(content->valuestring, strlen(content->valuestring), &d.strip_char) <= 0)
      return zoe_errf(e, ZOE_EFORMAT, "%s: decoder Strip needs \"content\" (a character), \"start\" and \"stop\"", where);
    d.start = start->valuedouble > 0 ? (long)(start->valuedouble < 1e6 ? start->valuedouble : 1e6) : 0;
    d.stop = stop->valuedouble > 0 ? (long)(stop->valuedouble < 1e6 ? stop->valuedouble : 1e6) : 0;
  } else {
    *unsupported = t; /* encoding works; decoding will say why it cannot */
    return 0;
  }
  if (rc) {
    tk_regex_free(&d.re);
    free(d.content);
    return rc;
  }
  tk_decoder *nl = realloc(*list, (size_t)(*n + 1) * sizeof *nl);
  if (!nl) {
    tk_regex_free(&d.re);
    free(d.content);
    return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  }
  *list = nl;
  nl[(*n)++] = d;
  return 0;
}

int tk_decoders_parse(const cJSON *j, tk_decoder **list, int *n, const char **unsupported, const char *where,
                      zoe_err *e) {
  *list = NULL;
  *n = 0;
  *unsupported = NULL;
  return parse_one(j, list, n, unsupported, 0, where, e);
}

void tk_decoders_free(tk_decoder *list, int n) {
  for (int i = 0; i < n; i++) {
    tk_regex_free(&list[i].re);
    free(list[i].content);
  }
  free(list);
}

/* ---- a list of owned strings ---- */

typedef struct toks {
  tk_str *v;
  size_t n, cap;
} toks;

static int toks_add(toks *t, const char *p, size_t n) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    tk_str *nv = realloc(t->v, cap * sizeof *nv);
    if (!nv) return ZOE_ENOMEM;
    t->v = nv;
    t->cap = cap;
  }
  t->v[t->n] = (tk_str){0};
  return tk_add(&t->v[t->n++], p, n);
}

static void toks_free(toks *t) {
  for (size_t i = 0; i < t->n; i++) tk_str_free(&t->v[i]);
  free(t->v);
  *t = (toks){0};
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Flush pending byte tokens: their UTF-8 text, or one U+FFFD per byte when invalid. */
static int flush_bytes(toks *out, tk_str *bytes) {
  int rc = 0;
  if (bytes->n == 0) return 0;
  if (zoe_utf8_check(bytes->p, bytes->n) == bytes->n) rc = toks_add(out, bytes->p, bytes->n);
  else
    for (size_t i = 0; i < bytes->n && !rc; i++) rc = toks_add(out, "\xef\xbf\xbd", 3);
  bytes->n = 0;
  return rc;
}

static int apply(const tk_decoder *d, toks *in, toks *out) {
  int rc = 0;
  tk_str bytes = {0}, t = {0};
  for (size_t i = 0; i < in->n && !rc; i++) {
    const char *s = in->v[i].p ? in->v[i].p : "";
    size_t n = in->v[i].n;
    switch (d->kind) {
      case TD_METASPACE: { /* the replacement becomes ' '; in the first token it is dropped */
        t.n = 0;
        rc = tk_add(&t, "", 0);
        for (size_t k = 0; k < n && !rc;) {
          if (k + (size_t)d->nrep <= n && memcmp(s + k, d->rep, (size_t)d->nrep) == 0) {
            if (!(i == 0 && d->prepend)) rc = tk_add(&t, " ", 1);
            k += (size_t)d->nrep;
          } else {
            rc = tk_add(&t, s + k, 1);
            k++;
          }
        }
        if (!rc) rc = toks_add(out, t.p, t.n);
        break;
      }
      case TD_REPLACE:
        rc = tk_regex_replace(&d->re, s, n, d->content, d->ncontent, &t);
        if (!rc) rc = toks_add(out, t.p, t.n);
        break;
      case TD_BYTE_FALLBACK:
        if (n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
          char b = (char)(hexval(s[3]) * 16 + hexval(s[4]));
          rc = tk_add(&bytes, &b, 1);
        } else {
          rc = flush_bytes(out, &bytes);
          if (!rc) rc = toks_add(out, s, n);
        }
        break;
      case TD_FUSE:
        rc = tk_add(&t, s, n);
        break;
      default: { /* TD_STRIP: up to 'start' leading and 'stop' trailing copies of a character */
        size_t b = 0, end = n;
        char ch[4];
        size_t cl = (size_t)zoe_utf8_encode(d->strip_char, ch);
        for (long k = 0; k < d->start && b + cl <= end && memcmp(s + b, ch, cl) == 0; k++) b += cl;
        for (long k = 0; k < d->stop && end >= b + cl && memcmp(s + end - cl, ch, cl) == 0; k++) end -= cl;
        rc = toks_add(out, s + b, end - b);
      }
    }
  }
  if (!rc && d->kind == TD_BYTE_FALLBACK) rc = flush_bytes(out, &bytes);
  if (!rc && d->kind == TD_FUSE) rc = toks_add(out, t.p ? t.p : "", t.n);
  tk_str_free(&bytes);
  tk_str_free(&t);
  return rc;
}

int tk_decode_tokens(const tk_decoder *list, int n, int have_decoder, char **tokens, size_t *lens, size_t ntok,
                     tk_str *out) {
  toks cur = {0}, next = {0};
  int rc = 0;
  for (size_t i = 0; i < ntok && !rc; i++) rc = toks_add(&cur, tokens[i], lens[i]);
  for (int k = 0; k < n && !rc; k++) {
    rc = apply(&list[k], &cur, &next);
    toks_free(&cur);
    cur = next;
    next = (toks){0};
  }
  rc = rc ? rc : tk_add(out, "", 0);
  for (size_t i = 0; i < cur.n && !rc; i++) {
    if (i > 0 && !have_decoder) rc = tk_add(out, " ", 1);
    if (!rc) rc = tk_add(out, cur.v[i].p, cur.v[i].n);
  }
  toks_free(&cur);
  toks_free(&next);
  return rc;
}
