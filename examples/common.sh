# Shared helpers for the tagging recipes; source it from a recipe.
# Uses the project's virtual environment when it exists, else whatever is on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$ROOT/.venv/bin/python" ]; then
  export PATH="$ROOT/.venv/bin:$PATH"
fi
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
cd "$ROOT"

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
    --log-format simple --log-interval 50 --cpu "$@"
}

# decode BIN CKPT SCORING [extra]: prints the final score line of fairseq-generate
decode() {
  local bin=$1 ckpt=$2 scoring=$3; shift 3
  fairseq-generate "$bin" --user-dir engine_plugin --task sequence_labeling \
    --path "$ckpt" --gen-subset test --scoring "$scoring" --batch-size 64 --cpu "$@" \
    | tail -n 1
}
