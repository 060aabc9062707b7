# The ENGINE pipeline (Tu et al., 2020) of examples/{multi30k,iwslt14_de_en,wmt16_ro_en}/run.sh:
# one set of stage functions, the sizes and hyper-parameters from a preset of
# examples/engine_presets.tsv. A recipe sources this file, sets WORK (work_dir), calls
# load_preset NAME, prepares its data and calls engine_pipeline with
#   SRC TGT  language suffixes      TEXT  BPE'd {train,valid,test}.{SRC,TGT}
#   SEGMENT  scripts/teacher_energy.py options that segment --remove-bpe outputs again
#            (BPE codes, vocabulary filter); empty: rows without energies
# The stages, the fairseq commands they run and every variable: examples/multi30k/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# load_preset NAME: the defaults of preset NAME for every variable not set already
# (SMOKE=1: the smoke column on top; ENGINE_CONFIG=recipe: ENGINE's earlier configuration)
load_preset() {
  local defaults
  PRESET=$1
  defaults=$(python scripts/engine_preset.py examples/engine_presets.tsv "$PRESET" \
    ${SMOKE:+--smoke} --engine-config "${ENGINE_CONFIG:-authors}") || exit 2
  eval "$defaults"
}

# when GROUP CMD...: CMD if GROUP is one of EXPERIMENTS
when() { local group=$1; shift; if [[ " $EXPERIMENTS " == *" $group "* ]]; then "$@"; fi; }

# requires GROUP NEEDED: refuses EXPERIMENTS with GROUP but not NEEDED
requires() {
  if [[ " $EXPERIMENTS " == *" $1 "* && " $EXPERIMENTS " != *" $2 "* ]]; then
    echo "!! EXPERIMENTS=\"$EXPERIMENTS\": $1 needs $2 (add it)" >&2
    exit 2
  fi
}

# warmup UPDATES CAP: a tenth of the updates, at least 1 and at most CAP
warmup() { local w=$(($1 / 10)); echo $((w < 1 ? 1 : (w > $2 ? $2 : w))); }

check_settings() {
  local group
  for group in $EXPERIMENTS; do
    case $group in ref|distill|hybrid|bilstm|ops|solvers|converged|engine_converged) ;;
      *) echo "!! EXPERIMENTS: unknown group $group (ref distill hybrid bilstm ops solvers converged engine_converged)" >&2; exit 2 ;;
    esac
  done
  requires hybrid ref
  requires hybrid distill
  requires bilstm distill
  requires converged distill
  requires engine_converged converged
  check_solver_models
  case $NAT_INIT in teacher|random) ;; *) echo "!! NAT_INIT=$NAT_INIT: teacher or random" >&2; exit 2 ;; esac
  case $ENGINE_CORPUS in
    references) ENGINE_BIN=$BIN OPS_START=cmlm; requires ops ref ;;
    distilled) ENGINE_BIN=${BIN}_distill OPS_START=cmlm_distill; requires ops distill; requires ref distill ;;
    *) echo "!! ENGINE_CORPUS=$ENGINE_CORPUS: references or distilled" >&2; exit 2 ;;
  esac
}

# common_opts: COMMON, the options of every fairseq-train run (fairseq seed SEED)
common_opts() {
  COMMON=(--user-dir engine_plugin "${DEVICE_FLAGS[@]}" --num-workers 0 --seed "$SEED"
    --no-epoch-checkpoints --save-interval "$VALIDATE_INTERVAL"
    --validate-interval "$VALIDATE_INTERVAL" --skip-invalid-size-inputs-valid-test
    --log-format simple --log-interval 25)
}

# engine_opt LR: ENGINE_OPT, ENGINE's inference-network training at learning rate LR (the
# paper's §4.4 and its authors' released code)
engine_opt() {
  ENGINE_OPT=(--criterion energy_loss --optimizer adam --adam-betas "(0.9,0.999)"
    --lr "$1" --weight-decay 0.01 --dropout 0.1 --max-tokens "$ENGINE_MAX_TOKENS"
    --update-freq "$ENGINE_UPDATE_FREQ" --clip-norm "$ENGINE_CLIP_NORM"
    --normalize-by "$ENGINE_NORMALIZE_BY" --length-loss-factor "$ENGINE_LENGTH_LOSS"
    --noise full_mask)
  [ "$ENGINE_EPOCHS" = 0 ] || ENGINE_OPT+=(--max-epoch "$ENGINE_EPOCHS")
}

