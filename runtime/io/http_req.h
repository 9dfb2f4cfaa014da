/*
** http_req.h: the parts of an HTTP request zoe serve reads itself, as pure
** functions over bytes (no sockets, no allocation): percent-decoding, which
** relative paths may name a file, query parameters, the token comparison, the
** MIME type of a served file. The request line and headers are h2o's to parse.
*/
#ifndef ZOE_HTTP_REQ_H
#define ZOE_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

/* Percent-decode s[0..n) into out (cap bytes, NUL-terminated); '+' stays '+'.
** Returns the length, or -1 for a bad escape, a NUL byte, or no room. */
int zoe_http_decode(const char *s, size_t n, char *out, size_t cap);

/* Whether a decoded relative path may name a served file: 1 to 4 components
** separated by single '/', each of [A-Za-z0-9_.-] not starting with '.', no
** leading '/', at most 255 bytes. ("..", "%2e%2e" once decoded, "/etc", "a//b"
** and ".hidden" are refused.) */
bool zoe_http_safe_path(const char *p);

/* The decoded value of 'key' in a query string q[0..n) ("a=1&b=2"), into out.
** Returns its length, -1 when absent or undecodable. */
int zoe_http_query(const char *q, size_t n, const char *key, char *out, size_t cap);

/* a[0..an) == b[0..bn), in a time that does not depend on where they differ */
bool zoe_http_token_equal(const char *a, size_t an, const char *b, size_t bn);

/* The MIME type of a file by its extension; NULL for a type not served. */
const char *zoe_http_mime(const char *name);

#endif
