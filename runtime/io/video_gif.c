/*
** video_gif.c: the GIF palette, made from the video itself with libavfilter:
**   buffer -> split -> palettegen (stats of every frame) -> paletteuse -> sink
** palettegen gives its palette only at the end of the stream, so paletteuse
** holds the frames until then: GIF output appears when the writer closes.
** One filter thread, so the result does not depend on the machine.
*/
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/error.h>
#include <stdlib.h>

#include "video_internal.h"

struct zoe__palette {
  AVFilterGraph *graph;
  AVFilterContext *src, *sink;
};

void zoe__palette_free(zoe__palette *p) {
  if (!p) return;
  avfilter_graph_free(&p->graph);
  free(p);
}

zoe__palette *zoe__palette_new(int width, int height, AVRational time_base, zoe_err *e) {
  zoe__palette *p = calloc(1, sizeof *p);
  AVFilterInOut *in = avfilter_inout_alloc(), *out = avfilter_inout_alloc();
  int rc = AVERROR(ENOMEM);
  if (!p || !in || !out || !(p->graph = avfilter_graph_alloc())) goto fail;
  p->graph->nb_threads = 1;
  char args[256];
  snprintf(args, sizeof args, "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=1/1", width, height,
           AV_PIX_FMT_BGRA, time_base.num, time_base.den);
  rc = avfilter_graph_create_filter(&p->src, avfilter_get_by_name("buffer"), "in", args, NULL, p->graph);
  if (rc >= 0) rc = avfilter_graph_create_filter(&p->sink, avfilter_get_by_name("buffersink"), "out", NULL, NULL, p->graph);
  if (rc < 0) goto fail;
  /* the parsed chain's open input is fed by 'in', its open output feeds 'out' */
  out->name = av_strdup("in");
  out->filter_ctx = p->src;
  in->name = av_strdup("out");
  in->filter_ctx = p->sink;
  rc = avfilter_graph_parse_ptr(p->graph,
                                "split[a][b];[a]palettegen=stats_mode=full[pal];"
                                "[b][pal]paletteuse=dither=sierra2_4a",
                                &in, &out, NULL);
  if (rc >= 0) rc = avfilter_graph_config(p->graph, NULL);
  if (rc < 0) goto fail;
  avfilter_inout_free(&in);
  avfilter_inout_free(&out);
  return p;
fail:
  avfilter_inout_free(&in);
  avfilter_inout_free(&out);
  zoe__palette_free(p);
  zoe_errf(e, rc == AVERROR(ENOMEM) ? ZOE_ENOMEM : ZOE_ENOTSUP, "video.write: cannot set up the GIF palette filters: %s",
           ZOE__AVERR(rc));
  return NULL;
}

int zoe__palette_push(zoe__palette *p, AVFrame *frame, zoe_err *e) {
  int rc = av_buffersrc_add_frame_flags(p->src, frame, AV_BUFFERSRC_FLAG_KEEP_REF);
  if (rc < 0) return zoe_errf(e, ZOE_EIO, "video.write: GIF palette filter: %s", ZOE__AVERR(rc));
  return 0;
}

int zoe__palette_pull(zoe__palette *p, AVFrame *out, zoe_err *e) {
  int rc = av_buffersink_get_frame(p->sink, out);
  if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 1;
  if (rc < 0) return zoe_errf(e, ZOE_EIO, "video.write: GIF palette filter: %s", ZOE__AVERR(rc));
  return 0;
}