# set_options: the paths and option arrays every stage uses, from the preset's variables
set_options() {
  BIN=$WORK/bin
  RESULTS=$WORK/results.tsv
  QUEUE=$WORK/pending  # decodes waiting for their energies (flush_energies)
  TEACHER=$WORK/teacher_transformer/checkpoint_best.pt
  LSTM_TEACHER=''  # the bilstm experiments' teacher, whose energy is a second column
  if [[ " $EXPERIMENTS " == *" bilstm "* ]]; then LSTM_TEACHER=$WORK/teacher_lstm/checkpoint_best.pt; fi
  check_settings
  mkdir -p "$WORK/logs" "$WORK/gen"
  common_opts
  FP16=()
  [ "$DEVICE" = cpu ] || FP16=(--fp16)  # cross-entropy training in half precision on a GPU
  SIZES=(--encoder-layers "$LAYERS" --decoder-layers "$LAYERS" --encoder-embed-dim "$DIM"
    --decoder-embed-dim "$DIM" --encoder-ffn-embed-dim "$FFN" --decoder-ffn-embed-dim "$FFN"
    --encoder-attention-heads "$HEADS" --decoder-attention-heads "$HEADS" --share-all-embeddings)
  CMLM_ARCH=("${SIZES[@]}" --apply-bert-init)
  [ "$NAT_INIT" = teacher ] || CMLM_ARCH+=(--encoder-learned-pos --decoder-learned-pos)
  CMLM_TRAIN=(--task translation_energy --arch cmlm_transformer "${CMLM_ARCH[@]}"  # partial masking
    --criterion nat_loss --noise random_mask --label-smoothing 0.1 --dropout "$DROPOUT"
    --weight-decay 0.01 --fixed-validation-seed 7)
  BILSTM_ARCH=(--arch bilstm_infnet --embed-dim "$DIM" --hidden-size "$DIM")
  DEV_BLEU=(--eval-bleu --eval-bleu-args '{"iter_decode_max_iter": 0}' --eval-bleu-remove-bpe
    --best-checkpoint-metric bleu --maximize-best-checkpoint-metric)
  engine_opt "$ENGINE_LR"
  ENGINE_VALID=()
  [ -z "$ENGINE_VALID_EVERY" ] \
    || ENGINE_VALID=(--save-interval-updates "$ENGINE_VALID_EVERY" --keep-interval-updates 1)
  case $ENGINE_METRIC in
    energy) ENGINE_SELECT=("${ENGINE_VALID[@]}" --best-checkpoint-metric energy_discrete) ;;
    bleu) ENGINE_SELECT=("${ENGINE_VALID[@]}" "${DEV_BLEU[@]}") ;;
    *) echo "!! ENGINE_METRIC=$ENGINE_METRIC: energy or bleu" >&2; exit 2 ;;
  esac
}

# ---------------------------------------------------------------- data
first_lines() { if [ -n "$1" ]; then head -n "$1" "$2"; else cat "$2"; fi; }

preprocess() {  # preprocess DESTDIR [fairseq-preprocess args]
  local dest=$1
  shift
  rm -rf "$dest"
  logged "$WORK/logs/preprocess_$(basename "$dest").log" fairseq-preprocess --source-lang "$SRC" \
    --target-lang "$TGT" --destdir "$dest" --workers 2 "$@"
}

# binarize_text: TEXT (the first MAX_TRAIN / EVAL_SENTENCES pairs) -> WORK/text -> WORK/bin, one joined
# dictionary for the teachers and the NAT models; the first OPS_VALID valid pairs -> WORK/bin_ops
binarize_text() {
  mkdir -p "$WORK/text"
  local l split
  for l in "$SRC" "$TGT"; do
    first_lines "$MAX_TRAIN" "$TEXT/train.$l" > "$WORK/text/train.$l"
    for split in valid test; do
      first_lines "$EVAL_SENTENCES" "$TEXT/$split.$l" > "$WORK/text/$split.$l"
    done
    first_lines "$OPS_VALID" "$WORK/text/valid.$l" > "$WORK/text/valid_ops.$l"
  done
  echo "   train/valid/test: $(wc -l < "$WORK/text/train.$SRC") / $(wc -l < "$WORK/text/valid.$SRC") / $(wc -l < "$WORK/text/test.$SRC") pairs"
  preprocess "$BIN" --joined-dictionary --trainpref "$WORK/text/train" \
    --validpref "$WORK/text/valid" --testpref "$WORK/text/test"
  preprocess "$BIN"_ops --srcdict "$BIN/dict.$SRC.txt" --tgtdict "$BIN/dict.$TGT.txt" \
    --validpref "$WORK/text/valid_ops"
}

# distill: the teacher's beam search over train (BPE kept) -> WORK/bin_distill, binarised with
# the teacher's dictionaries; valid and test are the references'
distill() {
  local out=$WORK/gen/distill_train.txt
  mkdir -p "$WORK/distill"
  generate_args ar "$BIN" "$TEACHER" train --beam "$DISTILL_BEAM"
  logged "$out" fairseq-generate "${GENERATE_ARGS[@]}"
  echo "   $(grep -oP 'Translated .*' "$out")"
  grep -P '^H-' "$out" | sed 's/^H-//' | sort -n -k1,1 | cut -f 3 > "$WORK/distill/train.$TGT"
  cp "$WORK/text/train.$SRC" "$WORK/distill/train.$SRC"
  [ "$(wc -l < "$WORK/distill/train.$TGT")" -eq "$(wc -l < "$WORK/text/train.$SRC")" ] \
    || { echo "!! $WORK/distill/train.$TGT and the training sources differ in length" >&2; return 1; }
  preprocess "$BIN"_distill --srcdict "$BIN/dict.$SRC.txt" --tgtdict "$BIN/dict.$TGT.txt" \
    --trainpref "$WORK/distill/train"
  cp "$BIN"/valid.* "$BIN"/test.* "$BIN"_distill/
}

