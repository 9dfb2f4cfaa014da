/*
** tok_regex.c: the regular expressions tokenizer.json files use in Replace, which
** are simple (" {2,}", "▁"): a sequence of atoms -- a literal character, '.', a class
** [...] or \s \S \w \W -- each with an optional greedy quantifier (? * + {n} {n,} {n,m}).
** Matching is leftmost and greedy with backtracking, as Oniguruma does for these.
** Groups, alternation, anchors and lazy quantifiers are refused with a clear error,
** as are patterns that match the empty string.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"
#include "unicode.h"

#define MAX_ATOMS 32
#define STEP_BUDGET 2000000 /* backtracking steps per search: a hostile pattern fails, not hangs */

static int bad(zoe_err *e, const char *pattern, size_t len, const char *why) {
  return zoe_errf(e, ZOE_ENOTSUP, "regex '%.*s': %s", (int)(len > 80 ? 80 : len), pattern, why);
}

/* An escape after '\': a class escape (props) or a literal character. */
static int escape(const char *p, size_t n, size_t *i, uint32_t *lit, unsigned *props, unsigned *nprops) {
  if (*i >= n) return -1;
  char c = p[(*i)++];
  *props = *nprops = 0;
  switch (c) {
    case 's': *props = ZOE_UP_SPACE; return 1;
    case 'S': *nprops = ZOE_UP_SPACE; return 1;
    case 'w': *props = ZOE_UP_WORD; return 1;
    case 'W': *nprops = ZOE_UP_WORD; return 1;
    case 't': *lit = '\t'; return 0;
    case 'n': *lit = '\n'; return 0;
    case 'r': *lit = '\r'; return 0;
    case 'f': *lit = '\f'; return 0;
    case 'v': *lit = '\v'; return 0;
    default:
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return -1;
      (*i)--; /* an escaped punctuation or other character stands for itself */
      {
        int l = zoe_utf8_decode(p + *i, n - *i, lit);
        if (l <= 0) return -1;
        *i += (size_t)l;
      }
      return 0;
  }
}

static int parse_class(tk_atom *a, const char *p, size_t n, size_t *i) {
  if (*i < n && p[*i] == '^') a->negate = 1, (*i)++;
  int first = 1;
  while (*i < n && (p[*i] != ']' || first)) {
    first = 0;
    uint32_t lo, hi;
    unsigned pr = 0, npr = 0;
    if (p[*i] == '[') return -1; /* nested classes, [:alpha:] */
    if (p[*i] == '\\') {
      (*i)++;
      int k = escape(p, n, i, &lo, &pr, &npr);
      if (k < 0 || npr) return -1;
      if (k == 1) {
        a->props |= pr;
        continue;
      }
    } else {
      int l = zoe_utf8_decode(p + *i, n - *i, &lo);
      if (l <= 0) return -1;
      *i += (size_t)l;
    }
    hi = lo;
    if (*i + 1 < n && p[*i] == '-' && p[*i + 1] != ']') {
      (*i)++;
      int l = zoe_utf8_decode(p + *i, n - *i, &hi);
      if (l <= 0 || p[*i] == '\\' || hi < lo) return -1;
      *i += (size_t)l;
    }
    uint32_t(*nr)[2] = realloc(a->ranges, (size_t)(a->nranges + 1) * sizeof *nr);
    if (!nr) return -2;
    a->ranges = nr;
    a->ranges[a->nranges][0] = lo;
    a->ranges[a->nranges++][1] = hi;
  }
  if (*i >= n) return -1;
  (*i)++; /* ']' */
  return 0;
}

static int parse_count(const char *p, size_t n, size_t *i, unsigned *v) {
  size_t s = *i;
  unsigned long x = 0;
  while (*i < n && p[*i] >= '0' && p[*i] <= '9' && x < 100000) x = x * 10 + (unsigned long)(p[(*i)++] - '0');
  *v = (unsigned)x;
  return *i > s && x < 100000 ? 0 : -1;
}

