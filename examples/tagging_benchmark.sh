#!/usr/bin/env bash
# The approximate-inference benchmark of Tu & Gimpel (2019) on one tagging data set and one
# frozen CRF energy: local baselines and inference networks per architecture (Table 1), the
# speed of every method at batch size 10 (Table 3), metric and energy against the number of
# steps N for gradient descent, instance tailoring and warm starts (Table 6), and a
# speed/accuracy plot (Figure 2).
#
#   examples/tagging_benchmark.sh BIN CRF_CKPT WORK SCORING [ARCHS...]
#
# BIN       fairseq-preprocess output (train/valid/test); valid tunes step sizes, test is reported
# CRF_CKPT  the trained energy (blstm_crf or blstm_crf_plus checkpoint); copied once to
#           WORK/energy.pt, so that every run uses the same energy even if CRF_CKPT changes
# WORK      output folder: WORK/results.tsv (one row per fairseq-generate run, with the exact
#           command), WORK/tables.md, WORK/speed_accuracy.png, WORK/logs/
# SCORING   tag_accuracy or span_f1
# ARCHS     inference network architectures (default: tagger_cnn_plus tagger_blstm_plus
#           tagger_seq2seq_plus)
#
# Options (environment variables; paper = Tu & Gimpel 2019, §5 and appendix):
#   DATA_NAME=basename(WORK)   the data column of the results
#   TRAIN_BIN=BIN              data the networks are trained on (e.g. a truncated train split
#                              binarised with BIN's dictionaries, see subset_train in common.sh)
#   EPOCHS=30                  epochs of each local baseline and inference network
#   TRAIN_MINUTES=             if set, each of them also stops after this many minutes of
#                              training (fairseq --stop-time-hours; the best checkpoint so far,
#                              by validation accuracy, is kept)
#   LAMBDA=1                   λ, the weight of the local CE loss (paper grid 0.2 0.5 1 2 5)
#   CE_ANNEAL=0.01             λ_t = λ·exp(-CE_ANNEAL·epoch) (paper §7, Table 5)
#   INFNET_INIT=random         random: infnets start from random weights (paper); local: each
#                              infnet starts from its architecture's local baseline
#                              (fairseq --finetune-from-model), so that baseline is trained first;
#                              energy: tagger_blstm(_plus) infnets start from the BLSTM-CRF
#                              energy's own features and emission layer
#                              (scripts/energy_to_infnet.py; the energy's sizes override HIDDEN)
#   O2=sx                      relaxation of infnet outputs fed to the energy (paper: softmax)
#   OPTIMIZER=adam LR=0.001    infnet/baseline optimiser (paper: SGD with momentum, lr grid
#                              5 1 0.5 0.1 0.05 0.01 0.005 0.001 0.0005; e.g.
#                              OPTIMIZER="sgd --momentum 0.9" LR=0.1)
#   TRAIN_BATCH=10 HIDDEN=100  training batch size; H of every network
#   CNN_WIDTHS=1,3             tagger_cnn filter widths (paper: 1,3 for POS, 1,5 for NER/CCG)
#   PLUS_FEATURES="--embed-dim 100 --char-filters 50 --char-dim 30 --word-dropout 0
#                 --no-lowercase-embeddings"   word features of the _plus baselines and
#                              infnets, where they differ from the architectures' (Twitter-
#                              tuned) defaults: the settings of RESULTS.md's benchmark rows
#   INFNET_ARGS=               more fairseq-train arguments for baselines and infnets
#                              (e.g. "--embed-path vectors.txt --embed-dim 100")
#   JOBS=1                     trainings run at the same time
#   GD_STEPS="5 10 20 50 100"  N for gradient descent; η is tuned per N on valid over
#   GD_LRS="1e4 1e3 100 10 1"  this grid (paper grid: 1e4 5e3 1e3 500 100 50 10 5 1)
#   GD_INIT=zero               start of gradient descent: zero logits (uniform distributions)
#                              or random (N(0,1) logits; the paper starts at random, scale not
#                              given; on Twitter POS N(0,1) starts get stuck ~30 nats above the
#                              Viterbi energy, zero starts reach it within 10 steps)
#   GD_ORACLE_STEPS=GD_STEPS GD_ORACLE_LRS=GD_LRS   per-sentence oracle grid (paper: N up to 1000)
#   TAILOR_STEPS="3 5 10" TAILOR_LRS=0.01   instance tailoring (η tuned on valid if several)
#   WARM_STEPS="5 10 20" WARM_LRS="10 1 0.1" warm-started gradient descent
#   REFINE_ARCHS=first of ARCHS   infnets used for tailoring and warm starts (paper: CNN
#                              for POS, seq2seq for NER, BLSTM for CCG); those not in ARCHS
#                              are left out (the first of ARCHS if none is left)
#   METHODS="local infnet viterbi gd oracle tailored warmstart"   what to run
#   DEV_BATCH=64 TEST_BATCH=10 batch sizes of tuning runs and of reported runs (paper: 10)
#   SEED=1
#   RETRAIN=1 / REDECODE=1     retrain existing checkpoints / rerun decodes already in
#                              results.tsv (by default both are reused, so a stopped run resumes)
set -euo pipefail
usage="usage: $0 BIN CRF_CKPT WORK SCORING [ARCHS...]"
[ $# -ge 4 ] || { echo "$usage" >&2; exit 2; }
# absolute paths first: common.sh changes to the project root
BIN=$(cd "$1" && pwd)
CRF_SRC=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
[ -f "$CRF_SRC" ] || { echo "no CRF checkpoint $CRF_SRC" >&2; exit 2; }
mkdir -p "$3"
WORK=$(cd "$3" && pwd)
SCORING=$4
shift 4
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus)
TRAIN_BIN=$(cd "${TRAIN_BIN:-$BIN}" && pwd)
source "$(dirname "$0")/common.sh"