# ---------------------------------------------------------------- training
# train NAME DATA_BIN ARGS...: fairseq-train into WORK/NAME (log WORK/logs/NAME.log). A stage
# that stopped resumes from its checkpoint_last.pt (fairseq's own resume); FORCE=1 starts
# afresh.
train() {
  local name=$1 bin=$2 log=$WORK/logs/${1//\//_}.log
  shift 2
  [ -z "${STAGE_FORCED:-}" ] || rm -rf "${WORK:?}/$name"
  logged "$log" fairseq-train "$bin" "${COMMON[@]}" "$@" --save-dir "$WORK/$name"
  grep -E "\| train \| epoch|valid on 'valid'|\| valid \|" "$log" | tail -n 2 | sed 's/^/   /'
}

# ce_opt LR UPDATES MAX_TOKENS WARMUP_CAP CLIP [MAX_UPDATE]: CE_OPT, the optimiser of
# cross-entropy training, its warm-up a tenth of UPDATES, stopped at MAX_UPDATE (default UPDATES)
ce_opt() {
  CE_OPT=(--optimizer adam --adam-betas "(0.9,0.98)" --lr "$1" --lr-scheduler inverse_sqrt
    --warmup-init-lr 1e-07 --warmup-updates "$(warmup "$2" "$4")" --max-update "${6:-$2}"
    --max-tokens "$3" --clip-norm "$5" "${FP16[@]}")
}

teacher_transformer() {  # the AR energy of the CMLM infnets
  ce_opt "$TEACHER_LR" "$TEACHER_UPDATES" "$MAX_TOKENS" 4000 "$CLIP_NORM"
  train teacher_transformer "$BIN" --task translation --arch transformer "${SIZES[@]}" \
    --dropout "$DROPOUT" --weight-decay "$TEACHER_WEIGHT_DECAY" \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 "${CE_OPT[@]}"
}

teacher_lstm() {  # the seq2seq energy of the BiLSTM infnets: BiLSTM encoder, attentional LSTM
  ce_opt 1e-3 "$LSTM_UPDATES" "$MAX_TOKENS" 4000 1.0
  train teacher_lstm "$BIN" --task translation --arch lstm --encoder-bidirectional \
    --encoder-layers "$LSTM_LAYERS" --decoder-layers "$LSTM_LAYERS" --encoder-embed-dim "$DIM" \
    --encoder-hidden-size "$DIM" --decoder-embed-dim "$DIM" \
    --decoder-hidden-size "$LSTM_DECODER_DIM" --decoder-out-embed-dim "$DIM" \
    --share-decoder-input-output-embed --dropout "$DROPOUT" \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 "${CE_OPT[@]}"
}

nat_init() {  # a cmlm_transformer holding the transformer teacher's weights
  python scripts/nat_from_teacher.py "$TEACHER" "$WORK/nat_init.pt" -- "$BIN" \
    --task translation_lev --arch cmlm_transformer "${CMLM_ARCH[@]}" \
    2> "$WORK/logs/nat_init.log" | sed 's/^/   /'
}

cmlm() {  # cmlm NAME DATA_BIN: CMLM baseline (stock cmlm_transformer, partial masking)
  local init=()
  [ "$NAT_INIT" = random ] || init=(--finetune-from-model "$WORK/nat_init.pt")
  ce_opt "$NAT_LR" "$CMLM_UPDATES" "$CMLM_MAX_TOKENS" 10000 "$CLIP_NORM"
  train "$1" "$2" "${CMLM_TRAIN[@]}" "${CE_OPT[@]}" "${DEV_BLEU[@]}" "${init[@]}"
}

# cmlm_converged: the distilled CMLM trained on until its dev BLEU (1 iteration, length beam
# 1) stops improving: cmlm_distill's last checkpoint resumed with its own schedule (warm-up of
# CMLM_UPDATES), dev BLEU every CONVERGE_VALID_EVERY updates, stopped after CONVERGE_PATIENCE
# validations without a better one or at CONVERGE_UPDATES; checkpoint_best = best dev BLEU;
# CONVERGED_THREADS threads
cmlm_converged() {
  local save=$WORK/cmlm_converged
  [ -z "${STAGE_FORCED:-}" ] || rm -rf "$save"
  mkdir -p "$save"
  [ -e "$save/checkpoint_last.pt" ] || cp "$WORK/cmlm_distill/checkpoint_last.pt" "$save/"
  ce_opt "$NAT_LR" "$CMLM_UPDATES" "$CONVERGE_MAX_TOKENS" 10000 "$CLIP_NORM" "$CONVERGE_UPDATES"
  STAGE_FORCED='' OMP_NUM_THREADS=$CONVERGED_THREADS train cmlm_converged "$BIN"_distill \
    "${CMLM_TRAIN[@]}" "${CE_OPT[@]}" \
    --update-freq "$CONVERGE_UPDATE_FREQ" "${DEV_BLEU[@]}" --save-interval-updates "$CONVERGE_VALID_EVERY" --keep-interval-updates 1 \
    --patience "$CONVERGE_PATIENCE"
  python scripts/plot_training.py "$WORK/logs/cmlm_converged.log" --metrics bleu loss \
    --out "$WORK/cmlm_converged.png" | sed 's/^/   /'
}

bilstm() {  # bilstm NAME DATA_BIN: BiLSTM baseline (cross-entropy: the energy's weight 0)
  ce_opt "$BILSTM_LR" "$BILSTM_UPDATES" "$MAX_TOKENS" 4000 "$CLIP_NORM"
  train "$1" "$2" --task translation_energy "${BILSTM_ARCH[@]}" --criterion energy_loss \
    --energy-weight 0 --ce-weight 1 --label-smoothing 0.1 --dropout 0.1 "${CE_OPT[@]}" \
    "${DEV_BLEU[@]}"
}

# energy_train NAME DATA_BIN START ENERGY UPDATES ARGS...: an infnet in WORK/NAME fine-tuned
# from WORK/START/checkpoint_best.pt with energy_loss against the frozen teacher ENERGY, for
# UPDATES updates (0: ENGINE_EPOCHS epochs)
energy_train() {
  local name=$1 bin=$2 start=$3 energy=$4 limit=()
  [ "$5" = 0 ] || limit=(--max-update "$5")
  shift 5
  train "$name" "$bin" --task translation_energy "${ENGINE_OPT[@]}" "${limit[@]}" \
    --energy-path "$energy" --finetune-from-model "$WORK/$start/checkpoint_best.pt" "$@"
}

engine_cmlm() {  # engine_cmlm NAME START: ENGINE, a cmlm_infnet from the CMLM in WORK/START
  energy_train "$1" "$ENGINE_BIN" "$2" "$TEACHER" "$ENGINE_UPDATES" --arch cmlm_infnet \
    "${CMLM_ARCH[@]}" --o1 sx --o2 st --ce-weight "$ENGINE_CE_WEIGHT" "${ENGINE_SELECT[@]}"
}

bilstm_engine() {  # ENGINE, a bilstm_infnet from the BiLSTM baseline, the LSTM teacher's energy
  energy_train bilstm_engine "$BIN" bilstm_base "$LSTM_TEACHER" "$ENGINE_UPDATES" \
    "${BILSTM_ARCH[@]}" --o1 sx --o2 st --ce-weight "$ENGINE_CE_WEIGHT" "${ENGINE_SELECT[@]}"
}

# ce_plus_energy NAME DATA_BIN START ENERGY_WEIGHT: the CMLM in WORK/START trained on DATA_BIN
# with PLUS_CE_WEIGHT x label-smoothed cross-entropy plus ENERGY_WEIGHT x the energy (0: the
# control); checkpoint_best = best dev BLEU
ce_plus_energy() {
  energy_train "$1" "$2" "$3" "$TEACHER" "$ENGINE_UPDATES" --arch cmlm_infnet "${CMLM_ARCH[@]}" \
    --o1 sx --o2 st --ce-weight "$PLUS_CE_WEIGHT" --energy-weight "$4" --label-smoothing 0.1 \
    "${ENGINE_VALID[@]}" "${DEV_BLEU[@]}"
}

# ---------------------------------------------------------------- decoding
# generate_args KIND BIN CKPT SUBSET [args]: GENERATE_ARGS, the fairseq-generate arguments of
# the teacher (KIND=ar: stock translation task, output length cap) or of a NAT model (nat:
# translation_energy, fairseq's IterativeRefinementGenerator)
generate_args() {
  local kind=$1 bin=$2 ckpt=$3 subset=$4
  shift 4
  GENERATE_ARGS=("$bin" --user-dir engine_plugin --path "$ckpt" --gen-subset "$subset"
    --batch-size "$GEN_BATCH" "${DEVICE_FLAGS[@]}")
  case $kind in
    ar) GENERATE_ARGS+=(--task translation --max-len-a "$AR_MAX_LEN_A" --max-len-b "$AR_MAX_LEN_B") ;;
    nat) GENERATE_ARGS+=(--task translation_energy --iter-decode-eos-penalty 0 --beam 1) ;;
  esac
  GENERATE_ARGS+=("$@")
}

