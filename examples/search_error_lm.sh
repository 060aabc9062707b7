#!/usr/bin/env bash
# Search error against language-model perplexity (Tu & Gimpel 2019, §6.2): two LSTM language
# models, one on the training word sequences and one on the training gold label sequences,
# trained and scored with STOCK fairseq (--task language_modeling, fairseq-eval-lm); the test
# split decoded with Viterbi, gradient descent and an inference network against one CRF
# energy; Spearman's rho between each test sentence's perplexity (of its words, of its gold
# labels) and the search error E(x, y_method) - E(x, y_viterbi) of each method.
#
#   examples/search_error_lm.sh RAW BIN CRF_CKPT INFNET_CKPT WORK
#
# RAW          RAW/{train,valid,test}.{words,tags} (scripts/conll_to_fairseq.py)
# BIN          the same splits binarised for --task sequence_labeling (fairseq-preprocess
#              --source-lang words --target-lang tags); its test split must be RAW/test.*
# CRF_CKPT     the energy (blstm_crf / blstm_crf_plus checkpoint)
# INFNET_CKPT  an inference network trained against CRF_CKPT (criterion energy_loss)
# WORK         output: WORK/search_error.md (the table), WORK/search_error.tsv (per sentence),
#              WORK/{word,label}_ppl.tsv, WORK/generate.{viterbi,gd,infnet}.txt, WORK/lm_*/,
#              WORK/logs/
#
# Paper, Twitter POS, BLSTM-CRF: rho(word ppl, search error) = 0.282 for the BLSTM inference
# network and 0.122 for gradient descent; rho(label ppl, search error) = 0.195 and 0.064.
#
# Every step is a stage of common.sh (a rerun skips finished ones; FORCE=1, ONLY=). Options
# (environment): LM_DIM=100 LM_EPOCHS=20 (the two 1-layer lstm_lm LMs: dropout 0.3, Adam lr
# 0.002, batch 16, best epoch by valid loss, patience 5; training words seen once become <unk>
# so that <unk> is trained, every training label is kept), GD_ARGS="--gd-steps 20 --gd-lr 1"
# (use the step size tuned on valid, e.g. by examples/tagging_benchmark.sh), INFNET_ARGS=
# (more fairseq-generate options of the infnet), SEED=1.
#
# Notes on stock fairseq here:
# - one sentence per LM sample: --sample-break-mode eos crashes on numpy 2 inside stock
#   fairseq (np.compat.long in TokenBlockDataset), so we use --sample-break-mode complete
#   --tokens-per-sample 1 (blocks of complete sentences of at most 1 token: every sentence is
#   its own block) and --max-target-positions 100000 (eval-lm silently skips longer samples);
#   scripts/eval_lm_sentence_ppl.py checks that sample i is exactly line i of RAW/test.*.
# - --user-dir engine_plugin on the LM commands only for its fairseq fixes (checkpoint loading
#   under torch >= 2.6; keeping fairseq's last partial batch, else eval-lm drops sentences).
# - per-sentence perplexity: fairseq-eval-lm --output-word-probs logs ln p of every token
#   (with </s>); ppl_i = exp(-mean over the n_i + 1 tokens), see scripts/eval_lm_sentence_ppl.py.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_args 5 5 "usage: $0 RAW BIN CRF_CKPT INFNET_CKPT WORK" "$@"
RAW=$(input_dir "$1")
BIN=$(input_dir "$2")
CRF=$(input_file "$3")
INFNET=$(input_file "$4")
WORK=$(work_dir "$5")
for s in train valid test; do
  for x in words tags; do
    [ -f "$RAW/$s.$x" ] || { echo "missing $RAW/$s.$x" >&2; exit 2; }
  done
done

LM_DIM=${LM_DIM:-100} LM_EPOCHS=${LM_EPOCHS:-20}
GD_ARGS=${GD_ARGS:---gd-steps 20 --gd-lr 1} INFNET_ARGS=${INFNET_ARGS:-} SEED=${SEED:-1}
LOGS=$WORK/logs
mkdir -p "$LOGS"
# one sentence per sample, positions beyond any sentence (see the notes above)
LM_DATA_ARGS=(--task language_modeling --sample-break-mode complete --tokens-per-sample 1
              --max-target-positions 100000 --user-dir engine_plugin "${DEVICE_FLAGS[@]}")

