/*
** unicode.h: the Unicode the tokenizer needs: strict UTF-8, a few character
** properties (from unicode_table.c, generated from Debian's unicode-data by
** tools/unicode/gen_unicode_table.py), and extended grapheme clusters (UAX #29).
*/
#ifndef ZOE_UNICODE_H
#define ZOE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Grapheme_Cluster_Break values, in the table's low 4 bits */
enum {
  ZOE_GCB_OTHER, ZOE_GCB_CR, ZOE_GCB_LF, ZOE_GCB_CONTROL, ZOE_GCB_EXTEND, ZOE_GCB_ZWJ,
  ZOE_GCB_RI, ZOE_GCB_PREPEND, ZOE_GCB_SPACINGMARK, ZOE_GCB_L, ZOE_GCB_V, ZOE_GCB_T,
  ZOE_GCB_LV, ZOE_GCB_LVT
};
#define ZOE_UP_EXT_PICT 0x10 /* Extended_Pictographic */
#define ZOE_UP_WORD 0x20     /* \w: Alphabetic, Mark, Nd, Pc, Join_Control */
#define ZOE_UP_SPACE 0x40    /* White_Space */

extern const char zoe_unicode_version[];
extern const unsigned zoe_unicode_nranges;
extern const uint32_t zoe_unicode_ranges[]; /* (first code point << 8) | properties, sorted */

/* The properties byte of a code point. */
unsigned zoe_unicode_props(uint32_t cp);

/*
** Decode one UTF-8 sequence at s[0..n): its length (1..4), or 0 when it is not
** well-formed (overlong, surrogate, past U+10FFFF, truncated).
*/
int zoe_utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Length of the well-formed prefix of s[0..n) (n when all of it is). */
size_t zoe_utf8_check(const char *s, size_t n);
/* Encode 'cp' into out[0..4); returns the length. */
int zoe_utf8_encode(uint32_t cp, char *out);

/* End of the extended grapheme cluster starting at s[pos] (s well-formed UTF-8). */
size_t zoe_grapheme_next(const char *s, size_t n, size_t pos);

#endif