# translate TABLE SYSTEM ITERATIONS LENGTH_BEAM KIND NAME BIN CKPT SUBSET [args]: decodes into
# WORK/gen/NAME.txt (BPE removed, sacrebleu) and queues its results row until flush_energies
translate() {
  local table=$1 system=$2 iters=$3 lbeam=$4 kind=$5 out=$WORK/gen/$6.txt
  shift 6
  generate_args "$kind" "$@"
  decode_row "$out" translation_results.py queue "$QUEUE.tsv" --speed-log "$out.err" \
    --table "$table" --system "$system" --iterations "$iters" --length-beam "$lbeam" \
    -- "${GENERATE_ARGS[@]}" --remove-bpe --scoring sacrebleu
}

# flush_energies SOURCE: the mean energy of every queued output under the teachers (one
# process), appended with its row to WORK/results.tsv
flush_energies() {
  local teachers=() energies=()
  [ -s "$QUEUE.tsv" ] || return 0
  if [ ${#SEGMENT[@]} -gt 0 ]; then
    teachers=(--teacher "$TEACHER")
    if [ -n "$LSTM_TEACHER" ] && [ -e "$LSTM_TEACHER" ]; then
      teachers+=(--teacher "$LSTM_TEACHER")
    elif [ -n "$LSTM_TEACHER" ]; then  # e.g. ONLY= left it untrained: its column stays "-"
      echo "   no LSTM teacher yet ($LSTM_TEACHER): transformer energies only"
    fi
    python scripts/translation_results.py outputs "$QUEUE.tsv" \
      | xargs python scripts/teacher_energy.py "${teachers[@]}" \
      --source "$1" "${SEGMENT[@]}" > "$QUEUE.energy" 2> "$WORK/logs/teacher_energy.log" \
      || { tail -n 30 "$WORK/logs/teacher_energy.log" >&2; return 1; }
    energies=(--energies "$QUEUE.energy")
  fi
  python scripts/translation_results.py merge "$QUEUE.tsv" "$RESULTS" "${energies[@]}"
  rm -f "$QUEUE.tsv" "$QUEUE.energy"
}

flush_test() { flush_energies "$WORK/text/test.$SRC"; }

decode_teachers() {  # test BLEU and energy of the teachers, beam 5 and greedy
  translate main "transformer teacher" AR "beam 5" ar teacher_transformer.beam5 "$BIN" "$TEACHER" \
    test --beam 5
  translate main "transformer teacher" AR greedy ar teacher_transformer.beam1 "$BIN" "$TEACHER" \
    test --beam 1
  if [ -n "$LSTM_TEACHER" ] && [ ! -e "$LSTM_TEACHER" ]; then
    echo "   no LSTM teacher yet ($LSTM_TEACHER): not decoded"
  elif [ -n "$LSTM_TEACHER" ]; then
    translate main "lstm teacher" AR "beam 5" ar teacher_lstm.beam5 "$BIN" "$LSTM_TEACHER" test --beam 5
  fi
  flush_test
}

# decode_lengths TABLE SYSTEM ITERATIONS OUT BIN CKPT SUBSET: SUBSET at every LENGTH_BEAMS, into
# WORK/gen/OUT.iITERATIONS.bBEAM.txt
decode_lengths() {
  local lbeam
  for lbeam in $LENGTH_BEAMS; do
    translate "$1" "$2" "$3" "$lbeam" nat "$4.i$3.b$lbeam" "$5" "$6" "$7" \
      --iter-decode-max-iter $(($3 - 1)) --iter-decode-with-beam "$lbeam"
  done
}

# decode_family TABLE SYSTEM OUT BIN CKPT SUBSET: a CMLM-family model at 1 and 10 iterations,
# and at 1 iteration, length beam 3, with the length picked by teacher energy (the plugin's
# --length-select energy)
decode_family() {
  decode_lengths "$1" "$2" 1 "${@:3}"
  decode_lengths "$1" "$2" 10 "${@:3}"
  translate "$1" "$2, length by energy" 1 3 nat "$3.i1.b3.energy" "${@:4}" \
    --iter-decode-max-iter 0 --iter-decode-with-beam 3 --length-select energy --energy-path "$TEACHER"
}

decode_cmlm() {  # decode_cmlm NAME SYSTEM: WORK/NAME's main rows on the test split
  decode_family main "$2" "$1" "$BIN" "$WORK/$1/checkpoint_best.pt" test
  flush_test
}

decode_bilstm() {  # decode_bilstm NAME SYSTEM: 1 iteration, and oracle lengths (Table 5)
  decode_lengths main "$2" 1 "$1" "$BIN" "$WORK/$1/checkpoint_best.pt" test
  translate main "$2" 1 oracle nat "$1.i1.oracle" "$BIN" "$WORK/$1/checkpoint_best.pt" test \
    --iter-decode-max-iter 0 --oracle-length
  flush_test
}

# ---------------------------------------------------------------- the operator table
operator_cell() {  # operator_cell O1 O2: CELL_UPDATES from the CMLM, oracle-length dev decode
  local QUEUE=$WORK/pending_ops save=ops/$1_$2
  energy_train "$save" "$ENGINE_BIN" "$OPS_START" "$TEACHER" "$CELL_UPDATES" --arch cmlm_infnet \
    "${CMLM_ARCH[@]}" --o1 "$1" --o2 "$2" --ce-weight "$ENGINE_CE_WEIGHT" --disable-validation \
    --no-save-optimizer-state
  translate operators "$1,$2" 1 oracle nat "op_$1_$2" "$BIN"_ops "$WORK/$save/checkpoint_last.pt" \
    valid --iter-decode-max-iter 0 --oracle-length
  rm -f "$WORK/$save"/checkpoint_*.pt
}

operator_start() {  # the CMLM every cell starts from, decoded the same way
  local QUEUE=$WORK/pending_ops
  translate operators start 1 oracle nat op_start "$BIN"_ops "$WORK/$OPS_START/checkpoint_best.pt" \
    valid --iter-decode-max-iter 0 --oracle-length
}

operator_energies() {  # one teacher load for every cell's output (transformer teacher only)
  local QUEUE=$WORK/pending_ops LSTM_TEACHER=''
  flush_energies "$WORK/text/valid_ops.$SRC"
}

operator_table() {
  local o1 o2
  stage op_start operator_start
  for o1 in $OPERATORS; do
    for o2 in $OPERATORS; do
      stage "op_${o1}_${o2}" operator_cell "$o1" "$o2"
    done
  done
  FORCE=1 stage operator_energies operator_energies
}

# ---------------------------------------------------------------- test-time solvers
# nat_label NAME: the results' system name of the NAT model trained in WORK/NAME
nat_label() {
  case $1 in
    cmlm) echo "CMLM" ;;
    cmlm_distill) echo "CMLM, distilled data" ;;
    engine_cmlm) echo "ENGINE cmlm_infnet" ;;
    engine_cmlm_distill) echo "ENGINE cmlm_infnet, from the distilled CMLM" ;;
    *) echo "!! SOLVER_MODELS: unknown model $1 (cmlm cmlm_distill engine_cmlm engine_cmlm_distill)" >&2
       return 2 ;;
  esac
}

