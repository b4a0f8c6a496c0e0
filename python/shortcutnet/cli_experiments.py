"""The ``reproduce`` and ``sweep`` subcommands of the ``shortcutnet`` command line."""
from __future__ import annotations

import os
import sys
import time


def _executor(args):
    """The executor for --scheduler / --workers (None: sequential in this process)."""
    scheduler = getattr(args, "scheduler", None)
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise SystemExit("shortcutnet: --scheduler needs Dask distributed: pip install 'shortcutnet[dask]'")
        client = Client(scheduler)
        return client.get_executor(), client
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    return (workers if workers > 1 else None), None


def _reproduce(args) -> int:
    from .experiments.reproduce import reproduce, summary_text

    start = time.perf_counter()
    executor, client = _executor(args)
    try:
        result = reproduce(args.out, quick=args.quick, seed=args.seed, executor=executor,
                           progress=not args.no_progress)
    finally:
        if client is not None:
            client.close()
    print()
    print(summary_text(result))
    print(f"\nwrote {len(result['files'])} files into {os.path.abspath(args.out)} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def _sweep(args) -> int:
    from .experiments.sweep import SUMMARY_COLUMNS, load_config, run_sweep
    from .experiments.tables import format_table, write_csv

    try:
        config = load_config(args.config)
    except (OSError, ValueError) as exc:
        print(f"shortcutnet sweep: {exc}", file=sys.stderr)
        return 2
    out = args.out or os.path.splitext(os.path.basename(args.config))[0] + "-results"
    executor, client = _executor(args)
    try:
        rows = run_sweep(config, out, executor=executor, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished cells are saved in {os.path.join(out, 'results.jsonl')}: "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if client is not None:
            client.close()
    table = write_csv(rows, os.path.join(out, "table.csv"))
    print(format_table(rows, SUMMARY_COLUMNS[config["experiment"]]))
    print(f"\n{len(rows)} rows; finished cells in {os.path.join(out, 'results.jsonl')}, table in {table}")
    return 0


def _experiment_names():
    from .experiments.sweep import EXPERIMENTS

    return sorted(EXPERIMENTS)


def add_commands(sub) -> None:
    """Add ``reproduce`` and ``sweep`` to the subparsers ``sub`` of the main parser."""
    rep = sub.add_parser(
        "reproduce",
        help="run the paper's experiments and the ones beyond it: data files and figures",
        description="Run every experiment (trajectories, success rate over (k, p), convergence time, success vs "
                    "the teacher's angle to the shortcut, overlapping patches, online SGD vs GD over batch and step "
                    "sizes, sample complexity of full-batch GD, GD vs momentum, Nesterov and Adam, the CNN's success "
                    "probability up to k = 10^4, the theorem's hypotheses one at a time, the step-size phase "
                    "diagram, convergence time up to k = 10^4, GD vs gradient flow, the phi instability) and write "
                    "CSV/JSON Lines tables and PNG/SVG figures into --out, then print a summary table.",
    )
    rep.add_argument("--quick", action="store_true",
                     help="small settings that finish in under two minutes on 2 cores (default: the full run, "
                          "under 30 minutes on 2 cores)")
    rep.add_argument("--out", default="shortcutnet-results", metavar="DIR",
                     help="directory for data files and figures (default ./shortcutnet-results)")
    rep.add_argument("--seed", type=int, default=0, help="base seed of teachers and initializations (default 0)")
    rep.add_argument("--workers", type=int, default=None, metavar="N",
                     help="local worker processes (default: one per core; 1 runs everything in this process)")
    rep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run on a Dask distributed cluster at ADDRESS (e.g. tcp://host:8786) instead of local "
                          "processes; needs the 'dask' extra")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")
    rep.set_defaults(run=_reproduce)

    swp = sub.add_parser(
        "sweep",
        help="run a grid of experiment cells described by a TOML file (resumable)",
        description="Run every cell of the grid in CONFIG.toml (see examples/sweep.toml). Each finished cell is "
                    "appended to DIR/results.jsonl at once; rerunning the same command after an interruption "
                    "skips finished cells. Ends with the full table, printed and written to DIR/table.csv.",
    )
    swp.add_argument("config", metavar="CONFIG.toml",
                     help="sweep configuration: experiment (one of " + ", ".join(repr(n) for n in _experiment_names())
                          + "), seed, [fixed] parameters and [grid] lists")
    swp.add_argument("--out", default=None, metavar="DIR",
                     help="output directory (default: <config name>-results in the current directory)")
    swp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the cells on a Dask distributed cluster at ADDRESS (e.g. tcp://host:8786); "
                          "needs the 'dask' extra")
    swp.add_argument("--workers", type=int, default=None, metavar="N",
                     help="local worker processes when no scheduler is given (default: one per core)")
    swp.add_argument("--no-progress", action="store_true", help="no progress bar")
    swp.set_defaults(run=_sweep)
