# The ENGINE pipeline at the paper's scale (Tu et al., 2020, §4), shared by
# examples/iwslt14_de_en/run.sh and examples/wmt16_ro_en/run.sh. Source it after setting
#   WORK       absolute work directory
#   SRC TGT    language suffixes (de en / ro en)
#   TEXT       directory with BPE'd {train,valid,test}.{SRC,TGT}
#   BPE_CODES  the BPE codes of TEXT (teacher energies re-segment --remove-bpe output with
#              them; empty: no energies)
# then call engine_pipeline. Every size and hyper-parameter is an environment variable
# (defaults: the paper's; SMOKE=1: tiny models and a handful of updates, to check that every
# stage runs on a CPU).
#
# Stages (skipped when already finished; FORCE=1 redoes them):
#   binarize        fairseq-preprocess --joined-dictionary -> WORK/bin (teachers and NATs)
#   teacher         AR energy: 6-layer 512-d transformer, 8 heads, FFN 2048 (AR_ARCH)
#   teacher_lstm    seq2seq energy: 2-layer BiLSTM encoder (512/direction), 2-layer LSTM
#                   decoder (768), embeddings 512                        (BILSTM=1 only)
#   decode_teachers test BLEU/energy, beam 5 and greedy
#   distill         teacher beam-5 translations of train -> WORK/bin_distill, binarised
#                   with the teacher's dictionaries
# Teacher outputs (distillation and test) are capped at 1.5 x source length + 10 tokens.
#   cmlm            CMLM baseline (stock cmlm_transformer, partial masking) on the distilled
#                   corpus; checkpoint_best by dev BLEU at 1 iteration, as the paper's
#                   baselines (--eval-bleu under translation_energy; stock translation_lev
#                   computes no dev BLEU)
#   engine          ENGINE: cmlm_infnet fine-tuned from the CMLM with energy_loss against the
#                   transformer teacher, O1=SX, O2=ST, energy + length loss (--ce-weight 0),
#                   Adam, dropout 0.1, weight decay 0.01, 1024-token batches, 30 epochs,
#                   early stopping on dev energy (energy_discrete)
#   decode_*        test, 1 and 10 iterations, length beam 1, 3, 5
#   bilstm_*        (BILSTM=1) Table 5: bilstm_infnet on references, on the distilled
#                   corpus, and ENGINE against the LSTM teacher; oracle-length decoding
#   op_*            (OPS=1) the 5x5 operator table on dev, oracle lengths, CELL_UPDATES each
#   tables          scripts/translation_tables.py -> WORK/tables.md
source "$(dirname "${BASH_SOURCE[0]}")/engine_translation.sh"

