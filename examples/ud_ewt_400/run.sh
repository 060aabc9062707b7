#!/usr/bin/env bash
# Large-label tagging, the stand-in for CCG supertagging (Tu & Gimpel 2019, L = 400): UD
# English EWT with labels XPOS+DEPREL (e.g. NN+nsubj), the 400 most frequent training labels
# kept and the rest mapped to '*' (a gold '*' always counts as wrong), a BLSTM-CRF+ energy
# with H = 400, token accuracy, then the approximate-inference benchmark
# (examples/tagging_benchmark.sh).
#   examples/ud_ewt_400/run.sh DATA_DIR [WORK_DIR]
# DATA_DIR holds en_ewt-ud-{train,dev,test}.conllu, e.g. ../shared/data/ud_english_ewt.
# Options (environment):
#   EPOCHS=30          epochs of the energy, of each local baseline and inference network
#   MAX_SENTENCES=N    keep only the first N training sentences (a quick run; unset = all)
#   TOP_K=400          number of labels kept
#   EMBED=vectors.txt EMBED_DIM=100   pretrained word embeddings (paper: 100-d GloVe)
#   BENCHMARK=0        stop after the energy and its Viterbi test score
#   SEED=1, and every option of examples/tagging_benchmark.sh (ARCHS, GD_STEPS, JOBS, ...);
#   its defaults here: CNN_WIDTHS=1,5, REFINE_ARCHS=tagger_blstm_plus (paper Table 6, CCG)
# Unlike the paper's CCG setting, training sentences of 50 words or more are kept.
set -euo pipefail
DATA=$(cd "${1:?usage: $0 DATA_DIR [WORK_DIR]}" && pwd)
WORK=${2:-runs/ud_ewt_400}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"
SEED=${SEED:-1}
EMB=()
[ -n "${EMBED:-}" ] && EMB=(--embed-path "$EMBED" --embed-dim "${EMBED_DIM:-100}")

python scripts/conll_to_fairseq.py --format conllu --field XPOS+DEPREL \
  --top-k-labels "${TOP_K:-400}" --escape-whitespace \
  --split train="$DATA/en_ewt-ud-train.conllu" --split valid="$DATA/en_ewt-ud-dev.conllu" \
  --split test="$DATA/en_ewt-ud-test.conllu" --out-dir "$WORK/raw"
binarize_split "$WORK/raw" "$WORK/bin"
echo "== $(wc -l < "$WORK/bin/dict.tags.txt") labels, '*' included (paper's CCG: the 400 most frequent + '*')"

ENERGY=$WORK/blstm_crf_plus/checkpoint_best.pt
# blstm_crf_plus with word features of its own (its defaults are Twitter POS's)
crf_energy_or_reuse "$WORK/bin" "$WORK" --hidden-size 400 --embed-dim 100 --char-filters 50 \
  --char-dim 30 --word-dropout 0.05 --no-lowercase-embeddings --lr 0.002 --batch-size 10 \
  --max-epoch "${EPOCHS:-30}" --seed "$SEED" "${EMB[@]}"
echo "== BLSTM-CRF+ test, Viterbi"
decode "$WORK/bin" "$ENERGY" tag_accuracy --inference viterbi 2> "$WORK/blstm_crf_plus.test.log" \
  | tee "$WORK/blstm_crf_plus.test.txt"

[ "${BENCHMARK:-1}" = 0 ] && exit 0
INFNET_ARGS="${INFNET_ARGS:-} ${EMB[*]}" DATA_NAME=${DATA_NAME:-ud_ewt_400} \
  CNN_WIDTHS=${CNN_WIDTHS:-1,5} REFINE_ARCHS=${REFINE_ARCHS:-tagger_blstm_plus} \
  "$HERE/../tagging_benchmark.sh" "$WORK/bin" "$ENERGY" "$WORK" tag_accuracy \
  ${ARCHS:-tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus}
