#!/usr/bin/env bash
# Creates .venv and installs the CPU torch, a Python-3.11-compatible fairseq build and this
# package. Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
# torch first, pinned: 2.13.0 is the CPU wheel here; anything that later asks for
# "torch" is satisfied by it and never pulls a CUDA build.
$PIP install 'torch==2.13.0'
# fairseq 0.12.2 does not build on Python 3.11; ve-fairseq is a prebuilt cp311 wheel of
# fairseq's main branch. --no-deps keeps torchaudio (and a CUDA torch) out.
$PIP install --no-deps 've-fairseq==0.12.3'
$PIP install -r requirements.txt
$PIP install --no-deps -e .
"$VENV/bin/python" -c "import torch, fairseq, engine_plugin; print('torch', torch.__version__, 'fairseq', fairseq.__version__)"
