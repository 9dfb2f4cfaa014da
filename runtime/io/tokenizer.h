/*
** tokenizer.h: Hugging Face tokenizer.json files, encoding as the tokenizers library
** does (its Rust code is the reference, not sentencepiece's spm_encode), and
** sentencepiece model files (spiece.model), encoding as the sentencepiece library
** does, then appending </s> as T5Tokenizer does. For tokenizer.json:
**   added tokens split out -> normalizer -> pre-tokenizer -> model -> post-processor
** Supported: models Unigram (Viterbi, fused unknowns, byte fallback) and WordLevel;
** normalizers Precompiled (sentencepiece charsmap, applied per grapheme cluster),
** Replace (a literal or a simple regex), Strip, Sequence; pre-tokenizers Metaspace
** (both spellings), Whitespace, WhitespaceSplit, Sequence; the TemplateProcessing
** post-processor; decoders Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence.
** Anything else is refused when the file loads, naming what is not supported.
** Ids are 0-based token ids, as in the file.
*/
#ifndef ZOE_TOKENIZER_H
#define ZOE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

typedef struct zoe_tokenizer zoe_tokenizer;

/* A tokenizer.json or a spiece.model, told apart by content. */
zoe_tokenizer *zoe_tokenizer_load(const char *path, zoe_err *e);
/* From the bytes of a sentencepiece model; 'name' is used in messages. */
zoe_tokenizer *zoe_tokenizer_from_spm(const void *buf, size_t len, const char *name, zoe_err *e);
/* From JSON text; 'name' is used in messages. */
zoe_tokenizer *zoe_tokenizer_from_json(const char *json, size_t len, const char *name, zoe_err *e);
void zoe_tokenizer_free(zoe_tokenizer *t);

/*
** Encode UTF-8 text. add_special: apply the post-processor (T5: append </s>).
** max_len >= 0 truncates the text's tokens so that, with the special tokens, at most
** max_len ids result (-1: no limit, or the file's own "truncation" setting).
** *ids is malloc'd (free it), *n its length.
*/
int zoe_tokenizer_encode(const zoe_tokenizer *t, const char *text, size_t len, int add_special,
                         long max_len, int32_t **ids, size_t *n, zoe_err *e);
/* The id padding uses (the file's "padding" pad_id, else the id of <pad>, else 0). */
int32_t zoe_tokenizer_pad_id(const zoe_tokenizer *t);
/* Pad on the left rather than the right (the file's padding direction). */
int zoe_tokenizer_pad_left(const zoe_tokenizer *t);

/* Text of 'ids' (special tokens skipped when skip_special); malloc'd, NUL-terminated. */
char *zoe_tokenizer_decode(const zoe_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                           size_t *len, zoe_err *e);

/* Distinct tokens, added tokens included (as the library's get_vocab_size(true)). */
size_t zoe_tokenizer_vocab_size(const zoe_tokenizer *t);
/* -1 when unknown */
int32_t zoe_tokenizer_token_to_id(const zoe_tokenizer *t, const char *s, size_t len);
/* NULL when out of range */
const char *zoe_tokenizer_id_to_token(const zoe_tokenizer *t, int32_t id, size_t *len);

#endif
