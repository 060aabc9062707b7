#!/usr/bin/env bash
# ENGINE (Tu et al., 2020) at CPU scale on Multi30K German->English.
#   examples/multi30k/run.sh DATA_DIR [WORK_DIR]
# DATA_DIR: ../shared/data/multi30k_de_en (its tok/ files: lowercased, normalised, Moses-
# tokenised; train 29k, val 1,014, test_2016_flickr 1,000). WORK_DIR: default runs/multi30k.
#
# Stages (each prints progress, appends its wall time to WORK/timings.tsv, and is skipped
# when rerun once finished; FORCE=1 redoes them):
#   bpe                 subword-nmt learn-joint-bpe-and-vocab on train, applied to every split
#                       with the vocabulary filter (--vocabulary-threshold)
#   binarize            fairseq-preprocess --joined-dictionary -> WORK/bin; the teachers and
#                       the NAT models all read it, so their dictionaries are the same files
#   teacher_transformer AR energy: a small transformer (stock translation task)
#   teacher_lstm        AR energy of the BiLSTM infnet: a small attentional LSTM
#   decode_teachers     test BLEU/energy of the teachers (beam 5 and greedy)
#   nat_init            NAT_INIT=teacher: scripts/nat_from_teacher.py copies the transformer
#                       teacher's weights into a cmlm_transformer of the same sizes (the NAT
#                       models then use the teacher's sinusoidal positions, not learned ones)
#   cmlm                CMLM baseline: stock cmlm_transformer, nat_loss, --noise random_mask,
#                       fine-tuned from nat_init (NAT_INIT=teacher) or from scratch (=random)
#   distill             teacher beam search over train (stock fairseq-generate), binarised
#                       with the teacher's dictionaries -> WORK/bin_distill
#   cmlm_distill        the CMLM baseline trained on the distilled corpus
#   engine_cmlm         ENGINE: cmlm_infnet fine-tuned from the CMLM baseline with
#                       energy_loss against the transformer teacher, O1=SX, O2=ST; validated
#                       every ENGINE_VALID_EVERY updates, checkpoint_best = the lowest dev
#                       discrete energy (the paper's early stopping on dev energy; or the
#                       best dev BLEU with ENGINE_METRIC=bleu)
#   engine_cmlm_distill the same, fine-tuned from the distilled CMLM: does the energy still
#                       help a NAT model that distillation already improved?
#   distill_energy      beyond the paper: the distilled CMLM trained on the distilled corpus
#                       with full masking, label-smoothed cross-entropy (weight PLUS_CE_WEIGHT)
#                       plus the energy, the same optimiser and updates as ENGINE; checkpoint_best
#                       = best dev BLEU
#   distill_ce          its control: the same training without the energy (--energy-weight 0),
#                       so that the two differ only in the energy term
#   ref_energy/ref_ce   the same pair from the CMLM baseline on the references: ENGINE with
#                       the issue's optional λ·cross-entropy against the references, and its
#                       control
#   bilstm_base/bilstm_distill/bilstm_engine
#                       bilstm_infnet on references / distilled targets (cross-entropy:
#                       energy_loss --energy-weight 0), and ENGINE fine-tuned from the first
#                       against the LSTM teacher (the paper's Table 5 setting)
#   decode_*            checkpoint_best.pt (for the cross-entropy models, validated once at
#                       the end, the same as checkpoint_last.pt) on test_2016_flickr with
#                       stock fairseq-generate --task translation_energy: 1 and 10
#                       iterations (--iter-decode-max-iter 0/9), length beam 1 and 3, and
#                       for CMLMs length beam 3 with the length picked by teacher energy
#                       (BiLSTMs: 1 iteration, length beam 1, 3 and oracle lengths)
#   op_<o1>_<o2>        the 5x5 operator table: cmlm_infnet fine-tuned from the CMLM baseline
#                       for CELL_UPDATES updates per (O1, O2), decoded on the first
#                       OPS_VALID validation sentences with oracle lengths, 1 iteration
#                       (the paper's Table 2 protocol); op_start decodes the CMLM baseline
#                       they start from; operator_energies scores them all
#   tables              scripts/translation_tables.py -> WORK/tables.md
#
# BLEU: fairseq-generate --remove-bpe --scoring sacrebleu (sacrebleu's default 13a
# tokenisation over the lowercased tokenised text, BPE removed; references are the
# binarised test targets). Energy: scripts/teacher_energy.py, the teacher's NLL (nats) of
# each output given its source, EOS included, mean over sentences; outputs are segmented
# again with the recipe's BPE (codes + vocabulary filter). "energy" is under the transformer
# teacher, "energy_lstm" under the LSTM teacher. Rows go to WORK/results.tsv.
#
# Sizes (environment; the defaults are the full-data run of RESULTS.md, about 9 epochs of the
# teacher, 5 of each CMLM; far from the paper's budget):
#   MAX_TRAIN=N          keep the first N training pairs (BPE is learned on them too)
#   BPE_MERGES=8000      BPE_THRESHOLD (default 50 x train pairs / 29000, at least 1)
#   LAYERS=3 DIM=256 FFN=512 HEADS=4 (transformers), LSTM_LAYERS=1 (LSTM teacher)
#   MAX_TOKENS=4096      batch size of the teachers and the CE baselines
#   TEACHER_UPDATES=1600 LSTM_UPDATES (=TEACHER_UPDATES) CMLM_UPDATES=1000
#   BILSTM_UPDATES (=CMLM_UPDATES) ENGINE_UPDATES=2000 CELL_UPDATES=100 OPS_VALID=1014
#   AR_LR=1e-3 NAT_LR=5e-4 (CMLMs) BILSTM_LR=1e-3 (inverse_sqrt, warm-up = a tenth of the
#   updates, at most 4000)
#   ENGINE_VALID_EVERY=250 ENGINE_METRIC=energy (ENGINE's early stopping: dev discrete energy,
#                        the paper's) or bleu (dev BLEU, 1 iteration: at 8,000 updates the
#                        energy kept falling while BLEU fell, see RESULTS.md)
#   ENGINE_LR=1e-4 ENGINE_MAX_TOKENS=1024 ENGINE_CE_WEIGHT=0 (the paper: Adam, dropout 0.1,
#   weight decay 0.01, 1024-token batches, energy + length loss only)
#   PLUS_CE_WEIGHT=1     λ of distill_energy/distill_ce and ref_energy/ref_ce
#   NAT_INIT=teacher     how the CMLM baselines start: teacher (the teacher's weights; at this
#                        budget a CMLM from scratch stays at source-blind unigram output for
#                        thousands of updates) or random (stock, the paper's)
#   DISTILL_BEAM=5 SEED=1 SKIP_OPS=1 (no operator table) OPERATORS="sx st" (a sub-table)
set -euo pipefail
DATA=$(cd "${1:?usage: $0 DATA_DIR [WORK_DIR]}" && pwd)
WORK=${2:-$(dirname "$0")/../../runs/multi30k}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
source "$(dirname "$0")/../engine_translation.sh"

