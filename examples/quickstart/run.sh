#!/usr/bin/env bash
# Quickstart: a synthetic tagging corpus (no download), a BLSTM-CRF+ energy trained with stock
# fairseq-train, exact (Viterbi) decoding with stock fairseq-generate (a minute on 2 cores).
#   examples/quickstart/run.sh [WORK_DIR]                      (default WORK_DIR runs/quickstart)
# The plain commands, stages and resuming: examples/quickstart/README.md.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
WORK=$(work_dir "${1:-$ROOT/runs/quickstart}")

stage corpus python examples/quickstart/make_corpus.py "$WORK/raw" --train 2000 --valid 300 --test 300
stage binarize binarize "$WORK/raw" "$WORK/bin"
# a small BLSTM-CRF+: sizes and word features below blstm_crf_plus's (Twitter-tuned) defaults
stage crf train_crf crf blstm_crf_plus --hidden-size 32 --embed-dim 32 --char-filters 16 \
  --char-dim 30 --word-dropout 0 --no-lowercase-embeddings --lr 0.01 --batch-size 32 \
  --max-epoch 5 --seed 1
stage test_crf test_viterbi crf tag_accuracy
grep -m 3 -E "^(S|T|H)-" "$WORK/crf.test.generate.txt"
