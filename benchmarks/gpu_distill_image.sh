#!/usr/bin/env bash
# Image distillation on a lent GPU (device tool; carry .whl .gpu, as for gpu_smoke.sh):
# fine-tune ImageNet EfficientNet-Lite2 on the built-in mnist (the teacher), then distill it into
# EfficientNet-Lite0 with cached teacher logits (mnist trains without augmentation, so a cache is valid),
# and train Lite0 without a teacher for comparison. Prints each run's report lines.
set -uo pipefail
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
run() {  # name, flags...
  local name=$1; shift; local start; start=$(date +%s)
  timeout 240 python3 recipes/image_cls.py --disable_tqdm true --output_dir "/tmp/$name" "$@" > "$OUT/$name.log" 2>&1
  echo "== $name: exit $? in $(( $(date +%s) - start )) s"
  grep -E "distill report|^test_accuracy|^teacher_test_accuracy|^retention|^latency_speedup|^train_runtime|^trainable" "$OUT/$name.log"
}
run teacher-lite2 --model timm/tf_efficientnet_lite2.in1k
run student-kd --method distill --teacher /tmp/teacher-lite2 --model timm/tf_efficientnet_lite0.in1k --teacher_logits cache
run student-alone --model timm/tf_efficientnet_lite0.in1k
