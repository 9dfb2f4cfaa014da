/*
** http_req.c: see http_req.h. Everything here reads bytes a client sent, so
** every length is checked before a byte is read or written.
*/
#include "http_req.h"

#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int zoe_http_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = (char)(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0' || o + 1 >= cap) return -1;
    out[o++] = c;
  }
  if (cap == 0) return -1;
  out[o] = '\0';
  return (int)o;
}

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

bool zoe_http_safe_path(const char *p) {
  size_t len = strlen(p);
  if (len == 0 || len > 255) return false;
  int parts = 0;
  size_t i = 0;
  while (i < len) {
    if (p[i] == '.' || p[i] == '/') return false; /* hidden, "..", or an empty component */
    size_t start = i;
    while (i < len && p[i] != '/') {
      if (!name_char(p[i])) return false;
      i++;
    }
    if (i == start || ++parts > 4) return false;
    if (i < len) {
      i++; /* the '/' */
      if (i == len) return false; /* a trailing '/' */
    }
  }
  return true;
}

int zoe_http_query(const char *q, size_t n, const char *key, char *out, size_t cap) {
  size_t klen = strlen(key);
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    while (end < n && q[end] != '&') end++;
    size_t eq = i;
    while (eq < end && q[eq] != '=') eq++;
    if (eq - i == klen && memcmp(q + i, key, klen) == 0) {
      size_t vstart = eq < end ? eq + 1 : end;
      return zoe_http_decode(q + vstart, end - vstart, out, cap);
    }
    i = end + 1;
  }
  return -1;
}

bool zoe_http_token_equal(const char *a, size_t an, const char *b, size_t bn) {
  unsigned char diff = an != bn;
  size_t n = an < bn ? an : bn;
  for (size_t i = 0; i < n; i++) diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

const char *zoe_http_mime(const char *name) {
  static const struct {
    const char *ext, *type;
  } types[] = {
    {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".png", "image/png"}, {".svg", "image/svg+xml"}, {".mp4", "video/mp4"},
    {".webm", "video/webm"}, {".gif", "image/gif"}, {".webp", "image/webp"},
  };
  const char *dot = strrchr(name, '.');
  if (!dot) return NULL;
  for (size_t i = 0; i < sizeof types / sizeof *types; i++)
    if (strcmp(dot, types[i].ext) == 0) return types[i].type;
  return NULL;
}
