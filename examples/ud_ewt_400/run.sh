#!/usr/bin/env bash
# Large-label tagging, the stand-in for CCG supertagging (Tu & Gimpel 2019, L = 400): UD English
# EWT with labels XPOS+DEPREL, the 400 most frequent training labels kept and the rest mapped
# to '*', a BLSTM-CRF+ energy (H = 400), token accuracy, then the benchmark.
#   examples/ud_ewt_400/run.sh DATA_DIR [WORK_DIR]      (DATA_DIR: ../shared/data/ud_english_ewt)
# Stages, the fairseq commands, resuming, variables: examples/ud_ewt_400/README.md.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
DATA=$(input_dir "${1:?usage: $0 DATA_DIR [WORK_DIR]}")
WORK=$(work_dir "${2:-$ROOT/runs/ud_ewt_400}")

stage convert convert --format conllu --field XPOS+DEPREL --top-k-labels 400 \
  --escape-whitespace --split train="$DATA/en_ewt-ud-train.conllu" \
  --split valid="$DATA/en_ewt-ud-dev.conllu" --split test="$DATA/en_ewt-ud-test.conllu"
energy_and_benchmark ud_ewt_400 tag_accuracy tagger_blstm_plus --hidden-size 400 --embed-dim 100 \
  --char-filters 50 --char-dim 30 --word-dropout 0.05 --no-lowercase-embeddings