static int quantifier(tk_atom *a, const char *p, size_t n, size_t *i) {
  a->min = a->max = 1;
  if (*i >= n) return 0;
  char c = p[*i];
  if (c == '?') a->min = 0, (*i)++;
  else if (c == '*') a->min = 0, a->max = UINT32_MAX, (*i)++;
  else if (c == '+') a->max = UINT32_MAX, (*i)++;
  else if (c == '{') {
    (*i)++;
    if (parse_count(p, n, i, &a->min)) return -1;
    a->max = a->min;
    if (*i < n && p[*i] == ',') {
      (*i)++;
      a->max = UINT32_MAX;
      if (*i < n && p[*i] != '}' && parse_count(p, n, i, &a->max)) return -1;
    }
    if (*i >= n || p[*i] != '}' || a->max < a->min) return -1;
    (*i)++;
  } else {
    return 0;
  }
  if (*i < n && (p[*i] == '?' || p[*i] == '+')) return -2; /* lazy or possessive */
  return 0;
}

int tk_regex_compile(tk_regex *re, const char *p, size_t n, zoe_err *e) {
  memset(re, 0, sizeof *re);
  re->atoms = calloc(MAX_ATOMS, sizeof *re->atoms);
  if (!re->atoms) return zoe_errf(e, ZOE_ENOMEM, "regex: out of memory");
  size_t i = 0;
  int empty = 1;
  while (i < n) {
    if (re->n == MAX_ATOMS) return tk_regex_free(re), bad(e, p, n, "too long");
    tk_atom *a = &re->atoms[re->n++];
    char c = p[i];
    if (strchr("()|^$", c)) return tk_regex_free(re), bad(e, p, n, "groups, alternation and anchors are not supported");
    if (strchr("*+?{}", c)) return tk_regex_free(re), bad(e, p, n, "a quantifier with nothing before it");
    if (c == '.') {
      a->kind = 2;
      i++;
    } else if (c == '[') {
      a->kind = 1;
      i++;
      int rc = parse_class(a, p, n, &i);
      if (rc) return tk_regex_free(re), rc == -2 ? zoe_errf(e, ZOE_ENOMEM, "regex: out of memory")
                                                 : bad(e, p, n, "unsupported character class");
    } else if (c == '\\') {
      i++;
      unsigned pr, npr;
      int k = escape(p, n, &i, &a->lit, &pr, &npr);
      if (k < 0) return tk_regex_free(re), bad(e, p, n, "unsupported escape");
      if (k == 1) {
        a->kind = 1;
        a->props = pr;
        a->nprops = npr;
      }
    } else {
      int l = zoe_utf8_decode(p + i, n - i, &a->lit);
      if (l <= 0) return tk_regex_free(re), bad(e, p, n, "not UTF-8");
      i += (size_t)l;
    }
    int q = quantifier(a, p, n, &i);
    if (q) return tk_regex_free(re), bad(e, p, n, q == -2 ? "lazy and possessive quantifiers are not supported"
                                                          : "bad quantifier");
    if (a->min > 0) empty = 0;
  }
  if (empty) return tk_regex_free(re), bad(e, p, n, "matches the empty string");
  return 0;
}

int tk_regex_literal(tk_regex *re, const char *s, size_t n, zoe_err *e) {
  memset(re, 0, sizeof *re);
  if (n == 0) return zoe_errf(e, ZOE_EINVAL, "Replace: empty pattern");
  /* an atom per byte at most: counting lead bytes undercounts invalid UTF-8 (a stray
     continuation byte), and the atom it would have needed was written past the end */
  re->atoms = calloc(n, sizeof *re->atoms);
  if (!re->atoms) return zoe_errf(e, ZOE_ENOMEM, "regex: out of memory");
  for (size_t i = 0; i < n;) {
    uint32_t c;
    int l = zoe_utf8_decode(s + i, n - i, &c);
    if (l <= 0) return tk_regex_free(re), zoe_errf(e, ZOE_EINVAL, "Replace: pattern is not UTF-8 (at byte %zu)", i + 1);
    tk_atom *a = &re->atoms[re->n++];
    a->lit = c;
    a->min = a->max = 1;
    i += (size_t)l;
  }
  return 0;
}

