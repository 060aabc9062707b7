#!/usr/bin/env bash
# ENGINE (Tu et al., 2020) at CPU scale on Multi30K German->English: the multi30k preset of
# examples/engine_pipeline.sh, after learning a joint BPE on the tokenised corpus.
#   examples/multi30k/run.sh DATA_DIR [WORK_DIR]   (DATA_DIR: ../shared/data/multi30k_de_en)
# Stages, the fairseq commands they run, resuming, variables: examples/multi30k/README.md.
set -euo pipefail
source "$(dirname "$0")/../engine_pipeline.sh"
DATA=$(input_dir "${1:?usage: $0 DATA_DIR [WORK_DIR]}")
WORK=$(work_dir "${2:-$ROOT/runs/multi30k}")
load_preset multi30k
BPE_MERGES=${BPE_MERGES:-8000}
if [ -z "${BPE_THRESHOLD:-}" ]; then  # 50 on the 29,000 training pairs, in proportion below
  pairs=$(first_lines "$MAX_TRAIN" "$DATA/tok/train.lc.norm.tok.de" | wc -l)
  BPE_THRESHOLD=$(( (50 * pairs + 14500) / 29000 ))
  [ "$BPE_THRESHOLD" -ge 1 ] || BPE_THRESHOLD=1
fi

# apply_bpe LANG: stdin through the learned BPE with LANG's vocabulary filter, to stdout
apply_bpe() {
  subword-nmt apply-bpe -c "$WORK/bpe/codes" --vocabulary "$WORK/bpe/vocab.$1" \
    --vocabulary-threshold "$BPE_THRESHOLD"
}

# learn_bpe: subword-nmt's joint BPE (BPE_MERGES merges) learned on the first MAX_TRAIN training
# pairs of DATA/tok, applied to train, val and test_2016_flickr with the vocabulary filter
learn_bpe() {
  local l split
  mkdir -p "$WORK/tok" "$WORK/bpe" "$WORK/logs"
  for l in de en; do
    first_lines "$MAX_TRAIN" "$DATA/tok/train.lc.norm.tok.$l" > "$WORK/tok/train.$l"
    cp "$DATA/tok/val.lc.norm.tok.$l" "$WORK/tok/valid.$l"
    cp "$DATA/tok/test_2016_flickr.lc.norm.tok.$l" "$WORK/tok/test.$l"
  done
  echo "   $(wc -l < "$WORK/tok/train.de") training pairs, $BPE_MERGES merges, vocabulary threshold $BPE_THRESHOLD"
  logged "$WORK/logs/bpe.log" subword-nmt learn-joint-bpe-and-vocab \
    --input "$WORK/tok/train.de" "$WORK/tok/train.en" -s "$BPE_MERGES" -o "$WORK/bpe/codes" \
    --write-vocabulary "$WORK/bpe/vocab.de" "$WORK/bpe/vocab.en"
  for split in train valid test; do
    for l in de en; do apply_bpe "$l" < "$WORK/tok/$split.$l" > "$WORK/bpe/$split.$l"; done
  done
}

# bpe_tests: the same BPE applied to the later TEST_SETS (test_2017_flickr, test_2017_mscoco)
bpe_tests() {
  local name l extra
  read -r _ extra <<< "$TEST_SETS"
  for name in $extra; do
    for l in de en; do apply_bpe "$l" < "$DATA/tok/$name.lc.norm.tok.$l" > "$WORK/bpe/$name.$l"; done
  done
}

stage bpe learn_bpe
when engine_converged stage bpe_tests bpe_tests
SRC=de TGT=en TEXT=$WORK/bpe
SEGMENT=(--bpe-codes "$WORK/bpe/codes" --bpe-vocab "$WORK/bpe/vocab.en" --bpe-threshold "$BPE_THRESHOLD")
engine_pipeline
