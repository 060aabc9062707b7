#!/usr/bin/env bash
# ENGINE (Tu et al., 2020) on WMT'16 Romanian->English at the paper's scale.
#   examples/wmt16_ro_en/run.sh [WORK_DIR]                     (default WORK_DIR runs/wmt16_ro_en)
#
# Data: the paper uses the corpus of Lee et al. (2018) (as do Mask-Predict and the authors'
# code): WMT'16 RO-EN (Europarl v8 + SETimes2, ~610k pairs), newsdev2016 / newstest2016,
# Romanian diacritics removed, tokenised, joint BPE.
#   - no DATA: downloads Lee et al.'s archive wmt16.tar.gz (Google Drive file
#     1YrAwCEuktG-iDVxtEW-FE72uFTLc5QMl, linked from github.com/nyu-dl/dl4mt-nonauto; needs
#     network access and `gdown`) into WORK_DIR/prep and takes
#     wmt16/en-ro/{train/corpus,dev/dev,test/test}.bpe.{ro,en} as train/valid/test.
#     fairseq ships no preparation script for this corpus.
#   - DATA=DIR with BPE'd {train,valid,test}.{ro,en} (e.g. your own copy of the above).
# BPE_CODES=FILE: the BPE codes of that text, used to measure teacher energies of the
# --remove-bpe outputs (default: a file named *code* found in the data; none: BLEU only).
#
# The pipeline, its stages and every hyper-parameter variable are described in
# examples/engine_paper_pipeline.sh (transformer teacher 6x512, 8 heads, FFN 2048; seq2seq
# LSTM teacher; distillation; CMLM; ENGINE with the paper's hyper-parameters; BiLSTM Table 5
# systems; OPS=1 for the operator table). WMT16 sizes: TEACHER_UPDATES (default 300000 here),
# CMLM_UPDATES=300000. SMOKE=1 works here too, given DATA.
set -euo pipefail
WORK=${1:-$(dirname "$0")/../../runs/wmt16_ro_en}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
[ -n "${DATA:-}" ] && DATA=$(cd "$DATA" && pwd)
SRC=ro TGT=en
TEACHER_UPDATES=${TEACHER_UPDATES:-300000}
source "$(dirname "$0")/../engine_paper_pipeline.sh"

download() {
  command -v gdown > /dev/null || { echo "!! needs gdown (pip install gdown) or DATA=DIR"; return 1; }
  mkdir -p "$WORK/prep/text"
  (cd "$WORK/prep" && gdown 1YrAwCEuktG-iDVxtEW-FE72uFTLc5QMl -O wmt16.tar.gz \
    && tar -xzf wmt16.tar.gz) > "$WORK/logs/prepare.log" 2>&1 \
    || { tail -n 20 "$WORK/logs/prepare.log"; return 1; }
  local root=$WORK/prep/wmt16/en-ro l
  for l in ro en; do
    cp "$root/train/corpus.bpe.$l" "$WORK/prep/text/train.$l"
    cp "$root/dev/dev.bpe.$l" "$WORK/prep/text/valid.$l"
    cp "$root/test/test.bpe.$l" "$WORK/prep/text/test.$l"
  done
}

if [ -z "${DATA:-}" ]; then
  stage download download
  TEXT=$WORK/prep/text
  SEARCH=$WORK/prep
else
  TEXT=$DATA
  SEARCH=$DATA
fi
[ -f "$TEXT/train.ro" ] || { echo "!! $TEXT has no train.ro (expected BPE'd {train,valid,test}.{ro,en})"; exit 1; }
if [ -z "${BPE_CODES:-}" ]; then
  BPE_CODES=$(find "$SEARCH" -maxdepth 4 -type f -iname '*code*' | head -n 1)
  [ -n "$BPE_CODES" ] || echo "!! no BPE codes found (set BPE_CODES): energies are not measured"
fi
engine_pipeline