SEED=${SEED:-1}
BPE_MERGES=${BPE_MERGES:-8000}
LAYERS=${LAYERS:-3} DIM=${DIM:-256} FFN=${FFN:-512} HEADS=${HEADS:-4}
LSTM_LAYERS=${LSTM_LAYERS:-1}
MAX_TOKENS=${MAX_TOKENS:-4096}
TEACHER_UPDATES=${TEACHER_UPDATES:-1600}
LSTM_UPDATES=${LSTM_UPDATES:-$TEACHER_UPDATES}
CMLM_UPDATES=${CMLM_UPDATES:-1000}
BILSTM_UPDATES=${BILSTM_UPDATES:-$CMLM_UPDATES}
ENGINE_UPDATES=${ENGINE_UPDATES:-2000}
CELL_UPDATES=${CELL_UPDATES:-100}
OPS_VALID=${OPS_VALID:-1014}
AR_LR=${AR_LR:-1e-3} NAT_LR=${NAT_LR:-5e-4} BILSTM_LR=${BILSTM_LR:-1e-3}
ENGINE_LR=${ENGINE_LR:-1e-4} ENGINE_MAX_TOKENS=${ENGINE_MAX_TOKENS:-1024}
ENGINE_CE_WEIGHT=${ENGINE_CE_WEIGHT:-0}
PLUS_CE_WEIGHT=${PLUS_CE_WEIGHT:-1}
ENGINE_VALID_EVERY=${ENGINE_VALID_EVERY:-250}
DISTILL_BEAM=${DISTILL_BEAM:-5}
NAT_INIT=${NAT_INIT:-teacher}
case $NAT_INIT in teacher|random) ;; *) echo "!! NAT_INIT=$NAT_INIT: teacher or random"; exit 2;; esac
OPERATORS=${OPERATORS:-sx stl sg st gx}