DATA_NAME=${DATA_NAME:-$(basename "$WORK")}
RESULTS=$WORK/results.tsv
EPOCHS=${EPOCHS:-30} LAMBDA=${LAMBDA:-1} CE_ANNEAL=${CE_ANNEAL:-0.01} O2=${O2:-sx}
INFNET_INIT=${INFNET_INIT:-random}
case $INFNET_INIT in random|local|energy) ;; *) echo "INFNET_INIT must be random, local or energy" >&2; exit 2;; esac
OPTIMIZER=${OPTIMIZER:-adam} LR=${LR:-0.001} TRAIN_BATCH=${TRAIN_BATCH:-10}
PLUS_FEATURES=${PLUS_FEATURES---embed-dim 100 --char-filters 50 --char-dim 30 --word-dropout 0 --no-lowercase-embeddings}
HIDDEN=${HIDDEN:-100} CNN_WIDTHS=${CNN_WIDTHS:-1,3} INFNET_ARGS=${INFNET_ARGS:-} JOBS=${JOBS:-1}
GD_STEPS=${GD_STEPS:-5 10 20 50 100} GD_LRS=${GD_LRS:-1e4 1e3 100 10 1} GD_INIT=${GD_INIT:-zero}
GD_ORACLE_STEPS=${GD_ORACLE_STEPS:-$GD_STEPS} GD_ORACLE_LRS=${GD_ORACLE_LRS:-$GD_LRS}
TAILOR_STEPS=${TAILOR_STEPS:-3 5 10} TAILOR_LRS=${TAILOR_LRS:-0.01}
WARM_STEPS=${WARM_STEPS:-5 10 20} WARM_LRS=${WARM_LRS:-10 1 0.1}
refine=()
for arch in ${REFINE_ARCHS:-${ARCHS[0]}}; do
  [[ " ${ARCHS[*]} " == *" $arch "* ]] && refine+=("$arch")
