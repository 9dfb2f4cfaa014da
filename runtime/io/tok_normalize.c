/*
** tok_normalize.c: normalizers. The Precompiled one is sentencepiece's charsmap:
**   [u32 LE trie size][darts-clone double-array units][NUL-separated replacements]
** applied as the tokenizers library does: per extended grapheme cluster, a cluster
** under 6 bytes whose bytes have a prefix in the map is replaced whole by the
** shortest such prefix's replacement; otherwise each character is looked up alone.
** (sentencepiece itself matches the longest prefix at each position; the two can
** differ, and HF's rule is the reference.)
*/
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"
#include "unicode.h"

/* ---- Precompiled ---- */

static int b64_value(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Standard base64 with padding; NULL when malformed. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *out_len) {
  while (n > 0 && s[n - 1] == '=') n--;
  if (n % 4 == 1) return NULL;
  unsigned char *out = malloc(n / 4 * 3 + 3);
  if (!out) return NULL;
  size_t o = 0;
  uint32_t acc = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value((unsigned char)s[i]);
    if (v < 0) {
      free(out);
      return NULL;
    }
    acc = acc << 6 | (uint32_t)v;
    if (i % 4 == 3) {
      out[o++] = (unsigned char)(acc >> 16);
      out[o++] = (unsigned char)(acc >> 8);
      out[o++] = (unsigned char)acc;
      acc = 0;
    }
  }
  if (n % 4 == 2) out[o++] = (unsigned char)(acc >> 4);
  if (n % 4 == 3) {
    out[o++] = (unsigned char)(acc >> 10);
    out[o++] = (unsigned char)(acc >> 2);
  }
  *out_len = o;
  return out;
}

int tk_charsmap_set(tk_normalizer *nz, const unsigned char *blob, size_t len, const char *where, zoe_err *e) {
  uint32_t trie = len >= 4 ? (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                                 (uint32_t)blob[3] << 24
                           : 0;
  if (len < 4 || trie % 4 || trie > len - 4 || trie == 0)
    return zoe_errf(e, ZOE_EFORMAT, "%s: the precompiled charsmap is malformed (%zu bytes, trie of %u)", where, len,
                    (unsigned)trie);
  nz->nunits = trie / 4;
  nz->units = malloc(trie);
  nz->nrepl = len - 4 - trie;
  nz->repl = malloc(nz->nrepl + 1);
  if (!nz->units || !nz->repl) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  for (size_t i = 0; i < nz->nunits; i++) {
    const unsigned char *u = blob + 4 + 4 * i;
    nz->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
  }
  memcpy(nz->repl, blob + 4 + trie, nz->nrepl);
  nz->repl[nz->nrepl] = '\0';
  if (zoe_utf8_check(nz->repl, nz->nrepl) != nz->nrepl)
    return zoe_errf(e, ZOE_EFORMAT, "%s: the precompiled charsmap's replacements are not UTF-8", where);
  return 0;
}

static int parse_precompiled(const cJSON *j, tk_normalizer *nz, const char *where, zoe_err *e) {
  const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "precompiled_charsmap");
  if (!cJSON_IsString(map))
    return zoe_errf(e, ZOE_EFORMAT, "%s: Precompiled \"precompiled_charsmap\" is %s, not a base64 string",
                    where, tk_json_type(map));
  size_t len = 0;
  unsigned char *blob = b64_decode(map->valuestring, strlen(map->valuestring), &len);
  if (!blob) return zoe_errf(e, ZOE_EFORMAT, "%s: Precompiled charsmap is not valid base64", where);
  int rc = tk_charsmap_set(nz, blob, len, where, e);
  free(blob);
  return rc;
}

/*
** darts-clone common prefix search over 'key' (stopping at a NUL byte): the value
** and length of the shortest prefix in the map (longest = 0, HF's rule) or of the
** longest (longest = 1, sentencepiece's); -1 when none. Every index is bounds-checked.
*/
static long charsmap_search(const tk_normalizer *nz, const unsigned char *key, size_t n, int longest, size_t *len) {
  const uint32_t *u = nz->units;
  size_t pos = 0;
  long found = -1;
#define OFFSET(x) (((x) >> 10) << (((x) & (1u << 9)) >> 6))
  pos ^= OFFSET(u[0]);
  for (size_t i = 0; i < n && key[i]; i++) {
    pos ^= key[i];
    if (pos >= nz->nunits) break;
    uint32_t unit = u[pos];
    if ((unit & (0x80000000u | 0xff)) != key[i]) break;
    pos ^= OFFSET(unit);
    if (pos >= nz->nunits) break;
    if ((unit >> 8) & 1) {
      found = (long)(u[pos] & 0x7fffffff);
      *len = i + 1;
      if (!longest) break;
    }
  }
#undef OFFSET
  return found;
}

/* Replacement for 'chunk', or NULL: the string at the shortest matching prefix's value. */
static const char *transform(const tk_normalizer *nz, const char *chunk, size_t n, size_t *len) {
  size_t matched;
  long v = charsmap_search(nz, (const unsigned char *)chunk, n, 0, &matched);
  if (v < 0 || (size_t)v > nz->nrepl) return NULL;
  const char *r = nz->repl + v;
  *len = strlen(r); /* repl is NUL-terminated past its end */
  return r;
}

