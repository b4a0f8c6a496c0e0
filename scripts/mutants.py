#!/usr/bin/env python3
"""Targeted mutation testing: hand-made mutants of the C++ core and the Python modules (population
math, generator, sampled kernels, outcome rule, engines), applied one at a time to a copy of the
working tree, the core rebuilt when a mutant touches C++, and a focused subset of the tests run
against it.  A mutant the tests do not kill is a defect of the tests (or an equivalent mutant).

    python scripts/mutants.py                 # every mutant (about an hour on 2 cores)
    python scripts/mutants.py P2 K1 O6        # the named ones
    python scripts/mutants.py --list          # what there is

Needs cmake, ninja and pybind11 (``pip install cmake ninja pybind11``) for the C++ mutants, and the
test extra.  The report is printed and written to ``mutants-report.txt`` in the current folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    module: str
    path: str
    old: str
    new: str
    tests: tuple
    what: str


def mutant(name, module, path, old, new, tests, what):
    return Mutant(name, module, path, old, new, tuple(tests), what)


NEAR = "tests/test_near_optimum.py"
REDUCED = "tests/test_reduced_backends.py"
REDUCED_ENGINE = "tests/test_reduced_engine.py"
FD = "tests/test_population_finite_differences.py"
SCALES = "tests/test_extreme_scales.py"
AGREE = "tests/test_backends_agree.py"
PHILOX = "tests/test_philox.py"
SAMPLED = "tests/test_sampled_kernels.py"
FUSED = "tests/test_sampled_fused.py"
FUZZ_S = "tests/test_fuzz_sampled.py"
RULE = "tests/test_outcome_rule.py"
TRIALS = "tests/test_run_trials.py"
ENGINE = "tests/test_training_engine.py"
WINDOWS = "tests/test_rate_windows.py"
CONCURRENCY = "tests/test_concurrency.py"
OPTIM = "tests/test_engine_backends.py"

MUTANTS = [
    # ---- population math (cpp/shortcutnet/population.hpp, the Python backends)
    mutant("P1", "population", "cpp/shortcutnet/population.hpp", "const bool small = phi < 0.5;",
           "const bool small = phi < 0.0;", [NEAR], "pi - g(phi) without its series near 0"),
    mutant("P2", "population", "cpp/shortcutnet/population.hpp",
           "    for (std::int64_t i = 0; i < n; ++i) perp[i] -= c2 * (sx * x[i]);\n", "",
           [NEAR], "the angle's second projection dropped"),
    mutant("P3", "population", "cpp/shortcutnet/population.hpp", "constexpr double kAccurateCos = 0.75;",
           "constexpr double kAccurateCos = 2.0;", [NEAR], "the angle by a single plain projection"),
    mutant("P4", "population", "cpp/shortcutnet/population.hpp",
           "grad_a[j] = (sum_diff + (kPi - 1.0) * a[j] - (g - 1.0) * a_star[j]) * kInvTwoPi;",
           "grad_a[j] = (sum_diff + (kPi - 1.0) * a[j] - (g + 1.0) * a_star[j]) * kInvTwoPi;", [FD],
           "grad_a of the normalized model with g + 1"),
    mutant("P5", "population", "cpp/shortcutnet/population.hpp",
           "  return std::ldexp(1.0, std::min(1 - e, 1023));", "  return 1.0;", [SCALES],
           "no power-of-two rescaling in the population code"),
    mutant("P6", "population", "cpp/shortcutnet/population.hpp",
           "    if (ge != nullptr) pair_term(e, e, ne, ne, p, -delta, 0.5 * c_aa, ge);\n", "", [FD],
           "overlapping patches: the gradient's mirrored pair term dropped"),
    mutant("P7", "population", "python/shortcutnet/backends/reference.py",
           "        perp = perp - (_dot(x, perp) * inv_xx) * x\n", "", [NEAR],
           "NumPy reference: the angle's second projection dropped"),
    mutant("P8", "population", "python/shortcutnet/backends/numba_population.py",
           "            grad_w[t] = (c * perp[t]) * sx", "            grad_w[t] = c * perp[t]", [FD, SCALES],
           "Numba: the normalized gradient without its scale"),
    # ---- the generator (cpp/shortcutnet/philox.hpp, numba_sampled, reference_sampled)
    mutant("G1", "generator", "cpp/shortcutnet/philox.hpp", "#pragma GCC unroll 10\n    for (int round = 0; round < 10;",
           "#pragma GCC unroll 10\n    for (int round = 0; round < 9;", [PHILOX], "nine Philox rounds in the lanes"),
    mutant("G2", "generator", "cpp/shortcutnet/philox.hpp", "  const std::uint32_t q = (x >> 30) + ((x >> 29) & 1u);",
           "  const std::uint32_t q = (x >> 30);", [PHILOX], "float64 angle reduced to the quarter below"),
    mutant("G3", "generator", "cpp/shortcutnet/philox.hpp", "const float t1 = w * (0.40000972152f + w * 0.24279078841f);",
           "const float t1 = w * (0.400009f + w * 0.24279078841f);", [PHILOX],
           "float32 log: one coefficient off by 24 ulps (0.40000972f would be the same float)"),
    mutant("G4", "generator", "python/shortcutnet/backends/numba_sampled.py", "        hfsq = _F32_HALF * f * f",
           "        hfsq = 0.5 * f * f", [PHILOX], "Numba float32 transform: one product in float64"),
    mutant("G5", "generator", "python/shortcutnet/backends/reference_sampled.py",
           "    return e * ln2_hi - ((hfsq - (s * (hfsq + R) + e * ln2_lo)) - f)",
           "    return e * ln2_hi - ((hfsq - s * (hfsq + R)) - f)", [PHILOX], "NumPy log without ln 2's low part"),
    # ---- the sampled kernels (cpp/shortcutnet/sampled.hpp, numba_sampled)
    mutant("K1", "kernels", "cpp/shortcutnet/sampled.hpp", "  bits &= Bits(0) - static_cast<Bits>(h > 0.0);\n", "",
           [SAMPLED], "the gradient ignores the relu's gate (rows one at a time)"),
    mutant("K6", "kernels", "cpp/shortcutnet/sampled.hpp",
           "  return reinterpret_cast<V>(reinterpret_cast<Mask>(a) & positive);", "  return a;",
           [SAMPLED, "tests/test_short_patch_lanes.py"], "the gradient ignores the relu's gate (short patches in lanes)"),
    mutant("K2", "kernels", "cpp/shortcutnet/sampled.hpp",
           "    for (std::int64_t t = 0; t < P.p; ++t) grad_w[t] = (G[t] * inv_n - vG * P.v[t]) / P.norm_u;",
           "    for (std::int64_t t = 0; t < P.p; ++t) grad_w[t] = (G[t] * inv_n) / P.norm_u;", [SAMPLED],
           "normalized grad_w without the projection"),
    mutant("K3", "kernels", "cpp/shortcutnet/sampled.hpp", "  const double scale = std::ldexp(1.0, std::min(1 - e, 1023));\n  double nn",
           "  const double scale = 1.0;\n  double nn", [SCALES], "the filter direction without rescaling"),
    mutant("K4", "kernels", "cpp/shortcutnet/sampled.hpp",
           "      for (std::int64_t q = 0; q < m; ++q) total[q] += partial[static_cast<std::size_t>(b * m + q)];",
           "      for (std::int64_t q = 0; q < m; ++q) total[q] += partial[static_cast<std::size_t>((count - 1 - b) * m + q)];",
           [FUSED], "the parallel reduction adds its blocks in reverse order"),
    mutant("K5", "kernels", "python/shortcutnet/backends/numba_sampled.py",
           "        c[j] = a[j] if h[j] > 0.0 else 0.0", "        c[j] = a[j]", [FUZZ_S, SAMPLED],
           "Numba: the gradient ignores the relu's gate"),
    # ---- the outcome rule (trials.hpp classify, outcomes.py)
    mutant("O1", "outcome rule", "cpp/shortcutnet/trials.hpp", "  if (!arch.normalize) {\n    double* u = work;",
           "  if (false) {\n    double* u = work;", [RULE], "C++: un-normalized |a - a*| without rho"),
    mutant("O2", "outcome rule", "cpp/shortcutnet/trials.hpp", "obs.phi > 0.5 * kPi", "obs.phi > 0.4 * kPi", [RULE],
           "C++: the spurious side from phi > 0.4 pi"),
    mutant("O3", "outcome rule", "cpp/shortcutnet/trials.hpp", "th.spurious_loss_gap * std::max(1.0, in.loss_sp)",
           "th.spurious_loss_gap * in.loss_sp", [RULE], "C++: the loss gap relative to L_sp alone"),
    mutant("O4", "outcome rule", "cpp/shortcutnet/trials.hpp", "spurious_possible = arch.normalize && arch.stride >= arch.p &&",
           "spurious_possible = arch.normalize &&", [RULE], "C++: spurious for overlapping patches too"),
    mutant("O5", "outcome rule", "cpp/shortcutnet/trials.hpp", " || in.w_norm > th.divergence", "", [RULE],
           "C++: |w| never diverges"),
    mutant("O6", "outcome rule", "python/shortcutnet/outcomes.py", "        if normalize:\n            a_err = norms(a - a_star)",
           "        if True:\n            a_err = norms(a - a_star)", [RULE], "Python: un-normalized |a - a*| without rho"),
    mutant("O7", "outcome rule", "python/shortcutnet/outcomes.py", "th.spurious_loss_gap * np.maximum(1.0, loss_sp)",
           "th.spurious_loss_gap * loss_sp", [RULE], "Python: the loss gap relative to L_sp alone"),
    mutant("O8", "outcome rule", "python/shortcutnet/outcomes.py", "(phi > 0.5 * math.pi)", "(phi > 0.4 * math.pi)",
           [RULE], "Python: the spurious side from phi > 0.4 pi"),
    # ---- the engines (engine.hpp, lane_runner.hpp, optimizers.hpp, numba_engine, reference_engine)
    mutant("E1", "engines", "cpp/shortcutnet/engine.hpp", "    if (converged) state.steps_to_tol = t;",
           "    if (converged) state.steps_to_tol = t + 1;", [TRIALS, ENGINE], "one-trial path: steps_to_tol one late"),
    mutant("E2", "engines", "cpp/shortcutnet/lane_runner.hpp",
           "    cw_[l] = -a_dot_[l] * (kPi - parts.phi) / (kTwoPi * parts.r);",
           "    cw_[l] = -a_dot_[l] * (kPi - parts.phi) / (kTwoPi * parts.norms);", [SCALES],
           "lanes: the rescaled lane's gradient from the unscaled |u| |u*|"),
    mutant("E3", "engines", "cpp/shortcutnet/lane_runner.hpp", "    rescaled_ = any_set(any_extreme);", "    rescaled_ = false;",
           [SCALES], "lanes: no rescaled lanes"),
    mutant("E4", "engines", "cpp/shortcutnet/lane_runner.hpp",
           "          const std::int64_t row = std::min(step_[l] - rates_first_, n_rates_ - 1);",
           "          const std::int64_t row = std::min(step_[l], n_rates_ - 1);", [WINDOWS],
           "lanes: a window's rows read from step 0"),
    mutant("E5", "engines", "cpp/shortcutnet/engine.hpp", "      steps = std::min(steps, cfg_.rates_last + 1 - first);\n", "",
           [WINDOWS], "one trial per thread: steps past the window of rates"),
    mutant("E6", "engines", "cpp/shortcutnet/engine.hpp",
           "      slot.step_ns = std::max(1.0, nanoseconds_since(before) / taken);", "      slot.step_ns = 1.0;",
           [TRIALS + "::test_ctrl_c_latency_on_large_and_overlapping_models"], "chunks sized by a 1 ns step"),
    mutant("E7", "engines", "cpp/shortcutnet/optimizers.hpp", "  return nesterov ? g + beta * b : b;", "  return nesterov ? g + b : b;",
           [OPTIM], "Nesterov's look-ahead without beta"),
    mutant("E11", "engines", "cpp/shortcutnet/reduced.hpp", "    v.gx = coef * yq;", "    v.gx = coef * xq;",
           [REDUCED], "reduced engine: the normalized filter gradient's first coordinate from x"),
    mutant("E12", "engines", "cpp/shortcutnet/reduced.hpp", "const double cs = normalize ? 1.0 : rho, ct = normalize ? 1.0 : c.rho_star;",
           "const double cs = 1.0, ct = 1.0;", [RULE], "reduced engine's rule: un-normalized |a - a*| without rho"),
    mutant("E13", "engines", "cpp/shortcutnet/reduced.hpp", "  in.spurious_possible = normalize && phi > 0.5 * kPi;",
           "  in.spurious_possible = normalize && phi > 0.4 * kPi;", [RULE], "reduced engine's rule: spurious from 0.4 pi"),
    mutant("E14", "engines", "cpp/shortcutnet/reduced_engine.hpp", "    if (cfg_.rates_first > 0) {  // the window no longer holds step 0",
           "    if (false) {", [WINDOWS], "reduced lanes: new trials start under a later window"),
    mutant("E15", "engines", "cpp/shortcutnet/reduced_engine.hpp", "        const bool waits = t > last_rate;",
           "        const bool waits = false;", [WINDOWS], "reduced lanes: steps past the window of rates"),
    mutant("E16", "engines", "cpp/shortcutnet/reduced_engine.hpp", "          dx = nesterov ? v.gx + beta * bx : bx;",
           "          dx = nesterov ? v.gx + bx : bx;", [REDUCED], "reduced lanes: Nesterov's look-ahead without beta"),
    mutant("E17", "engines", "python/shortcutnet/backends/numba_reduced.py",
           "        row = min(t - rates_first, n_rates - 1)  # a table's last row repeats", "        row = min(t, n_rates - 1)",
           [WINDOWS], "Numba reduced engine: a window's rows read from step 0"),
    mutant("E18", "engines", "python/shortcutnet/train.py", "REDUCED_EXPONENT = 400", "REDUCED_EXPONENT = 1100", [SCALES],
           "engine='auto' takes the reduced engine at any scale"),
    mutant("E8", "engines", "python/shortcutnet/backends/numba_engine.py",
           "        row = min(t - rates_first, n_rates - 1)", "        row = min(t, n_rates - 1)", [WINDOWS],
           "Numba engine: a window's rows read from step 0"),
    mutant("E9", "engines", "python/shortcutnet/backends/reference_engine.py",
           "                self.steps_to_tol[active[converged]] = t", "                self.steps_to_tol[active[converged]] = t + 1",
           [TRIALS + "::test_steps_to_tol_is_the_first_step_at_the_tolerance", TRIALS, ENGINE],
           "NumPy engine: steps_to_tol one late"),
    mutant("E10", "engines", "python/shortcutnet/backends/numba_backend.py", "    if not _pool.acquire(blocking=False):\n        return serial(*args)\n    try:",
           "    if True:", [CONCURRENCY + "::test_numba_backend_is_thread_safe_under_every_threading_layer"],
           "Numba backend: no lock around the parallel kernels"),
]


def copy_tree(dst: Path):
    """The working tree (tracked and untracked, not ignored) plus the built core and Numba's cache."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"], check=True,
                           capture_output=True, text=True).stdout.split()
    extra = list((ROOT / "python/shortcutnet").glob("_core*.so"))
    extra += [p for p in (ROOT / "python/shortcutnet/backends/__pycache__").glob("*.nb*")]
    for rel in files + [str(p.relative_to(ROOT)) for p in extra]:
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)  # keeps mtimes: Numba's cache index stays valid


