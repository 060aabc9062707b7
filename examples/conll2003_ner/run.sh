#!/usr/bin/env bash
# CoNLL-2003 English NER as in Tu & Gimpel (2019): BIOES labels, a BLSTM-CRF+ energy (H = 200),
# conlleval span F1, then the approximate-inference benchmark (examples/tagging_benchmark.sh).
#   examples/conll2003_ner/run.sh DATA_DIR [WORK_DIR]   (DATA_DIR: ../shared/data/conll2003_ner)
# Stages, the fairseq commands, resuming, variables: examples/conll2003_ner/README.md.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
DATA=$(input_dir "${1:?usage: $0 DATA_DIR [WORK_DIR]}")
WORK=$(work_dir "${2:-$ROOT/runs/conll2003_ner}")

stage convert convert --format conll2003 --bioes --split train="$DATA/eng.train" \
  --split valid="$DATA/eng.testa" --split test="$DATA/eng.testb"
# blstm_crf_plus with word features of its own (its defaults are Twitter POS's)
energy_and_benchmark conll2003_ner span_f1 tagger_seq2seq_plus --embed-dim 100 \
  --char-filters 50 --char-dim 30 --word-dropout 0.05 --no-lowercase-embeddings