check_solver_models() {  # every SOLVER_MODELS entry is a model that EXPERIMENTS trains
  local name
  [[ " $EXPERIMENTS " == *" solvers "* ]] || return 0
  for name in $SOLVER_MODELS; do
    nat_label "$name" > /dev/null || exit 2
    case $name in *distill) requires solvers distill ;; *) requires solvers ref ;; esac
  done
}

# solve TABLE NAME METHOD STEPS LR SUBSET: the NAT in WORK/NAME (1 iteration, length beam 1)
# followed by the solver METHOD (infnet: none; warmstart, tailored: STEPS steps of size LR)
solve() {
  local table=$1 name=$2 method=$3 steps=$4 lr=$5 subset=$6 system options=()
  system="$(nat_label "$name") + $method"
  case $method in
    warmstart) options=(--gd-steps "$steps" --gd-lr "$lr") ;;
    tailored) options=(--tailor-steps "$steps" --tailor-lr "$lr" --tailor-optimizer "$TAILOR_OPTIMIZER") ;;
  esac
  [ "$method" = infnet ] || system+=" N=$steps lr=$lr"
  translate "$table" "$system" 1 1 nat "solve.$name.$subset.$method$steps.$lr" "$BIN" \
    "$WORK/$name/checkpoint_best.pt" "$subset" --iter-decode-max-iter 0 \
    --energy-path "$TEACHER" --inference "$method" "${options[@]}"
}

