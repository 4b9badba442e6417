#!/usr/bin/env bash
# Issue 14's GPU targets in one call (about 7 minutes on an H200), each table written under $OUT:
#   machine.txt      the GPU, driver, torch, and the load
#   resnet18.md      ResNet-18 32x32: nnspec (auto) vs hand fp32 / bf16+channels_last / +compile,
#                    and Lightning's defaults                     (bench/bench_gpu.py)
#   gpt.md           the GPT-style model of examples/gpt_chars.yaml widened to 10.7 M
#                    parameters, likewise                          (bench/bench_gpu.py --model gpt)
#   imagefolder.md   JPEG folder through workers: nnspec vs a hand-written DataLoader
#   firststep.md     launch to first step and peak RSS vs hand scripts, on the GPU
# Every part has its own time limit, so one slow part cannot eat the others' time; a part that
# runs out leaves what it printed so far.
#
# On a lent machine (its python3 holds torch, torchvision, lightning, tensorboard, typer, but
# not pydantic, ruamel.yaml or jsonschema), carry those as wheels, made here first:
#   python -m pip download --only-binary=:all: --python-version 3.12 \
#       --platform manylinux_2_17_x86_64 -d .whl "pydantic>=2.6" "ruamel.yaml>=0.18" \
#       "jsonschema>=4.20" "safetensors>=0.4"
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=540)
# Without a GPU it runs the same scripts' quick CPU paths (--smoke, one round, a minute or
# two) to show that they work; those figures mean nothing.
set -u
OUT=${OUT:-$(mktemp -d)}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
mkdir -p "$OUT"

if ! $PY -c "import pydantic, ruamel.yaml, jsonschema" 2>/dev/null; then
    if [ -d .whl ]; then
        $PY -m pip install -q --no-index --find-links .whl pydantic ruamel.yaml jsonschema \
            safetensors 2>&1 | tail -2
    fi
    if ! $PY -c "import pydantic, ruamel.yaml, jsonschema" 2>/dev/null; then
        echo "nnspec's dependencies are missing (pydantic, ruamel.yaml, jsonschema): carry .whl"
        exit 2
    fi
fi

part() {  # part NAME SECONDS COMMAND...: run with a limit, the table to $OUT/NAME.md
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.md" 2>"$OUT/$name.err"
    local rc=$?
    echo "rc $rc after $((SECONDS - start)) s" >>"$OUT/$name.md"
    grep -v "^$" "$OUT/$name.md" || true
    tail -3 "$OUT/$name.err"
}

if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    {
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
        $PY -c "import torch, platform; print('torch', torch.__version__, 'python',
platform.python_version(), 'cores', __import__('os').cpu_count())"
        uptime
    } >"$OUT/machine.txt" 2>&1
    cat "$OUT/machine.txt"
    part resnet18 190 $PY bench/bench_gpu.py --model resnet18 --device cuda --rounds 1 \
        --steps 130 --epochs 4
    part gpt 120 $PY bench/bench_gpu.py --model gpt --device cuda --rounds 1 --steps 130 \
        --epochs 4
    part imagefolder 50 $PY bench/bench_imagefolder.py --images 3000 --rounds 2 --workers 8
    part firststep 80 $PY bench/bench_firststep.py --device cuda --rounds 2 \
        --only resnet18_cifar gpt_chars
else
    { echo "no CUDA device: the quick CPU paths only (figures mean nothing)"; uptime; } \
        >"$OUT/machine.txt"
    cat "$OUT/machine.txt"
    part resnet18 150 $PY bench/bench_gpu.py --model resnet18 --device cpu --smoke --rounds 1
    part gpt 120 $PY bench/bench_gpu.py --model gpt --device cpu --smoke --rounds 1
fi
echo "tables in $OUT"
