"""`make demo`: train LeNet-5 and a small ConvNet on embedded digits and print a summary."""

from __future__ import annotations

import time


def main(quick: bool = False) -> int:
    import zoo
    from zoo import data, training

    bundle = data.load("digits", image_size=32, channels=1, seed=0)
    (x, y), (xv, yv), (xt, yt) = (bundle.arrays(s) for s in ("train", "validation", "test"))
    epochs = 1 if quick else 12
    rows = []
    for name, kwargs in [("lenet5", {}), ("convnet", {"filters": (16, 32), "dense_units": (64,)})]:
        model = zoo.build(name, input_shape=bundle.input_shape, num_classes=bundle.num_classes, **kwargs)
        start = time.perf_counter()
        training.fit(model, (x, y), (xv, yv), epochs=epochs, batch_size=32, optimizer="adam",
                     learning_rate=3e-3, seed=0, verbose=2)
        seconds = time.perf_counter() - start
        _, acc = model.evaluate(xt, yt, verbose=0)
        p = zoo.profile(model)
        rows.append((name, p.params, p.macs, seconds, acc))
    print(f"\n{'model':<10} {'params':>10} {'MACs':>12} {'fit s':>8} {'test acc':>9}")
    for name, params, macs, seconds, acc in rows:
        print(f"{name:<10} {params:>10,} {macs:>12,} {seconds:>8.1f} {acc:>9.4f}")
    return 0
