/*
** tok_impl.h: the parts of the tokenizer, shared by its files (tokenizer*.c, tok_*.c).
** Text is UTF-8 bytes checked once on entry; every stage works on byte strings.
*/
#ifndef ZOE_TOK_IMPL_H
#define ZOE_TOK_IMPL_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "tokenizer.h"

/* ---- growable strings ---- */

typedef struct tk_str {
  char *p;
  size_t n, cap;
} tk_str;

int tk_add(tk_str *s, const char *p, size_t n); /* 0 or ZOE_ENOMEM */
void tk_str_free(tk_str *s);

/* ---- splits: the text cut into pieces on its way through the pipeline ---- */

typedef struct tk_split {
  char *p; /* owned */
  size_t n;
  int32_t id; /* >= 0: an added token, final; -1: text still to tokenize */
  int first;  /* starts at the beginning of the input (Metaspace prepend_scheme "first") */
} tk_split;

typedef struct tk_splits {
  tk_split *v;
  size_t n, cap;
} tk_splits;

int tk_splits_add(tk_splits *s, const char *p, size_t n, int32_t id, int first);
void tk_splits_free(tk_splits *s);

/* ---- a small regex: a sequence of atoms (literal, class, '.') each with a quantifier ---- */

typedef struct tk_atom {
  int kind;             /* 0 literal, 1 class, 2 any but newline */
  uint32_t lit;
  uint32_t (*ranges)[2]; /* class: inclusive code point ranges */
  int nranges, negate;
  unsigned props, nprops; /* class escapes: \w \s \d as property masks, and their negations */
  unsigned min, max;    /* quantifier; max UINT32_MAX for unbounded */
} tk_atom;

typedef struct tk_regex {
  tk_atom *atoms;
  int n;
} tk_regex;

int tk_regex_compile(tk_regex *re, const char *pattern, size_t len, zoe_err *e);
/* A literal pattern (a Replace "String"). */
int tk_regex_literal(tk_regex *re, const char *s, size_t len, zoe_err *e);
void tk_regex_free(tk_regex *re);
/* Leftmost match at or after 'from' (greedy, as a backtracking engine); 1 when found. */
int tk_regex_find(const tk_regex *re, const char *s, size_t n, size_t from, size_t *mb, size_t *me);
/* Replace every match of 're' in s with 'with' into 'out'. */
int tk_regex_replace(const tk_regex *re, const char *s, size_t n, const char *with, size_t wn, tk_str *out);

/* ---- a byte trie (the Unigram vocabulary) ---- */

typedef struct tk_trie_node {
  uint32_t child;  /* first child; children are contiguous and sorted by label */
  uint32_t nchild : 9;
  uint32_t label : 8;
  int32_t id;      /* >= 0 when a piece ends here */
} tk_trie_node;

typedef struct tk_trie {
  tk_trie_node *nodes;
  size_t n;
} tk_trie;

/* Build from 'count' strings; ids[i] is the value of strs[i] (the last wins for repeats). */
int tk_trie_build(tk_trie *t, const char *const *strs, const size_t *lens, const int32_t *ids,
                  size_t count, zoe_err *e);
void tk_trie_free(tk_trie *t);
/* The child of 'node' labelled c, or -1. */
long tk_trie_child(const tk_trie *t, size_t node, unsigned char c);
/* Length of the longest key that prefixes s[0..n) (0: none, or an empty trie). */
size_t tk_trie_longest(const tk_trie *t, const char *s, size_t n);

/* ---- string -> id map ---- */

typedef struct tk_map {
  uint32_t *slots; /* index + 1 into keys, 0 empty */
  size_t cap;
  const char *const *keys;
  const size_t *lens;
} tk_map;

int tk_map_build(tk_map *m, const char *const *keys, const size_t *lens, size_t count, zoe_err *e);
/* Index of the key (the last one for repeats), or -1. */
long tk_map_find(const tk_map *m, const char *s, size_t n);
void tk_map_free(tk_map *m);

/* ---- normalizers ---- */

enum { TN_PRECOMPILED, TN_REPLACE, TN_STRIP, TN_SPM };

typedef struct tk_normalizer {
  int kind;
  /* Precompiled and SPM: darts-clone units and the replacement strings (none: identity) */
  uint32_t *units;
  size_t nunits;
  char *repl;
  size_t nrepl;
  /* SPM: sentencepiece's own normalizer (its NormalizerSpec; see spm.c) */
  int dummy_prefix, remove_spaces, escape_spaces, ws_suffix;
  tk_trie user; /* user-defined pieces, matched first and kept as they are */
  /* Replace */
  tk_regex re;
  char *content;
  size_t ncontent;
  /* Strip */
  int left, right;
} tk_normalizer;

