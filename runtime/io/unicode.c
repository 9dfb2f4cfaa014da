/*
** unicode.c: UTF-8, property lookup and grapheme cluster boundaries.
** The boundaries follow UAX #29's extended grapheme cluster rules as of the
** table's Unicode version (15.0: no GB9c), checked against GraphemeBreakTest.txt
** by tests/c/test_unicode.c.
*/
#include "unicode.h"

unsigned zoe_unicode_props(uint32_t cp) {
  unsigned lo = 0, hi = zoe_unicode_nranges; /* last entry whose first code point <= cp */
  uint32_t key = cp << 8 | 0xff;
  while (hi - lo > 1) {
    unsigned mid = lo + (hi - lo) / 2;
    if (zoe_unicode_ranges[mid] <= key) lo = mid;
    else hi = mid;
  }
  return zoe_unicode_ranges[lo] & 0xff;
}

int zoe_utf8_decode(const char *str, size_t n, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)str;
  if (n == 0) return 0;
  unsigned c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int len;
  uint32_t v, min;
  if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  if ((size_t)len > n) return 0;
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    v = v << 6 | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

size_t zoe_utf8_check(const char *s, size_t n) {
  size_t i = 0;
  uint32_t cp;
  while (i < n) {
    if ((unsigned char)s[i] < 0x80) {
      i++;
      continue;
    }
    int l = zoe_utf8_decode(s + i, n - i, &cp);
    if (!l) return i;
    i += (size_t)l;
  }
  return n;
}

int zoe_utf8_encode(uint32_t cp, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xc0 | cp >> 6);
    o[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xe0 | cp >> 12);
    o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (unsigned char)(0xf0 | cp >> 18);
  o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
  o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
  o[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

static int is_control(unsigned g) { return g == ZOE_GCB_CR || g == ZOE_GCB_LF || g == ZOE_GCB_CONTROL; }

size_t zoe_grapheme_next(const char *s, size_t n, size_t pos) {
  uint32_t cp;
  int l = zoe_utf8_decode(s + pos, n - pos, &cp);
  if (l <= 0) return pos < n ? pos + 1 : n;
  unsigned p = zoe_unicode_props(cp), pg = p & 15;
  int ri_odd = pg == ZOE_GCB_RI;          /* an odd run of regional indicators ends here */
  int pict = (p & ZOE_UP_EXT_PICT) != 0;  /* ExtPict Extend* so far */
  int pict_zwj = 0;                       /* ExtPict Extend* ZWJ just before */
  size_t i = pos + (size_t)l;
  while (i < n) {
    l = zoe_utf8_decode(s + i, n - i, &cp);
    if (l <= 0) break;
    unsigned q = zoe_unicode_props(cp), g = q & 15;
    int join;
    if (pg == ZOE_GCB_CR && g == ZOE_GCB_LF) join = 1;                        /* GB3 */
    else if (is_control(pg) || is_control(g)) join = 0;                       /* GB4, GB5 */
    else if (pg == ZOE_GCB_L && (g == ZOE_GCB_L || g == ZOE_GCB_V || g == ZOE_GCB_LV || g == ZOE_GCB_LVT))
      join = 1;                                                                /* GB6 */
    else if ((pg == ZOE_GCB_LV || pg == ZOE_GCB_V) && (g == ZOE_GCB_V || g == ZOE_GCB_T)) join = 1; /* GB7 */
    else if ((pg == ZOE_GCB_LVT || pg == ZOE_GCB_T) && g == ZOE_GCB_T) join = 1; /* GB8 */
    else if (g == ZOE_GCB_EXTEND || g == ZOE_GCB_ZWJ || g == ZOE_GCB_SPACINGMARK) join = 1; /* GB9, 9a */
    else if (pg == ZOE_GCB_PREPEND) join = 1;                                  /* GB9b */
    else if (pict_zwj && (q & ZOE_UP_EXT_PICT)) join = 1;                      /* GB11 */
    else if (pg == ZOE_GCB_RI && g == ZOE_GCB_RI && ri_odd) join = 1;          /* GB12, GB13 */
    else join = 0;                                                             /* GB999 */
    if (!join) break;
    pict_zwj = pict && g == ZOE_GCB_ZWJ;
    pict = (q & ZOE_UP_EXT_PICT) || (pict && g == ZOE_GCB_EXTEND);
    ri_odd = g == ZOE_GCB_RI ? !ri_odd : 0;
    pg = g;
    i += (size_t)l;
  }
  return i;
}
