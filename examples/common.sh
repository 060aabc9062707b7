# Shared by every recipe and driver in examples/; source it from a script. It uses the
# project's virtual environment when there is one, and changes to the project root (resolve
# relative paths with input_dir / work_dir, which read them from the caller's directory).
#   stage NAME CMD...    a resumable stage: skipped once finished (FORCE=1 redoes it, ONLY=
#                        names the stages to run), its wall time in WORK/timings.tsv
#   logged LOG CMD...    CMD with its output in LOG (and the command in LOG.cmd)
#   decode_row ...       one fairseq-generate run, its score line recorded by a scripts/ helper
# the device choice (DEVICE_FLAGS), and the tagging recipes' stages (binarize, train_crf,
# test_viterbi, energy_and_benchmark ...).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CALLER_DIR=$PWD
if [ -x "$ROOT/.venv/bin/python" ]; then
  export PATH="$ROOT/.venv/bin:$PATH"
fi
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
cd "$ROOT"

# need_args MIN MAX USAGE ARGS...: exits 2 with USAGE on stderr unless ARGS are MIN to MAX
# arguments (MAX = any: no upper bound)
need_args() {
  local min=$1 max=$2 usage=$3
  shift 3
  if [ $# -lt "$min" ] || { [ "$max" != any ] && [ $# -gt "$max" ]; }; then
    echo "$usage" >&2
    exit 2
  fi
}

# input_dir PATH / input_file PATH: the absolute path of an existing directory / file PATH
# (relative to the caller's directory); work_dir PATH: the same for a work directory, created
# if need be.
input_dir() { (cd "$CALLER_DIR" && cd "$1" && pwd); }
input_file() { (cd "$CALLER_DIR" && realpath -e "$1") || { echo "no file $1" >&2; return 2; }; }
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

# only_selects NAME: whether ONLY is unset or one of its words (names or shell patterns)
# matches NAME
only_selects() {
  local word words
  [ -n "${ONLY:-}" ] || return 0
  read -r -a words <<< "${ONLY//,/ }"  # no pathname expansion of the patterns
  for word in "${words[@]}"; do
    # shellcheck disable=SC2053  # the word is a pattern on purpose
    [[ $1 == $word ]] && return 0
  done
  return 1
}

# stage NAME CMD...: runs CMD as the stage NAME of WORK. A stage that finishes leaves
# WORK/.done/NAME and a "NAME<TAB>seconds<TAB>finished" line in WORK/timings.tsv; a rerun skips
# it. FORCE=1 redoes finished stages (STAGE_FORCED is then set for CMD, e.g. to start a
# training afresh instead of resuming it); ONLY="NAME,..." (commas or spaces; shell patterns
# such as 'decode_*' too) runs just those.
stage() {
  local name=$1 STAGE_FORCED='' start seconds
  shift
  only_selects "$name" || return 0
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

# train_crf NAME ARCH [fairseq-train args]: a CRF energy WORK/NAME/checkpoint_best.pt trained
# on WORK/bin by conditional likelihood, best checkpoint by validation token accuracy unless
# ARGS say otherwise (log WORK/logs/NAME.log). An interrupted stage resumes from
# WORK/NAME/checkpoint_last.pt when rerun; FORCE=1 starts it afresh.
train_crf() {
  local name=$1 arch=$2
  shift 2
  mkdir -p "$WORK/logs"
  [ -z "${STAGE_FORCED:-}" ] || rm -rf "${WORK:?}/$name"
  logged "$WORK/logs/$name.log" fairseq-train "$WORK/bin" --user-dir engine_plugin \
    --task sequence_labeling --arch "$arch" --criterion crf_nll --optimizer adam --clip-norm 5 \
    --best-checkpoint-metric acc --maximize-best-checkpoint-metric \
    --no-epoch-checkpoints --save-dir "$WORK/$name" \
    --log-format simple --log-interval 50 "${DEVICE_FLAGS[@]}" "$@"
  grep "valid on 'valid' subset" "$WORK/logs/$name.log" | tail -n 1 | sed 's/^.*| acc /   valid acc /'
}

# test_viterbi NAME SCORING: Viterbi decoding of WORK/bin's test split with the energy
# WORK/NAME; hypotheses in WORK/NAME.test.generate.txt, the score line in WORK/NAME.test.txt
test_viterbi() {
  local out=$WORK/$1.test.generate.txt
  fairseq-generate "$WORK/bin" --user-dir engine_plugin --task sequence_labeling \
    --path "$WORK/$1/checkpoint_best.pt" --gen-subset test --inference viterbi --scoring "$2" \
    --batch-size 64 "${DEVICE_FLAGS[@]}" > "$out" 2> "$WORK/logs/$1.test.log" \
    || { tail -n 30 "$WORK/logs/$1.test.log" >&2; return 1; }
  tail -n 1 "$out" | tee "$WORK/$1.test.txt"
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

# convert ARGS...: scripts/conll_to_fairseq.py ARGS into WORK/raw (replacing an earlier one)
convert() {
  rm -rf "${WORK:?}/raw"
  python scripts/conll_to_fairseq.py "$@" --out-dir "$WORK/raw"
}

# EMBEDDINGS: the fairseq-train options of pretrained word embeddings EMBED=FILE (EMBED_DIM=100
# dimensions), for the energies and the benchmark's networks; none without EMBED
EMBEDDINGS=()
if [ -n "${EMBED:-}" ]; then
  EMBEDDINGS=(--embed-path "$(input_file "$EMBED")" --embed-dim "${EMBED_DIM:-100}")
fi

# benchmark NAME SCORING CNN_WIDTHS REFINE_ARCH: examples/tagging_benchmark.sh against the
# energy WORK/blstm_crf_plus on WORK/bin, in WORK: the networks ARCHS (default the three _plus
# infnets), tailoring and warm starts from REFINE_ARCH; every benchmark variable still applies
benchmark() {
  # shellcheck disable=SC2086
  INFNET_ARGS="${INFNET_ARGS:-} ${EMBEDDINGS[*]}" DATA_NAME=${DATA_NAME:-$1} \
    CNN_WIDTHS=${CNN_WIDTHS:-$3} REFINE_ARCHS=${REFINE_ARCHS:-$4} \
    "$ROOT/examples/tagging_benchmark.sh" "$WORK/bin" "$WORK/blstm_crf_plus/checkpoint_best.pt" \
    "$WORK" "$2" ${ARCHS:-tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus}
}

# energy_and_benchmark NAME SCORING REFINE_ARCH [blstm_crf_plus args]: the stages of a tagging
# recipe after `convert`: binarize (MAX_SENTENCES), the BLSTM-CRF+ energy (best checkpoint by
# the dev score SCORING reports, lr halved whenever it does not improve, early stop after
# PATIENCE=6 epochs without improvement, at most EPOCHS=30), its Viterbi test score, then
# (unless BENCHMARK=0) the benchmark with CNN widths 1,5
energy_and_benchmark() {
  local name=$1 scoring=$2 refine=$3 metric=acc
  shift 3
  [ "$scoring" != span_f1 ] || metric=f1
  stage binarize binarize_split "$WORK/raw" "$WORK/bin"
  [ ! -f "$WORK/bin/dict.tags.txt" ] || echo "== $(wc -l < "$WORK/bin/dict.tags.txt") labels in $WORK/bin"
  stage blstm_crf_plus train_crf blstm_crf_plus blstm_crf_plus "$@" --lr 0.002 --batch-size 10 \
    --lr-scheduler reduce_lr_on_plateau --lr-shrink 0.5 --lr-patience 1 \
    --best-checkpoint-metric "$metric" --patience "${PATIENCE:-6}" \
    --max-epoch "${EPOCHS:-30}" --seed "${SEED:-1}" "${EMBEDDINGS[@]}"
  stage test_blstm_crf_plus test_viterbi blstm_crf_plus "$scoring"
  if [ "${BENCHMARK:-1}" != 0 ]; then benchmark "$name" "$scoring" 1,5 "$refine"; fi
}
