/*
** suggest.c: edit distances for "did you mean" messages.
*/
#include "suggest.h"

#include <stdlib.h>
#include <string.h>

size_t zoe_edit_distance(const char *a, const char *b, size_t limit) {
  size_t la = strlen(a), lb = strlen(b);
  if ((la > lb ? la - lb : lb - la) >= limit) return limit;
  size_t *row = malloc((lb + 1) * sizeof *row);
  if (!row) return limit;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0], best = row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t v = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < v) v = up + 1;
      if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
      row[j] = v;
      diag = up;
      if (v < best) best = v;
    }
    if (best >= limit) { /* every path is already too long */
      free(row);
      return limit;
    }
  }
  size_t d = row[lb];
  free(row);
  return d < limit ? d : limit;
}

size_t zoe_suggest(const char *name, zoe_name_at name_at, const void *ctx, size_t n, const char **out, size_t max) {
  if (max == 0) return 0;
  size_t limit = strlen(name) / 3 + 2; /* farther than this is no longer a typo */
  size_t found = 0, dist[16];
  if (max > 16) max = 16;
  for (size_t i = 0; i < n; i++) {
    const char *cand = name_at(ctx, i);
    size_t d = zoe_edit_distance(name, cand, limit);
    if (d >= limit) continue;
    if (found == max && d >= dist[found - 1]) continue;
    size_t k = found < max ? found++ : max - 1; /* insert in order of distance, dropping the worst */
    while (k > 0 && dist[k - 1] > d) {
      dist[k] = dist[k - 1];
      out[k] = out[k - 1];
      k--;
    }
    dist[k] = d;
    out[k] = cand;
  }
  return found;
}