SEED=${SEED:-1}
BILSTM=${BILSTM:-1}
AR_ARCH=${AR_ARCH:-transformer}
TEACHER_UPDATES=${TEACHER_UPDATES:-100000} TEACHER_MAX_TOKENS=${TEACHER_MAX_TOKENS:-4096}
TEACHER_LR=${TEACHER_LR:-5e-4} TEACHER_DROPOUT=${TEACHER_DROPOUT:-0.3} WARMUP=${WARMUP:-4000}
CMLM_UPDATES=${CMLM_UPDATES:-300000} CMLM_MAX_TOKENS=${CMLM_MAX_TOKENS:-8192}
CMLM_LR=${CMLM_LR:-5e-4} CMLM_WARMUP=${CMLM_WARMUP:-10000}
# the paper searches {5e-4, 1e-4, 5e-5, 1e-5, 5e-6, 1e-6}; the authors' released scripts use
# 1e-6 with --update-freq 8
ENGINE_LR=${ENGINE_LR:-1e-6} ENGINE_UPDATE_FREQ=${ENGINE_UPDATE_FREQ:-8}
ENGINE_MAX_TOKENS=${ENGINE_MAX_TOKENS:-1024} ENGINE_EPOCHS=${ENGINE_EPOCHS:-30}
ENGINE_CE_WEIGHT=${ENGINE_CE_WEIGHT:-0}
BILSTM_UPDATES=${BILSTM_UPDATES:-100000} CELL_UPDATES=${CELL_UPDATES:-2000}
LENGTH_BEAMS=${LENGTH_BEAMS:-1 3 5}
OPERATORS=${OPERATORS:-sx stl sg st gx}
EVAL_SENTENCES=${EVAL_SENTENCES:-}  # keep only the first N valid/test pairs (smoke runs)
DISTILL_BEAM=${DISTILL_BEAM:-5}
AR_LEN=(--max-len-a 1.5 --max-len-b 10)  # AR output length cap (distillation and test)
SMALL=()  # appended to every architecture (SMOKE=1: tiny models)
if [ -n "${SMOKE:-}" ]; then
  SMALL=(--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 --decoder-embed-dim 64
    --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 --encoder-attention-heads 2
    --decoder-attention-heads 2)
  TEACHER_UPDATES=${SMOKE_UPDATES:-20} CMLM_UPDATES=${SMOKE_UPDATES:-20}
  BILSTM_UPDATES=${SMOKE_UPDATES:-20} CELL_UPDATES=3
  TEACHER_MAX_TOKENS=1024 CMLM_MAX_TOKENS=1024 WARMUP=5 CMLM_WARMUP=5 ENGINE_UPDATE_FREQ=1
  TEACHER_LR=1e-3 CMLM_LR=1e-3
  ENGINE_LR=1e-4 EVAL_SENTENCES=${EVAL_SENTENCES:-100} LENGTH_BEAMS="1 3"
  OPERATORS=${SMOKE_OPERATORS:-sx st}
  # an untrained teacher rarely ends a sentence: cap its output lengths, distil greedily
  AR_LEN=(--max-len-a 1 --max-len-b 5) DISTILL_BEAM=1
fi
FP16=()
[ "$DEVICE" = cpu ] || FP16=(--fp16)  # CE training in half precision on a GPU

BIN=$WORK/bin
TEACHER=$WORK/teacher/checkpoint_best.pt
LSTM_TEACHER=''
[ "$BILSTM" = 1 ] && LSTM_TEACHER=$WORK/teacher_lstm/checkpoint_best.pt
COMMON=(--user-dir engine_plugin "${DEVICE_FLAGS[@]}" --seed "$SEED" --no-epoch-checkpoints
  --log-format simple --log-interval 100 --skip-invalid-size-inputs-valid-test)
NAT=(--share-all-embeddings --encoder-learned-pos --decoder-learned-pos --apply-bert-init
  --max-source-positions 1024 --max-target-positions 1024 "${SMALL[@]}")
# ENGINE's inference-network training (§4.4), for CMLM and BiLSTM infnets alike
ENGINE_OPT=(--optimizer adam --adam-betas "(0.9,0.999)" --lr "$ENGINE_LR" --weight-decay 0.01
  --dropout 0.1 --max-tokens "$ENGINE_MAX_TOKENS" --update-freq "$ENGINE_UPDATE_FREQ"
  --ce-weight "$ENGINE_CE_WEIGHT" --noise full_mask --best-checkpoint-metric energy_discrete)
if [ -n "${SMOKE:-}" ]; then
  ENGINE_OPT+=(--max-update "${SMOKE_UPDATES:-20}")
else
  ENGINE_OPT+=(--max-epoch "$ENGINE_EPOCHS")
fi