# step_size NAME METHOD STEPS LRS: decodes dev with each step size of LRS (solver_dev rows;
# their lines on stderr) and prints the one of the best dev BLEU
step_size() {
  local lr choices=()
  for lr in $4; do
    solve solver_dev "$1" "$2" "$3" "$lr" valid >&2
    choices+=("$lr=$WORK/gen/solve.$1.valid.$2$3.$lr.txt")
  done
  flush_energies "$WORK/text/valid.$SRC" >&2
  python scripts/translation_results.py best "${choices[@]}"
}

# solver_rows NAME: the test rows of the NAT in WORK/NAME: its own decode, warm starts of
# WARMSTART_STEPS and tailoring of TAILOR_STEPS, each at the step size chosen on dev
solver_rows() {
  local n warm_lr tailor_lr QUEUE=$WORK/pending_solvers_$1  # its own queue: stages may overlap
  rm -f "$QUEUE.tsv"  # rows of an interrupted run, decoded again below
  warm_lr=$(step_size "$1" warmstart "$WARMSTART_TUNE_STEPS" "$WARMSTART_LRS")
  tailor_lr=$(step_size "$1" tailored "$TAILOR_TUNE_STEPS" "$TAILOR_LRS")
  echo "   dev choice: warm start step size $warm_lr, tailoring learning rate $tailor_lr"
  solve solvers "$1" infnet 0 0 test
  for n in $WARMSTART_STEPS; do solve solvers "$1" warmstart "$n" "$warm_lr" test; done
  for n in $TAILOR_STEPS; do solve solvers "$1" tailored "$n" "$tailor_lr" test; done
  flush_test
}

solver_teacher() {  # the teacher's beam searches, timed beside the solvers
  local QUEUE=$WORK/pending_solvers_teacher
  rm -f "$QUEUE.tsv"
  translate solvers "transformer teacher + beam 5" AR "beam 5" ar solve.teacher.beam5 "$BIN" \
    "$TEACHER" test --beam 5
  translate solvers "transformer teacher + greedy" AR greedy ar solve.teacher.beam1 "$BIN" \
    "$TEACHER" test --beam 1
  flush_test
}

solver_stages() {  # beyond the papers: test-time energy minimisation from each NAT model
  local name
  stage solvers_teacher solver_teacher
  for name in $SOLVER_MODELS; do stage "solvers_$name" solver_rows "$name"; done
}

# ---------------------------------------------------------------- ENGINE from the converged CMLM
# (engine_converged) ENGINE in its authors' configuration from WORK/cmlm_converged: the learning
# rate chosen on dev energy, then seeds, the cross-entropy control and the references, each
# decoded on every test set of TEST_SETS

# binarize_tests: WORK/bin_tests holds test (TEXT/test) and test1, test2, ... (TEXT/NAME of the
# later TEST_SETS names), the first EVAL_SENTENCES pairs of each, with the joined dictionary
binarize_tests() {
  local name l extra prefixes=$WORK/text/test
  read -r _ extra <<< "$TEST_SETS"  # the names after the first
  for name in $extra; do
    for l in "$SRC" "$TGT"; do first_lines "$EVAL_SENTENCES" "$TEXT/$name.$l" > "$WORK/text/$name.$l"; done
    prefixes+=",$WORK/text/$name"
  done
  preprocess "$BIN"_tests --srcdict "$BIN/dict.$SRC.txt" --tgtdict "$BIN/dict.$TGT.txt" \
    --testpref "$prefixes"
}