BIN=$WORK/bin
TEACHER=$WORK/teacher_transformer/checkpoint_last.pt
LSTM_TEACHER=$WORK/teacher_lstm/checkpoint_last.pt
echo "== Multi30K DE-EN ENGINE recipe: data $DATA, work $WORK, device $DEVICE"

warmup() { local w=$(($1 / 10)); echo $((w < 1 ? 1 : (w > 4000 ? 4000 : w))); }
COMMON=(--user-dir engine_plugin "${DEVICE_FLAGS[@]}" --num-workers 0 --seed "$SEED"
  --no-epoch-checkpoints --save-interval 100000 --validate-interval 100000
  --log-format simple --log-interval 25)
AR_ARCH=(--arch transformer --encoder-layers "$LAYERS" --decoder-layers "$LAYERS"
  --encoder-embed-dim "$DIM" --decoder-embed-dim "$DIM" --encoder-ffn-embed-dim "$FFN"
  --decoder-ffn-embed-dim "$FFN" --encoder-attention-heads "$HEADS"
  --decoder-attention-heads "$HEADS" --share-all-embeddings)
LSTM_ARCH=(--arch lstm --encoder-layers "$LSTM_LAYERS" --decoder-layers "$LSTM_LAYERS"
  --encoder-bidirectional --encoder-embed-dim "$DIM" --encoder-hidden-size "$DIM"
  --decoder-embed-dim "$DIM" --decoder-hidden-size "$DIM" --decoder-out-embed-dim "$DIM"
  --share-decoder-input-output-embed)
NAT_ARCH=(--encoder-layers "$LAYERS" --decoder-layers "$LAYERS" --encoder-embed-dim "$DIM"
  --decoder-embed-dim "$DIM" --encoder-ffn-embed-dim "$FFN" --decoder-ffn-embed-dim "$FFN"
  --encoder-attention-heads "$HEADS" --decoder-attention-heads "$HEADS"
  --share-all-embeddings --apply-bert-init)
[ "$NAT_INIT" = random ] && NAT_ARCH+=(--encoder-learned-pos --decoder-learned-pos)
BILSTM_ARCH=(--arch bilstm_infnet --embed-dim "$DIM" --hidden-size "$DIM")
# ce_opt LR UPDATES: CE_OPT = optimisation of cross-entropy training (teachers, baselines)
ce_opt() {
  CE_OPT=(--optimizer adam --adam-betas "(0.9,0.98)" --lr "$1" --lr-scheduler inverse_sqrt
    --warmup-init-lr 1e-07 --warmup-updates "$(warmup "$2")" --max-update "$2"
    --max-tokens "$MAX_TOKENS" --clip-norm 1.0)
}
# ENGINE: the paper's inference-network training (Adam, fixed lr, dropout 0.1, wd 0.01)
ENGINE_OPT=(--optimizer adam --adam-betas "(0.9,0.999)" --lr "$ENGINE_LR" --weight-decay 0.01
  --dropout 0.1 --max-tokens "$ENGINE_MAX_TOKENS" --noise full_mask)
# ENGINE's early stopping every ENGINE_VALID_EVERY updates: dev discrete energy (teacher NLL of
# the argmax output) or dev BLEU of one-iteration decoding
ENGINE_VALID=(--save-interval-updates "$ENGINE_VALID_EVERY" --keep-interval-updates 1)
ENGINE_SELECT=("${ENGINE_VALID[@]}")
case ${ENGINE_METRIC:=energy} in
  energy) ENGINE_SELECT+=(--best-checkpoint-metric energy_discrete) ;;
  bleu) ENGINE_SELECT+=("${DEV_BLEU[@]}") ;;
  *) echo "!! ENGINE_METRIC=$ENGINE_METRIC: energy or bleu"; exit 2 ;;
