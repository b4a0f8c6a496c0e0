#!/usr/bin/env bash
# The C++ core on aarch64: the kernels, the dispatch library, the training engine and the embedding
# example cross-compiled with Debian's g++-aarch64-linux-gnu, no x86 option in any compile command,
# and the example run under qemu-aarch64 for several (n, seed) pairs and thread counts, printing
# exactly the numbers of the x86 build (the kernels promise the same bits on every machine).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/shortcutnet-aarch64.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "+ [aarch64, $SECONDS s] $*"; }

if ! command -v aarch64-linux-gnu-g++ > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
  step "apt-get install g++-aarch64-linux-gnu qemu-user"
  [ "$(id -u)" = 0 ] || { echo "installing the cross compiler needs root (CI runs as root)" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu qemu-user \
    > "$work/apt.log" 2>&1 || { cat "$work/apt.log"; exit 1; }
fi

common=(-DSKBUILD=OFF -DCMAKE_BUILD_TYPE=Release -DSHORTCUTNET_BUILD_EXAMPLES=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
step "x86-64 build of the example"
cmake -S . -B "$work/x86" "${common[@]}" > "$work/x86.log" 2>&1 || { cat "$work/x86.log"; exit 1; }
cmake --build "$work/x86" --target embed_sampled --parallel 2 >> "$work/x86.log" 2>&1 || { cat "$work/x86.log"; exit 1; }

step "aarch64 cross build: dispatch library, training engine, example"
cmake -S . -B "$work/arm" "${common[@]}" -DSHORTCUTNET_BUILD_ENGINE=ON \
  -DCMAKE_TOOLCHAIN_FILE="$root/.ci/aarch64-linux-gnu.cmake" > "$work/arm.log" 2>&1 || { cat "$work/arm.log"; exit 1; }
cmake --build "$work/arm" --parallel 2 >> "$work/arm.log" 2>&1 || { cat "$work/arm.log"; exit 1; }

step "no x86 option in the aarch64 build"
python3 - "$work/arm/compile_commands.json" <<'PY'
import json, re, sys
commands = json.load(open(sys.argv[1]))
x86 = re.compile(r"(^|\s)(-m(avx\S*|sse\S*|fma|f16c|bmi\S*|popcnt|lzcnt|tune=\S+|arch=\S+)|/arch:\S+)")
leaks = [(c["file"], m.group(2)) for c in commands for m in x86.finditer(c["command"])]
assert commands, "no compile commands"
assert not leaks, f"x86 options in the aarch64 build: {leaks}"
compilers = {c["command"].split()[0] for c in commands}
assert all(name.endswith("aarch64-linux-gnu-g++") for name in compilers), compilers
print(f"{len(commands)} compile commands, none with an x86 option:", ", ".join(sorted(c["file"].split("/")[-1] for c in commands)))
PY
for artifact in "$work/arm/embed_sampled" "$work/arm/libshortcutnet_dispatch.a" "$work/arm/libshortcutnet_engine.a"; do
  machines=$(readelf -h "$artifact" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}' | sort -u)
  [ "$machines" = "AArch64" ] || { echo "$artifact is not AArch64 code: $machines" >&2; exit 1; }
done

step "the example under qemu-aarch64 against x86-64"
run_arm() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$work/arm/embed_sampled" "$@"; }
compared=0
for case in "1 0" "1000 7" "100000 7" "4097 123456789" "25000 18446744073709551615"; do
  read -r n seed <<< "$case"
  SHORTCUTNET_SIMD=scalar "$work/x86/embed_sampled" "$n" "$seed" 1 > "$work/x86-scalar.txt"
  "$work/x86/embed_sampled" "$n" "$seed" 2 > "$work/x86-best.txt"
  # x86 at its best level and at the baseline agree; their numbers are the reference.
  diff <(tail -n +2 "$work/x86-scalar.txt") <(tail -n +2 "$work/x86-best.txt")
  for threads in 1 2 3; do
    run_arm "$n" "$seed" "$threads" > "$work/arm.txt"
    [ "$(head -n 1 "$work/arm.txt")" = "simd scalar" ] || { echo "aarch64 reported: $(head -n 1 "$work/arm.txt")" >&2; exit 1; }
    if ! diff <(tail -n +2 "$work/x86-best.txt") <(tail -n +2 "$work/arm.txt"); then
      echo "aarch64 differs from x86-64 at n=$n seed=$seed threads=$threads" >&2
      exit 1
    fi
    compared=$((compared + 1))
  done
  echo "n=$n seed=$seed: x86-64 ($(head -n 1 "$work/x86-best.txt")) = aarch64 for threads 1, 2, 3:" \
       "$(sed -n 2p "$work/arm.txt")"
done
set +e
SHORTCUTNET_SIMD=neon run_arm 10 1 > /dev/null 2> "$work/bad.txt"
status=$?
set -e
[ "$status" = 2 ] && grep -q "SHORTCUTNET_SIMD: expected one of" "$work/bad.txt" \
  || { echo "a bad SHORTCUTNET_SIMD on aarch64 gave exit $status: $(cat "$work/bad.txt")" >&2; exit 1; }
echo "$compared aarch64 runs printed exactly the x86-64 numbers ($(wc -l < "$work/arm.txt") lines each)"
step "done"