# lm NAME EXT THRESHOLD: binarise RAW/*.EXT (types seen fewer than THRESHOLD times in train
# become <unk>), train an LM on train -> WORK/lm_NAME
lm() {
  local name=$1 ext=$2 threshold=$3 dir=$WORK/lm_$1
  rm -rf "$dir"
  logged "$LOGS/lm_$name.preprocess.log" fairseq-preprocess --only-source \
    --trainpref "$RAW/train.$ext" --validpref "$RAW/valid.$ext" --testpref "$RAW/test.$ext" \
    --thresholdsrc "$threshold" --workers 1 --destdir "$dir/bin"
  logged "$LOGS/lm_$name.train.log" fairseq-train "$dir/bin" "${LM_DATA_ARGS[@]}" \
    --arch lstm_lm --decoder-embed-dim "$LM_DIM" --decoder-hidden-size "$LM_DIM" \
    --decoder-out-embed-dim "$LM_DIM" --decoder-layers 1 --dropout 0.3 \
    --criterion cross_entropy --optimizer adam --lr 0.002 --clip-norm 5 --batch-size 16 \
    --max-epoch "$LM_EPOCHS" --patience 5 --seed "$SEED" --save-dir "$dir/ckpt" \
    --no-epoch-checkpoints --no-last-checkpoints --log-format simple --log-interval 100
  grep -E "\| valid \|" "$LOGS/lm_$name.train.log" | tail -n 1 || true
}

# ppl NAME EXT: per-sentence perplexity of RAW/test.EXT under WORK/lm_NAME
# (fairseq-eval-lm --output-word-probs) -> WORK/NAME_ppl.tsv
ppl() {
  local name=$1 dir=$WORK/lm_$1
  logged "$LOGS/lm_$name.eval_lm.log" fairseq-eval-lm "$dir/bin" "${LM_DATA_ARGS[@]}" \
    --path "$dir/ckpt/checkpoint_best.pt" --gen-subset test --output-word-probs \
    --batch-size 64 --no-progress-bar
  python scripts/eval_lm_sentence_ppl.py "$LOGS/lm_$name.eval_lm.log" --text "$RAW/test.$2" \
    --out "$WORK/${name}_ppl.tsv"
}

stage lm_word lm word words 2
stage ppl_word ppl word words
stage lm_label lm label tags 0
stage ppl_label ppl label tags

# decode_test METHOD CKPT [extra]: fairseq-generate of the test split -> WORK/generate.METHOD.txt
decode_test() {
  local method=$1 ckpt=$2; shift 2
  fairseq-generate "$BIN" --user-dir engine_plugin --task sequence_labeling --path "$ckpt" \
    --gen-subset test --inference "$method" --scoring tag_accuracy --batch-size 64 \
    --seed "$SEED" "${DEVICE_FLAGS[@]}" "$@" > "$WORK/generate.$method.txt" 2> "$LOGS/generate.$method.log" \
    || { tail -n 30 "$LOGS/generate.$method.log" >&2; exit 1; }
  tail -n 1 "$WORK/generate.$method.txt"
}
stage decode_viterbi decode_test viterbi "$CRF"
# shellcheck disable=SC2086
stage decode_gd decode_test gd "$CRF" $GD_ARGS
# shellcheck disable=SC2086
stage decode_infnet decode_test infnet "$INFNET" --energy-path "$CRF" $INFNET_ARGS

# Spearman's rho between perplexity and search error -> WORK/search_error.md
FORCE=1 stage analysis python scripts/search_error_analysis.py \
  --viterbi "$WORK/generate.viterbi.txt" \
  --method "gd=$WORK/generate.gd.txt" --method "infnet=$WORK/generate.infnet.txt" \
  --word-ppl "$WORK/word_ppl.tsv" --label-ppl "$WORK/label_ppl.tsv" \
  --out-md "$WORK/search_error.md" --out-tsv "$WORK/search_error.tsv"
