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
# Options (environment variables):
#   LM_ARCH=lstm_lm LM_DIM=100 LM_LAYERS=1 LM_DROPOUT=0.3   the two LMs (stock fairseq archs)
#   LM_EPOCHS=20 LM_LR=0.002 LM_BATCH=16 LM_PATIENCE=5       adam; best epoch by valid loss
#   WORD_THRESHOLD=2    words seen fewer times in train become <unk> for the word LM, so that
#                       <unk> (every unseen test word) is trained
#   LABEL_THRESHOLD=0   the same for labels (0: every training label type; test labels unseen
#                       in training, e.g. the '*' of --top-k-labels after truncate_train, then
#                       get the untrained <unk> and a very high perplexity)
#   GD_ARGS="--gd-steps 20 --gd-lr 1"   gradient descent (any sequence_labeling option; use
#                       the step size tuned on valid, e.g. by examples/tagging_benchmark.sh)
#   INFNET_ARGS=        more fairseq-generate options for the inference network
#   DECODE_BATCH=64 SEED=1
#   RETRAIN=1           retrain LMs whose checkpoint_best.pt exists (reused by default)
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
usage="usage: $0 RAW BIN CRF_CKPT INFNET_CKPT WORK"
[ $# -eq 5 ] || { echo "$usage" >&2; exit 2; }
abspath() { (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")"); }
RAW=$(cd "$1" && pwd)
BIN=$(cd "$2" && pwd)
CRF=$(abspath "$3")
INFNET=$(abspath "$4")
mkdir -p "$5"
WORK=$(cd "$5" && pwd)
for f in "$CRF" "$INFNET"; do [ -f "$f" ] || { echo "no checkpoint $f" >&2; exit 2; }; done
for s in train valid test; do
  for x in words tags; do
    [ -f "$RAW/$s.$x" ] || { echo "missing $RAW/$s.$x" >&2; exit 2; }
  done
done
source "$(dirname "$0")/common.sh"

LM_ARCH=${LM_ARCH:-lstm_lm} LM_DIM=${LM_DIM:-100} LM_LAYERS=${LM_LAYERS:-1}
LM_DROPOUT=${LM_DROPOUT:-0.3} LM_EPOCHS=${LM_EPOCHS:-20} LM_LR=${LM_LR:-0.002}
LM_BATCH=${LM_BATCH:-16} LM_PATIENCE=${LM_PATIENCE:-5} WORD_THRESHOLD=${WORD_THRESHOLD:-2}
LABEL_THRESHOLD=${LABEL_THRESHOLD:-0}
GD_ARGS=${GD_ARGS:---gd-steps 20 --gd-lr 1} INFNET_ARGS=${INFNET_ARGS:-}
DECODE_BATCH=${DECODE_BATCH:-64} SEED=${SEED:-1} RETRAIN=${RETRAIN:-0}
LOGS=$WORK/logs
mkdir -p "$LOGS"
START=$SECONDS
say() { printf '== [%s +%ds] %s\n' "$(date +%H:%M:%S)" $((SECONDS - START)) "$*"; }
# logged LOG cmd...: output to LOG; on failure show its tail and stop
logged() {
  local log=$1; shift
  "$@" > "$log" 2>&1 || { echo "failed ($log): $*" >&2; tail -n 30 "$log" >&2; exit 1; }
}
# one sentence per sample, positions beyond any sentence (see the notes above)
LM_DATA_ARGS=(--task language_modeling --sample-break-mode complete --tokens-per-sample 1
              --max-target-positions 100000 --user-dir engine_plugin "${DEVICE_FLAGS[@]}")

# lm NAME EXT THRESHOLD: binarise RAW/*.EXT, train an LM on train, score test -> WORK/NAME_ppl.tsv
lm() {
  local name=$1 ext=$2 threshold=$3 dir=$WORK/lm_$1
  say "$name LM: data RAW/*.$ext -> $dir/bin"
  rm -rf "$dir/bin"
  logged "$LOGS/lm_$name.preprocess.log" fairseq-preprocess --only-source \
    --trainpref "$RAW/train.$ext" --validpref "$RAW/valid.$ext" --testpref "$RAW/test.$ext" \
    --thresholdsrc "$threshold" --workers 1 --destdir "$dir/bin"
  if [ "$RETRAIN" = 1 ] || [ ! -f "$dir/ckpt/checkpoint_best.pt" ]; then
    say "$name LM: training $LM_ARCH (log: $LOGS/lm_$name.train.log)"
    rm -rf "$dir/ckpt"
    logged "$LOGS/lm_$name.train.log" fairseq-train "$dir/bin" "${LM_DATA_ARGS[@]}" \
      --arch "$LM_ARCH" --decoder-embed-dim "$LM_DIM" --decoder-hidden-size "$LM_DIM" \
      --decoder-out-embed-dim "$LM_DIM" --decoder-layers "$LM_LAYERS" --dropout "$LM_DROPOUT" \
      --criterion cross_entropy --optimizer adam --lr "$LM_LR" --clip-norm 5 \
      --batch-size "$LM_BATCH" --max-epoch "$LM_EPOCHS" --patience "$LM_PATIENCE" \
      --seed "$SEED" --save-dir "$dir/ckpt" --no-epoch-checkpoints --no-last-checkpoints \
      --log-format simple --log-interval 100
    grep -E "\| valid \|" "$LOGS/lm_$name.train.log" | tail -n 1 || true
  else
    say "$name LM: reusing $dir/ckpt/checkpoint_best.pt"
  fi
  say "$name LM: per-sentence perplexity of RAW/test.$ext (fairseq-eval-lm --output-word-probs)"
  logged "$LOGS/lm_$name.eval_lm.log" fairseq-eval-lm "$dir/bin" "${LM_DATA_ARGS[@]}" \
    --path "$dir/ckpt/checkpoint_best.pt" --gen-subset test --output-word-probs \
    --batch-size "$DECODE_BATCH" --no-progress-bar
  python scripts/eval_lm_sentence_ppl.py "$LOGS/lm_$name.eval_lm.log" --text "$RAW/test.$ext" \
    --out "$WORK/${name}_ppl.tsv"
}

lm word words "$WORD_THRESHOLD"
lm label tags "$LABEL_THRESHOLD"

# decode_test METHOD CKPT [extra]: fairseq-generate of the test split -> WORK/generate.METHOD.txt
decode_test() {
  local method=$1 ckpt=$2; shift 2
  say "decoding test with $method"
  fairseq-generate "$BIN" --user-dir engine_plugin --task sequence_labeling --path "$ckpt" \
    --gen-subset test --inference "$method" --scoring tag_accuracy --batch-size "$DECODE_BATCH" \
    --seed "$SEED" "${DEVICE_FLAGS[@]}" "$@" > "$WORK/generate.$method.txt" 2> "$LOGS/generate.$method.log" \
    || { tail -n 30 "$LOGS/generate.$method.log" >&2; exit 1; }
  tail -n 1 "$WORK/generate.$method.txt"
}
decode_test viterbi "$CRF"
# shellcheck disable=SC2086
decode_test gd "$CRF" $GD_ARGS
# shellcheck disable=SC2086
decode_test infnet "$INFNET" --energy-path "$CRF" $INFNET_ARGS

say "Spearman's rho between perplexity and search error -> $WORK/search_error.md"
python scripts/search_error_analysis.py --viterbi "$WORK/generate.viterbi.txt" \
  --method "gd=$WORK/generate.gd.txt" --method "infnet=$WORK/generate.infnet.txt" \
  --word-ppl "$WORK/word_ppl.tsv" --label-ppl "$WORK/label_ppl.tsv" \
  --out-md "$WORK/search_error.md" --out-tsv "$WORK/search_error.tsv"
say "done"