/* Parse a normalizer (a Sequence flattens into the list). */
int tk_normalizers_parse(const cJSON *j, tk_normalizer **list, int *n, const char *where, zoe_err *e);
void tk_normalizers_free(tk_normalizer *list, int n);
int tk_normalize(const tk_normalizer *list, int n, const char *s, size_t len, tk_str *out);
/* Check a charsmap blob ([u32 LE trie size][units][NUL-separated replacements]) and copy it into nz. */
int tk_charsmap_set(tk_normalizer *nz, const unsigned char *blob, size_t len, const char *where, zoe_err *e);

/* ---- pre-tokenizers ---- */

enum { TP_METASPACE, TP_WHITESPACE, TP_WHITESPACE_SPLIT };
enum { TP_PREPEND_ALWAYS, TP_PREPEND_FIRST, TP_PREPEND_NEVER };

typedef struct tk_pretok {
  int kind;
  char rep[5]; /* Metaspace replacement character, UTF-8 */
  int nrep;
  int prepend, split;
} tk_pretok;

int tk_pretoks_parse(const cJSON *j, tk_pretok **list, int *n, const char *where, zoe_err *e);
/* Apply the chain to the text splits of 'in' into 'out'; added-token splits pass through. */
int tk_pretokenize(const tk_pretok *list, int n, tk_splits *in, tk_splits *out);
int tk_metaspace_parse(const cJSON *j, tk_pretok *p, const char *where, zoe_err *e);

/* ---- models ---- */

enum { TM_UNIGRAM, TM_WORDLEVEL };

typedef struct tk_model {
  int kind;
  size_t size;        /* vocabulary entries (ids 0..size-1) */
  char **tokens;      /* by id, pointing into 'blob' */
  char *blob;         /* every token, NUL-terminated, in one block */
  size_t blob_used, blob_cap;
  size_t *lens;
  double *scores;     /* Unigram */
  double min_score;
  int32_t unk_id;     /* -1: none */
  int byte_fallback;
  int32_t byte_ids[256];
  tk_trie trie;
  tk_map map;         /* token -> index (= id) */
  /* sentencepiece's Viterbi (spm.c): path scores kept in float as its encoder keeps them,
     user-defined pieces scored length * max_score - 0.1, tokens emitted by id */
  int spm;
  unsigned char *types; /* spm: each piece's SentencePiece.Type */
  double max_score;
} tk_model;

/* SentencePiece.Type */
enum { TK_SPM_NORMAL = 1, TK_SPM_UNKNOWN, TK_SPM_CONTROL, TK_SPM_USER, TK_SPM_UNUSED, TK_SPM_BYTE };

int tk_model_parse(const cJSON *j, tk_model *m, const char *where, zoe_err *e);
void tk_model_free(tk_model *m);
int32_t tk_model_token_to_id(const tk_model *m, const char *s, size_t n);
/* Append the ids of one pre-token. */
int tk_model_tokenize(const tk_model *m, const char *s, size_t n, int32_t **ids, size_t *nids,
                      size_t *cap, zoe_err *e);

/* ---- decoders ---- */

enum { TD_METASPACE, TD_REPLACE, TD_BYTE_FALLBACK, TD_FUSE, TD_STRIP };

typedef struct tk_decoder {
  int kind;
  char rep[5];
  int nrep, prepend;   /* Metaspace */
  tk_regex re;         /* Replace */
  char *content;
  size_t ncontent;
  uint32_t strip_char; /* Strip */
  long start, stop;
} tk_decoder;

/* NULL or unsupported decoders leave *unsupported set to the type name (decode then fails). */
int tk_decoders_parse(const cJSON *j, tk_decoder **list, int *n, const char **unsupported,
                      const char *where, zoe_err *e);
void tk_decoders_free(tk_decoder *list, int n);
/* Run the chain over 'ntok' tokens (strings), concatenate into 'out'. */
int tk_decode_tokens(const tk_decoder *list, int n, int have_decoder, char **toks, size_t *lens,
                     size_t ntok, tk_str *out);

/* ---- sentencepiece models (spm.c) ---- */

typedef struct tk_spm {
  tk_model model;
  tk_normalizer norm; /* kind TN_SPM */
  int32_t eos_id;     /* the eos piece's id (T5Tokenizer appends it), -1: none */
  int32_t pad_id;     /* -1: none */
} tk_spm;

/* Parse a sentencepiece ModelProto (spiece.model). On failure everything is freed. */
int tk_spm_parse(const unsigned char *buf, size_t len, tk_spm *out, const char *where, zoe_err *e);

/* JSON helpers: a field's type or a clear error */
const char *tk_json_type(const cJSON *j);

#endif
