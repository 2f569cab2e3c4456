"""From a comparison to a deployed model: evaluate the best one, export it verified, quantise it, predict a photo.

Compares LeNet-5 and a small ResNet-20 on the embedded digits, evaluates the best saved model on the test split
(``zoo.evaluate``: top-1/top-5, loss, per-class accuracy, confusion, throughput; a results CSV row), exports it
to ONNX and to LiteRT with int8 post-training quantisation (calibrated on the training split; each file run in
its own runtime and compared with Keras), scores the int8 file on the test split, and classifies a 64x64 colour
image with the model's card (the input contract: 32x32 grayscale in [0, 1], the class names).

Run:
    python examples/deploy.py            # about a minute on 2 CPU cores
    python examples/deploy.py --fast     # a few seconds (CI)
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="one model, one epoch (CI)")
    parser.add_argument("--out", default="runs/examples/deploy", help="folder for the run, the exports and plots")
    args = parser.parse_args(argv)

    import numpy as np

    import tuning
    import zoo
    from tuning.report import plot_confusion_matrix
    from zoo.cli import main as zoo_command

    data = zoo.data.load("digits", image_size=32)
    models = ["lenet5"] if args.fast else ["lenet5", "resnet20"]
    training = zoo.training.TrainingConfig(epochs=1 if args.fast else 8)
    run = os.path.join(args.out, "cmp")
    comparison = tuning.compare(models, data=data, training=training, seeds=1, out=run,
                                model_kwargs={} if args.fast else {"resnet20": {"width": 0.5}},
                                options=tuning.RunOptions(report=False, measure_speed=False, verbose=0))
    best = comparison.load(compile=False)

    result = zoo.evaluate(best, data)  # the test split
    result.model = best.name
    print(result.summary(max_classes=10))
    print(f"results row appended to {result.append_csv(os.path.join(args.out, 'evaluations.csv'))}")
    plot = plot_confusion_matrix(result.confusion, os.path.join(args.out, "deploy_confusion_matrix.png"),
                                 class_names=result.class_names, title=f"{best.name}: test split")
    print(f"confusion matrix: {plot}")

    # the zoo command checks each export on the run's own test inputs, int8 calibrated on its training split
    for name, extra in (("best.onnx", []), ("best_int8.tflite", ["--quantize", "int8"])):
        if zoo_command(["export", run, "--out", os.path.join(args.out, name), *extra]) != 0:
            return 1
    x, y = data.arrays("test")
    int8 = float(np.mean(zoo.deploy.run(os.path.join(args.out, "best_int8.tflite"), x).argmax(-1) == y))
    print(f"int8 LiteRT test accuracy {int8:.2%} against Keras {result.top1 / 100:.2%}")

    photo = os.path.join(args.out, "photo.png")  # 64x64 RGB; the model takes 32x32x1: its card says how to read it
    image = np.zeros((64, 64, 3))
    image[8:56, 28:36] = (1.0, 0.9, 0.2)  # a bright vertical bar on black, as the digits are drawn: a "1", in colour
    __import__("matplotlib.pyplot").pyplot.imsave(photo, image)
    return zoo_command(["predict", os.path.join(run, comparison.best_record["model_path"]), photo, "--top", "3"])


if __name__ == "__main__":
    raise SystemExit(main())