esac

prepare_bpe() {
  mkdir -p "$WORK/tok" "$WORK/bpe"
  local l split
  for l in de en; do
    if [ -n "${MAX_TRAIN:-}" ]; then
      head -n "$MAX_TRAIN" "$DATA/tok/train.lc.norm.tok.$l" > "$WORK/tok/train.$l"
    else
      cp "$DATA/tok/train.lc.norm.tok.$l" "$WORK/tok/train.$l"
    fi
    cp "$DATA/tok/val.lc.norm.tok.$l" "$WORK/tok/valid.$l"
    cp "$DATA/tok/test_2016_flickr.lc.norm.tok.$l" "$WORK/tok/test.$l"
  done
  echo "   $(wc -l < "$WORK/tok/train.de") training pairs, $BPE_MERGES merges, vocabulary threshold $BPE_THRESHOLD"
  logged "$WORK/logs/bpe.log" subword-nmt learn-joint-bpe-and-vocab \
    --input "$WORK/tok/train.de" "$WORK/tok/train.en" -s "$BPE_MERGES" -o "$WORK/bpe/codes" \
    --write-vocabulary "$WORK/bpe/vocab.de" "$WORK/bpe/vocab.en"
  for split in train valid test; do
    for l in de en; do
      subword-nmt apply-bpe -c "$WORK/bpe/codes" --vocabulary "$WORK/bpe/vocab.$l" \
        --vocabulary-threshold "$BPE_THRESHOLD" < "$WORK/tok/$split.$l" > "$WORK/bpe/$split.$l"
    done
  done
  head -n "$OPS_VALID" "$WORK/bpe/valid.de" > "$WORK/bpe/valid_ops.de"
  head -n "$OPS_VALID" "$WORK/bpe/valid.en" > "$WORK/bpe/valid_ops.en"
}

binarize_all() {
  rm -rf "$BIN" "$BIN"_ops
  logged "$WORK/logs/preprocess.log" fairseq-preprocess --source-lang de --target-lang en \
    --joined-dictionary --trainpref "$WORK/bpe/train" --validpref "$WORK/bpe/valid" \
    --testpref "$WORK/bpe/test" --destdir "$BIN" --workers 1
  grep -E "Dictionary:" "$WORK/logs/preprocess.log" | tail -n 1 | sed 's/^.*INFO:/   /'
  # the operator table decodes the first OPS_VALID validation pairs
  logged "$WORK/logs/preprocess_ops.log" fairseq-preprocess --source-lang de --target-lang en \
    --srcdict "$BIN/dict.de.txt" --tgtdict "$BIN/dict.en.txt" \
    --validpref "$WORK/bpe/valid_ops" --destdir "$BIN"_ops --workers 1
}

train_teacher() {  # train_teacher NAME UPDATES ARCH...
  local name=$1 updates=$2
  shift 2
  ce_opt "$AR_LR" "$updates"
  logged "$WORK/logs/$name.log" fairseq-train "$BIN" "${COMMON[@]}" --task translation "$@" \
    --dropout 0.1 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    "${CE_OPT[@]}" --save-dir "$WORK/$name"
  last_train_line "$WORK/logs/$name.log"
}

decode_teachers() {
  local name
  for name in transformer lstm; do
    if [ ! -e "$WORK/teacher_$name/checkpoint_last.pt" ]; then
      echo "   no $name teacher (ONLY= skipped its training): not decoded"
      continue
    fi
    decode_row main "$name teacher" AR "beam 5" ar "$WORK/gen/teacher_$name.beam5.txt" \
      "$BIN" "$WORK/teacher_$name/checkpoint_last.pt" test --beam 5 --remove-bpe --scoring sacrebleu
  done
  decode_row main "transformer teacher" AR "greedy" ar "$WORK/gen/teacher_transformer.beam1.txt" \
    "$BIN" "$TEACHER" test --beam 1 --remove-bpe --scoring sacrebleu
  flush_test_energies
}

