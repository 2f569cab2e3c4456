"""`make demo`: an architecture comparison on the embedded digits at 32x32, in 1-2 minutes on 2 CPU cores.

Trains one representative of each family (MLP, LeNet-5, AlexNet, VGG, ResNet,
pre-activation ResNet, DenseNet-BC), at widths that keep the run short, with
the same data, split, optimizer and epochs (:func:`tuning.compare`), then writes
the report (``runs/demo/report.html``) and prints its headline table.

``zoo demo --quick`` trains two tiny models for one epoch (seconds; for CI).
"""

from __future__ import annotations

import os
import time

from zoo.cli.args import seeds as parse_seeds

# (registry name, builder arguments): widths chosen so that every model trains
# in well under a minute on 2 CPU cores at 32x32. (Models whose 1x1 stride-2
# shortcut would see 8 input channels are avoided: TensorFlow 2.21's oneDNN
# kernels crash on that convolution when the last batch is smaller.)
DEMO_MODELS = (
    ("mlp", {"hidden_units": (256, 128)}),
    ("lenet5", {}),
    ("alexnet_cifar", {"width": 0.25}),
    ("vgg11", {"width": 0.125}),
    ("resnet20", {"width": 0.5}),
    ("preact_resnet18", {"stem": "cifar", "width": 0.25}),
    ("densenet_bc", {"depth": 22, "growth_rate": 12, "width": 0.5}),
)
QUICK_MODELS = (
    ("mlp", {"hidden_units": (32,)}),
    ("lenet5", {}),
)
DEMO_BUDGET = {"epochs": 5, "seeds": 1, "batch_size": 64}
QUICK_BUDGET = {"epochs": 1, "seeds": 1, "batch_size": 64}
TRAINING = {"optimizer": "adam", "learning_rate": 2e-3, "schedule": "cosine"}


def default_workers(quick: bool) -> int:
    """Models trained at a time when ``--workers`` is not given: two on a machine with 2+ cores (the records are
    those of one at a time; medians 88.5 -> 69.3 s on 2 CPU cores, BENCHMARKS.md), one for ``--quick`` (two tiny models:
    starting worker processes would cost more than it saves)."""
    return 1 if quick else min(2, os.cpu_count() or 1)


def run(quick: bool = False, out=None, epochs=None, seeds=None, fresh=False, workers=None) -> int:
    """Run the demo; returns the exit status (0 when at least one model trained). ``workers``: models trained
    at a time, each in a worker process (default :func:`default_workers`)."""
    start = time.perf_counter()
    import tuning
    import zoo.data
    from tuning.isolation import WorkersCannotStart
    from tuning.report import format_summary
    from zoo.training import TrainingConfig

    models, budget = (QUICK_MODELS, QUICK_BUDGET) if quick else (DEMO_MODELS, DEMO_BUDGET)
    out = out or os.path.join("runs", "demo-quick" if quick else "demo")
    data = zoo.data.load("digits", image_size=32, channels=1, batch_size=budget["batch_size"], seed=0)
    print(f"Data: {data!r}")

    def compare(workers, resume):
        return tuning.compare(
            [name for name, _ in models], data=data,
            training=TrainingConfig(epochs=epochs or budget["epochs"], **TRAINING),
            seeds=seeds if seeds is not None else budget["seeds"], out=out,
            model_kwargs={name: kw for name, kw in models if kw},
            title="Architecture comparison on embedded digits (32x32)" + (" - quick" if quick else ""),
            options=tuning.RunOptions(speed_iterations=5 if quick else None, resume=resume, verbose=2,
                                      workers=workers))

    chosen = default_workers(quick) if workers is None else workers
    try:
        result = compare(chosen, resume=not fresh)
    except WorkersCannotStart as e:
        if workers is not None or chosen == 1:
            raise
        # the default only: where worker processes cannot run, the demo still can, as it did before
        print(f"{e}\nTraining one model at a time in this process instead (the trials finished are kept).")
        result = compare(1, resume=True)
    print("\n" + format_summary(result.rows, result.paths))
    print(f"\nDemo finished in {time.perf_counter() - start:.0f} s (after start-up). Open {result.paths['html']} "
          f"in a browser (self-contained; no server needed). Regenerate it from the records with: zoo report {out}. "
          f"Run again: finished trials are reused (--fresh retrains); more seeds: --seeds 3.")
    return 0 if any(r["completed"] for r in result.rows) else 1


def cmd_demo(args):
    return run(quick=args.quick, out=args.out, epochs=args.epochs, seeds=args.seeds, fresh=args.fresh,
               workers=args.workers)


def register(sub):
    p = sub.add_parser(
        "demo", help="architecture comparison on embedded digits (1-2 minutes on 2 CPU cores)",
        description="Compare MLP, LeNet-5, AlexNet, ResNet-20, PreAct-ResNet-18, DenseNet-BC and VGG-11 "
                    "(small widths) on the embedded digits at 32x32 and write a report.",
    )
    p.add_argument("--quick", action="store_true", help="two tiny models, one epoch (seconds; for CI)")
    p.add_argument("--out", default=None, help="run folder (default runs/demo, runs/demo-quick with --quick)")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")
    p.add_argument("--seeds", type=parse_seeds, default=None, help="override the demo's seeds (default 1)")
    p.add_argument("--fresh", action="store_true", help="retrain everything (default: reuse finished trials)")
    p.add_argument("--workers", type=int, default=None,
                   help="train this many models at a time, each in a worker process, with the same records "
                        "(default: 2 on a machine with 2+ cores, 1 with --quick)")
    p.set_defaults(fn=cmd_demo)