class Core:
    """Builds the compiled core of a copy with CMake, incrementally."""

    def __init__(self, tree: Path):
        self.tree, self.build = tree, tree / "_mutant_build"
        self.pristine = next((tree / "python/shortcutnet").glob("_core*.so"), None)
        self.saved = tree / "_core.pristine"
        if self.pristine is not None:
            shutil.copy2(self.pristine, self.saved)
        self.configured = False

    def rebuild(self) -> str:
        import pybind11

        if not self.configured:
            subprocess.run(["cmake", "-S", str(self.tree), "-B", str(self.build), "-G", "Ninja",
                            "-DCMAKE_BUILD_TYPE=Release", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
                            f"-DPython_EXECUTABLE={sys.executable}"], check=True, capture_output=True)
            self.configured = True
        done = subprocess.run(["cmake", "--build", str(self.build), "--target", "_core"], capture_output=True,
                              text=True)
        if done.returncode != 0:
            return done.stdout[-2000:] + done.stderr[-2000:]
        built = next(self.build.glob("_core*.so"))
        shutil.copy2(built, self.tree / "python/shortcutnet" / built.name)
        return ""

    def restore(self):
        if self.pristine is not None:
            shutil.copy2(self.saved, self.pristine)


def run_tests(tree: Path, tests, timeout=1800):
    env = dict(os.environ, PYTHONPATH=str(tree / "python"))
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.perf_counter() - start, ""
    tail = done.stdout.strip().splitlines()[-1:] or [""]
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    status = "survived" if done.returncode == 0 else ("killed" if done.returncode == 1 else f"killed (rc {done.returncode})")
    return status, time.perf_counter() - start, (failed[0] if failed else tail[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutants {sorted(unknown)}; --list shows them")
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:4s} {m.module:13s} {m.path:48s} {m.what}")
        return 0
    lines = []
    with tempfile.TemporaryDirectory(prefix="shortcutnet-mutants-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        core = Core(tree)
        for m in chosen:
            target = tree / m.path
            original = target.read_text()
            if original.count(m.old) != 1:
                lines.append(f"{m.name:4s} {m.module:13s} not applied: the pattern occurs {original.count(m.old)} times")
                print(lines[-1], flush=True)
                continue
            target.write_text(original.replace(m.old, m.new))
            cpp = m.path.startswith("cpp/") or m.path.startswith("src/")
            try:
                error = core.rebuild() if cpp else ""
                if error:
                    status, seconds, detail = "not built", 0.0, error.strip().splitlines()[-1]
                else:
                    status, seconds, detail = run_tests(tree, m.tests)
            finally:
                target.write_text(original)
                if cpp:
                    core.restore()
            lines.append(f"{m.name:4s} {m.module:13s} {status:16s} {seconds:6.0f} s  {m.what}  [{detail}]")
            print(lines[-1], flush=True)
    survivors = [line for line in lines if " survived " in line]
    summary = f"{len(lines)} mutants, {len(survivors)} survived"
    report = "\n".join(lines + [summary])
    Path("mutants-report.txt").write_text(report + "\n")
    print(summary)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
