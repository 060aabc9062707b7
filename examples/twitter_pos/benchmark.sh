#!/usr/bin/env bash
# The Twitter POS approximate-inference benchmark (Tu & Gimpel 2019, Tables 1, 3, 6, Figure 2)
# against the BLSTM-CRF+ energy of run.sh (whose stages run first, skipped once done).
#   examples/twitter_pos/benchmark.sh DATA_DIR [WORK_DIR]  (DATA_DIR: ../shared/data/twitter_pos)
# Stages, the fairseq commands, resuming, variables: examples/twitter_pos/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"
DATA=$(input_dir "${1:?usage: $0 DATA_DIR [WORK_DIR]}")
WORK=$(work_dir "${2:-$ROOT/runs/twitter_pos}")

ARCHS=blstm_crf_plus "$HERE/run.sh" "$DATA" "$WORK"
TRAIN_BIN=$WORK/bin
if [ -n "${MAX_SENTENCES:-}" ]; then  # the networks train on the first N tweets only
  TRAIN_BIN=$WORK/bin_train$MAX_SENTENCES
  stage "bin_train$MAX_SENTENCES" subset_train "$WORK/raw" "$WORK/bin" "$MAX_SENTENCES" "$TRAIN_BIN"
fi
TRAIN_BIN=$TRAIN_BIN benchmark twitter_pos tag_accuracy 1,3 tagger_cnn_plus