binarize() {
  mkdir -p "$WORK/text"
  local split l
  for l in "$SRC" "$TGT"; do
    cp "$TEXT/train.$l" "$WORK/text/train.$l"
    for split in valid test; do
      if [ -n "$EVAL_SENTENCES" ]; then
        head -n "$EVAL_SENTENCES" "$TEXT/$split.$l" > "$WORK/text/$split.$l"
      else
        cp "$TEXT/$split.$l" "$WORK/text/$split.$l"
      fi
    done
  done
  echo "   train/valid/test: $(wc -l < "$WORK/text/train.$SRC") / $(wc -l < "$WORK/text/valid.$SRC") / $(wc -l < "$WORK/text/test.$SRC") pairs"
  rm -rf "$BIN"
  logged "$WORK/logs/preprocess.log" fairseq-preprocess --source-lang "$SRC" \
    --target-lang "$TGT" --joined-dictionary --trainpref "$WORK/text/train" \
    --validpref "$WORK/text/valid" --testpref "$WORK/text/test" --destdir "$BIN" \
    --workers "${WORKERS:-4}"
}

teacher() {
  logged "$WORK/logs/teacher.log" fairseq-train "$BIN" "${COMMON[@]}" "${FP16[@]}" \
    --task translation --arch "$AR_ARCH" --share-all-embeddings "${SMALL[@]}" \
    --optimizer adam --adam-betas "(0.9,0.98)" --clip-norm 0.0 --lr "$TEACHER_LR" \
    --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP" --warmup-init-lr 1e-07 \
    --dropout "$TEACHER_DROPOUT" --weight-decay 0.0001 \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens "$TEACHER_MAX_TOKENS" --max-update "$TEACHER_UPDATES" --save-dir "$WORK/teacher"
  last_train_line "$WORK/logs/teacher.log"
}

teacher_lstm() {
  local size=(--encoder-layers 2 --encoder-embed-dim 512 --encoder-hidden-size 512
    --decoder-layers 2 --decoder-embed-dim 512 --decoder-hidden-size 768
    --decoder-out-embed-dim 512)
  [ -n "${SMOKE:-}" ] && size=(--encoder-layers 1 --encoder-embed-dim 64
    --encoder-hidden-size 64 --decoder-layers 1 --decoder-embed-dim 64
    --decoder-hidden-size 64 --decoder-out-embed-dim 64)
  logged "$WORK/logs/teacher_lstm.log" fairseq-train "$BIN" "${COMMON[@]}" "${FP16[@]}" \
    --task translation --arch lstm --encoder-bidirectional "${size[@]}" \
    --optimizer adam --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP" \
    --warmup-init-lr 1e-07 --clip-norm 1.0 --dropout 0.2 \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens "$TEACHER_MAX_TOKENS" --max-update "$TEACHER_UPDATES" \
    --save-dir "$WORK/teacher_lstm"
  last_train_line "$WORK/logs/teacher_lstm.log"
}

flush_test() { flush_energies "$WORK/text/test.$SRC" "${SEGMENT[@]}"; }

decode_teachers() {
  decode_row main "transformer teacher" AR "beam 5" ar "$WORK/gen/teacher.beam5.txt" "$BIN" \
    "$TEACHER" test --beam 5 --remove-bpe --scoring sacrebleu "${AR_LEN[@]}"
  decode_row main "transformer teacher" AR greedy ar "$WORK/gen/teacher.beam1.txt" "$BIN" \
    "$TEACHER" test --beam 1 --remove-bpe --scoring sacrebleu "${AR_LEN[@]}"
  if [ -n "$LSTM_TEACHER" ]; then
    decode_row main "seq2seq (LSTM) teacher" AR "beam 5" ar "$WORK/gen/teacher_lstm.beam5.txt" \
      "$BIN" "$LSTM_TEACHER" test --beam 5 --remove-bpe --scoring sacrebleu "${AR_LEN[@]}"
  fi
  flush_test
}