flush_test_energies() {
  flush_energies "$WORK/bpe/test.de" --bpe-codes "$WORK/bpe/codes" \
    --bpe-vocab "$WORK/bpe/vocab.en" --bpe-threshold "$BPE_THRESHOLD"
}

nat_init() {
  python scripts/nat_from_teacher.py "$TEACHER" "$WORK/nat_init.pt" -- "$BIN" \
    --task translation_lev --arch cmlm_transformer "${NAT_ARCH[@]}" 2> "$WORK/logs/nat_init.log" \
    | sed 's/^/   /'
}

train_cmlm() {  # train_cmlm NAME DATA_BIN
  local name=$1 bin=$2 init=()
  ce_opt "$NAT_LR" "$CMLM_UPDATES"
  [ "$NAT_INIT" = teacher ] && init=(--finetune-from-model "$WORK/nat_init.pt")
  logged "$WORK/logs/$name.log" fairseq-train "$bin" "${COMMON[@]}" --task translation_lev \
    --arch cmlm_transformer "${NAT_ARCH[@]}" --criterion nat_loss --noise random_mask \
    --label-smoothing 0.1 --dropout 0.1 --weight-decay 0.01 "${CE_OPT[@]}" \
    --save-dir "$WORK/$name" "${init[@]}"
  last_train_line "$WORK/logs/$name.log"
}

distill() {
  mkdir -p "$WORK/distill"
  ar_generate "$WORK/gen/distill_train.txt" "$BIN" "$TEACHER" train --beam "$DISTILL_BEAM"
  echo "   $(grep -oP 'Translated .*' "$WORK/gen/distill_train.txt")"
  grep -P '^H-' "$WORK/gen/distill_train.txt" | sed 's/^H-//' | sort -n -k1,1 | cut -f 3 \
    > "$WORK/distill/train.en"
  cp "$WORK/bpe/train.de" "$WORK/distill/train.de"
  [ "$(wc -l < "$WORK/distill/train.en")" -eq "$(wc -l < "$WORK/bpe/train.de")" ] \
    || { echo "!! distilled corpus and train differ in length"; return 1; }
  rm -rf "$BIN"_distill
  logged "$WORK/logs/preprocess_distill.log" fairseq-preprocess --source-lang de \
    --target-lang en --srcdict "$BIN/dict.de.txt" --tgtdict "$BIN/dict.en.txt" \
    --trainpref "$WORK/distill/train" --destdir "$BIN"_distill --workers 1
  cp "$BIN"/valid.* "$BIN"/test.* "$BIN"_distill/
}

# train_engine_cmlm SAVE_DIR DATA_BIN START UPDATES O1 O2 [args]; λ = $CE_WEIGHT, by default
# ENGINE_CE_WEIGHT
train_engine_cmlm() {
  local save=$1 bin=$2 start=$3 updates=$4 o1=$5 o2=$6
  shift 6
  rm -rf "$save"
  logged "$WORK/logs/$(basename "$save").log" fairseq-train "$bin" "${COMMON[@]}" \
    --task translation_energy --arch cmlm_infnet "${NAT_ARCH[@]}" --criterion energy_loss \
    --energy-path "$TEACHER" --o1 "$o1" --o2 "$o2" "${ENGINE_OPT[@]}" \
    --ce-weight "${CE_WEIGHT:-$ENGINE_CE_WEIGHT}" \
    --finetune-from-model "$WORK/$start/checkpoint_last.pt" --max-update "$updates" \
    --save-dir "$save" "$@"
}

engine_cmlm() {  # engine_cmlm NAME START: ENGINE in WORK/NAME, from the CMLM in WORK/START
  train_engine_cmlm "$WORK/$1" "$BIN" "$2" "$ENGINE_UPDATES" sx st "${ENGINE_SELECT[@]}"
  last_train_line "$WORK/logs/$1.log"
}

