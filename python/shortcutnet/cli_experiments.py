"""The ``reproduce`` and ``sweep`` subcommands of the ``shortcutnet`` command line."""
from __future__ import annotations

import logging
import os
import sys
import time

#: seconds to wait for a Dask scheduler to answer (connecting, closing)
SCHEDULER_TIMEOUT = 10


def _connect(scheduler: str):
    """A Dask client of the scheduler at ``scheduler``, or SweepError saying why not."""
    try:
        from distributed import Client
    except ImportError:
        raise SystemExit("shortcutnet: --scheduler needs Dask distributed: pip install 'shortcutnet[dask]'")
    from .experiments.errors import SweepError

    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"cannot reach the Dask scheduler at {scheduler} ({exc}): start it, or leave out "
                         "--scheduler to run on this machine") from exc


def _executor(args):
    """The executor for --scheduler / --workers (None: sequential in this process)."""
    scheduler = getattr(args, "scheduler", None)
    if scheduler:
        client = _connect(scheduler)
        return client.get_executor(), client
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    return (workers if workers > 1 else None), None


def _close(client, lost: bool) -> None:
    if client is None:
        return
    if lost:
        # the client's reconnection attempts log tracebacks on the way out: the user gets our message
        for name in ["distributed", *logging.root.manager.loggerDict]:
            if name.split(".")[0] == "distributed":
                logging.getLogger(name).disabled = True
    client.close(timeout=SCHEDULER_TIMEOUT)


def _cluster_fault(client, address, exc: BaseException):
    """What went wrong with the Dask cluster if ``exc`` came from it, else None (a fault of the cell)."""
    if client is None:
        return None
    if client.status != "running":
        return f"lost the Dask scheduler at {address}"
    if type(exc).__module__.split(".")[0] == "distributed":
        return "the Dask cluster gave up on a cell (its workers died while running it)"
    return None


def _table_format_available(command: str, table_format: str) -> bool:
    """False (with a message) when --format parquet is asked for without pyarrow: checked before any work."""
    if table_format != "parquet":
        return True
    from .experiments.tables import require_parquet

    try:
        require_parquet()
    except ImportError as exc:
        print(f"shortcutnet {command}: --format parquet: {exc}", file=sys.stderr)
        return False
    return True


def _reproduce(args) -> int:
    from .experiments.errors import SweepError
    from .experiments.reproduce import reproduce, summary_text

    if not _table_format_available("reproduce", args.format):
        return 2
    start = time.perf_counter()
    try:
        executor, client = _executor(args)
    except SweepError as exc:
        print(f"shortcutnet reproduce: {exc}", file=sys.stderr)
        return 1
    try:
        result = reproduce(args.out, quick=args.quick, seed=args.seed, executor=executor,
                           progress=not args.no_progress, table_format=args.format)
    finally:
        if client is not None:
            client.close()
    print()
    print(summary_text(result))
    print(f"\nwrote {len(result['files'])} files into {os.path.abspath(args.out)} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def _saved_cells(results: str) -> int:
    try:
        with open(results, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


def _sweep(args) -> int:
    from .experiments.errors import SweepError, WriteFailed
    from .experiments.sweep import SUMMARY_COLUMNS, ConfigError, cells, load_config, run_sweep
    from .experiments.tables import format_table, write_table

    def fail(message: str, status: int = 1) -> int:
        print(f"shortcutnet sweep: {message}", file=sys.stderr)
        return status

    try:
        config = load_config(args.config, **({} if args.max_cells is None else {"max_cells": args.max_cells}))
    except ConfigError as exc:
        return fail(str(exc), 2)
    if not _table_format_available("sweep", args.format):
        return 2
    out = args.out or os.path.splitext(os.path.basename(args.config))[0] + "-results"
    results = os.path.join(out, "results.jsonl")
    client, lost, message = None, False, None
    try:
        executor, client = _executor(args)
        rows = run_sweep(config, out, executor=executor, progress=not args.no_progress)
        try:
            table = write_table(rows, os.path.join(out, "table"), args.format)
        except OSError as exc:
            raise WriteFailed(out, exc, kept=len(cells(config))) from exc
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished cells are saved in {results}: rerun the same command to resume",
              file=sys.stderr)
        return 130
    except SweepError as exc:
        message = str(exc)
    except MemoryError:
        message = (f"out of memory in a cell of {args.config}: give smaller k, p, trials, batch_size or n_train; "
                   f"the cells finished before are kept in {results}")
    except Exception as exc:
        fault = _cluster_fault(client, args.scheduler, exc)
        if fault is None:
            raise
        lost = True
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = (f"{fault} ({detail}); {_saved_cells(results)} finished cell(s) are saved in {results}: "
                   "rerun the same command once the cluster is back, or without --scheduler to finish on this "
                   "machine, to resume")
    finally:
        _close(client, lost)
    if message is not None:
        return fail(message)
    print(format_table(rows, SUMMARY_COLUMNS[config["experiment"]]))
    print(f"\n{len(rows)} rows; finished cells in {results}, table in {table}")
    return 0


def _add_format(parser) -> None:
    from .experiments.tables import TABLE_FORMATS

    parser.add_argument("--format", choices=TABLE_FORMATS, default="csv",
                        help="file format of the tables (default csv; parquet needs pyarrow)")


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


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
    _add_format(rep)
    rep.set_defaults(run=_reproduce)

    swp = sub.add_parser(
        "sweep",
        help="run a grid of experiment cells described by a TOML file (resumable)",
        description="Run every cell of the grid in CONFIG.toml (see examples/sweep.toml). Each finished cell is "
                    "appended to DIR/results.jsonl at once; rerunning the same command after an interruption "
                    "skips finished cells. Ends with the full table, printed and written to DIR/table.csv "
                    "(or DIR/table.parquet).",
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
    swp.add_argument("--max-cells", type=_positive_int, default=None, metavar="N",
                     help="run grids of up to N cells (default 10000; a larger grid is refused with its size and "
                          "an estimate of its time)")
    swp.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_format(swp)
    swp.set_defaults(run=_sweep)