distill() {
  mkdir -p "$WORK/distill"
  ar_generate "$WORK/gen/distill_train.txt" "$BIN" "$TEACHER" train --beam "$DISTILL_BEAM" \
    --max-tokens "${DISTILL_MAX_TOKENS:-8000}" --batch-size 512 "${AR_LEN[@]}"
  grep -P '^H-' "$WORK/gen/distill_train.txt" | sed 's/^H-//' | sort -n -k1,1 | cut -f 3 \
    > "$WORK/distill/train.$TGT"
  cp "$WORK/text/train.$SRC" "$WORK/distill/train.$SRC"
  [ "$(wc -l < "$WORK/distill/train.$TGT")" -eq "$(wc -l < "$WORK/text/train.$SRC")" ] \
    || { echo "!! distilled corpus and train differ in length"; return 1; }
  rm -rf "$BIN"_distill
  logged "$WORK/logs/preprocess_distill.log" fairseq-preprocess --source-lang "$SRC" \
    --target-lang "$TGT" --srcdict "$BIN/dict.$SRC.txt" --tgtdict "$BIN/dict.$TGT.txt" \
    --trainpref "$WORK/distill/train" --destdir "$BIN"_distill --workers "${WORKERS:-4}"
  cp "$BIN"/valid.* "$BIN"/test.* "$BIN"_distill/
}

cmlm() {
  logged "$WORK/logs/cmlm.log" fairseq-train "$BIN"_distill "${COMMON[@]}" "${FP16[@]}" \
    --task translation_energy --arch cmlm_transformer "${NAT[@]}" --criterion nat_loss \
    --noise random_mask --label-smoothing 0.1 --dropout 0.3 --weight-decay 0.01 \
    --optimizer adam --adam-betas "(0.9,0.98)" --lr "$CMLM_LR" --lr-scheduler inverse_sqrt \
    --warmup-updates "$CMLM_WARMUP" --warmup-init-lr 1e-07 --stop-min-lr 1e-09 \
    --max-tokens "$CMLM_MAX_TOKENS" --max-update "$CMLM_UPDATES" --fixed-validation-seed 7 \
    "${DEV_BLEU[@]}" --save-dir "$WORK/cmlm"
  last_train_line "$WORK/logs/cmlm.log"
}

engine_cmlm() {  # engine_cmlm SAVE_DIR O1 O2 [args]
  local save=$1 o1=$2 o2=$3
  shift 3
  rm -rf "$save"
  logged "$WORK/logs/$(basename "$save").log" fairseq-train "$BIN"_distill "${COMMON[@]}" \
    --task translation_energy --arch cmlm_infnet "${NAT[@]}" --criterion energy_loss \
    --energy-path "$TEACHER" --o1 "$o1" --o2 "$o2" "${ENGINE_OPT[@]}" \
    --finetune-from-model "$WORK/cmlm/checkpoint_best.pt" --save-dir "$save" "$@"
  last_train_line "$WORK/logs/$(basename "$save").log"
}

decode_nat() {  # decode_nat NAME SYSTEM ITERATIONS...
  local name=$1 system=$2 iters lbeam
  shift 2
  for iters in "$@"; do
    for lbeam in $LENGTH_BEAMS; do
      decode_row main "$system" "$iters" "$lbeam" nat "$WORK/gen/$name.i$iters.b$lbeam.txt" \
        "$BIN" "$WORK/$name/checkpoint_best.pt" test --iter-decode-max-iter $((iters - 1)) \
        --iter-decode-with-beam "$lbeam"
    done
  done
  flush_test
}

bilstm() {  # bilstm NAME DATA_BIN: the BiLSTM baseline (cross-entropy = energy weight 0)
  local size=()
  [ -n "${SMOKE:-}" ] && size=(--embed-dim 64 --hidden-size 64)
  logged "$WORK/logs/$1.log" fairseq-train "$2" "${COMMON[@]}" "${FP16[@]}" \
    --task translation_energy --arch bilstm_infnet "${size[@]}" --criterion energy_loss \
    --energy-weight 0 --ce-weight 1 --label-smoothing 0.1 --dropout 0.1 --optimizer adam \
    --lr 5e-4 --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP" --warmup-init-lr 1e-07 \
    --max-tokens "$TEACHER_MAX_TOKENS" --max-update "$BILSTM_UPDATES" "${DEV_BLEU[@]}" \
    --save-dir "$WORK/$1"
  last_train_line "$WORK/logs/$1.log"
}