done
[ ${#refine[@]} -gt 0 ] || refine=("${ARCHS[0]}")
REFINE_ARCHS=${refine[*]}
METHODS=${METHODS:-local infnet viterbi gd oracle tailored warmstart}
DEV_BATCH=${DEV_BATCH:-64} TEST_BATCH=${TEST_BATCH:-10} SEED=${SEED:-1}
mkdir -p "$WORK/logs"
START=$SECONDS

say() { printf '== [%s +%ds] %s\n' "$(date +%H:%M:%S)" $((SECONDS - START)) "$*"; }
wants() { [[ " $METHODS " == *" $1 "* ]]; }
commas() { echo "$*" | tr ' ' ','; }
# quoted ARGS...: the command as one copy-pastable line (arguments quoted only where needed)
quoted() {
  local arg out=()
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./,:=@%+-]+$ ]]; then out+=("$arg"); else out+=("$(printf '%q' "$arg")"); fi
  done
  echo "${out[*]}"
}

ENERGY=$WORK/energy.pt
if [ ! -f "$ENERGY" ] || [ -n "${RETRAIN:-}" ]; then
  cp "$CRF_SRC" "$ENERGY"
fi
say "benchmark of $DATA_NAME: energy $CRF_SRC (copied to $ENERGY), archs ${ARCHS[*]} (tailoring and warm starts: $REFINE_ARCHS), results $RESULTS"

# train_tagger NAME ARCH ENERGY_WEIGHT: a local baseline (weight 0, CE only) or an inference
# network (energy + λ·CE) in WORK/NAME; its command goes to WORK/NAME.train.cmd.
train_tagger() {
  local name=$1 arch=$2 weight=$3 save=$WORK/$1
  local cmd=(fairseq-train "$TRAIN_BIN" --user-dir engine_plugin --task sequence_labeling
    --arch "$arch" --criterion energy_loss --energy-weight "$weight" --o2 "$O2"
    --optimizer $OPTIMIZER --lr "$LR" --clip-norm 5 --batch-size "$TRAIN_BATCH"
    --max-epoch "$EPOCHS" --hidden-size "$HIDDEN" --seed "$SEED"
    --best-checkpoint-metric acc --maximize-best-checkpoint-metric
    --no-epoch-checkpoints --no-last-checkpoints --save-dir "$save"
    --log-format simple --log-interval 50 "${DEVICE_FLAGS[@]}")
  if [ "$weight" = 0 ]; then
    cmd+=(--ce-weight 1)
  else
    cmd+=(--energy-path "$ENERGY" --ce-weight "$LAMBDA" --ce-anneal-rate "$CE_ANNEAL")
    case $INFNET_INIT in
      local) cmd+=(--finetune-from-model "$WORK/local_$arch/checkpoint_best.pt");;
      energy) cmd+=(--finetune-from-model "$WORK/energy_as_infnet.pt");;
    esac
  fi
  [[ $arch == tagger_cnn* ]] && cmd+=(--cnn-widths "$CNN_WIDTHS")
  [[ $arch == *_plus ]] && cmd+=($PLUS_FEATURES)
  [ -n "${TRAIN_MINUTES:-}" ] && cmd+=(--stop-time-hours "$(python -c "print(${TRAIN_MINUTES} / 60)")")
  cmd+=($INFNET_ARGS)
  # last, so that the energy's sizes win over HIDDEN and INFNET_ARGS
  [ "$weight" != 0 ] && [ "$INFNET_INIT" = energy ] && cmd+=($ENERGY_SHAPE)
  # a training that was stopped leaves a checkpoint_best.pt but no $save.done: it is redone
  if [ -f "$save/checkpoint_best.pt" ] && [ -f "$save.done" ] && [ -z "${RETRAIN:-}" ]; then
    say "reusing $save/checkpoint_best.pt"
    return
  fi
  rm -rf "$save" "$save.done"
  quoted "${cmd[@]}" > "$save.train.cmd"
  say "training $name (log: $save.train.log)"
  local t0=$SECONDS
  "${cmd[@]}" > "$save.train.log" 2>&1 || { tail -n 30 "$save.train.log"; return 1; }
  touch "$save.done"
  say "trained $name in $((SECONDS - t0))s: $(awk '/valid on/ { for (i = 1; i < NF; i++) if ($i == "acc") { n++; if ($(i+1) > best) best = $(i+1) } }
    END { printf "best valid acc %s after %d epochs", best, n }' "$save.train.log")"
}

