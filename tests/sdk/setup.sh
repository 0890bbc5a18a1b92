#!/bin/sh
# Creates the virtual environment the SDK fidelity test runs in
# (target/openrouter-sdk-venv), with the official OpenRouter Python SDK.
# Idempotent: an environment that already holds a recent enough SDK is kept.
set -eu
cd "$(dirname "$0")/../.."
venv=target/openrouter-sdk-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
v = tuple(int(p) for p in m.version("openrouter").split(".")[:3])
raise SystemExit(0 if v >= (1, 3, 84) else 1)
PY
then
    "$venv/bin/pip" install --quiet 'openrouter>=1.3.84'
fi
"$venv/bin/python" -c 'import importlib.metadata as m; print("openrouter", m.version("openrouter"), "in '"$venv"'")'