bilstm_engine() {
  local size=()
  [ -n "${SMOKE:-}" ] && size=(--embed-dim 64 --hidden-size 64)
  rm -rf "$WORK/bilstm_engine"
  logged "$WORK/logs/bilstm_engine.log" fairseq-train "$BIN" "${COMMON[@]}" \
    --task translation_energy --arch bilstm_infnet "${size[@]}" --criterion energy_loss \
    --energy-path "$LSTM_TEACHER" --o1 sx --o2 st "${ENGINE_OPT[@]}" \
    --finetune-from-model "$WORK/bilstm_base/checkpoint_best.pt" --save-dir "$WORK/bilstm_engine"
  last_train_line "$WORK/logs/bilstm_engine.log"
}

decode_bilstm() {  # decode_bilstm NAME SYSTEM: 1 iteration, oracle lengths (Table 5)
  decode_row main "$2" 1 oracle nat "$WORK/gen/$1.oracle.txt" "$BIN" \
    "$WORK/$1/checkpoint_best.pt" test --iter-decode-max-iter 0 --oracle-length
  flush_test
}

operator_cell() {
  local save=$WORK/ops/$1_$2
  engine_cmlm "$save" "$1" "$2" --max-update "$CELL_UPDATES" --no-save-optimizer-state \
    --disable-validation
  decode_row operators "$1,$2" 1 oracle nat "$WORK/gen/op_$1_$2.txt" "$BIN" \
    "$save/checkpoint_last.pt" valid --iter-decode-max-iter 0 --oracle-length
  rm -f "$save"/checkpoint_*.pt
}

engine_pipeline() {
  SEGMENT=()
  if [ -n "${BPE_CODES:-}" ]; then SEGMENT=(--bpe-codes "$BPE_CODES"); else SKIP_ENERGY=1; fi
  echo "== ENGINE $SRC-$TGT: text $TEXT, work $WORK, device $DEVICE${SMOKE:+, SMOKE run}"
  stage binarize binarize
  stage teacher teacher
  [ "$BILSTM" = 1 ] && stage teacher_lstm teacher_lstm
  stage decode_teachers decode_teachers
  stage distill distill
  stage cmlm cmlm
  stage engine engine_cmlm "$WORK/engine" sx st
  stage decode_cmlm decode_nat cmlm "CMLM (distilled data)" 1 10
  stage decode_engine decode_nat engine "ENGINE cmlm_infnet" 1 10
  if [ "$BILSTM" = 1 ]; then
    stage bilstm_base bilstm bilstm_base "$BIN"
    stage bilstm_distill bilstm bilstm_distill "$BIN"_distill
    stage bilstm_engine bilstm_engine
    stage decode_bilstm_base decode_bilstm bilstm_base "BiLSTM baseline"
    stage decode_bilstm_distill decode_bilstm bilstm_distill "BiLSTM distill"
    stage decode_bilstm_engine decode_bilstm bilstm_engine "ENGINE bilstm_infnet (seq2seq energy)"
  fi
  if [ -n "${OPS:-}${SMOKE:-}" ]; then
    local o1 o2
    for o1 in $OPERATORS; do
      for o2 in $OPERATORS; do
        stage "op_${o1}_${o2}" operator_cell "$o1" "$o2"
      done
    done
    LSTM_TEACHER='' FORCE=1 stage operator_energies flush_energies "$WORK/text/valid.$SRC" \
      "${SEGMENT[@]}"
  fi
  FORCE=1 stage tables tables
}

tables() {
  python scripts/translation_tables.py "$RESULTS" --timings "$WORK/timings.tsv" \
    > "$WORK/tables.md"
  cat "$WORK/tables.md"
}
