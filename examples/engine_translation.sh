# Shared by the ENGINE translation recipes (examples/{multi30k,iwslt14_de_en,wmt16_ro_en}/run.sh).
# Source it after setting WORK (an absolute path): it sources common.sh (project venv, cd to
# the project root, strict mode) and defines
#   stage NAME FUNCTION [ARGS]  run a stage once; progress lines and "NAME<TAB>seconds" in
#                               $WORK/timings.tsv; a rerun skips finished stages (FORCE=1: redo);
#                               ONLY="NAME ..." runs just those stages, so that two independent
#                               stages (e.g. two trainings) can share a machine in two shells
#   logged LOG CMD...           run CMD with its output in LOG; on failure show its tail
#   ar_generate / nat_generate  stock fairseq-generate for the teacher / the NAT models
#   decode_row ...              decode, keep the BLEU, queue the output for energy scoring
#   flush_energies              teacher energies of the queued outputs -> $WORK/results.tsv
#                               (SKIP_ENERGY=1: rows without energies)
#   DEV_BLEU                    fairseq-train options that keep the checkpoint of best dev BLEU
#                               (one-iteration decoding, BPE removed; translation_energy task)
# DEVICE=cpu|gpu|auto and GPU_FLAGS (e.g. "--fp16") choose the device (see common.sh).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$WORK/logs" "$WORK/gen" "$WORK/.done"
RESULTS=$WORK/results.tsv
DEV_BLEU=(--eval-bleu --eval-bleu-args '{"iter_decode_max_iter": 0}' --eval-bleu-remove-bpe
  --best-checkpoint-metric bleu --maximize-best-checkpoint-metric)
# decode_row queues outputs in $QUEUE.tsv until flush_energies scores them; outputs of another
# source (e.g. the operator table's validation decodes) use their own QUEUE
QUEUE=$WORK/pending
[ -s "$RESULTS" ] || printf 'table\tsystem\titerations\tlength_beam\tbleu\tenergy\tenergy_lstm\tcommand\n' > "$RESULTS"
[ -s "$WORK/timings.tsv" ] || printf 'stage\tseconds\tfinished\n' > "$WORK/timings.tsv"

stage() {
  local name=$1 start end
  shift
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
    return 0
  fi
  if [ -e "$WORK/.done/$name" ] && [ -z "${FORCE:-}" ]; then
    echo "== [$name] already done ($WORK/.done/$name), skipped"
    return 0
  fi
  echo "== [$name] started $(date +%H:%M:%S)"
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  local seconds
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\n' "$name" "$seconds" "$(date +%FT%T)" >> "$WORK/timings.tsv"
  touch "$WORK/.done/$name"
  echo "== [$name] finished in $seconds s"
}

logged() {
  local log=$1
  shift
  echo "   $*" > "$log.cmd"
  "$@" > "$log" 2>&1 || { echo "!! failed: $*"; tail -n 40 "$log"; return 1; }
}

# last_train_line LOG: the final training summary fairseq-train logged (loss, updates, wall)
last_train_line() {
  grep -E "\| train \| epoch|valid on 'valid'|\| valid \|" "$1" | tail -n 2 | sed 's/^/   /'
}

# ar_generate OUT BIN CKPT SUBSET [args]: stock translation task (the teacher), BPE removed.
ar_generate() {
  local out=$1 bin=$2 ckpt=$3 subset=$4
  shift 4
  GEN_CMD="fairseq-generate $bin --user-dir engine_plugin --task translation --path $ckpt \
--gen-subset $subset --batch-size ${GEN_BATCH:-128} ${DEVICE_FLAGS[*]} $*"
  logged "$out" fairseq-generate "$bin" --user-dir engine_plugin --task translation \
    --path "$ckpt" --gen-subset "$subset" --batch-size "${GEN_BATCH:-128}" "${DEVICE_FLAGS[@]}" "$@"
}

