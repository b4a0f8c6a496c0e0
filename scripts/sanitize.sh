#!/usr/bin/env bash
# Build the compiled core with AddressSanitizer + UndefinedBehaviorSanitizer into its own virtual
# environment and run the test suite against it, with the ASan runtime preloaded into Python.
# Usage: scripts/sanitize.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SANITIZE_VENV:-.venv-sanitize}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet \
  -Ccmake.define.SHORTCUTNET_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo \
  -Cbuild-dir=build/sanitize ".[test]"
asan_runtime=$(${CXX:-g++} -print-file-name=libasan.so)
ubsan_runtime=$(${CXX:-g++} -print-file-name=libubsan.so)
# Python and its extension modules keep allocations alive until exit by design: leaks are not errors here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# tests/sanitizer_coverage.py fails the run if a training-engine test skips here (e.g. the compiled
# backend failing to load under the sanitizers), so the engine is never left out unnoticed.
PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" LD_PRELOAD="$asan_runtime $ubsan_runtime" \
  "$venv/bin/python" -m pytest -p no:cacheprovider -p sanitizer_coverage "$@"
