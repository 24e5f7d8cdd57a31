#!/usr/bin/env bash
# GPU smoke test, run through the device tool on a lent H100/H200 (the image has torch, transformers,
# peft, accelerate; datasets travels as wheels in .whl, the MiniLM tokenizer files in .gpu/tokenizer):
#   device run: bash benchmarks/gpu_smoke.sh   (carry: .whl .gpu)
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" HFTL_TEST_TOKENIZER_DIR="$PWD/.gpu/tokenizer" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 - <<'PY'
import torch, transformers, peft, accelerate, datasets
print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__,
      "accelerate", accelerate.__version__, "datasets", datasets.__version__)
from hftl import HftlTrainingArguments
args = HftlTrainingArguments(output_dir="/tmp/x")
print("bf16 auto on this GPU:", args.bf16, "| device:", args.device)
PY
python3 -m pytest -q -x -p no:cacheprovider tests/test_methods.py tests/test_save_load.py tests/test_errors.py 2>&1 | tail -15 | tee "$OUT/pytest_gpu.txt"
