#!/bin/sh
# Train models/zoe-tiny again from nothing on 2 CPU cores (what `make train-tiny` runs): the
# stages of tools/train/train_tiny.py (STAGES) in order, or only stage $STAGE. Each stage starts
# from the model the stage before wrote to models/zoe-tiny, so each can run on its own.
# Needs Debian's python3-torch (/usr/bin/python3) and sentencepiece (spm_train); downloads nothing.
# Extra arguments go to tools/train/train_tiny.py (--work, --out, --set key=value).
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
if [ -n "$STAGE" ]; then
	exec /usr/bin/python3 tools/train/train_tiny.py --stage "$STAGE" "$@"
fi
for s in $(/usr/bin/python3 tools/train/train_tiny.py --list-stages); do
	/usr/bin/python3 tools/train/train_tiny.py --stage "$s" "$@"
done
