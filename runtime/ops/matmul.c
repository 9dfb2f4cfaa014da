/*
** matmul.c: torch.matmul semantics on top of zoe_gemm. Operands are used in
** place when their last two dims are row- or column-major (a transposed view
** is passed as a transpose, not copied); batch dims broadcast, and a batch of
** a against one shared b becomes a single tall product.
*/
#include "gemm.h"
#include "../core/iter.h"
#include "../core/pool.h"
#include "ops.h"
#include "out.h"

/* How a [.., R, C] operand is handed to gemm, or false when it needs a copy. */
static bool as_gemm(const zoe_tensor *t, zoe_gemm_arg *g) {
  int nd = t->ndim;
  int64_t R = t->shape[nd - 2], C = t->shape[nd - 1], sr = t->stride[nd - 2], sc = t->stride[nd - 1];
  int64_t minr = R > 1 ? R : 1, minc = C > 1 ? C : 1;
  if (t->dtype != ZOE_F32 && t->dtype != ZOE_F16 && t->dtype != ZOE_BF16) return false;
  g->data = NULL;
  g->dtype = t->dtype;
  if (C == 1 || sc == 1) { /* row-major: (r, c) at r*ld + c */
    int64_t ld = R == 1 ? minc : sr;
    if (ld >= minc) {
      g->trans = false;
      g->ld = ld;
      return true;
    }
  }
  if (R == 1 || sr == 1) { /* column-major: (r, c) at c*ld + r */
    int64_t ld = C == 1 ? minr : sc;
    if (ld >= minr) {
      g->trans = true;
      g->ld = ld;
      return true;
    }
  }
  return false;
}

/* Batch dims of a and b merge into M when b is shared and a's rows chain. */
static bool tall(const zoe_tensor *a, const zoe_gemm_arg *ga, const int64_t *bstride_b, int nb,
                 const int64_t *bshape) {
  if (ga->trans) return false;
  for (int i = 0; i < nb; i++)
    if (bstride_b[i] != 0 && bshape[i] != 1) return false;
  int nd = a->ndim;
  int64_t expect = ga->ld * a->shape[nd - 2]; /* rows of the tall matrix are ld apart */
  for (int i = nd - 3; i >= 0; i--) {
    if (a->shape[i] != 1 && a->stride[i] != expect) return false;
    expect *= a->shape[i];
  }
  return (nd - 2) == nb;
}