# ce_plus_energy NAME DATA_BIN START ENERGY_WEIGHT: the CMLM in WORK/START trained on DATA_BIN
# with PLUS_CE_WEIGHT x label-smoothed cross-entropy plus ENERGY_WEIGHT x the energy (0: the
# control, cross-entropy only); checkpoint_best = best dev BLEU
ce_plus_energy() {
  CE_WEIGHT=$PLUS_CE_WEIGHT train_engine_cmlm "$WORK/$1" "$2" "$3" "$ENGINE_UPDATES" sx st \
    --energy-weight "$4" --label-smoothing 0.1 "${ENGINE_VALID[@]}" "${DEV_BLEU[@]}"
  last_train_line "$WORK/logs/$1.log"
}

train_bilstm() {  # train_bilstm NAME DATA_BIN
  local name=$1 bin=$2
  ce_opt "$BILSTM_LR" "$BILSTM_UPDATES"
  logged "$WORK/logs/$name.log" fairseq-train "$bin" "${COMMON[@]}" --task translation_energy \
    "${BILSTM_ARCH[@]}" --criterion energy_loss --energy-weight 0 --ce-weight 1 \
    --label-smoothing 0.1 --dropout 0.1 "${CE_OPT[@]}" --save-dir "$WORK/$name"
  last_train_line "$WORK/logs/$name.log"
}

bilstm_engine() {
  rm -rf "$WORK/bilstm_engine"
  logged "$WORK/logs/bilstm_engine.log" fairseq-train "$BIN" "${COMMON[@]}" \
    --task translation_energy "${BILSTM_ARCH[@]}" --criterion energy_loss \
    --energy-path "$LSTM_TEACHER" --o1 sx --o2 st "${ENGINE_OPT[@]}" \
    --ce-weight "$ENGINE_CE_WEIGHT" --finetune-from-model "$WORK/bilstm_base/checkpoint_last.pt" \
    --max-update "$ENGINE_UPDATES" --save-dir "$WORK/bilstm_engine" "${ENGINE_SELECT[@]}"
  last_train_line "$WORK/logs/bilstm_engine.log"
}

# decode_cmlm_family NAME SYSTEM: 1 and 10 iterations, length beam 1 and 3, and length beam 3
# with the length picked by teacher energy (the plugin's --length-select energy)
decode_cmlm_family() {
  local name=$1 system=$2 iters lbeam
  for iters in 1 10; do
    for lbeam in 1 3; do
      decode_row main "$system" "$iters" "$lbeam" nat "$WORK/gen/$name.i$iters.b$lbeam.txt" \
        "$BIN" "$WORK/$name/checkpoint_best.pt" test --iter-decode-max-iter $((iters - 1)) \
        --iter-decode-with-beam "$lbeam"
    done
  done
  decode_row main "$system, length by energy" 1 3 nat "$WORK/gen/$name.i1.b3.energy.txt" \
    "$BIN" "$WORK/$name/checkpoint_best.pt" test --iter-decode-max-iter 0 \
    --iter-decode-with-beam 3 --length-select energy --energy-path "$TEACHER"
  flush_test_energies
}

decode_bilstm() {  # decode_bilstm NAME SYSTEM
  local name=$1 system=$2 lbeam
  for lbeam in 1 3; do
    decode_row main "$system" 1 "$lbeam" nat "$WORK/gen/$name.i1.b$lbeam.txt" "$BIN" \
      "$WORK/$name/checkpoint_best.pt" test --iter-decode-max-iter 0 --iter-decode-with-beam "$lbeam"
  done
  decode_row main "$system" 1 oracle nat "$WORK/gen/$name.i1.oracle.txt" "$BIN" \
    "$WORK/$name/checkpoint_best.pt" test --iter-decode-max-iter 0 --oracle-length
  flush_test_energies
}

operator_cell() {  # operator_cell O1 O2
  local o1=$1 o2=$2 save=$WORK/ops/$1_$2 QUEUE=$WORK/pending_ops
  train_engine_cmlm "$save" "$BIN" cmlm "$CELL_UPDATES" "$o1" "$o2" --disable-validation \
    --no-save-optimizer-state
  mv "$WORK/logs/$(basename "$save").log" "$WORK/logs/op_$1_$2.log"
  decode_row operators "$o1,$o2" 1 oracle nat "$WORK/gen/op_$1_$2.txt" "$BIN"_ops \
    "$save/checkpoint_last.pt" valid --iter-decode-max-iter 0 --oracle-length
  rm -f "$save"/checkpoint_*.pt
}

