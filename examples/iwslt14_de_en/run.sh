#!/usr/bin/env bash
# ENGINE (Tu et al., 2020) on IWSLT'14 German->English at the paper's scale.
#   examples/iwslt14_de_en/run.sh [WORK_DIR]                 (default WORK_DIR runs/iwslt14_de_en)
#
# Data, one of:
#   - no DATA: downloads and prepares the corpus with fairseq's standard
#     examples/translation/prepare-iwslt14.sh (Moses tokenisation, lowercasing, joint BPE with
#     10,000 merges; 160,239 / 7,283 / 6,750 train / valid / test pairs) in WORK_DIR/prep.
#     Needs network access, git, perl and wget (it clones mosesdecoder and subword-nmt and
#     fetches the TED data from dl.fbaipublicfiles.com).
#   - DATA=DIR holding that script's output: {train,valid,test}.{de,en} and code
#     (iwslt14.tokenized.de-en/).
#   - DATA=../shared/data/iwslt14_de_en (bpe10k/ valid+test+code and train_samples_bpe10k/,
#     8,746 distinct training pairs, NOT the full training set): only for checking the recipe,
#     normally with SMOKE=1 (tiny models, a handful of updates, the first EVAL_SENTENCES=100
#     valid/test pairs).
#
# The pipeline, its stages and every hyper-parameter variable are described in
# examples/engine_paper_pipeline.sh: transformer teacher (6 layers, 512-d, 8 heads, FFN 2048;
# AR_ARCH=transformer_iwslt_de_en for fairseq's smaller IWSLT model), seq2seq LSTM teacher,
# distillation, CMLM baseline, ENGINE (cmlm_infnet from the CMLM, O1=SX, O2=ST), BiLSTM
# Table 5 systems (BILSTM=0 skips them), the 5x5 operator table with OPS=1. GPU flags
# (no --cpu; --fp16 for cross-entropy training) are used on a GPU (DEVICE=auto, the
# default, picks it when nvidia-smi finds one; DEVICE=cpu forces the CPU).
#
# Smoke test of every stage on the shared sample (CPU, a few minutes):
#   SMOKE=1 DATA=../shared/data/iwslt14_de_en examples/iwslt14_de_en/run.sh /tmp/iwslt_smoke
set -euo pipefail
WORK=${1:-$(dirname "$0")/../../runs/iwslt14_de_en}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
[ -n "${DATA:-}" ] && DATA=$(cd "$DATA" && pwd)
SRC=de TGT=en
source "$(dirname "$0")/../engine_paper_pipeline.sh"

download() {  # fairseq's prepare-iwslt14.sh, as shipped with the installed fairseq
  local script
  script=$(python -c 'import fairseq, os; print(os.path.join(os.path.dirname(fairseq.__file__),
    "examples", "translation", "prepare-iwslt14.sh"))')
  [ -f "$script" ] || script=https://raw.githubusercontent.com/facebookresearch/fairseq/main/examples/translation/prepare-iwslt14.sh
  mkdir -p "$WORK/prep"
  if [ -f "$script" ]; then
    (cd "$WORK/prep" && bash "$script") > "$WORK/logs/prepare.log" 2>&1
  else
    (cd "$WORK/prep" && wget -q "$script" -O prepare-iwslt14.sh && bash prepare-iwslt14.sh) \
      > "$WORK/logs/prepare.log" 2>&1
  fi
  [ -s "$WORK/prep/iwslt14.tokenized.de-en/train.de" ] \
    || { tail -n 20 "$WORK/logs/prepare.log"; echo "!! prepare-iwslt14.sh failed"; return 1; }
}

from_shared_sample() {  # ../shared/data/iwslt14_de_en -> WORK/sample (8,746 distinct pairs)
  mkdir -p "$WORK/sample"
  python - "$DATA/train_samples_bpe10k" "$WORK/sample" <<'EOF'
import os, sys
src, out = sys.argv[1:]
pairs = list(zip(open(os.path.join(src, "sample_a.de")).read().splitlines(),
                 open(os.path.join(src, "sample_a.en")).read().splitlines()))
pairs += [tuple(line.split("\t")) for line in open(os.path.join(src, "sample_b.de-en.tsv")).read().splitlines()]
seen, unique = set(), []
for pair in pairs:
    if pair not in seen:
        seen.add(pair)
        unique.append(pair)
for side, lang in enumerate(("de", "en")):
    with open(os.path.join(out, f"train.{lang}"), "w") as f:
        f.writelines(pair[side] + "\n" for pair in unique)
print(f"   {len(unique)} distinct training pairs from the shared samples")
EOF
  cp "$DATA"/bpe10k/{valid,test}.{de,en} "$DATA/bpe10k/code" "$WORK/sample/"
}

if [ -z "${DATA:-}" ]; then
  stage download download
  TEXT=$WORK/prep/iwslt14.tokenized.de-en
elif [ -f "$DATA/train.de" ]; then
  TEXT=$DATA
elif [ -d "$DATA/train_samples_bpe10k" ]; then
  [ -n "${SMOKE:-}" ] || echo "!! $DATA holds 8,746 sampled training pairs, not the full corpus"
  stage sample from_shared_sample
  TEXT=$WORK/sample
else
  echo "!! DATA=$DATA has neither train.de (prepare-iwslt14.sh output) nor train_samples_bpe10k/"
  exit 1
fi
BPE_CODES=${BPE_CODES:-$TEXT/code}
[ -f "$BPE_CODES" ] || BPE_CODES=''
engine_pipeline
