#!/bin/sh
# Reproduce models/zoe-tiny from nothing on 2 CPU cores (what `make train-tiny` runs).
# Needs Debian's python3-torch (/usr/bin/python3) and sentencepiece (spm_train); downloads nothing.
# Extra arguments go to tools/train/train_tiny.py (--stages, --work, --out, --set key=value).
# After the export stage it fits the preview projection and calibrates the step caches.
set -e
cd "$(dirname "$0")/../.."
if ! command -v spm_train >/dev/null 2>&1; then
	echo "train-tiny: spm_train not found; install Debian's sentencepiece (apt-get install sentencepiece)" >&2
	exit 1
fi
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "train-tiny: /usr/bin/python3 has no torch; install Debian's python3-torch" >&2
	exit 1
fi
# 2 compute threads; passive OpenMP waiting keeps a busy machine from stalling the threads
export ZOE_THREADS="${ZOE_THREADS:-2}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export PYTHONDONTWRITEBYTECODE=1
/usr/bin/python3 tools/train/train_tiny.py "$@"
# After an export, what is fitted on the new weights: the preview projection (config.json) and
# the step caches' calibration (cache_calibration.json), both beside the model.
out=models/zoe-tiny
stages=export
prev=
for a in "$@"; do
	case "$prev" in --out) out=$a ;; --stages) stages=$a ;; esac
	case "$a" in --out=*) out=${a#--out=} ;; --stages=*) stages=${a#--stages=} ;; esac
	prev=$a
done
case ",$stages," in
*,export,*)
	/usr/bin/python3 tools/train/fit_preview.py --model "$out"
	bin/zoe --quiet tools/calibrate_cache.lua "$out"
	;;
esac