converged_name() { echo "converged/$1_$2_lr$3_s$4"; }  # KIND CORPUS LR SEED: its WORK folder
converged_stage_name() { converged_name "$@" | tr / _; }  # ... its stage (and log) name

converged_label() {  # KIND CORPUS LR SEED: its results' system name
  local what="ENGINE" data="distilled data"
  [ "$1" = energy ] || what="cross-entropy control"
  [ "$2" = distilled ] || data="references"
  echo "$what, $data, lr=$3, seed $4"
}

# converged_run KIND CORPUS LR SEED: ENGINE_UPDATES updates from WORK/cmlm_converged with
# ENGINE's optimisation at learning rate LR and fairseq seed SEED, on CORPUS (distilled or
# references); KIND energy: the energy alone, ce: cross-entropy alone (the matched control:
# the same updates, data, full masking and seed); checkpoint_best by ENGINE_METRIC
converged_run() {
  local bin=$BIN loss=(--ce-weight 0) SEED=$4 COMMON ENGINE_OPT
  [ "$2" = references ] || bin=${BIN}_distill
  [ "$1" = energy ] || loss=(--energy-weight 0 --ce-weight 1 --label-smoothing 0.1)
  common_opts
  engine_opt "$3"
  energy_train "$(converged_name "$@")" "$bin" cmlm_converged "$TEACHER" "$ENGINE_UPDATES" \
    --arch cmlm_infnet "${CMLM_ARCH[@]}" --o1 sx --o2 st "${loss[@]}" "${ENGINE_SELECT[@]}"
}

# converged_lr: the CONVERGED_LRS value whose seed-1 ENGINE on the distilled corpus reached the
# lowest dev discrete energy (the last best_energy_discrete of its log; of equals, the first)
converged_lr() {
  local lr log best
  for lr in $CONVERGED_LRS; do
    log=$WORK/logs/$(converged_stage_name energy distilled "$lr" 1).log
    best=$(grep -oP 'best_energy_discrete \K[-0-9.e+]+' "$log" | tail -n 1)
    [ -n "$best" ] || { echo "!! $log: no dev energy (ENGINE_METRIC=energy?)" >&2; return 1; }
    echo "$best $lr"
  done | sort -s -g -k 1,1 | head -n 1 | cut -d ' ' -f 2
}

# each_test_set FUNCTION ARGS...: FUNCTION SET SUBSET SOURCE ARGS... for every SET of TEST_SETS,
# SUBSET its split of WORK/bin_tests (test, test1, ...) and SOURCE its source text
each_test_set() {
  local set subset=test source=$WORK/text/test.$SRC number=0
  for set in $TEST_SETS; do
    [ "$number" = 0 ] || subset=test$number source=$WORK/text/$set.$SRC
    "$1" "$set" "$subset" "$source" "${@:2}"
    number=$((number + 1))
  done
}

decode_set_converged() {  # SET SUBSET SOURCE NAME SYSTEM: WORK/NAME's decode_family on SUBSET
  decode_family "converged $1" "$5" "${4//\//.}.$2" "$BIN"_tests "$WORK/$4/checkpoint_best.pt" "$2"
  flush_energies "$3"
}

