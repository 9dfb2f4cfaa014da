/*
** suggest.h: "did you mean": the known names closest to a misspelled one, for
** error messages (an unknown weight name, an unknown option).
*/
#ifndef ZOE_SUGGEST_H
#define ZOE_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance of a and b, or 'limit' once it must reach 'limit'. */
size_t zoe_edit_distance(const char *a, const char *b, size_t limit);

/* The names name_at(ctx, 0..n-1) */
typedef const char *(*zoe_name_at)(const void *ctx, size_t i);

/*
** Up to 'max' (at most 16) of the n names closest to 'name', nearest first, leaving
** out those too far to be a typo of it (a third of its length plus 2 edits or more).
** Returns how many went into 'out'.
*/
size_t zoe_suggest(const char *name, zoe_name_at name_at, const void *ctx, size_t n, const char **out, size_t max);

#endif
