"""The ``shortcutnet`` command line."""
from __future__ import annotations

import argparse
import sys

import numpy as np


def _demo(args) -> int:
    """One ResNet (w0 = 0) and one plain-CNN (random unit w0) run of exact population GD."""
    from .model import Model
    from .population import angle, population_grad, population_loss

    rng = np.random.default_rng(args.seed)
    k, p = args.k, args.p
    a_star = rng.normal(size=k)
    direction = rng.normal(size=p)
    print(f"teacher: k={k}, p={p}, seed={args.seed}; {args.steps} steps of GD, lr={args.lr}")
    sphere = rng.normal(size=p)
    for name, shortcut, w0 in (
        ("ResNet (w0 = 0)", True, np.zeros(p)),
        ("CNN (w0 on the unit sphere)", False, sphere / np.linalg.norm(sphere)),
    ):
        model = Model(k, p, shortcut=shortcut)
        w_star = direction / np.linalg.norm(direction) - model.s  # same teacher filter direction
        w, a = w0, np.zeros(k)
        for _ in range(args.steps):
            grad_w, grad_a = population_grad(model, w, a, w_star, a_star)
            w, a = w - args.lr * grad_w, a - args.lr * grad_a
        phi = angle(w + model.s, w_star + model.s)
        loss = population_loss(model, w, a, w_star, a_star)
        print(f"  {name:28s}  final angle phi = {phi:.3e}   loss = {loss:.3e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shortcutnet",
        description="Gradient descent on two-layer convolutional networks with and without identity shortcuts.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="one ResNet and one CNN gradient-descent run on the population loss")
    demo.add_argument("--k", type=int, default=20, help="number of patches (default 20)")
    demo.add_argument("--p", type=int, default=10, help="pixels per patch (default 10)")
    demo.add_argument("--steps", type=int, default=3000, help="gradient steps (default 3000)")
    demo.add_argument("--lr", type=float, default=0.1, help="step size for both layers (default 0.1)")
    demo.add_argument("--seed", type=int, default=0, help="teacher and initialization seed (default 0)")
    demo.set_defaults(run=_demo)
    from .cli_experiments import add_commands

    add_commands(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