# nat_generate OUT BIN CKPT SUBSET [args]: stock fairseq-generate with the translation_energy
# task (fairseq's IterativeRefinementGenerator), BPE removed, sacrebleu scorer.
nat_generate() {
  local out=$1 bin=$2 ckpt=$3 subset=$4
  shift 4
  local args=(--user-dir engine_plugin --task translation_energy --path "$ckpt"
    --gen-subset "$subset" --iter-decode-eos-penalty 0 --beam 1 --remove-bpe
    --scoring sacrebleu --batch-size "${GEN_BATCH:-128}" "${DEVICE_FLAGS[@]}" "$@")
  GEN_CMD="fairseq-generate $bin ${args[*]}"
  logged "$out" fairseq-generate "$bin" "${args[@]}"
}

# bleu_of GEN_OUT: the score of fairseq-generate's last line (--scoring sacrebleu)
bleu_of() { grep -oP 'BLEU = \K[0-9.]+' "$1" | tail -n 1; }
# speed_of GEN_OUT: sentences/s of fairseq-generate's "Translated N sentences" line
speed_of() { grep -oP 'Translated .*\(\K[0-9.]+(?= sentences/s)' "$1" | tail -n 1; }

# decode_row TABLE SYSTEM ITERATIONS LENGTH_BEAM KIND OUT BIN CKPT SUBSET [args]: decodes with
# ar_generate (KIND=ar) or nat_generate (KIND=nat), prints the BLEU and queues the row; the
# energy is filled in by flush_energies.
decode_row() {
  local table=$1 system=$2 iters=$3 lbeam=$4 kind=$5 out=$6
  shift 6
  "${kind}_generate" "$out" "$@"
  local bleu
  bleu=$(bleu_of "$out")
  printf '   %-28s iterations=%-3s length_beam=%-7s BLEU=%s  (%s sentences/s)\n' \
    "$system" "$iters" "$lbeam" "$bleu" "$(speed_of "$out")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$table" "$system" "$iters" "$lbeam" "$bleu" "$out" \
    "$GEN_CMD" >> "$QUEUE.tsv"
}

# flush_energies SOURCE [teacher_energy.py options]: mean teacher energy of every queued
# output (one process; teachers $TEACHER and, if set and trained, $LSTM_TEACHER), appended to
# $RESULTS with the queued BLEU and command.
flush_energies() {
  local source=$1
  shift
  [ -s "$QUEUE.tsv" ] || return 0
  local teachers=(--teacher "$TEACHER")
  if [ -n "${LSTM_TEACHER:-}" ]; then
    if [ -e "$LSTM_TEACHER" ]; then
      teachers+=(--teacher "$LSTM_TEACHER")
    else  # e.g. ONLY= left the LSTM teacher untrained: its energy column stays "-"
      echo "   no LSTM teacher yet ($LSTM_TEACHER): transformer energies only"
    fi
  fi
  if [ -n "${SKIP_ENERGY:-}" ]; then
    cut -f 6 "$QUEUE.tsv" | sed 's/$/\t-\t-\t-/' > "$QUEUE.energy"
  else
    cut -f 6 "$QUEUE.tsv" | xargs python scripts/teacher_energy.py "${teachers[@]}" \
      --source "$source" "$@" > "$QUEUE.energy" 2> "$WORK/logs/teacher_energy.log" \
      || { tail -n 30 "$WORK/logs/teacher_energy.log"; return 1; }
  fi
  python - "$QUEUE.tsv" "$QUEUE.energy" >> "$RESULTS" <<'EOF'
import sys
energies = {}
for line in open(sys.argv[2]):
    path, n, *means = line.rstrip("\n").split("\t")
    energies[path] = means + ["-"] * (2 - len(means))
for line in open(sys.argv[1]):
    table, system, iters, lbeam, bleu, out, cmd = line.rstrip("\n").split("\t")
    print("\t".join([table, system, iters, lbeam, bleu or "-", *energies[out], cmd]))
EOF
  echo "   energies of $(wc -l < "$QUEUE.tsv") outputs -> $RESULTS"
  rm -f "$QUEUE.tsv" "$QUEUE.energy"
}
