#!/usr/bin/env bash
# The approximate-inference benchmark of Tu & Gimpel (2019) on one tagging data set and one
# frozen CRF energy: local baselines and inference networks per architecture (Table 1), the
# speed of every method at batch size 10 (Table 3), metric and energy against the number of
# steps N for gradient descent, instance tailoring and warm starts (Table 6), and a
# speed/accuracy plot (Figure 2). Every training and every decode is a stage (common.sh).
#
#   examples/tagging_benchmark.sh BIN CRF_CKPT WORK SCORING [ARCHS...]
#
# BIN: fairseq-preprocess output (valid tunes step sizes, test is reported); CRF_CKPT: the
# energy, copied once to WORK/energy.pt; SCORING: tag_accuracy or span_f1; ARCHS: infnet
# architectures (default tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus). Outputs:
# WORK/results.tsv (a row per decode, with its command), WORK/tables.md, WORK/speed_accuracy.png.
# Its stages, the fairseq commands and its variables: examples/twitter_pos/README.md.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_args 4 any "usage: $0 BIN CRF_CKPT WORK SCORING [ARCHS...]" "$@"
BIN=$(input_dir "$1")
CRF_SRC=$(input_file "$2")
WORK=$(work_dir "$3")
SCORING=$4
shift 4
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(tagger_cnn_plus tagger_blstm_plus tagger_seq2seq_plus)
TRAIN_BIN=$(input_dir "${TRAIN_BIN:-$BIN}")

DATA_NAME=${DATA_NAME:-$(basename "$WORK")}
RESULTS=$WORK/results.tsv
EPOCHS=${EPOCHS:-30} LAMBDA=${LAMBDA:-1} LR=${LR:-0.001} TRAIN_BATCH=${TRAIN_BATCH:-10}
INFNET_INIT=${INFNET_INIT:-random}
case $INFNET_INIT in random|local|energy) ;; *) echo "INFNET_INIT must be random, local or energy" >&2; exit 2;; esac
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
SEED=${SEED:-1}
# the protocol's constants: λ annealing (paper §7), word features of the _plus networks (those
# of RESULTS.md's rows, where they differ from the Twitter-tuned defaults), batch sizes of
# tuning decodes and of reported ones (the paper's speed table: 10)
CE_ANNEAL=0.01
PLUS_FEATURES=(--embed-dim 100 --char-filters 50 --char-dim 30 --word-dropout 0
  --no-lowercase-embeddings)
DEV_BATCH=64 TEST_BATCH=10
mkdir -p "$WORK/logs"
START=$SECONDS

say() { printf '== [%s +%ds] %s\n' "$(date +%H:%M:%S)" $((SECONDS - START)) "$*"; }
wants() { [[ " $METHODS " == *" $1 "* ]]; }
commas() { echo "$*" | tr ' ' ','; }

ENERGY=$WORK/energy.pt
stage copy_energy cp "$CRF_SRC" "$ENERGY"
say "benchmark of $DATA_NAME: energy $CRF_SRC (copied to $ENERGY), archs ${ARCHS[*]} (tailoring and warm starts: $REFINE_ARCHS), results $RESULTS"

