"""``zoo transfer``: build a backbone, load its weights, replace the head, train it, fine-tune."""

from __future__ import annotations

import json
import os

from zoo.cli.args import (
    add_data_arguments,
    add_devices_argument,
    add_early_stopping_arguments,
    load_data,
    parse_kwargs,
)
from zoo.runtime import write_json_atomic


def _pretrained(args):
    """The weights-table entry behind ``--weights`` (a spec, or a torch checkpoint of a table model), else ``None``."""
    from zoo import weights as pretrained

    if not args.weights or not (pretrained.is_weights_spec(args.weights) or pretrained.is_checkpoint(args.weights)):
        return None
    if pretrained.is_weights_spec(args.weights):
        return pretrained.resolve(args.backbone, args.weights)
    defaults = [r for r in pretrained.weights_table() if r["model"] == args.backbone and r["default"]]
    return defaults[0] if defaults else None  # its preprocessing (ImageNet's mean and std)


def cmd_transfer(args):
    import zoo
    from zoo import training
    from zoo import weights as pretrained

    kwargs = parse_kwargs(args.arg)
    zoo.get_card(args.backbone)  # unknown names fail before loading data
    if args.layer_decay is not None:
        from zoo.utils import check_float

        check_float("layer_decay", args.layer_decay, minimum=0.0, maximum=1.0, min_inclusive=False)
        if args.cache_features:
            raise ValueError("--layer-decay sets the fine-tuning phase's rates; --cache-features trains the head only. "
                             f"Received: --layer-decay={args.layer_decay} with --cache-features")
    entry = _pretrained(args)
    if args.image_size is None:  # pretrained weights: the size they were trained at (224 for ImageNet)
        args.image_size = entry["preprocessing"]["crop"] if entry else 32
    if entry and args.channels not in (None, 3):
        raise ValueError(f"ImageNet weights take RGB images. Received: --channels={args.channels}")
    args.channels = 3 if entry or args.channels is None else args.channels
    bundle = load_data(args)
    backbone = zoo.build(args.backbone, input_shape=bundle.input_shape, include_top=False, **kwargs)
    if args.weights:
        report = pretrained.load(backbone, args.weights, card=zoo.get_card(args.backbone),
                                 skip_mismatch=args.skip_mismatch)
        named = f"{entry['source']}:{entry['tag']} (ImageNet top-1 {entry['top1']}%), " if (
            entry and pretrained.is_weights_spec(args.weights)) else ""
        print(f"weights: {named}{report}")
    model = zoo.replace_head(backbone, bundle.num_classes, dropout=args.dropout)
    train, val, test = bundle.train, bundle.validation, bundle.test
    if entry:
        train, val, test = (pretrained.normalize_dataset(d, entry) for d in (train, val, test))
        print(f"inputs: {bundle.input_shape[0]}x{bundle.input_shape[1]} RGB in [0, 1], normalised with mean "
              f"{entry['preprocessing']['mean']} and std {entry['preprocessing']['std']}")
    unfreeze = None if args.unfreeze == "none" else (int(args.unfreeze) if args.unfreeze.isdigit() else args.unfreeze)
    os.makedirs(args.out, exist_ok=True)
    if args.cache_features:
        zoo.freeze(model)
        result = zoo.train_head_on_features(model, train, val, epochs=args.head_epochs, learning_rate=args.head_lr,
                                            batch_size=args.batch_size, seed=args.seed, verbose=2,
                                            patience=args.patience, min_delta=args.min_delta,
                                            min_steps=args.min_steps or None, devices=args.devices)
        training.compile_model(model)
    else:
        decay = {} if args.layer_decay is None else {"layer_decay": args.layer_decay}
        result = zoo.fine_tune(model, train, val, head_epochs=args.head_epochs, head_lr=args.head_lr,
                               unfreeze=unfreeze, ft_epochs=args.ft_epochs, ft_lr=args.ft_lr,
                               batch_size=args.batch_size, seed=args.seed, verbose=2, patience=args.patience,
                               min_delta=args.min_delta, min_steps=args.min_steps or None, devices=args.devices,
                               **decay)
    metrics = model.evaluate(test, verbose=0, return_dict=True) if test is not None else {}
    saved = model
    if entry:  # the saved model takes images in [0, 1]: its normalisation goes inside, as a plain Keras layer
        import keras

        inputs = keras.Input(shape=bundle.input_shape, name="image")
        saved = keras.Model(inputs, model(pretrained.normalization(entry)(inputs)), name=model.name)
    saved.save(os.path.join(args.out, "model.keras"))
    bundle.save_class_map(os.path.join(args.out, "class_map.json"))
    write_json_atomic(os.path.join(args.out, "model.json"),  # its card: the input contract zoo predict reads
                      {"model": args.backbone, "input": bundle.contract(), "test": metrics})
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump({"history": result.history, "phases": result.phases, "test": metrics, "data": bundle.provenance()},
                  f, indent=2, default=str)
    print(zoo.trainability(model))
    print(f"test: {', '.join(f'{k}={v:.4f}' for k, v in metrics.items())}; saved to {args.out}")
    return 0


def register(sub):
    p = sub.add_parser(
        "transfer",
        help="transfer a backbone to a new data set (train the head, then fine-tune)",
        description="Build BACKBONE, load --weights, replace its head for --data, train the head with the "
        "backbone frozen, then fine-tune the top blocks with a lower learning rate.",
    )
    p.add_argument("--backbone", required=True, help="registered model name, e.g. resnet20")
    p.add_argument("--weights", default=None,
                   help="pretrained weights: 'torchvision', 'timm', a tag (see 'zoo weights list'), a torch "
                        ".pth/.safetensors checkpoint, or a .keras/.weights.h5 file of the backbone")
    p.add_argument("--skip-mismatch", action="store_true", help="load what fits and report the rest")
    add_data_arguments(p, data="shapes", batch_size=32, image_size=None, channels=None, data_seed=None)
    p.add_argument("--head-epochs", type=int, default=3)
    p.add_argument("--head-lr", type=float, default=3e-3)
    p.add_argument("--ft-epochs", type=int, default=3)
    p.add_argument("--ft-lr", type=float, default=1e-4)
    p.add_argument("--layer-decay", type=float, default=None, metavar="D",
                   help="layer-wise learning-rate decay in (0, 1] for the fine-tuning phase: each block's rate is "
                   "--ft-lr times D to the power of its depth from the head (e.g. 0.75; default: one rate)")
    p.add_argument("--unfreeze", default="last_block", help="last_block, N (blocks), a stage name, all or none")
    p.add_argument("--cache-features", action="store_true", help="train the head on cached backbone features")
    add_devices_argument(p)
    p.add_argument("--dropout", type=float, default=0.0)
    add_early_stopping_arguments(p)
    p.add_argument("--min-steps", type=int, default=100,
                   help="optimizer steps each phase takes at least, with more epochs on small data (default 100)")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="backbone builder argument (JSON value)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of training (default 0)")
    p.add_argument("--out", default="runs/transfer", help="where the model, class map and history go")
    p.set_defaults(fn=cmd_transfer)