static int precompiled(const tk_normalizer *nz, const char *s, size_t n, tk_str *out) {
  size_t pos = 0, rl;
  while (pos < n) {
    size_t end = zoe_grapheme_next(s, n, pos);
    const char *r = end - pos < 6 ? transform(nz, s + pos, end - pos, &rl) : NULL;
    if (r) {
      if (tk_add(out, r, rl)) return ZOE_ENOMEM;
    } else {
      for (size_t i = pos; i < end;) {
        uint32_t c;
        int l = zoe_utf8_decode(s + i, end - i, &c);
        if (l <= 0) l = 1;
        r = transform(nz, s + i, (size_t)l, &rl);
        if (r ? tk_add(out, r, rl) : tk_add(out, s + i, (size_t)l)) return ZOE_ENOMEM;
        i += (size_t)l;
      }
    }
    pos = end;
  }
  return 0;
}

/* ---- sentencepiece's normalizer (spm.c loads it; normalizer.cc is the reference) ---- */

static const char SPACE_SYMBOL[] = "\xe2\x96\x81"; /* U+2581 */

/*
** NormalizePrefix: the normalized form of what starts at s, and the bytes it consumes:
** a user-defined piece as it is, else the longest charsmap rule, else one character
** (a malformed byte becomes U+FFFD).
*/
static const char *spm_prefix(const tk_normalizer *nz, const char *s, size_t n, size_t *len, size_t *used) {
  size_t ul = tk_trie_longest(&nz->user, s, n);
  if (ul) {
    *len = *used = ul;
    return s;
  }
  size_t ml;
  long v = nz->units ? charsmap_search(nz, (const unsigned char *)s, n, 1, &ml) : -1;
  if (v >= 0 && (size_t)v <= nz->nrepl) {
    *used = ml;
    *len = strlen(nz->repl + v);
    return nz->repl + v;
  }
  uint32_t c;
  int l = zoe_utf8_decode(s, n, &c);
  if (l <= 0) {
    *used = 1;
    *len = 3;
    return "\xef\xbf\xbd";
  }
  *len = *used = (size_t)l;
  return s;
}

/*
** Normalize: leading spaces dropped, a dummy '▁' prefix, each rule's output with
** spaces as '▁' and runs of spaces (across rules) made one, trailing ones dropped.
*/
static int spm_normalize(const tk_normalizer *nz, const char *s, size_t n, tk_str *out) {
  size_t len, used;
  const char *p;
  if (nz->remove_spaces)
    while (n > 0 && (p = spm_prefix(nz, s, n, &len, &used)) && len == 1 && p[0] == ' ') s += used, n -= used;
  if (n == 0) return 0;
  const char *ws = nz->escape_spaces ? SPACE_SYMBOL : " ";
  size_t wsn = nz->escape_spaces ? 3 : 1;
  if (!nz->ws_suffix && nz->dummy_prefix && tk_add(out, ws, wsn)) return ZOE_ENOMEM;
  int prev_space = nz->remove_spaces;
  while (n > 0) {
    p = spm_prefix(nz, s, n, &len, &used);
    while (prev_space && len > 0 && p[0] == ' ') p++, len--;
    if (len > 0) {
      for (size_t i = 0; i < len; i++)
        if (nz->escape_spaces && p[i] == ' ' ? tk_add(out, SPACE_SYMBOL, 3) : tk_add(out, p + i, 1)) return ZOE_ENOMEM;
      prev_space = p[len - 1] == ' ';
    }
    s += used, n -= used;
    if (!nz->remove_spaces) prev_space = 0;
  }
  if (nz->remove_spaces)
    while (out->n >= wsn && memcmp(out->p + out->n - wsn, ws, wsn) == 0) out->p[out->n -= wsn] = '\0';
  if (nz->ws_suffix && nz->dummy_prefix && tk_add(out, ws, wsn)) return ZOE_ENOMEM;
  return 0;
}

/* ---- parsing ---- */

static int parse_one(const cJSON *j, tk_normalizer **list, int *n, int depth, const char *where, zoe_err *e);

static int push(tk_normalizer **list, int *n, tk_normalizer **out) {
  tk_normalizer *nl = realloc(*list, (size_t)(*n + 1) * sizeof *nl);
  if (!nl) return ZOE_ENOMEM;
  *list = nl;
  *out = &nl[(*n)++];
  memset(*out, 0, sizeof **out);
  return 0;
}