# decode SPLIT BATCH METHOD ARCH N LR CKPT [fairseq-generate args]: one fairseq-generate run,
# its score line appended to RESULTS (skipped when the same command is already there).
decode_row() {
  local split=$1 batch=$2 method=$3 arch=$4 n=$5 lr=$6 ckpt=$7
  shift 7
  local cmd=(fairseq-generate "$BIN" --user-dir engine_plugin --task sequence_labeling
    --path "$ckpt" --gen-subset "$split" --scoring "$SCORING" --batch-size "$batch"
    --seed "$SEED" "${DEVICE_FLAGS[@]}" "$@")
  local cmdline train_cmd="" log
  cmdline=$(quoted "${cmd[@]}")
  LAST_CMDLINE=$cmdline
  # the whole command column (tab-delimited), not a prefix: "--gd-lr 1" must not match "--gd-lr 10"
  if [ -z "${REDECODE:-}" ] && [ -f "$RESULTS" ] \
      && grep -qF -- "$(printf '\t%s\t' "$cmdline")" "$RESULTS"; then
    say "  $split $method $arch N=$n η=$lr: in results already"
    return
  fi
  [ -f "${ckpt%/checkpoint_best.pt}.train.cmd" ] && train_cmd=$(cat "${ckpt%/checkpoint_best.pt}.train.cmd")
  log=$WORK/logs/$split.$method.$arch.N$n.lr$lr.txt
  "${cmd[@]}" > "$log" 2> "$log.err" || { tail -n 30 "$log.err"; return 1; }
  python scripts/tagging_results.py append "$RESULTS" --log "$log" --data "$DATA_NAME" \
    --split "$split" --method "$method" --arch "$arch" --n "$n" --lr "$lr" --batch-size "$batch" \
    --command "$cmdline" --train-command "$train_cmd"
  say "  $split $method $arch N=$n η=$lr: $(tail -n 1 "$log" | sed 's/^Generate [a-z]* with beam=[0-9]*: //')"
}

# tune METHOD ARCH N "LRS" CKPT [args with @LR@ for the step size]: sets TUNED to the step
# size with the best validation metric (ties: lower energy); a single LR is used as is.
tune() {
  local method=$1 arch=$2 n=$3 lrs=$4 ckpt=$5 lr commands=$WORK/logs/tuning.commands
  shift 5
  if [ "$(echo $lrs | wc -w)" = 1 ]; then TUNED=$lrs; return; fi
  : > "$commands"
  for lr in $lrs; do
    decode_row valid "$DEV_BATCH" "$method" "$arch" "$n" "$lr" "$ckpt" "${@//@LR@/$lr}"
    echo "$LAST_CMDLINE" >> "$commands"
  done
  TUNED=$(python scripts/tagging_results.py best "$RESULTS" --commands "$commands")
  say "  $method $arch N=$n: η=$TUNED chosen on valid"
}

# 1. local baselines and inference networks (JOBS at a time; with INFNET_INIT=local an
# architecture's infnet is trained after, and from, its local baseline)
if [ "$INFNET_INIT" = local ] && wants infnet && ! wants local; then
  echo "INFNET_INIT=local needs local in METHODS (the infnets start from the local baselines)" >&2
  exit 2
fi
ENERGY_SHAPE=
if [ "$INFNET_INIT" = energy ] && wants infnet; then
  for arch in "${ARCHS[@]}"; do
    [[ $arch == tagger_blstm* ]] || { echo "INFNET_INIT=energy: only tagger_blstm(_plus) infnets" \
      "can start from the energy's emissions, not $arch (set ARCHS)" >&2; exit 2; }
  done
  ENERGY_SHAPE=$(python scripts/energy_to_infnet.py "$ENERGY" "$WORK/energy_as_infnet.pt")
  say "infnets start from the energy's emissions ($WORK/energy_as_infnet.pt: $ENERGY_SHAPE)"
