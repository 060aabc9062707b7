#!/usr/bin/env bash
# Twitter POS (Owoputi et al. 2013) with BLSTM-CRF and BLSTM-CRF+ energies, exact decoding;
# the splits of Tu & Gimpel (2019): train = oct27.train + oct27.dev, valid = oct27.test,
# test = daily547.
#   examples/twitter_pos/run.sh DATA_DIR [WORK_DIR]        (DATA_DIR: ../shared/data/twitter_pos)
# Stages, the fairseq commands, resuming, variables: examples/twitter_pos/README.md.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
DATA=$(input_dir "${1:?usage: $0 DATA_DIR [WORK_DIR]}")
WORK=$(work_dir "${2:-$ROOT/runs/twitter_pos}")

stage convert convert --format twitter --escape-whitespace \
  --split train="$DATA/oct27.train,$DATA/oct27.dev" --split valid="$DATA/oct27.test" \
  --split test="$DATA/daily547.conll"
stage binarize binarize "$WORK/raw" "$WORK/bin"
# chosen on the validation split (RESULTS.md): blstm_crf_plus's defaults are these settings
declare -A ARGS=(
  [blstm_crf]="--hidden-size 100 --embed-dim 100 --word-dropout 0.25 --lowercase-embeddings"
  [blstm_crf_plus]=""
)
for arch in ${ARCHS:-blstm_crf blstm_crf_plus}; do
  # shellcheck disable=SC2086
  stage "$arch" train_crf "$arch" "$arch" ${ARGS[$arch]} --lr 0.002 --batch-size 10 \
    --max-epoch "${EPOCHS:-35}" --seed "${SEED:-1}" "${EMBEDDINGS[@]}"
  stage "test_$arch" test_viterbi "$arch" tag_accuracy
done
