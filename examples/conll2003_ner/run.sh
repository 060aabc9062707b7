#!/usr/bin/env bash
# CoNLL-2003 English NER (Tjong Kim Sang & De Meulder 2003) as in Tu & Gimpel (2019): BIOES
# labels (17), a BLSTM-CRF+ energy with H = 200, conlleval span F1, then the
# approximate-inference benchmark (examples/tagging_benchmark.sh).
#   examples/conll2003_ner/run.sh DATA_DIR [WORK_DIR]
# DATA_DIR holds eng.train, eng.testa (valid) and eng.testb (test), e.g. ../shared/data/conll2003_ner.
# Options (environment):
#   EPOCHS=30          epochs of the energy, of each local baseline and inference network
#   MAX_SENTENCES=N    keep only the first N training sentences (a quick run; unset = all 14041)
#   EMBED=vectors.txt EMBED_DIM=100   pretrained word embeddings (paper: 100-d GloVe) for the
#                      energy and the networks
#   BENCHMARK=0        stop after the energy and its Viterbi test score
#   SEED=1, and every option of examples/tagging_benchmark.sh (ARCHS, GD_STEPS, JOBS, ...);
#   its defaults here: CNN_WIDTHS=1,5, REFINE_ARCHS=tagger_seq2seq_plus (paper Table 6)
set -euo pipefail
DATA=$(cd "${1:?usage: $0 DATA_DIR [WORK_DIR]}" && pwd)
WORK=${2:-runs/conll2003_ner}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../common.sh"
SEED=${SEED:-1}
EMB=()
[ -n "${EMBED:-}" ] && EMB=(--embed-path "$EMBED" --embed-dim "${EMBED_DIM:-100}")

python scripts/conll_to_fairseq.py --format conll2003 --bioes --split train="$DATA/eng.train" \
  --split valid="$DATA/eng.testa" --split test="$DATA/eng.testb" --out-dir "$WORK/raw"
binarize_split "$WORK/raw" "$WORK/bin"
echo "== $(wc -l < "$WORK/bin/dict.tags.txt") BIOES labels (paper: 17)"

ENERGY=$WORK/blstm_crf_plus/checkpoint_best.pt
# blstm_crf_plus with word features of its own (its defaults are Twitter POS's)
crf_energy_or_reuse "$WORK/bin" "$WORK" --embed-dim 100 --char-filters 50 --char-dim 30 \
  --word-dropout 0.05 --no-lowercase-embeddings --lr 0.002 --batch-size 10 \
  --max-epoch "${EPOCHS:-30}" --seed "$SEED" "${EMB[@]}"
echo "== BLSTM-CRF+ test (eng.testb), Viterbi"
decode "$WORK/bin" "$ENERGY" span_f1 --inference viterbi 2> "$WORK/blstm_crf_plus.test.log" \
  | tee "$WORK/blstm_crf_plus.test.txt"

[ "${BENCHMARK:-1}" = 0 ] && exit 0
INFNET_ARGS="${INFNET_ARGS:-} ${EMB[*]}" DATA_NAME=${DATA_NAME:-conll2003_ner} \
  CNN_WIDTHS=${CNN_WIDTHS:-1,5} REFINE_ARCHS=${REFINE_ARCHS:-tagger_seq2seq_plus} \
  "$HERE/../tagging_benchmark.sh" "$WORK/bin" "$ENERGY" "$WORK" span_f1 \
  ${ARCHS:-tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus}
