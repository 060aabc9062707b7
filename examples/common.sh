# Shared by every recipe and driver in examples/; source it from a script. It uses the
# project's virtual environment when there is one, and changes to the project root (resolve
# relative paths with input_dir / work_dir, which read them from the caller's directory).
#   stage NAME CMD...    a resumable stage: skipped once finished (FORCE=1 redoes it, ONLY=
#                        names the stages to run), its wall time in WORK/timings.tsv
#   logged LOG CMD...    CMD with its output in LOG (and the command in LOG.cmd)
#   decode_row ...       one fairseq-generate run, its score line recorded by a scripts/ helper
# and the device choice (DEVICE_FLAGS) and the tagging helpers below.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CALLER_DIR=$PWD
if [ -x "$ROOT/.venv/bin/python" ]; then
  export PATH="$ROOT/.venv/bin:$PATH"
fi
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
cd "$ROOT"

# input_dir PATH: the absolute path of an existing directory PATH (relative to the caller's
# directory); work_dir PATH: the same for a work directory, created if need be.
input_dir() { (cd "$CALLER_DIR" && cd "$1" && pwd); }
work_dir() { (cd "$CALLER_DIR" && mkdir -p "$1" && cd "$1" && pwd); }

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

# stage NAME CMD...: runs CMD as the stage NAME of WORK. A stage that finishes leaves
# WORK/.done/NAME and a "NAME<TAB>seconds<TAB>finished" line in WORK/timings.tsv; a rerun skips
# it. FORCE=1 redoes finished stages (STAGE_FORCED is then set for CMD, e.g. to start a
# training afresh instead of resuming it); ONLY="NAME,..." (commas or spaces) runs just those.
stage() {
  local name=$1 STAGE_FORCED='' start seconds
  shift
  if [ -n "${ONLY:-}" ] && [[ " ${ONLY//,/ } " != *" $name "* ]]; then
    return 0
  fi
  if [ -e "$WORK/.done/$name" ]; then
    if [ -z "${FORCE:-}" ]; then
      echo "== [$name] already done, skipped (WORK/.done/$name; FORCE=1 redoes it)"
      return 0
    fi
    STAGE_FORCED=1
    rm "$WORK/.done/$name"
  fi
  mkdir -p "$WORK/.done"
  [ -s "$WORK/timings.tsv" ] || printf 'stage\tseconds\tfinished\n' > "$WORK/timings.tsv"
  echo "== [$name] started $(date +%H:%M:%S)"
  start=$(date +%s.%N)
  "$@"
  seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\n' "$name" "$seconds" "$(date +%FT%T)" >> "$WORK/timings.tsv"
  touch "$WORK/.done/$name"
  echo "== [$name] finished in $seconds s"
}

# logged LOG CMD...: runs CMD with its output in LOG and the command, quoted, in LOG.cmd; on
# failure shows the end of LOG.
logged() {
  local log=$1
  shift
  quoted "$@" > "$log.cmd"
  "$@" > "$log" 2>&1 || { echo "!! failed ($log): $(quoted "$@")" >&2; tail -n 40 "$log" >&2; return 1; }
}

# quoted ARGS...: the command as one line to copy (arguments quoted only where needed)
quoted() {
  local arg out=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./,:=@%+-]+$ ]]; then out+=("$arg")
    elif [[ $arg != *\'* ]]; then out+=("'$arg'")
    else out+=("$(printf '%q' "$arg")"); fi
  done
  echo "${out[*]}"
}

# decode_row LOG RECORDER [ARGS] -- GENERATE_ARGS...: runs fairseq-generate GENERATE_ARGS (stdout
# in LOG, stderr in LOG.err), then python scripts/RECORDER ARGS --log LOG --command CMD, which
# reads the score line and records the row (CMD: the generate command, quoted to be copied).
decode_row() {
  local log=$1 recorder=() cmd
  shift
  while [ "$1" != -- ]; do recorder+=("$1"); shift; done
  shift
  cmd=$(quoted fairseq-generate "$@")
  fairseq-generate "$@" > "$log" 2> "$log.err" \
    || { echo "!! failed ($log.err): $cmd" >&2; tail -n 30 "$log.err" >&2; return 1; }
  python "scripts/${recorder[0]}" "${recorder[@]:1}" --log "$log" --command "$cmd"
}

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
