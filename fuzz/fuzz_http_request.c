/*
** fuzz_http_request: a request as zoe serve reads it. h2o's parser (picohttpparser, in
** libh2o) splits the request line and headers; then what lhttp.c does with them: the path
** percent-decoded, checked by zoe_http_safe_path, its MIME type; the token from the query
** and the Authorization header compared. A path zoe_http_safe_path accepts is checked again
** here by other code: one that could leave the folder (a "..", a hidden or empty component,
** an absolute path, a byte outside [A-Za-z0-9_.-/]) is a crash.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/io/http_req.h"

/* picohttpparser's interface, as libh2o exports it */
struct phr_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_safe(const char *p) {
  size_t n = strlen(p);
  if (n == 0 || n > 255 || p[0] == '/' || p[n - 1] == '/') abort();
  int parts = 0;
  for (const char *c = p; *c;) {
    const char *e = strchr(c, '/');
    size_t len = e ? (size_t)(e - c) : strlen(c);
    if (len == 0 || c[0] == '.') abort(); /* "", ".", "..", ".hidden" */
    for (size_t i = 0; i < len; i++) {
      char ch = c[i];
      int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               ch == '-' || ch == '.';
      if (!ok) abort();
    }
    parts++;
    c = e ? e + 1 : c + len;
  }
  if (parts > 4) abort();
}

static void path_checks(const char *path, size_t len) {
  char dec[1024];
  int d = zoe_http_decode(path, len, dec, sizeof dec);
  if (d < 0) return;
  if (strlen(dec) != (size_t)d) abort(); /* a NUL got through */
  const char *rel = dec[0] == '/' ? dec + 1 : dec;
  if (zoe_http_safe_path(rel)) check_safe(rel);
  if (zoe_http_safe_path(dec)) check_safe(dec);
  (void)zoe_http_mime(rel);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf = (const char *)data;
  const char *method, *path;
  size_t mlen, plen, nh = 32;
  int minor;
  struct phr_header h[32];
  int n = phr_parse_request(buf, size, &method, &mlen, &path, &plen, &minor, h, &nh, 0);
  if (n > 0) {
    const char *q = memchr(path, '?', plen);
    size_t pl = q ? (size_t)(q - path) : plen;
    path_checks(path, pl);
    if (q) {
      char tok[256];
      int t = zoe_http_query(q + 1, plen - pl - 1, "token", tok, sizeof tok);
      if (t >= (int)sizeof tok) abort();
      if (t >= 0 && zoe_http_token_equal(tok, (size_t)t, "sesame", 6) != (t == 6 && memcmp(tok, "sesame", 6) == 0))
        abort();
    }
    for (size_t i = 0; i < nh; i++)
      if (h[i].name_len == 13 && strncasecmp(h[i].name, "authorization", 13) == 0 && h[i].value_len > 7)
        (void)zoe_http_token_equal(h[i].value + 7, h[i].value_len - 7, "sesame", 6);
  }
  /* the raw bytes too: the parser refuses most of them before our code sees them */
  path_checks(buf, size);
  char out[512];
  int t = zoe_http_query(buf, size, "token", out, sizeof out);
  if (t >= (int)sizeof out) abort();
  return 0;
}
