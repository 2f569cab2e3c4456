"""Compare architectures on the same data and budget, and write a report (tuning.compare).

Every model is trained on the embedded digits at 32x32 with the same split,
optimizer, epochs and seeds; each trial's record goes to ``records.jsonl`` and
the report (``report.html``, self-contained; ``report.md``; ``results.csv``;
``plots/``) is written from those records only. The report is then rebuilt
from the records alone, as ``zoo report RUN_DIR`` does, without retraining.
Training stops early when validation accuracy stalls (``patience``, best epoch
kept), and the best seed of each model is saved: the best one is loaded back
and scores its recorded test accuracy again.

Run:
    python examples/compare_report.py            # 4 models x 3 seeds x 5 epochs: ~10 min on 2 CPU cores
    python examples/compare_report.py --fast     # 2 models x 1 seed x 1 epoch (CI)
"""

from __future__ import annotations

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="2 small models, 1 seed, 1 epoch (CI)")
    parser.add_argument("--out", default="runs/examples/compare", help="run folder")
    args = parser.parse_args(argv)

    import zoo.data
    from tuning import RunOptions, compare
    from tuning.report import format_summary, regenerate
    from zoo.training import TrainingConfig

    data = zoo.data.load("digits", image_size=32, channels=1, batch_size=64)
    if args.fast:
        models, kwargs, epochs, seeds = ["mlp", "lenet5"], {"mlp": {"hidden_units": (64,)}}, 1, 1
    else:
        models = ["mlp", "lenet5", "resnet20", "densenet_bc_40"]
        kwargs = {"mlp": {"hidden_units": (256, 128)}, "resnet20": {"width": 0.5}, "densenet_bc_40": {"width": 0.5}}
        epochs, seeds = 5, 3
    # One TrainingConfig for every model: that is what makes the comparison fair.
    training = TrainingConfig(epochs=epochs, optimizer="adam", learning_rate=2e-3, patience=2)
    result = compare(models, data=data, training=training, seeds=seeds, out=args.out, model_kwargs=kwargs,
                     title="Classic vs modern CNNs on digits", options=RunOptions(verbose=1))
    print("\n" + format_summary(result.rows, result.paths))
    best = result.best_row
    print(f"\nBest by validation accuracy: {best['label']} ({best['params_mean']:,.0f} parameters), "
          f"from records {', '.join(best['record_ids'])}")
    stopped = [r["id"] for r in result.records if r.get("stopped_epoch")]
    print(f"Stopped early: {', '.join(stopped) or 'none'}")

    # The saved model of the best configuration's best seed, checked against its record (SHA-256).
    model, record = result.load(), result.best_record
    accuracy = model.evaluate(data.test, verbose=0, return_dict=True)["accuracy"]
    print(f"Loaded {record['model_path']}: test accuracy {accuracy:.4f} (recorded {record['test_accuracy']:.4f})")

    # The report is a function of the records: rebuild it without training anything.
    again = regenerate(args.out)
    print(f"Regenerated from {args.out}/records.jsonl and run.json: {again.paths['html']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