static int parse_replace(const cJSON *j, tk_normalizer *nz, const char *where, zoe_err *e) {
  const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
  const cJSON *content = cJSON_GetObjectItemCaseSensitive(j, "content");
  const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
  const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
  if (!cJSON_IsString(content))
    return zoe_errf(e, ZOE_EFORMAT, "%s: Replace \"content\" is %s, not a string", where, tk_json_type(content));
  int rc;
  if (cJSON_IsString(str)) rc = tk_regex_literal(&nz->re, str->valuestring, strlen(str->valuestring), e);
  else if (cJSON_IsString(rx)) rc = tk_regex_compile(&nz->re, rx->valuestring, strlen(rx->valuestring), e);
  else return zoe_errf(e, ZOE_EFORMAT, "%s: Replace \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", where);
  if (rc) return zoe_err_prefix(e, "%s: Replace", where);
  nz->content = strdup(content->valuestring);
  nz->ncontent = strlen(content->valuestring);
  return nz->content ? 0 : zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
}

static int parse_one(const cJSON *j, tk_normalizer **list, int *n, int depth, const char *where, zoe_err *e) {
  if (!j || cJSON_IsNull(j)) return 0; /* absent or null: none */
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
  if (!cJSON_IsString(type))
    return zoe_errf(e, ZOE_EFORMAT, "%s: a normalizer without a \"type\" string", where);
  const char *t = type->valuestring;
  tk_normalizer *nz;
  if (strcmp(t, "Sequence") == 0) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "normalizers"), *c;
    if (!cJSON_IsArray(items)) return zoe_errf(e, ZOE_EFORMAT, "%s: Sequence \"normalizers\" is not an array", where);
    if (depth > 8) return zoe_errf(e, ZOE_EFORMAT, "%s: normalizers nested too deep", where);
    cJSON_ArrayForEach(c, items) {
      int rc = parse_one(c, list, n, depth + 1, where, e);
      if (rc) return rc;
    }
    return 0;
  }
  if (push(list, n, &nz)) return zoe_errf(e, ZOE_ENOMEM, "%s: out of memory", where);
  if (strcmp(t, "Precompiled") == 0) {
    nz->kind = TN_PRECOMPILED;
    return parse_precompiled(j, nz, where, e);
  }
  if (strcmp(t, "Replace") == 0) {
    nz->kind = TN_REPLACE;
    return parse_replace(j, nz, where, e);
  }
  if (strcmp(t, "Strip") == 0) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "strip_left");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "strip_right");
    if (!cJSON_IsBool(l) || !cJSON_IsBool(r))
      return zoe_errf(e, ZOE_EFORMAT, "%s: Strip needs booleans \"strip_left\" and \"strip_right\"", where);
    nz->kind = TN_STRIP;
    nz->left = cJSON_IsTrue(l);
    nz->right = cJSON_IsTrue(r);
    return 0;
  }
  (*n)--;
  return zoe_errf(e, ZOE_ENOTSUP, "%s: normalizer '%.40s' is not supported (Precompiled, Replace, Strip, "
                  "Sequence)", where, t);
}

int tk_normalizers_parse(const cJSON *j, tk_normalizer **list, int *n, const char *where, zoe_err *e) {
  *list = NULL;
  *n = 0;
  return parse_one(j, list, n, 0, where, e);
}

void tk_normalizers_free(tk_normalizer *list, int n) {
  for (int i = 0; i < n; i++) {
    free(list[i].units);
    free(list[i].repl);
    tk_regex_free(&list[i].re);
    free(list[i].content);
    tk_trie_free(&list[i].user);
  }
  free(list);
}

/* ---- applying ---- */

static int is_space_at(const char *s, size_t n, size_t i, size_t *len) {
  uint32_t c;
  int l = zoe_utf8_decode(s + i, n - i, &c);
  if (l <= 0 || !(zoe_unicode_props(c) & ZOE_UP_SPACE)) return 0;
  *len = (size_t)l;
  return 1;
}

static int strip(const tk_normalizer *nz, const char *s, size_t n, tk_str *out) {
  size_t b = 0, e = n, l;
  if (nz->left)
    while (b < e && is_space_at(s, e, b, &l)) b += l;
  if (nz->right)
    while (e > b) {
      size_t k = e - 1;
      while (k > b && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
      if (!is_space_at(s, e, k, &l)) break;
      e = k;
    }
  return tk_add(out, s + b, e - b);
}

int tk_normalize(const tk_normalizer *list, int n, const char *s, size_t len, tk_str *out) {
  tk_str a = {0}, b = {0};
  int rc = tk_add(&a, s, len);
  for (int i = 0; i < n && !rc; i++) {
    b.n = 0;
    if (list[i].kind == TN_REPLACE) {
      rc = tk_regex_replace(&list[i].re, a.p, a.n, list[i].content, list[i].ncontent, &b);
    } else {
      rc = tk_add(&b, "", 0);
      if (!rc && list[i].kind == TN_PRECOMPILED) rc = precompiled(&list[i], a.p, a.n, &b);
      else if (!rc && list[i].kind == TN_SPM) rc = spm_normalize(&list[i], a.p, a.n, &b);
      else if (!rc) rc = strip(&list[i], a.p, a.n, &b);
    }
    tk_str t = a;
    a = b;
    b = t;
  }
  tk_str_free(&b);
  if (rc) {
    tk_str_free(&a);
    return rc;
  }
  *out = a;
  return 0;
}