# train_tagger NAME ARCH ENERGY_WEIGHT: a local baseline (weight 0, CE only) or an inference
# network (energy + λ·CE) in WORK/NAME; log WORK/logs/NAME.log, its command in NAME.log.cmd
train_tagger() {
  local name=$1 arch=$2 weight=$3 save=$WORK/$1 log=$WORK/logs/$1.log
  local cmd=(fairseq-train "$TRAIN_BIN" --user-dir engine_plugin --task sequence_labeling
    --arch "$arch" --criterion energy_loss --energy-weight "$weight" --o2 sx
    --optimizer adam --lr "$LR" --clip-norm 5 --batch-size "$TRAIN_BATCH"
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
  [[ $arch == *_plus ]] && cmd+=("${PLUS_FEATURES[@]}")
  [ -n "${TRAIN_MINUTES:-}" ] && cmd+=(--stop-time-hours "$(python -c "print(${TRAIN_MINUTES} / 60)")")
  cmd+=($INFNET_ARGS)
  # last, so that the energy's sizes win over HIDDEN and INFNET_ARGS
  [ "$weight" != 0 ] && [ "$INFNET_INIT" = energy ] && cmd+=($ENERGY_SHAPE)
  rm -rf "$save"
  say "training $name (log: $log)"
  logged "$log" "${cmd[@]}"
  say "trained $name: $(awk '/valid on/ { for (i = 1; i < NF; i++) if ($i == "acc") { n++; if ($(i+1) > best) best = $(i+1) } }
    END { printf "best valid acc %s after %d epochs", best, n }' "$log")"
}

# generate_args SPLIT BATCH CKPT [args]: GENERATE_ARGS, the arguments of one fairseq-generate run
generate_args() {
  local split=$1 batch=$2 ckpt=$3
  shift 3
  GENERATE_ARGS=("$BIN" --user-dir engine_plugin --task sequence_labeling --path "$ckpt"
    --gen-subset "$split" --scoring "$SCORING" --batch-size "$batch" --seed "$SEED"
    "${DEVICE_FLAGS[@]}" "$@")
}

# decode SPLIT BATCH METHOD ARCH N LR CKPT [fairseq-generate args]: the stage
# SPLIT_METHOD[_ARCH][_GD_INIT][_N<N>][_lr<LR>] ("-" parts left out): one fairseq-generate run
# (log WORK/logs/STAGE.txt), its score line a row of RESULTS with the command that trained CKPT
decode() {
  local split=$1 batch=$2 method=$3 arch=$4 n=$5 lr=$6 ckpt=$7 name train_cmd='' trained
  shift 7
  name=${split}_$method
  [ "$arch" = - ] || name+=_$arch
  [[ $method != gd* ]] || name+=_$GD_INIT
  [ "$n" = - ] || name+=_N$n
  [ "$lr" = - ] || name+=_lr$lr
  generate_args "$split" "$batch" "$ckpt" "$@"
  trained=$WORK/logs/$(basename "$(dirname "$ckpt")").log.cmd
  [ ! -f "$trained" ] || train_cmd=$(cat "$trained")
  stage "$name" decode_row "$WORK/logs/$name.txt" tagging_results.py append "$RESULTS" \
    --data "$DATA_NAME" --split "$split" --method "$method" --arch "$arch" --n "$n" --lr "$lr" \
    --batch-size "$batch" --train-command "$train_cmd" -- "${GENERATE_ARGS[@]}"
}

# tune METHOD ARCH N "LRS" CKPT [args with @LR@ for the step size]: sets TUNED to the step
# size with the best validation metric (ties: lower energy); a single LR is used as is.
tune() {
  local method=$1 arch=$2 n=$3 lrs=$4 ckpt=$5 lr commands=$WORK/logs/tuning.commands
  shift 5
  if [ "$(echo $lrs | wc -w)" = 1 ]; then TUNED=$lrs; return; fi
  : > "$commands"
  for lr in $lrs; do
    decode valid "$DEV_BATCH" "$method" "$arch" "$n" "$lr" "$ckpt" "${@//@LR@/$lr}"
    quoted fairseq-generate "${GENERATE_ARGS[@]}" >> "$commands"
  done
  TUNED=$(python scripts/tagging_results.py best "$RESULTS" --commands "$commands") \
    || { echo "!! $method $arch N=$n: no valid rows to tune on; run its valid_* stages" >&2; exit 1; }
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
    if [ "$kind" = local ]; then stage "local_$arch" train_tagger "local_$arch" "$arch" 0
    else stage "infnet_$arch" train_tagger "infnet_$arch" "$arch" 1; fi
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
  decode test "$TEST_BATCH" viterbi - - - "$ENERGY" --inference viterbi
fi
for arch in "${ARCHS[@]}"; do
  for kind in local infnet; do
    wants $kind || continue
    say "$kind $arch"
    decode test "$TEST_BATCH" $kind "$arch" - - "$WORK/${kind}_$arch/checkpoint_best.pt" \
      --inference infnet --energy-path "$ENERGY"
  done
done
if wants gd; then
  for n in $GD_STEPS; do
    say "gradient descent N=$n"
    tune gd - "$n" "$GD_LRS" "$ENERGY" --inference gd --gd-steps "$n" --gd-lr @LR@ --gd-init "$GD_INIT"
    decode test "$TEST_BATCH" gd - "$n" "$TUNED" "$ENERGY" \
      --inference gd --gd-steps "$n" --gd-lr "$TUNED" --gd-init "$GD_INIT"
  done
fi
if wants oracle; then
  say "gradient descent, oracle N and η per sentence (N in $GD_ORACLE_STEPS, η in $GD_ORACLE_LRS)"
  max_n=$(echo $GD_ORACLE_STEPS | tr ' ' '\n' | sort -n | tail -n 1)
  decode test "$TEST_BATCH" gd_oracle - "$max_n" oracle "$ENERGY" --inference gd --gd-oracle \
    --gd-oracle-steps "$(commas $GD_ORACLE_STEPS)" --gd-oracle-lrs "$(commas $GD_ORACLE_LRS)" \
    --gd-init "$GD_INIT"
fi
# refine METHOD TITLE STEPS_FLAG LR_FLAG STEPS LRS ARCH CKPT: the infnet CKPT refined on the
# energy by METHOD (tailored or warmstart) for each N in STEPS, η chosen on valid among LRS
refine() {
  local method=$1 title=$2 steps_flag=$3 lr_flag=$4 steps=$5 lrs=$6 arch=$7 ckpt=$8 n
  for n in $steps; do
    say "$title $arch N=$n"
    tune "$method" "$arch" "$n" "$lrs" "$ckpt" --inference "$method" --energy-path "$ENERGY" \
      "$steps_flag" "$n" "$lr_flag" @LR@
    decode test "$TEST_BATCH" "$method" "$arch" "$n" "$TUNED" "$ckpt" --inference "$method" \
      --energy-path "$ENERGY" "$steps_flag" "$n" "$lr_flag" "$TUNED"
  done
}
for arch in $REFINE_ARCHS; do
  ckpt=$WORK/infnet_$arch/checkpoint_best.pt
  if { wants tailored || wants warmstart; } && [ ! -f "$ckpt" ]; then
    echo "no inference network $ckpt to tailor or warm-start from: keep infnet in METHODS" >&2
    exit 1
  fi
  if wants tailored; then
    refine tailored "instance-tailored" --tailor-steps --tailor-lr "$TAILOR_STEPS" "$TAILOR_LRS" \
      "$arch" "$ckpt"
  fi
  if wants warmstart; then
    refine warmstart "warm-started gradient descent" --gd-steps --gd-lr "$WARM_STEPS" "$WARM_LRS" \
      "$arch" "$ckpt"
  fi
done

# 3. tables and plot
FORCE=1 stage tables python scripts/tagging_tables.py "$RESULTS" --out-md "$WORK/tables.md" \
  --out-png "$WORK/speed_accuracy.png"
say "done in $((SECONDS - START))s: $WORK/tables.md, $WORK/speed_accuracy.png"
