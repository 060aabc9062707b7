# Shared helpers for the tagging recipes; source it from a recipe.
# Uses the project's virtual environment when it exists, else whatever is on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$ROOT/.venv/bin/python" ]; then
  export PATH="$ROOT/.venv/bin:$PATH"
fi
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
cd "$ROOT"

# DEVICE=cpu|gpu|auto (default auto: the GPU when nvidia-smi finds one). DEVICE_FLAGS holds
# the fairseq options that choose it: --cpu on the CPU; on a GPU none, plus GPU_FLAGS
# (e.g. GPU_FLAGS=--fp16).
DEVICE=${DEVICE:-auto}
if [ "$DEVICE" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then DEVICE=gpu
  else DEVICE=cpu; fi
fi
case "$DEVICE" in
  cpu) DEVICE_FLAGS=(--cpu) ;;
  gpu) read -r -a DEVICE_FLAGS <<< "${GPU_FLAGS:-}" ;;
  *) echo "DEVICE must be cpu, gpu or auto, not '$DEVICE'" >&2; exit 2 ;;
esac
export DEVICE

# binarize RAW BIN: fairseq-preprocess of RAW/{train,valid,test}.{words,tags}; the word
# dictionary also spells dev/test words (count 0), see scripts/make_word_dict.py.
binarize() {
  local raw=$1 bin=$2
  python scripts/make_word_dict.py "$raw/train.words" "$raw/valid.words" "$raw/test.words" \
    > "$raw/dict.words.txt"
  rm -rf "$bin"
  fairseq-preprocess --source-lang words --target-lang tags \
    --trainpref "$raw/train" --validpref "$raw/valid" --testpref "$raw/test" \
    --srcdict "$raw/dict.words.txt" --padding-factor 1 --workers 2 --destdir "$bin" \
    > "$bin.preprocess.log" 2>&1 || { cat "$bin.preprocess.log"; return 1; }
}

# train_crf BIN SAVE_DIR ARCH [extra fairseq-train args]: CRF energy by conditional likelihood,
# best checkpoint by validation token accuracy.
train_crf() {
  local bin=$1 save=$2 arch=$3; shift 3
  fairseq-train "$bin" --user-dir engine_plugin --task sequence_labeling \
    --arch "$arch" --criterion crf_nll --optimizer adam --clip-norm 5 \
    --best-checkpoint-metric acc --maximize-best-checkpoint-metric \
    --no-epoch-checkpoints --no-last-checkpoints --save-dir "$save" \
    --log-format simple --log-interval 50 "${DEVICE_FLAGS[@]}" "$@"
}

# decode BIN CKPT SCORING [extra]: prints the final score line of fairseq-generate
decode() {
  local bin=$1 ckpt=$2 scoring=$3; shift 3
  fairseq-generate "$bin" --user-dir engine_plugin --task sequence_labeling \
    --path "$ckpt" --gen-subset test --scoring "$scoring" --batch-size 64 "${DEVICE_FLAGS[@]}" "$@" \
    | tail -n 1
}

# truncate_train RAW N: keep only the first N sentences of RAW/train.{words,tags} (a quick
# run; the full files are kept as RAW/train.full.{words,tags}). Call it before binarize.
truncate_train() {
  local raw=$1 n=$2 side
  for side in words tags; do
    [ -f "$raw/train.full.$side" ] || mv "$raw/train.$side" "$raw/train.full.$side"
    head -n "$n" "$raw/train.full.$side" > "$raw/train.$side"
  done
  echo "== training set truncated to $(wc -l < "$raw/train.words") sentences ($raw/train.*)"
}

# binarize_truncated RAW BIN: binarize after truncate_train, with the label dictionary of the
# full training split (RAW/train.full.tags), so that the dev/test labels that the truncated
# split lacks (e.g. the '*' of --top-k-labels) are still in the label space.
binarize_truncated() {
  local raw=$1 bin=$2
  python scripts/make_word_dict.py "$raw/train.words" "$raw/valid.words" "$raw/test.words" \
    > "$raw/dict.words.txt"
  python scripts/make_word_dict.py "$raw/train.full.tags" > "$raw/dict.tags.txt"
  rm -rf "$bin"
  fairseq-preprocess --source-lang words --target-lang tags \
    --trainpref "$raw/train" --validpref "$raw/valid" --testpref "$raw/test" \
    --srcdict "$raw/dict.words.txt" --tgtdict "$raw/dict.tags.txt" --workers 2 --destdir "$bin" \
    > "$bin.preprocess.log" 2>&1 || { cat "$bin.preprocess.log"; return 1; }
}

# subset_train RAW BIN N OUT: OUT = BIN with its train split replaced by the first N sentences
# of RAW/train.{words,tags}, binarised with BIN's dictionaries, so that checkpoints trained on
# OUT decode BIN (and use an energy trained on BIN). The valid and test splits are BIN's.
subset_train() {
  local raw=$1 bin=$2 n=$3 out=$4 side
  rm -rf "$out" "$out.raw"
  mkdir -p "$out.raw"
  for side in words tags; do head -n "$n" "$raw/train.$side" > "$out.raw/train.$side"; done
  fairseq-preprocess --source-lang words --target-lang tags --trainpref "$out.raw/train" \
    --srcdict "$bin/dict.words.txt" --tgtdict "$bin/dict.tags.txt" --workers 1 --destdir "$out" \
    > "$out.preprocess.log" 2>&1 || { cat "$out.preprocess.log"; return 1; }
  cp "$bin"/valid.* "$bin"/test.* "$out"/
  echo "== $out: the first $(wc -l < "$out.raw/train.words") training sentences, dictionaries of $bin"
}

# binarize_split RAW BIN: binarize, or, with MAX_SENTENCES set, truncate the training split first
binarize_split() {
  local raw=$1 bin=$2
  if [ -n "${MAX_SENTENCES:-}" ]; then
    truncate_train "$raw" "$MAX_SENTENCES"
    binarize_truncated "$raw" "$bin"
  else
    binarize "$raw" "$bin"
  fi
}

# crf_energy_or_reuse BIN WORK [train_crf args]: the BLSTM-CRF+ energy WORK/blstm_crf_plus,
# trained unless an earlier one was trained on the same dictionaries (RETRAIN=1 forces it).
crf_energy_or_reuse() {
  local bin=$1 work=$2; shift 2
  local energy=$work/blstm_crf_plus/checkpoint_best.pt
  if [ -f "$energy" ] && [ -z "${RETRAIN:-}" ] \
      && (cd "$bin" && md5sum --status -c "$work/blstm_crf_plus/dicts.md5" 2> /dev/null); then
    echo "== reusing the energy $energy"
    return
  fi
  echo "== training the BLSTM-CRF+ energy (log: $work/blstm_crf_plus.train.log)"
  train_crf "$bin" "$work/blstm_crf_plus" blstm_crf_plus "$@" \
    > "$work/blstm_crf_plus.train.log" 2>&1 \
    || { tail -n 30 "$work/blstm_crf_plus.train.log"; return 1; }
  grep "best_acc" "$work/blstm_crf_plus.train.log" | tail -n 1 || true
  (cd "$bin" && md5sum dict.words.txt dict.tags.txt) > "$work/blstm_crf_plus/dicts.md5"
}
