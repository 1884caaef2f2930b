#!/usr/bin/env bash
# The Shakespeare model family (docs/models.md): pretrains the MHA base on the first 90% of
# tinyshakespeare, then makes each shared-KV variant the MLKV paper's way: `mlkv convert`, then
# uptrain on the same data for a tenth of the base's tokens.
#
#   tools/train/make_family.sh [BUILD_DIR] [OUT_DIR]        (make models)
#
# OUT_DIR (default BUILD_DIR/models/shakespeare) gets one directory per model: mha-36, and for
# each variant NAME-converted (right after conversion, measured but not shipped) and NAME
# (uptrained); and mlkv-2-long, MLKV-2 uptrained three times as long (the model `make run`
# serves, and the table's check of whether more uptraining closes the gap). A finished stage (its training.json or model.safetensors is there) is not run
# again, so an interrupted recipe goes on where it stopped; an interrupted training run resumes
# from its last checkpoint. OUT_DIR/family.json records each stage's wall time.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-build}"
OUT="${2:-$BUILD/models/shakespeare}"
DATA="${MLKV_SHARED_DIR:-../shared}/data/tinyshakespeare/input.txt"
MLKV="$BUILD/tools/mlkv"
PYTHON="${MLKV_PYTHON:-/usr/bin/python3}"
TRAIN=("$PYTHON" tools/train/train.py)

# The base: 1,500 steps of 16 windows of 256 bytes (6.1M tokens, about 6 passes over the
# training bytes). Uptraining: 150 steps, a tenth of that; the long run 450, three tenths.
BASE_STEPS=1500
UPTRAIN_STEPS=150
LONG_UPTRAIN_STEPS=450
SEED=0
# name, KV heads per KV layer, KV layers (6 layers of 6 heads in the base)
VARIANTS=("gqa-12 2 6" "mqa-6 1 6" "mlkv-3 1 3" "mlkv-2 1 2" "mlkv-1 1 1")

[ -x "$MLKV" ] || { echo "make_family: $MLKV is missing; build first (make build)" >&2; exit 2; }
[ -f "$DATA" ] || { echo "make_family: $DATA is missing (MLKV_SHARED_DIR)" >&2; exit 2; }
mkdir -p "$OUT"
TIMES="$OUT/stage_seconds.tsv"
touch "$TIMES"

# Runs "$@" as stage $1 unless its output $2 exists; appends its wall time to $TIMES.
stage() {
  local name="$1" done_file="$2"
  shift 2
  if [ -f "$done_file" ]; then
    echo "== $name: done already ($done_file)"
    return
  fi
  echo "== $name: $*"
  local start
  start=$(date +%s)
  "$@"
  printf '%s\t%s\n' "$name" "$(($(date +%s) - start))" >>"$TIMES"
}

stage pretrain-mha-36 "$OUT/mha-36/training.json" \
  "${TRAIN[@]}" pretrain --config configs/shakespeare/mha-36.json --data "$DATA" \
  --out "$OUT/mha-36" --steps "$BASE_STEPS" --lr 1.5e-3 --warmup-steps 100 --seed "$SEED" \
  --eval-every 250 --checkpoint-every 100 --resume

for variant in "${VARIANTS[@]}"; do
  read -r name kv_heads kv_layers <<<"$variant"
  stage "convert-$name" "$OUT/$name-converted/model.safetensors" \
    "$MLKV" convert --model "$OUT/mha-36" --out "$OUT/$name-converted" \
    --num-key-value-heads "$kv_heads" --num-key-value-layers "$kv_layers" --pool mean
  stage "uptrain-$name" "$OUT/$name/training.json" \
    "${TRAIN[@]}" uptrain --init "$OUT/$name-converted" --data "$DATA" --out "$OUT/$name" \
    --steps "$UPTRAIN_STEPS" --lr 5e-4 --warmup-steps 15 --seed "$SEED" \
    --eval-every 50 --checkpoint-every 50 --resume
done
stage uptrain-mlkv-2-long "$OUT/mlkv-2-long/training.json" \
  "${TRAIN[@]}" uptrain --init "$OUT/mlkv-2-converted" --data "$DATA" --out "$OUT/mlkv-2-long" \
  --steps "$LONG_UPTRAIN_STEPS" --lr 5e-4 --warmup-steps 15 --seed "$SEED" \
  --eval-every 150 --checkpoint-every 50 --resume
echo "make_family: done; stage wall times in $TIMES"
