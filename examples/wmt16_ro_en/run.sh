#!/usr/bin/env bash
# ENGINE (Tu et al., 2020) on WMT'16 Romanian->English at the paper's scale: the wmt16 preset
# of examples/engine_pipeline.sh, on the corpus of Lee et al. (2018) as the paper.
#   examples/wmt16_ro_en/run.sh DATA [WORK_DIR]           (default WORK_DIR runs/wmt16_ro_en)
# DATA: a directory of BPE'd {train,valid,test}.{ro,en}, or `download` for Lee et al.'s
# wmt16.tar.gz (needs network and gdown). BPE_CODES=FILE: the codes of that text, for the
# teacher energies (default: a file named *code* in the data; none: BLEU only).
# Stages, the fairseq commands, resuming, variables: examples/wmt16_ro_en/README.md.
set -euo pipefail
source "$(dirname "$0")/../engine_pipeline.sh"
DATA=${1:?usage: $0 DATA_DIR|download [WORK_DIR]}
WORK=$(work_dir "${2:-$ROOT/runs/wmt16_ro_en}")
load_preset wmt16

download() {  # Google Drive file 1YrAwCEuktG-iDVxtEW-FE72uFTLc5QMl (github.com/nyu-dl/dl4mt-nonauto)
  command -v gdown > /dev/null || { echo "!! needs gdown (pip install gdown) or a DATA directory" >&2; return 1; }
  mkdir -p "$WORK/prep/text" "$WORK/logs"
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

if [ "$DATA" = download ]; then
  stage download download
  TEXT=$WORK/prep/text
  SEARCH=$WORK/prep
else
  TEXT=$(input_dir "$DATA")
  SEARCH=$TEXT
fi
[ -f "$TEXT/train.ro" ] || { echo "!! $TEXT has no train.ro (BPE'd {train,valid,test}.{ro,en})" >&2; exit 2; }
BPE_CODES=${BPE_CODES:-$(find "$SEARCH" -maxdepth 4 -type f -iname '*code*' | head -n 1)}
SRC=ro TGT=en SEGMENT=()
if [ -n "$BPE_CODES" ]; then SEGMENT=(--bpe-codes "$(input_file "$BPE_CODES")")
else echo "!! no BPE codes found (set BPE_CODES): energies are not measured"; fi
engine_pipeline