zoe_tensor *zoe_matmul(const zoe_tensor *a0, const zoe_tensor *b0, zoe_tensor *out, zoe_err *e) {
  char sa[96], sb[96];
  if (a0->ndim == 0 || b0->ndim == 0) {
    zoe_errf(e, ZOE_ESHAPE, "matmul: both operands need at least 1 dim (got %s and %s)",
             zoe_shape_str(a0, sa, sizeof sa), zoe_shape_str(b0, sb, sizeof sb));
    return NULL;
  }
  zoe_tensor *a = a0->ndim == 1 ? zoe_unsqueeze(a0, 0, e) : zoe_tensor_retain(a0);
  zoe_tensor *b = b0->ndim == 1 ? zoe_unsqueeze(b0, 1, e) : zoe_tensor_retain(b0);
  zoe_tensor *o = NULL, *res = NULL;
  if (!a || !b) goto done;
  int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
  int64_t K2 = b->shape[b->ndim - 2], N = b->shape[b->ndim - 1];
  if (K != K2) {
    zoe_errf(e, ZOE_ESHAPE, "matmul: shapes %s and %s do not match (%lld ~= %lld)",
             zoe_shape_str(a0, sa, sizeof sa), zoe_shape_str(b0, sb, sizeof sb), (long long)K,
             (long long)K2);
    goto done;
  }
  /* broadcast batch dims */
  int nb;
  int64_t bshape[ZOE_MAX_DIMS];
  if (zoe_broadcast_shape(a->ndim - 2, a->shape, b->ndim - 2, b->shape, &nb, bshape, "matmul", e))
    goto done;
  zoe_gemm_arg ga, gb;
  for (int pass = 0; pass < 2; pass++) { /* copy an operand only when its layout is unusable */
    zoe_tensor **t = pass ? &b : &a;
    zoe_gemm_arg *g = pass ? &gb : &ga;
    if (!as_gemm(*t, g)) {
      zoe_tensor *c = (*t)->dtype == ZOE_F32 || (*t)->dtype == ZOE_F16 || (*t)->dtype == ZOE_BF16
                          ? zoe_clone(*t, e) : zoe_to_dtype(*t, ZOE_F32, e);
      if (!c) goto done;
      zoe_tensor_release(*t);
      *t = c;
      as_gemm(*t, g);
    }
  }
  int64_t oshape[ZOE_MAX_DIMS];
  for (int i = 0; i < nb; i++) oshape[i] = bshape[i];
  oshape[nb] = M;
  oshape[nb + 1] = N;
  /* gemm writes f32 contiguous; any other 'out' receives a copy at the end */
  bool direct = out && out->dtype == ZOE_F32 && zoe_is_contiguous(out) && a0->ndim > 1 &&
                b0->ndim > 1;
  o = direct ? zoe_out_prepare(out, ZOE_F32, nb + 2, oshape, "matmul", e)
             : zoe_empty(ZOE_F32, nb + 2, oshape, e);
  if (!o) goto done;
  float *C = zoe_data(o);
  size_t esa = zoe_dtype_size(a->dtype), esb = zoe_dtype_size(b->dtype);
  int64_t astr[ZOE_MAX_DIMS], bstr[ZOE_MAX_DIMS];
  for (int i = 0; i < nb; i++) { /* batch strides, 0 where broadcast */
    int ia = i - (nb - (a->ndim - 2)), ib = i - (nb - (b->ndim - 2));
    astr[i] = ia >= 0 && a->shape[ia] != 1 ? a->stride[ia] : 0;
    bstr[i] = ib >= 0 && b->shape[ib] != 1 ? b->stride[ib] : 0;
  }
  int64_t nbatch = 1;
  for (int i = 0; i < nb; i++) nbatch *= bshape[i];
  if (K == 0) {
    for (int64_t i = 0; i < nbatch * M * N; i++) C[i] = 0;
  } else if (nbatch > 1 && tall(a, &ga, bstr, nb, bshape)) {
    ga.data = zoe_data(a);
    gb.data = zoe_data(b);
    if (zoe_gemm(nbatch * M, N, K, 1.0f, ga, gb, 0.0f, C, N, e)) goto done;
  } else {
    for (int64_t bi = 0; bi < nbatch; bi++) {
      int64_t rem = bi, offa = 0, offb = 0;
      for (int i = nb - 1; i >= 0; i--) {
        int64_t idx = rem % bshape[i];
        rem /= bshape[i];
        offa += idx * astr[i];
        offb += idx * bstr[i];
      }
      ga.data = (char *)zoe_data(a) + offa * (int64_t)esa;
      gb.data = (char *)zoe_data(b) + offb * (int64_t)esb;
      if (zoe_gemm(M, N, K, 1.0f, ga, gb, 0.0f, C + bi * M * N, N, e)) goto done;
    }
  }
  /* drop the dims that 1-D operands gained */
  int ond = nb;
  int64_t fshape[ZOE_MAX_DIMS];
  for (int i = 0; i < nb; i++) fshape[i] = bshape[i];
  if (a0->ndim > 1) fshape[ond++] = M;
  if (b0->ndim > 1) fshape[ond++] = N;
  res = zoe_view(o, ond, fshape, e);
  if (res && out && !direct) {
    zoe_tensor *r = zoe_out_prepare(out, ZOE_F32, ond, fshape, "matmul", e);
    if (r && zoe_copy_(r, res, e)) {
      zoe_tensor_release(r);
      r = NULL;
    }
    zoe_tensor_release(res);
    res = r;
  }
done:
  zoe_tensor_release(a);
  zoe_tensor_release(b);
  zoe_tensor_release(o);
  return res;
}