void tk_regex_free(tk_regex *re) {
  if (re->atoms)
    for (int i = 0; i < re->n; i++) free(re->atoms[i].ranges);
  free(re->atoms);
  re->atoms = NULL;
  re->n = 0;
}

static int atom_matches(const tk_atom *a, uint32_t c) {
  if (a->kind == 0) return c == a->lit;
  if (a->kind == 2) return c != '\n';
  int in = 0;
  for (int k = 0; k < a->nranges && !in; k++) in = c >= a->ranges[k][0] && c <= a->ranges[k][1];
  unsigned pr = (a->props || a->nprops) ? zoe_unicode_props(c) : 0;
  if (a->props & pr) in = 1;
  if (a->nprops && !(pr & a->nprops)) in = 1;
  return in != a->negate;
}

/* End of a match of atoms [k..] at 'pos', or -1; -2 when the step budget ran out. */
static long match_at(const tk_regex *re, int k, const char *s, size_t n, size_t pos, long *steps) {
  if (k == re->n) return (long)pos;
  const tk_atom *a = &re->atoms[k];
  size_t ends[64], count = 0, at = pos; /* ends of 1, 2, ... repetitions (the last 64 kept) */
  size_t first_end = 0;
  while (count < a->max && at < n) {
    if (++*steps > STEP_BUDGET) return -2;
    uint32_t c;
    int l = zoe_utf8_decode(s + at, n - at, &c);
    if (l <= 0 || !atom_matches(a, c)) break;
    at += (size_t)l;
    ends[count % 64] = at;
    if (count == 0) first_end = at;
    count++;
  }
  if (count < a->min) return -1;
  /* greedy: try the most repetitions first, backing off one character at a time */
  for (size_t r = count + 1; r-- > a->min;) {
    size_t end;
    if (r == 0) end = pos;
    else if (count - r < 64) end = ends[(r - 1) % 64];
    else { /* further back than remembered: step back over UTF-8 from the oldest kept end */
      end = first_end;
      for (size_t j = 1; j < r; j++) {
        uint32_t c;
        end += (size_t)zoe_utf8_decode(s + end, n - end, &c);
      }
    }
    long got = match_at(re, k + 1, s, n, end, steps);
    if (got != -1) return got;
  }
  return -1;
}

int tk_regex_find(const tk_regex *re, const char *s, size_t n, size_t from, size_t *mb, size_t *me) {
  long steps = 0;
  for (size_t start = from; start < n;) {
    long end = match_at(re, 0, s, n, start, &steps);
    if (end == -2) return -1;
    if (end >= 0) {
      *mb = start;
      *me = (size_t)end;
      return 1;
    }
    uint32_t c;
    int l = zoe_utf8_decode(s + start, n - start, &c);
    start += l > 0 ? (size_t)l : 1;
  }
  return 0;
}

int tk_regex_replace(const tk_regex *re, const char *s, size_t n, const char *with, size_t wn, tk_str *out) {
  size_t pos = 0, mb, me;
  int found;
  out->n = 0;
  if (tk_add(out, "", 0)) return ZOE_ENOMEM;
  while ((found = tk_regex_find(re, s, n, pos, &mb, &me)) == 1) {
    if (tk_add(out, s + pos, mb - pos) || tk_add(out, with, wn)) return ZOE_ENOMEM;
    pos = me;
  }
  if (found < 0) return ZOE_ERANGE;
  return tk_add(out, s + pos, n - pos);
}