fi
train_arch() {  # train_arch ARCH KIND...: the trainings of one architecture, in order
  local arch=$1 kind; shift
  for kind in "$@"; do
    if [ "$kind" = local ]; then train_tagger "local_$arch" "$arch" 0
    else train_tagger "infnet_$arch" "$arch" 1; fi
  done
}
jobs_=()
for arch in "${ARCHS[@]}"; do
  kinds=()
  for kind in local infnet; do wants $kind && kinds+=("$kind"); done
  [ ${#kinds[@]} -gt 0 ] || continue
  if [ "$INFNET_INIT" = local ]; then jobs_+=("$arch ${kinds[*]}")
  else for kind in "${kinds[@]}"; do jobs_+=("$arch $kind"); done; fi
done
pids=()
for job in "${jobs_[@]}"; do
  train_arch $job &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

# 2. decoding the test split with every method (batch TEST_BATCH for the speed table)
if wants viterbi; then
  say "viterbi"
  decode_row test "$TEST_BATCH" viterbi - - - "$ENERGY" --inference viterbi
fi
for arch in "${ARCHS[@]}"; do
  for kind in local infnet; do
    wants $kind || continue
    say "$kind $arch"
    decode_row test "$TEST_BATCH" $kind "$arch" - - "$WORK/${kind}_$arch/checkpoint_best.pt" \
      --inference infnet --energy-path "$ENERGY"
  done
done
if wants gd; then
  for n in $GD_STEPS; do
    say "gradient descent N=$n"
    tune gd - "$n" "$GD_LRS" "$ENERGY" --inference gd --gd-steps "$n" --gd-lr @LR@ --gd-init "$GD_INIT"
    decode_row test "$TEST_BATCH" gd - "$n" "$TUNED" "$ENERGY" \
      --inference gd --gd-steps "$n" --gd-lr "$TUNED" --gd-init "$GD_INIT"
  done
fi
if wants oracle; then
  say "gradient descent, oracle N and η per sentence (N in $GD_ORACLE_STEPS, η in $GD_ORACLE_LRS)"
  max_n=$(echo $GD_ORACLE_STEPS | tr ' ' '\n' | sort -n | tail -n 1)
  decode_row test "$TEST_BATCH" gd_oracle - "$max_n" oracle "$ENERGY" --inference gd --gd-oracle \
    --gd-oracle-steps "$(commas $GD_ORACLE_STEPS)" --gd-oracle-lrs "$(commas $GD_ORACLE_LRS)" \
    --gd-init "$GD_INIT"
fi
for arch in $REFINE_ARCHS; do
  ckpt=$WORK/infnet_$arch/checkpoint_best.pt
  if { wants tailored || wants warmstart; } && [ ! -f "$ckpt" ]; then
    echo "no inference network $ckpt to tailor or warm-start from: keep infnet in METHODS" >&2
    exit 1
  fi
  if wants tailored; then
    for n in $TAILOR_STEPS; do
      say "instance-tailored $arch N=$n"
      tune tailored "$arch" "$n" "$TAILOR_LRS" "$ckpt" --inference tailored --energy-path "$ENERGY" \
        --tailor-steps "$n" --tailor-lr @LR@
      decode_row test "$TEST_BATCH" tailored "$arch" "$n" "$TUNED" "$ckpt" --inference tailored \
        --energy-path "$ENERGY" --tailor-steps "$n" --tailor-lr "$TUNED"
    done
  fi
  if wants warmstart; then
    for n in $WARM_STEPS; do
      say "warm-started gradient descent $arch N=$n"
      tune warmstart "$arch" "$n" "$WARM_LRS" "$ckpt" --inference warmstart --energy-path "$ENERGY" \
        --gd-steps "$n" --gd-lr @LR@
      decode_row test "$TEST_BATCH" warmstart "$arch" "$n" "$TUNED" "$ckpt" --inference warmstart \
        --energy-path "$ENERGY" --gd-steps "$n" --gd-lr "$TUNED"
    done
  fi
done

# 3. tables and plot
python scripts/tagging_tables.py "$RESULTS" --out-md "$WORK/tables.md" --out-png "$WORK/speed_accuracy.png"
say "done in $((SECONDS - START))s: $WORK/tables.md, $WORK/speed_accuracy.png"
