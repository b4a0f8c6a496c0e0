"""The ``shortcutnet`` command line."""
from __future__ import annotations

import argparse
import sys


def _bench(args) -> int:
    """Backend comparison table (median ms, ratio to the fastest, percent of read bandwidth)."""
    from .bench import main as bench_main

    bench_main(quick=args.quick, figure_dir=args.figures)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shortcutnet",
        description="Gradient descent on two-layer convolutional networks with and without identity shortcuts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from .cli_experiments import add_commands

    add_commands(sub)  # reproduce, sweep
    bench = sub.add_parser("bench", help="time the sampled kernels of every backend against NumPy, PyTorch and JAX")
    bench.add_argument("--quick", action="store_true", help="small batches and few repeats (seconds, not minutes)")
    bench.add_argument("--figures", metavar="DIR", default=None,
                       help="also draw the figures of the groups that have one (the reduced engine's cost) into DIR")
    bench.set_defaults(run=_bench)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
