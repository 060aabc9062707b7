#!/usr/bin/env bash
# Twitter POS approximate-inference benchmark (Tu & Gimpel 2019, Tables 1, 3, 6, Figure 2)
# against the BLSTM-CRF+ energy of run.sh:
#   examples/twitter_pos/benchmark.sh DATA_DIR [WORK_DIR]
# Reuses WORK_DIR/bin and WORK_DIR/blstm_crf_plus/checkpoint_best.pt from
# examples/twitter_pos/run.sh when present, else runs it first (ARCHS=blstm_crf_plus).
# Then examples/tagging_benchmark.sh trains the local baselines and inference networks
# (tagger_cnn_plus with widths 1,3, tagger_blstm_plus, tagger_seq2seq_plus) and decodes
# daily547 with every method; WORK_DIR/results.tsv, WORK_DIR/tables.md and
# WORK_DIR/speed_accuracy.png are the outcome.
# Options (environment):
#   EPOCHS=30          epochs of the energy (if trained here), of each baseline and infnet
#   MAX_SENTENCES=N    train the baselines and infnets on the first N training tweets only
#                      (a quick run; binarised with the energy's dictionaries); unset = all 1327
#   ARCHS="tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus"
#   and every option of examples/tagging_benchmark.sh (GD_STEPS, GD_LRS, LAMBDA, LR, JOBS, ...)
set -euo pipefail
DATA=$(cd "${1:?usage: $0 DATA_DIR [WORK_DIR]}" && pwd)
WORK=${2:-runs/twitter_pos}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"

ENERGY=$WORK/blstm_crf_plus/checkpoint_best.pt
if [ -f "$ENERGY" ] && [ -f "$WORK/bin/dict.words.txt" ]; then
  echo "== reusing the energy $ENERGY and the data $WORK/bin"
  [ -f "$WORK/blstm_crf_plus.test.txt" ] || echo "== warning: run.sh has not finished training" \
    "$ENERGY (no $WORK/blstm_crf_plus.test.txt): the benchmark uses the checkpoint as it is now"
else
  echo "== no energy in $WORK: training it with examples/twitter_pos/run.sh"
  ARCHS=blstm_crf_plus "$HERE/run.sh" "$DATA" "$WORK"
fi

TRAIN_BIN=$WORK/bin
if [ -n "${MAX_SENTENCES:-}" ]; then
  TRAIN_BIN=$WORK/bin_train$MAX_SENTENCES
  subset_train "$WORK/raw" "$WORK/bin" "$MAX_SENTENCES" "$TRAIN_BIN"
fi
TRAIN_BIN=$TRAIN_BIN DATA_NAME=${DATA_NAME:-twitter_pos} CNN_WIDTHS=${CNN_WIDTHS:-1,3} \
  REFINE_ARCHS=${REFINE_ARCHS:-tagger_cnn_plus} \
  "$HERE/../tagging_benchmark.sh" "$WORK/bin" "$ENERGY" "$WORK" tag_accuracy \
  ${ARCHS:-tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus}
