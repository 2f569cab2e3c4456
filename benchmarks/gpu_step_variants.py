"""Where does a Keras-on-JAX ResNet training step lose time? One run, several variants.

Trainer: Keras ``fit`` or a plain jitted JAX step (``stateless_call``, donated
state, data already on the device). Batch norm: Keras' layer (two-pass
variance, autodiff backward), one-pass statistics (E[x^2] - E[x]^2 in float32,
as Flax's ``use_fast_variance``) with autodiff, or one-pass statistics with the
closed-form backward (two reductions, one elementwise pass). Plus torchvision +
torch.compile as the reference, all in the same process.

    KERAS_BACKEND=jax python benchmarks/gpu_step_variants.py --model resnet50 --size 224 --batch 256
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zoo import bench  # noqa: E402


def bn_variant(mode):
    """Patch keras.layers.BatchNormalization's training path (mode: keras, onepass, vjp)."""
    import keras
    from keras import ops

    cls = keras.layers.BatchNormalization
    if not hasattr(cls, "_orig_call"):
        cls._orig_call = cls.call
    if mode == "keras":
        cls.call = cls._orig_call
        return

    def stats(xf, axes):
        mean = ops.mean(xf, axis=axes)
        var = ops.maximum(ops.mean(ops.square(xf), axis=axes) - ops.square(mean), 0.0)
        return mean, var

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm:
            return cls._orig_call(self, inputs, training=training, mask=mask)
        axes = [i for i in range(len(inputs.shape)) if i != self.axis % len(inputs.shape)]
        eps = self.epsilon
        gamma = ops.cast(self.gamma, "float32")
        beta = ops.cast(self.beta, "float32")
        if mode == "onepass":
            xf = ops.cast(inputs, "float32")
            mean, var = stats(xf, axes)
            inv = ops.rsqrt(var + eps) * gamma
            y = ops.cast(xf * inv + (beta - mean * inv), self.compute_dtype)
        else:
            n = float(np.prod([inputs.shape[i] for i in axes]))

            @ops.custom_gradient
            def fused(x, g, b):
                xf = ops.cast(x, "float32")
                mean, var = stats(xf, axes)
                rstd = ops.rsqrt(var + eps)
                inv = rstd * g
                y = ops.cast(xf * inv + (b - mean * inv), self.compute_dtype)

                def grad(*upstream, **kwargs):
                    dy = ops.cast(upstream[0][0] if isinstance(upstream[0], tuple) else upstream[0], "float32")
                    xhat = (xf - mean) * rstd
                    dbeta = ops.sum(dy, axis=axes)
                    dgamma = ops.sum(dy * xhat, axis=axes)
                    dx = (g * rstd / n) * (n * dy - dbeta - xhat * dgamma)
                    return ops.cast(dx, x.dtype), dgamma, dbeta

                return (y, mean, var), grad

            y, mean, var = fused(inputs, gamma, beta)
            mean, var = ops.stop_gradient(mean), ops.stop_gradient(var)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + ops.cast(mean, self.moving_mean.dtype) * (1 - m))
        self.moving_variance.assign(self.moving_variance * m + ops.cast(var, self.moving_variance.dtype) * (1 - m))
        return y

    cls.call = call


def jax_loop(model, x, y, *, batch, steps, epochs):
    """A jitted stateless train step over device-resident batches; per-epoch seconds."""
    import jax

    from zoo import training

    training.compile_model(model, **TRAINING)
    x, y = training.to_device((x, y))
    opt = model.optimizer
    opt.build(model.trainable_variables)
    loss_obj = model.loss
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in opt.variables])

    def step(state, xb, yb):
        tv, ntv, ov = state

        def loss_fn(tv, ntv):
            logits, ntv = model.stateless_call(tv, ntv, xb, training=True)
            return loss_obj(yb, logits), ntv

        (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv, ntv)
        tv, ov = opt.stateless_apply(ov, grads, tv)
        return (tv, ntv, ov), loss

    step = jax.jit(step, donate_argnums=0)
    xs = [x[i * batch:(i + 1) * batch] for i in range(steps)]
    ys = [y[i * batch:(i + 1) * batch] for i in range(steps)]
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for xb, yb in zip(xs, ys):
            state, loss = step(state, xb, yb)
        loss.block_until_ready()
        seconds.append(time.perf_counter() - start)
    return seconds


def keras_fit(model, x, y, *, batch, steps, epochs):
    """The zoo's training path (``training.fit``, device-resident data); per-epoch seconds."""
    from zoo import training

    timer = training.EpochTimer()
    training.fit(model, (x, y), epochs=epochs, batch_size=batch, seed=0, callbacks=[timer], verbose=0,
                 shuffle=False, device_data=True, **TRAINING)
    return timer.seconds


TRAINING = dict(optimizer="momentum", learning_rate=0.01, task="multiclass", metrics=[])


def _measure_variants(a, variants, x, y):
    import keras

    import zoo
    from zoo import training

    results = []
    for trainer, bn in variants:
        variant = f"{trainer}:{bn}"
        keras.backend.clear_session()
        bn_variant(bn)
        model = training.uint8_inputs(zoo.build(a.model, input_shape=(a.size, a.size, 3), num_classes=1000,
                                                precision=a.precision, **json.loads(a.zoo_kwargs)))
        fn = keras_fit if trainer == "fit" else jax_loop
        sec = fn(model, x, y, batch=a.batch, steps=a.steps, epochs=a.epochs)
        steady = float(np.median(sec[1:]))
        r = {"variant": variant, "img_per_s": a.batch * a.steps / steady, "step_ms": steady / a.steps * 1e3,
             "first_epoch_s": sec[0]}
        results.append(r)
        print(json.dumps(r), flush=True)
        del model
    return results


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet50")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--variants", default="fit:keras,loop:keras,loop:onepass,loop:vjp,fit:vjp")
    p.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    p.add_argument("--torch", action="store_true")
    p.add_argument("--zoo-kwargs", default="{}")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)

    from zoo.runtime import environment, write_json_atomic

    variants = [v.split(":") for v in a.variants.split(",")]
    for v in variants:
        if len(v) != 2 or v[0] not in ("fit", "loop") or v[1] not in ("keras", "onepass", "vjp"):
            raise SystemExit(f"--variants: TRAINER:BATCHNORM with fit|loop and keras|onepass|vjp. Received: {v}")
    x, y = bench._make_data(a.batch * a.steps, a.size, 1000)
    results = []
    try:
        results += _measure_variants(a, variants, x, y)
    finally:
        bn_variant("keras")
    if a.torch:
        try:
            r = bench.bench_torch(a.model, image_size=a.size, batch_size=a.batch, steps=a.steps, epochs=a.epochs,
                                  precision=a.precision)
        except bench.PeerUnavailable as e:
            print(f"torch.compile skipped: {e}", flush=True)
        else:
            r = {"variant": "torch.compile", "img_per_s": r["train_samples_per_second"], "step_ms": r["step_ms"],
                 "first_epoch_s": r["compile_seconds"]}
            results.append(r)
            print(json.dumps(r), flush=True)
    for r in results:
        print(f"{r['variant']:<16} {r['img_per_s']:>10.1f} img/s {r['step_ms']:>8.2f} ms/step")
    if a.out:
        write_json_atomic(a.out, {"command": " ".join(sys.argv), "environment": environment(), "results": results},
                          sort_keys=False)
    return results


if __name__ == "__main__":
    main()