# decode_converged NAME SYSTEM: WORK/NAME's decode_family on every test set, table "converged SET"
decode_converged() {
  local QUEUE=$WORK/pending_${1//\//_}
  rm -f "$QUEUE.tsv"
  each_test_set decode_set_converged "$@"
}

decode_set_teacher() {  # SET SUBSET SOURCE: the transformer teacher's beam 5 on SUBSET
  translate "converged $1" "transformer teacher" AR "beam 5" ar "teacher_transformer.beam5.$2" \
    "$BIN"_tests "$TEACHER" "$2" --beam 5
  flush_energies "$3"
}

decode_teacher_tests() {  # the teacher's beam 5 on every test set: BLEU, and the breakdowns' peer
  local QUEUE=$WORK/pending_teacher_tests
  rm -f "$QUEUE.tsv"
  each_test_set decode_set_teacher
}

# breakdown_set SET SUBSET SOURCE NAME: WORK/NAME's outputs on SUBSET at 1 iteration and the
# last of LENGTH_BEAMS against the teacher's beam 5 under the teacher's per-token energy
# (teacher_energy_breakdown.py), in WORK/breakdown/NAME.SUBSET.md and .json
breakdown_set() {
  local out=$WORK/breakdown/${4//\//.}.$2 lbeam=${LENGTH_BEAMS##* }
  python scripts/teacher_energy_breakdown.py --teacher "$TEACHER" --source "$3" "${SEGMENT[@]}" \
    --beam "$WORK/gen/teacher_transformer.beam5.$2.txt" --json "$out.json" --examples 3 \
    "$WORK/gen/${4//\//.}.$2.i1.b$lbeam.txt" > "$out.md" 2> "$WORK/logs/breakdown.log" \
    || { tail -n 30 "$WORK/logs/breakdown.log" >&2; return 1; }
}

# breakdown_converged: breakdown_set for the converged CMLM and every run from it whose decodes
# have finished
breakdown_converged() {
  local run
  mkdir -p "$WORK/breakdown"
  for run in cmlm_converged "$WORK"/converged/*/; do
    run=${run%/}
    run=${run#"$WORK"/}
    [ -e "$WORK/.done/decode_${run//\//_}" ] || continue
    each_test_set breakdown_set "$run"
  done
  for run in "$WORK"/breakdown/*.test.md; do echo "   $(basename "$run" .test.md): $(head -n 1 "$run")"; done
}

converged_stage() {  # converged_stage KIND CORPUS LR SEED: its training, then its decodes
  local name
  name=$(converged_stage_name "$@")
  stage "$name" converged_run "$@"
  stage "decode_$name" decode_converged "$(converged_name "$@")" "$(converged_label "$@")"
}

converged_stages() {  # one stage at a time on CONVERGED_THREADS threads
  local lr seed pending='' OMP_NUM_THREADS=$CONVERGED_THREADS
  export OMP_NUM_THREADS
  stage binarize_tests binarize_tests
  stage decode_teacher_tests decode_teacher_tests
  stage decode_cmlm_converged decode_converged cmlm_converged "converged distilled CMLM"
  for lr in $CONVERGED_LRS; do
    converged_stage energy distilled "$lr" 1
    [ -e "$WORK/.done/$(converged_stage_name energy distilled "$lr" 1)" ] || pending+=" $lr"
  done
  if [ -n "$pending" ]; then
    echo "   the seeds, the control and the references wait for the runs at lr$pending"
    return 0
  fi
  lr=$(converged_lr)
  echo "   learning rate chosen on dev energy: $lr"
  for seed in $CONVERGED_SEEDS; do
    converged_stage energy distilled "$lr" "$seed"
    converged_stage ce distilled "$lr" "$seed"
    converged_stage energy references "$lr" "$seed"
  done
  stage breakdown_converged breakdown_converged
}

tables() {
  python scripts/translation_tables.py "$RESULTS" --timings "$WORK/timings.tsv" \
    --out-png "$WORK/solvers.png" > "$WORK/tables.md"
  cat "$WORK/tables.md"
}

# ---------------------------------------------------------------- the stages
engine_pipeline() {
  set_options
  echo "== ENGINE $SRC-$TGT, preset $PRESET${SMOKE:+ (SMOKE)}, ENGINE_CONFIG=${ENGINE_CONFIG:-authors}: text $TEXT, work $WORK, device $DEVICE, experiments: $EXPERIMENTS"
  stage binarize binarize_text
  stage teacher_transformer teacher_transformer
  when bilstm stage teacher_lstm teacher_lstm
  stage decode_teachers decode_teachers
  if [ "$NAT_INIT" = teacher ]; then stage nat_init nat_init; fi
  when distill stage distill distill
  when ref stage cmlm cmlm cmlm "$BIN"
  when distill stage cmlm_distill cmlm cmlm_distill "$BIN"_distill
  when ref stage engine_cmlm engine_cmlm engine_cmlm cmlm
  when distill stage engine_cmlm_distill engine_cmlm engine_cmlm_distill cmlm_distill
  when ref stage decode_cmlm decode_cmlm cmlm "$(nat_label cmlm)"
  when distill stage decode_cmlm_distill decode_cmlm cmlm_distill "$(nat_label cmlm_distill)"
  when ref stage decode_engine_cmlm decode_cmlm engine_cmlm "$(nat_label engine_cmlm)"
  when distill stage decode_engine_cmlm_distill decode_cmlm engine_cmlm_distill \
    "$(nat_label engine_cmlm_distill)"
  when hybrid hybrid_stages
  when bilstm bilstm_stages
  when ops operator_table
  when solvers solver_stages
  when converged stage cmlm_converged cmlm_converged
  when engine_converged converged_stages
  FORCE=1 stage tables tables
}

hybrid_stages() {  # beyond the paper: energy + cross-entropy against cross-entropy alone
  stage distill_energy ce_plus_energy distill_energy "$BIN"_distill cmlm_distill 1
  stage distill_ce ce_plus_energy distill_ce "$BIN"_distill cmlm_distill 0
  stage decode_distill_energy decode_cmlm distill_energy \
    "distilled CMLM + energy + CE on distilled data"
  stage decode_distill_ce decode_cmlm distill_ce "distilled CMLM + CE on distilled data"
  stage ref_energy ce_plus_energy ref_energy "$BIN" cmlm 1
  stage ref_ce ce_plus_energy ref_ce "$BIN" cmlm 0
  stage decode_ref_energy decode_cmlm ref_energy "CMLM + energy + CE on references"
  stage decode_ref_ce decode_cmlm ref_ce "CMLM + CE on references"
}

bilstm_stages() {  # the paper's Table 5: BiLSTM infnets, the LSTM teacher's energy
  stage bilstm_base bilstm bilstm_base "$BIN"
  stage bilstm_distill bilstm bilstm_distill "$BIN"_distill
  stage bilstm_engine bilstm_engine
  stage decode_bilstm_base decode_bilstm bilstm_base "BiLSTM"
  stage decode_bilstm_distill decode_bilstm bilstm_distill "BiLSTM, distilled data"
  stage decode_bilstm_engine decode_bilstm bilstm_engine "ENGINE bilstm_infnet (LSTM energy)"
}
