/*
** test_unicode.c: grapheme clusters against Unicode's own GraphemeBreakTest.txt
** (Debian's unicode-data), strict UTF-8, and a few character properties.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/io/unicode.h"
#include "test.h"

#define BREAK_TEST "/usr/share/unicode/auxiliary/GraphemeBreakTest.txt"

/* One test line: "÷ 0020 × 0308 ÷ 0020 ÷ # ..." -> text and the expected cluster ends. */
static int parse_line(char *line, char *text, size_t *len, size_t *ends, int *nends) {
  char *hash = strchr(line, '#');
  if (hash) *hash = '\0';
  *len = 0;
  *nends = 0;
  for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
    if (strcmp(tok, "\xc3\xb7") == 0) { /* ÷: a break after what came so far */
      if (*len > 0) ends[(*nends)++] = *len;
    } else if (strcmp(tok, "\xc3\x97") != 0) { /* not ×: a code point */
      *len += (size_t)zoe_utf8_encode((uint32_t)strtoul(tok, NULL, 16), text + *len);
    }
  }
  return *len > 0;
}

static void test_grapheme_break_test(void) {
  FILE *f = fopen(BREAK_TEST, "r");
  if (!f) {
    printf("# SKIP %s is missing (apt-get install unicode-data)\n", BREAK_TEST);
    return;
  }
  char line[2048], text[512];
  size_t ends[64], len;
  int nends, cases = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || !parse_line(line, text, &len, ends, &nends)) continue;
    cases++;
    size_t pos = 0;
    int k = 0, ok = 1;
    while (pos < len) {
      pos = zoe_grapheme_next(text, len, pos);
      if (k >= nends || ends[k++] != pos) ok = 0;
    }
    if (!ok || k != nends) {
      if (bad++ < 5) printf("  mismatch on test %d\n", cases);
    }
  }
  fclose(f);
  CHECK(cases > 500, "only %d cases read", cases);
  CHECK(bad == 0, "%d of %d GraphemeBreakTest cases differ", bad, cases);
  printf("# %d GraphemeBreakTest cases (Unicode %s)\n", cases, zoe_unicode_version);
}

static void test_clusters_by_hand(void) {
  /* family emoji (ZWJ sequence), a skin tone, flags, e + combining acute, CRLF */
  const char *s = "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7" /* 18 */
                  "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"                                      /* 8 */
                  "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7\xf0\x9f\x87\xa9"                      /* FR + D */
                  "e\xcc\x81"
                  "\r\n";
  size_t n = strlen(s), want[] = {18, 26, 34, 38, 41, 43}, pos = 0;
  for (int i = 0; i < 6; i++) {
    pos = zoe_grapheme_next(s, n, pos);
    CHECK(pos == want[i], "cluster %d ends at %zu, expected %zu", i, pos, want[i]);
  }
}

static void test_utf8(void) {
  uint32_t cp = 0;
  CHECK(zoe_utf8_decode("\xe2\x96\x81", 3, &cp) == 3 && cp == 0x2581, "U+2581");
  CHECK(zoe_utf8_decode("\xf4\x8f\xbf\xbf", 4, &cp) == 4 && cp == 0x10ffff, "U+10FFFF");
  CHECK(zoe_utf8_decode("\xc0\xaf", 2, &cp) == 0, "overlong");
  CHECK(zoe_utf8_decode("\xe0\x80\xaf", 3, &cp) == 0, "overlong 3");
  CHECK(zoe_utf8_decode("\xed\xa0\x80", 3, &cp) == 0, "surrogate");
  CHECK(zoe_utf8_decode("\xf4\x90\x80\x80", 4, &cp) == 0, "past U+10FFFF");
  CHECK(zoe_utf8_decode("\xe2\x96", 2, &cp) == 0, "truncated");
  CHECK(zoe_utf8_decode("\x80", 1, &cp) == 0, "continuation byte");
  CHECK(zoe_utf8_check("ab\xe2\x96\x81\xff", 6) == 5, "valid prefix");
  char out[4];
  for (uint32_t c = 0; c < 0x110000; c += 97) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    int l = zoe_utf8_encode(c, out);
    CHECK(zoe_utf8_decode(out, (size_t)l, &cp) == l && cp == c, "round trip %x", (unsigned)c);
  }
}

static void test_properties(void) {
  CHECK(zoe_unicode_props(' ') & ZOE_UP_SPACE, "space");
  CHECK(zoe_unicode_props(0x3000) & ZOE_UP_SPACE, "ideographic space");
  CHECK(!(zoe_unicode_props(0x200b) & ZOE_UP_SPACE), "zero width space is not White_Space");
  CHECK(zoe_unicode_props('a') & ZOE_UP_WORD, "a");
  CHECK(zoe_unicode_props('_') & ZOE_UP_WORD, "_ (Pc)");
  CHECK(zoe_unicode_props(0x0663) & ZOE_UP_WORD, "Arabic-Indic 3 (Nd)");
  CHECK(zoe_unicode_props(0x65e5) & ZOE_UP_WORD, "CJK");
  CHECK(!(zoe_unicode_props('-') & ZOE_UP_WORD), "-");
  CHECK(zoe_unicode_props(0x1f600) & ZOE_UP_EXT_PICT, "emoji");
  CHECK((zoe_unicode_props(0x0301) & 15) == ZOE_GCB_EXTEND, "combining acute");
  CHECK((zoe_unicode_props(0xac00) & 15) == ZOE_GCB_LV, "Hangul GA");
  CHECK((zoe_unicode_props(0xe0000) & 15) == ZOE_GCB_CONTROL, "unassigned default ignorable is Control");
  CHECK((zoe_unicode_props(0x10ffff) & 15) == ZOE_GCB_OTHER, "a noncharacter is Other");
}

int main(void) {
  RUN(test_grapheme_break_test);
  RUN(test_clusters_by_hand);
  RUN(test_utf8);
  RUN(test_properties);
  return test_summary();
}
