#!/usr/bin/env bash
# ENGINE (Tu et al., 2020) on IWSLT'14 German->English at the paper's scale: the iwslt14
# preset of examples/engine_pipeline.sh.
#   examples/iwslt14_de_en/run.sh DATA [WORK_DIR]       (default WORK_DIR runs/iwslt14_de_en)
# DATA: a directory of fairseq's prepare-iwslt14.sh output ({train,valid,test}.{de,en}, code),
# `download` to run that script (network, git, perl, wget), or ../shared/data/iwslt14_de_en
# (8,746 sampled training pairs: for SMOKE=1 checks of the recipe only).
# Stages, the fairseq commands, resuming, variables: examples/iwslt14_de_en/README.md.
set -euo pipefail
source "$(dirname "$0")/../engine_pipeline.sh"
DATA=${1:?usage: $0 DATA_DIR|download [WORK_DIR]}
WORK=$(work_dir "${2:-$ROOT/runs/iwslt14_de_en}")
load_preset iwslt14

download() {  # fairseq's prepare-iwslt14.sh, as shipped with the installed fairseq
  local script
  script=$(python -c 'import fairseq, os; print(os.path.join(os.path.dirname(fairseq.__file__),
    "examples", "translation", "prepare-iwslt14.sh"))')
  mkdir -p "$WORK/prep" "$WORK/logs"
  if [ ! -f "$script" ]; then
    script=$WORK/prep/prepare-iwslt14.sh
    wget -q https://raw.githubusercontent.com/facebookresearch/fairseq/main/examples/translation/prepare-iwslt14.sh \
      -O "$script"
  fi
  (cd "$WORK/prep" && bash "$script") > "$WORK/logs/prepare.log" 2>&1
  [ -s "$WORK/prep/iwslt14.tokenized.de-en/train.de" ] \
    || { tail -n 20 "$WORK/logs/prepare.log"; echo "!! prepare-iwslt14.sh failed ($WORK/logs/prepare.log)" >&2; return 1; }
}

from_shared_sample() {  # ../shared/data/iwslt14_de_en -> WORK/sample (the distinct pairs)
  python scripts/iwslt14_sample.py "$DATA/train_samples_bpe10k" "$WORK/sample"
  cp "$DATA"/bpe10k/{valid,test}.{de,en} "$DATA/bpe10k/code" "$WORK/sample/"
}

if [ "$DATA" = download ]; then
  stage download download
  TEXT=$WORK/prep/iwslt14.tokenized.de-en
else
  DATA=$(input_dir "$DATA")
  if [ -f "$DATA/train.de" ]; then
    TEXT=$DATA
  elif [ -d "$DATA/train_samples_bpe10k" ]; then
    [ -n "${SMOKE:-}" ] || echo "!! $DATA holds 8,746 sampled training pairs, not the full corpus"
    stage sample from_shared_sample
    TEXT=$WORK/sample
  else
    echo "!! $DATA has neither train.de (prepare-iwslt14.sh output) nor train_samples_bpe10k/" >&2
    exit 2
  fi
fi
SRC=de TGT=en SEGMENT=()
if [ -f "$TEXT/code" ]; then SEGMENT=(--bpe-codes "$TEXT/code"); fi
engine_pipeline