operator_start() {  # the CMLM baseline every cell starts from, decoded the same way
  local QUEUE=$WORK/pending_ops
  decode_row operators start 1 oracle nat "$WORK/gen/op_start.txt" "$BIN"_ops \
    "$WORK/cmlm/checkpoint_last.pt" valid --iter-decode-max-iter 0 --oracle-length
}

operator_energies() {  # one teacher load for the 25 cells' outputs
  local QUEUE=$WORK/pending_ops
  LSTM_TEACHER='' flush_energies "$WORK/bpe/valid_ops.de" --bpe-codes "$WORK/bpe/codes" \
    --bpe-vocab "$WORK/bpe/vocab.en" --bpe-threshold "$BPE_THRESHOLD"
}

tables() {
  python scripts/translation_tables.py "$RESULTS" --timings "$WORK/timings.tsv" \
    > "$WORK/tables.md"
  cat "$WORK/tables.md"
}

if [ -z "${BPE_THRESHOLD:-}" ]; then
  n=$(head -n "${MAX_TRAIN:-29000}" "$DATA/tok/train.lc.norm.tok.de" | wc -l)
  BPE_THRESHOLD=$(( (50 * n + 14500) / 29000 ))
  [ "$BPE_THRESHOLD" -ge 1 ] || BPE_THRESHOLD=1
fi

stage bpe prepare_bpe
stage binarize binarize_all
stage teacher_transformer train_teacher teacher_transformer "$TEACHER_UPDATES" "${AR_ARCH[@]}"
stage teacher_lstm train_teacher teacher_lstm "$LSTM_UPDATES" "${LSTM_ARCH[@]}"
stage decode_teachers decode_teachers
[ "$NAT_INIT" = teacher ] && stage nat_init nat_init
stage cmlm train_cmlm cmlm "$BIN"
stage distill distill
stage cmlm_distill train_cmlm cmlm_distill "$BIN"_distill
stage engine_cmlm engine_cmlm engine_cmlm cmlm
stage engine_cmlm_distill engine_cmlm engine_cmlm_distill cmlm_distill
stage decode_cmlm decode_cmlm_family cmlm "CMLM"
stage decode_cmlm_distill decode_cmlm_family cmlm_distill "CMLM, distilled data"
stage decode_engine_cmlm decode_cmlm_family engine_cmlm "ENGINE cmlm_infnet"
stage decode_engine_cmlm_distill decode_cmlm_family engine_cmlm_distill \
  "ENGINE cmlm_infnet, from the distilled CMLM"
stage distill_energy ce_plus_energy distill_energy "$BIN"_distill cmlm_distill 1
stage distill_ce ce_plus_energy distill_ce "$BIN"_distill cmlm_distill 0
stage decode_distill_energy decode_cmlm_family distill_energy \
  "distilled CMLM + energy + CE on distilled data"
stage decode_distill_ce decode_cmlm_family distill_ce "distilled CMLM + CE on distilled data"
stage ref_energy ce_plus_energy ref_energy "$BIN" cmlm 1
stage ref_ce ce_plus_energy ref_ce "$BIN" cmlm 0
stage decode_ref_energy decode_cmlm_family ref_energy "CMLM + energy + CE on references"
stage decode_ref_ce decode_cmlm_family ref_ce "CMLM + CE on references"
stage bilstm_base train_bilstm bilstm_base "$BIN"
stage bilstm_distill train_bilstm bilstm_distill "$BIN"_distill
stage bilstm_engine bilstm_engine
stage decode_bilstm_base decode_bilstm bilstm_base "BiLSTM"
stage decode_bilstm_distill decode_bilstm bilstm_distill "BiLSTM, distilled data"
stage decode_bilstm_engine decode_bilstm bilstm_engine "ENGINE bilstm_infnet (LSTM energy)"
if [ -z "${SKIP_OPS:-}" ]; then
  stage op_start operator_start
  for o1 in $OPERATORS; do
    for o2 in $OPERATORS; do
      stage "op_${o1}_${o2}" operator_cell "$o1" "$o2"
    done
  done
  FORCE=1 stage operator_energies operator_energies
fi
FORCE=1 stage tables tables
