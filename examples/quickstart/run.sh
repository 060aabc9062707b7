#!/usr/bin/env bash
# Quickstart: a synthetic tagging corpus (no download), a BLSTM-CRF+ energy trained with
# stock fairseq-train, exact (Viterbi) decoding with stock fairseq-generate.
#   examples/quickstart/run.sh [WORK_DIR]        (about a minute on 2 cores)
source "$(dirname "$0")/../common.sh"
WORK=${1:-runs/quickstart}
mkdir -p "$WORK"
echo "== corpus: $WORK/raw"
python examples/quickstart/make_corpus.py "$WORK/raw" --train 2000 --valid 300 --test 300
binarize "$WORK/raw" "$WORK/bin"
echo "== training a BLSTM-CRF+ energy (log: $WORK/train.log)"
# a small BLSTM-CRF+: sizes and word features below blstm_crf_plus's (Twitter-tuned) defaults
train_crf "$WORK/bin" "$WORK/crf" blstm_crf_plus --hidden-size 32 --embed-dim 32 \
  --char-filters 16 --char-dim 30 --word-dropout 0 --no-lowercase-embeddings \
  --lr 0.01 --batch-size 32 --max-epoch 5 --seed 1 > "$WORK/train.log" 2>&1 \
  || { tail -n 30 "$WORK/train.log"; exit 1; }
grep "best_acc" "$WORK/train.log" | tail -n 1
echo "== Viterbi decoding of the test split (hypotheses: $WORK/generate.txt)"
fairseq-generate "$WORK/bin" --user-dir engine_plugin --task sequence_labeling \
  --path "$WORK/crf/checkpoint_best.pt" --gen-subset test --inference viterbi \
  --scoring tag_accuracy --batch-size 64 "${DEVICE_FLAGS[@]}" > "$WORK/generate.txt" 2> "$WORK/generate.log"
grep -m 3 -E "^(S|T|H)-" "$WORK/generate.txt"
tail -n 1 "$WORK/generate.txt"
