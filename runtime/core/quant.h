/*
** quant.h: ggml's quantized block formats (the types GGUF files hold), read and
** written bit for bit as ggml's reference code does.
**
** A quantized tensor is a flat run of blocks in element order; a block holds
** zoe_dtype_block(dt) elements (32, or 256 for the k-quants) in
** zoe_dtype_size(dt) bytes. The scales inside are IEEE halves. Every value is
** computed in single precision, one rounding per operation, in the order ggml
** writes it ((d * sc) * q, never fused): the dequantized floats equal ggml's
** to_float bitwise.
**
** Layouts (byte offsets; d, m, dmin are halves):
**   q4_0  d[0] qs[2..18)          element j < 16: low nibble of qs[j], j + 16: high; y = (q - 8) d
**   q4_1  d[0] m[2] qs[4..20)     y = q d + m
**   q5_0  d[0] qh[2..6) qs[6..22) bit j of qh (a u32) is element j's fifth bit; y = (q - 16) d
**   q5_1  d[0] m[2] qh[4..8) qs[8..24)                                        y = q d + m
**   q8_0  d[0] qs[2..34) (i8)     y = q d
**   q2_K  scales[0..16) qs[16..80) d[80] dmin[82]
**   q3_K  hmask[0..32) qs[32..96) scales[96..108) d[108]
**   q4_K  d[0] dmin[2] scales[4..16) qs[16..144)
**   q5_K  d[0] dmin[2] scales[4..16) qh[16..48) qs[48..176)
**   q6_K  ql[0..128) qh[128..192) scales[192..208) (i8) d[208]
** (quant.c spells out each k-quant's element order.)
*/
#ifndef ZOE_QUANT_H
#define ZOE_QUANT_H

#include <stdint.h>

#include "dtype.h"
#include "error.h"
#include "tensor.h"

/* 'nblocks' whole blocks at 'src' -> nblocks * zoe_dtype_block(dt) floats */
void zoe_dequant_blocks(zoe_dtype dt, const void *src, int64_t nblocks, float *dst);

/* Elements [first, first + n) of the run of blocks at 'base' -> n floats (any span). */
void zoe_dequant_range(zoe_dtype dt, const void *base, int64_t first, int64_t n, float *dst);

/*
** 'nblocks' blocks from nblocks * zoe_dtype_block(dt) floats, as ggml's reference
** quantizers (quantize_row_*_ref, no importance matrix) make them: the same
** floats give the same bytes. q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K;
** 0, or ZOE_EDTYPE for a type without a quantizer here (q2_K, q3_K).
*/
int zoe_quant_blocks(zoe_dtype dt, const float *src, int64_t nblocks, void *dst);

/* Whether zoe_quant_blocks can write this type. */
int zoe_quant_can_write(zoe_dtype dt);

/*
** zoe_copy_ where either side is quantized (no broadcasting: same shape). A
** quantized source must be contiguous (any offset: a row range of a weight); a
** quantized destination contiguous and starting on a block. Both quantized:
** bytes are copied for the same type, else dequantized and quantized again.
*/
int zoe_copy_quant(zoe_tensor *dst, const zoe_tensor *src, zoe_err *e);

#endif
