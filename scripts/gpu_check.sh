#!/usr/bin/env bash
# A short check that everything runs on a GPU, with timings: the quickstart (train + Viterbi),
# one tagging solver of each kind (viterbi, gd, infnet, tailored, warmstart) and ENGINE
# updates of a tiny cmlm_infnet against a tiny transformer teacher.
#   scripts/gpu_check.sh [WORK_DIR]              (DEVICE=gpu; a few minutes)
#   DEVICE=cpu scripts/gpu_check.sh [WORK_DIR]   (the same on the CPU, for comparison)
# Prints one "milliseconds  step" line per step, and the last score line of each decode.
DEVICE=${DEVICE:-gpu}
source "$(dirname "$0")/../examples/common.sh"
WORK=${1:-runs/gpu_check}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

timed() {  # timed NAME LOG COMMAND...: runs COMMAND, logs to LOG, prints its wall time
  local name=$1 log=$2 start end; shift 2
  start=$(date +%s%N)
  "$@" > "$log" 2>&1 || { tail -n 30 "$log"; echo "FAILED: $name" >&2; exit 1; }
  end=$(date +%s%N)
  printf '%8d ms  %s\n' $(( (end - start) / 1000000 )) "$name"
}

echo "== device: $DEVICE (${DEVICE_FLAGS[*]:-no --cpu}) $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
timed "quickstart (corpus, BLSTM-CRF+ training, Viterbi)" "$WORK/quickstart.log" \
  examples/quickstart/run.sh "$WORK/quickstart"
QS=$WORK/quickstart
timed "tagger_cnn infnet, 2 epochs against the CRF" "$WORK/infnet.log" \
  fairseq-train "$QS/bin" --user-dir engine_plugin --task sequence_labeling --arch tagger_cnn \
  --criterion energy_loss --energy-path "$QS/crf/checkpoint_best.pt" --optimizer adam \
  --lr 0.001 --batch-size 32 --max-epoch 2 --hidden-size 32 --embed-dim 32 --seed 1 \
  --save-dir "$WORK/infnet" --no-epoch-checkpoints --log-format simple "${DEVICE_FLAGS[@]}"
for method in viterbi gd infnet tailored warmstart; do
  case $method in
    viterbi|gd) model=(--path "$QS/crf/checkpoint_best.pt") ;;
    *) model=(--path "$WORK/infnet/checkpoint_best.pt" --energy-path "$QS/crf/checkpoint_best.pt") ;;
  esac
  timed "decode test with --inference $method" "$WORK/generate.$method.log" \
    fairseq-generate "$QS/bin" --user-dir engine_plugin --task sequence_labeling "${model[@]}" \
    --gen-subset test --inference "$method" --scoring tag_accuracy --batch-size 64 \
    "${DEVICE_FLAGS[@]}"
  tail -n 1 "$WORK/generate.$method.log"
done

TINY=$WORK/translation
python -c "import sys; from tests.fixtures.tiny_translation import write_corpus; \
write_corpus(sys.argv[1], {'train': 300, 'valid': 24, 'test': 24})" "$TINY/raw"
rm -rf "$TINY/bin"
timed "preprocess the tiny translation corpus" "$WORK/preprocess.log" \
  fairseq-preprocess --source-lang src --target-lang tgt --joined-dictionary \
  --trainpref "$TINY/raw/train" --validpref "$TINY/raw/valid" --testpref "$TINY/raw/test" \
  --destdir "$TINY/bin" --workers 1
SIZE=(--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32
  --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --encoder-attention-heads 2
  --decoder-attention-heads 2)
timed "transformer teacher, 100 updates" "$WORK/teacher.log" \
  fairseq-train "$TINY/bin" --task translation --arch transformer "${SIZE[@]}" \
  --optimizer adam --lr 0.005 --batch-size 32 --max-update 100 --seed 1 \
  --save-dir "$TINY/teacher" --no-epoch-checkpoints --disable-validation "${DEVICE_FLAGS[@]}"
timed "ENGINE: cmlm_infnet, 50 updates against the teacher (O1=SX, O2=ST)" "$WORK/engine.log" \
  fairseq-train "$TINY/bin" --user-dir engine_plugin --task translation_energy \
  --arch cmlm_infnet "${SIZE[@]}" --criterion energy_loss \
  --energy-path "$TINY/teacher/checkpoint_last.pt" --o1 sx --o2 st --noise full_mask \
  --optimizer adam --lr 0.001 --batch-size 32 --max-update 50 --seed 1 \
  --save-dir "$TINY/engine" --no-epoch-checkpoints --disable-validation "${DEVICE_FLAGS[@]}"
grep -E "\| train \|" "$WORK/engine.log" | tail -n 1
