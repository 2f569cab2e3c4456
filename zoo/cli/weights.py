"""``zoo weights list|convert|fetch|verify``, ``zoo predict`` and ``zoo explain``: pretrained weights, ImageNet
inference and what a saved model looks at."""

from __future__ import annotations

import fnmatch
import json
import os

import numpy as np

from zoo.cli.args import parse_kwargs


def _model_for_file(path):
    """The table's model a checkpoint file name starts with (``vgg16_bn-6c64b313.pth`` -> ``vgg16_bn``)."""
    from zoo.weights.hub import weights_table

    base = os.path.basename(path).lower()
    names = sorted({r["model"] for r in weights_table()}, key=len, reverse=True)
    for name in names:
        if base.startswith(name) and base[len(name): len(name) + 1] in ("-", "."):
            return name
    raise ValueError(f"Cannot tell the model from the file name {os.path.basename(path)!r}; pass --model. "
                     f"Received: file={path!r}")


def _entry_for_file(path):
    from zoo.weights.hub import weights_table

    hits = [r for r in weights_table() if r["file_name"] == os.path.basename(path)]
    return hits[0] if hits else None


def _default_spec(model_name):
    from zoo.weights.hub import weights_table

    sources = [r["source"] for r in weights_table() if r["model"] == model_name and r["default"]]
    if not sources:
        raise ValueError(f"No pretrained weights for {model_name!r} in the table (see 'zoo weights list'); "
                         f"pass --weights FILE. Received: model={model_name!r}")
    return "torchvision" if "torchvision" in sources else sources[0]


def cmd_list(args):
    from zoo import weights as pretrained

    rows = [r for r in pretrained.weights_table() if fnmatch.fnmatchcase(r["model"], args.pattern)
            and (args.source is None or r["source"] == args.source)]
    if not rows:
        raise ValueError(f"No pretrained weights match. Received: pattern={args.pattern!r}, source={args.source!r}")
    cache = pretrained.cache_dir()
    print(f"{'model':<12} {'weights':<26} {'top-1':>6} {'top-5':>6} {'MB':>6}  file (* default, + in {cache})")
    for r in rows:
        size = f"{r['file_size_mb']:.0f}" if r["file_size_mb"] else "?"
        flags = ("*" if r["default"] else " ") + ("+" if os.path.exists(os.path.join(cache, r["file_name"])) else " ")
        top1, top5 = (f"{r[k]:.2f}" if r[k] is not None else "-" for k in ("top1", "top5"))  # none: features only
        print(f"{r['model']:<12} {r['source'] + ':' + r['tag']:<26} {top1:>6} {top5:>6} "
              f"{size:>6}  {flags} {r['file_name']}")
    return 0


def _build_for_checkpoint(args, path):
    import zoo

    name = args.model or _model_for_file(path)
    kwargs = parse_kwargs(args.arg)
    if args.image_size:
        kwargs["input_shape"] = (args.image_size, args.image_size, 3)
    return zoo.build(name, num_classes=args.num_classes, **kwargs), name


def cmd_convert(args):
    import zoo
    from zoo import weights as pretrained
    from zoo.weights.loading import save_converted

    if not os.path.isfile(args.file):
        raise FileNotFoundError(f"No such checkpoint file: {args.file!r}")
    if not pretrained.is_checkpoint(args.file):
        raise ValueError(f"`file` must be a {'/'.join(pretrained.CHECKPOINT_SUFFIXES)} checkpoint. "
                         f"Received: file={args.file!r}")
    out = args.out or pretrained.converted_path(args.file)
    if not out.endswith(".weights.h5"):
        raise ValueError(f"`--out` must end with .weights.h5. Received: --out={out!r}")
    entry = _entry_for_file(args.file)
    if entry is not None:
        pretrained.verify(args.file, entry)
    model, name = _build_for_checkpoint(args, args.file)
    report = pretrained.load_state_dict(model, args.file, family=zoo.get_card(name).family, source=args.file)
    print(report)
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    save_converted(model, out, source=args.file, report=report)  # stamped: a later weights=args.file reads it (default --out)
    print(f"wrote {out}: load it with zoo.build({name!r}, num_classes={args.num_classes}, weights={out!r})")
    return 0


def cmd_fetch(args):
    from zoo import weights as pretrained

    entry = pretrained.resolve(args.model, args.weights or _default_spec(args.model))
    print(pretrained.fetch(entry, directory=args.dir))
    return 0


def cmd_verify(args):
    """A file's actual SHA-256 against the table's: the entry named by --model/--weights, else the entry of its
    file name, else the entry its content is (a renamed file). Only the table publishes hashes: a file name's
    hex digits are checked against the content, never taken as the published hash."""
    from zoo import weights as pretrained
    from zoo.weights.hub import entry_for_digest

    if not os.path.isfile(args.file):
        raise FileNotFoundError(f"No such weights file: {args.file!r}")
    if bool(args.model) != bool(args.weights):
        raise ValueError(f"--model and --weights go together. Received: --model={args.model!r}, "
                         f"--weights={args.weights!r}")
    entry = pretrained.resolve(args.model, args.weights) if args.model else _entry_for_file(args.file)
    digest = pretrained.verify(args.file, entry)  # raises when the content is not the entry's (or its name's)
    entry = entry or entry_for_digest(digest)
    if entry is None:
        print(f"{args.file}: SHA-256 {digest}; not a file of the weights table, so nothing published to compare "
              f"with (a hash in a file name is no evidence)")
        return 0
    what = f"{entry['source']}:{entry['tag']} of {entry['model']} ({entry['file_name']})"
    if entry["sha256"]:
        print(f"{args.file}: OK, SHA-256 {digest} matches the table's full SHA-256 of {what}")
    elif entry["sha256_prefix"]:
        print(f"{args.file}: OK, SHA-256 {digest} starts with the {len(entry['sha256_prefix'])} hex digits "
              f"{entry['source']} publishes for {what} (the table has no full hash)")
    else:
        print(f"{args.file}: SHA-256 {digest}; no published hash to compare with for {what} "
              f"({entry['source']} publishes none)")
    return 0


def _card_input(model_file):
    """The input contract in a saved model's card (``ID.json`` beside ``ID.keras`` as comparisons and searches
    write it, ``model.json`` of ``zoo transfer``, ``PATH.json`` of ``zoo export``): a dict, empty when there is
    no readable card."""
    cards = [p for p in (os.path.splitext(model_file)[0] + ".json", model_file + ".json") if os.path.exists(p)]
    path = cards[0] if cards else None
    if path is None or os.path.getsize(path) > 2**24:  # bounded: a card, not a dump
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            contract = json.load(f).get("input")
    except (ValueError, RecursionError, AttributeError, OSError):
        return {}
    return contract if isinstance(contract, dict) else {}


def _card_names(model_file, classes):
    """The class names of a saved model's card, or ``None``."""
    names = _card_input(model_file).get("class_names")
    return tuple(str(n) for n in names) if isinstance(names, list) and len(names) == classes else None


def _class_names(model_file, classes):
    """Class names for a saved model: its card's input contract, its ``class_map.json`` (from ``zoo transfer``),
    ImageNet's, or indices."""
    from zoo import weights as pretrained

    names = _card_names(model_file, classes) if model_file else None
    if names:
        return names
    path = os.path.join(os.path.dirname(os.path.abspath(model_file)), "class_map.json") if model_file else None
    if path and os.path.exists(path):
        if os.path.getsize(path) > 4096 + 1024 * classes:  # a name a class, not a file to exhaust memory
            raise ValueError(f"{path} is {os.path.getsize(path):,} bytes: too large a class map for {classes} classes")
        try:
            with open(path, encoding="utf-8") as f:
                names = json.load(f).get("class_names")
        except (ValueError, RecursionError, AttributeError) as e:
            raise ValueError(f"{path} is not a class map (JSON with a list 'class_names'): {e}") from None
        if isinstance(names, list) and len(names) == classes:
            return tuple(str(n) for n in names)
    return pretrained.imagenet_classes() if classes == 1000 else tuple(f"class {i}" for i in range(classes))


def _predict_inputs(args):
    """``(model, images, class names)`` for a registry name or a saved ``.keras`` file."""
    import keras

    import zoo
    from zoo import weights as pretrained

    if args.model.endswith(".keras"):
        if not os.path.isfile(args.model):
            raise FileNotFoundError(f"No such model file: {args.model!r}")
        model = keras.saving.load_model(args.model)
        return model, _images_for(model, args.model, args.images), _class_names(args.model, model.output_shape[-1])
    card = zoo.get_card(args.model)
    size = args.image_size
    if card.family == "keras_applications":
        size = size or 224
        model = zoo.build(args.model, weights=args.weights or "imagenet", num_classes=args.num_classes,
                          input_shape=(size, size, 3), **parse_kwargs(args.arg))
        images = card.preprocess_input(pretrained.read_images(args.images, resize=round(size * 256 / 224),
                                                              crop=size) * 255.0)
        return model, images, _class_names(None, model.output_shape[-1])
    spec = args.weights or _default_spec(args.model)
    local = not pretrained.is_weights_spec(spec)  # a file: the model's default entry says its preprocessing
    entry = pretrained.resolve(args.model, _default_spec(args.model) if local else spec)
    p = entry["preprocessing"]
    crop = size or p["crop"]
    resize = round(crop * p["resize"] / p["crop"])
    model = zoo.build(args.model, weights=spec, num_classes=args.num_classes, input_shape=(crop, crop, 3),
                      **parse_kwargs(args.arg))
    images = np.asarray(pretrained.normalization(entry)(pretrained.read_images(args.images, resize=resize, crop=crop)))
    return model, images, _class_names(None, model.output_shape[-1])


def _images_for(model, model_file, paths):
    """The image files as ``model`` takes them: its size, RGB or grayscale, and the value range its card's input
    contract states (``[0, 1]``, as the zoo's data loaders give them, when there is no card); a ValueError says
    what input the model expects, or that its card leaves the scale untold (inputs standardised in training)."""
    from zoo import weights as pretrained

    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[0] is None or shape[0] != shape[1] or shape[2] not in (1, 3):
        raise ValueError(f"{model_file!r} takes inputs of shape {shape}; zoo predict and zoo explain read image "
                         f"files as square RGB or grayscale images (height, width, 1 or 3). Received: {len(paths)} "
                         "image file(s)")
    scale = _card_input(model_file).get("value_range", [0.0, 1.0])
    if not (isinstance(scale, list) and len(scale) == 2 and all(isinstance(v, (int, float)) for v in scale)):
        raise ValueError(f"The card of {model_file!r} does not say the scale of the model's inputs (value_range "
                         f"{scale!r}: trained on standardised inputs?); cannot tell how to read image files for it")
    low, high = scale
    images = pretrained.read_images(paths, resize=None, crop=int(shape[0]))  # as the data loaders resize
    images = images.mean(axis=-1, keepdims=True) if shape[2] == 1 else images
    return images * (float(high) - float(low)) + float(low)


def cmd_predict(args):
    from zoo import weights as pretrained

    if args.top < 1:
        raise ValueError(f"`--top` must be at least 1. Received: --top={args.top}")
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:  # before building or downloading anything
        raise FileNotFoundError(f"No such image file: {', '.join(map(repr, missing))}")
    model, images, names = _predict_inputs(args)
    scores = np.asarray(model.predict(images, verbose=0), dtype=np.float64)
    if (scores < 0).any() or not np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):  # logits
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
    top = min(args.top, scores.shape[1])
    for path, row in zip(args.images, pretrained.decode_predictions(scores, top=top, class_names=names)):
        print(path)
        for index, name, score in row:
            print(f"  {score:7.2%}  {index:>4}  {name}")
    return 0


def _model_arguments(p, *, num_classes=1000):
    p.add_argument("--num-classes", type=int, default=num_classes, help=f"the head's classes (default {num_classes})")
    p.add_argument("--image-size", type=int, default=None, help="input size (default: the weights' crop, 224)")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="builder argument (JSON value)")


EXPLAIN_METHODS = ("gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients", "feature-maps",
                   "filters")


def cmd_explain(args):
    """Grad-CAM, saliency, feature maps or filters of a saved model on image files, as PNGs in OUT."""
    import zoo

    model = zoo.load_model(args.model_file, compile=False)
    images = _images_for(model, args.model_file, args.images)
    os.makedirs(args.out, exist_ok=True)
    probabilities = np.asarray(model.predict(images, verbose=0))
    names = _class_names(args.model_file, probabilities.shape[-1])
    classes = probabilities.argmax(-1) if args.class_index is None else np.full(len(images), args.class_index)
    titles = [f"{os.path.basename(p)}: {names[c]}" for p, c in zip(args.images, classes)]
    method = args.method
    if method in ("gradcam", "gradcam++"):
        maps = zoo.explain.grad_cam(model, images, classes, layer=args.layer, method=method)
        paths = [zoo.explain.plot_overlays(images, maps, os.path.join(args.out, f"{method}.png"), titles=titles)]
    elif method in ("saliency", "smoothgrad", "integrated-gradients"):
        kind = {"saliency": "gradient", "integrated-gradients": "integrated_gradients"}.get(method, method)
        maps = zoo.explain.saliency(model, images, classes, method=kind)
        paths = [zoo.explain.plot_overlays(images, maps, os.path.join(args.out, f"{method}.png"), titles=titles)]
    elif method == "feature-maps":
        maps = zoo.explain.feature_maps(model, images, stage=args.stage, layer=args.layer)
        paths = [zoo.explain.plot_maps(m, os.path.join(args.out, f"feature_maps_{i}.png"), title=titles[i])
                 for i, m in enumerate(maps)]
    else:
        paths = [zoo.explain.plot_filters(model, os.path.join(args.out, "filters.png"), layer=args.layer)]
    for title, p in zip(titles, probabilities):
        print(f"{title} ({p.max():.1%})")
    for path in paths:
        print(f"wrote {path}")
    return 0


def register(sub):
    p = sub.add_parser("weights", help="pretrained weights: list, convert, fetch, verify",
                       description="The pretrained-weights table (torchvision and timm checkpoints of the zoo's "
                       "ResNet, VGG, DenseNet and AlexNet) and its files.")
    wsub = p.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    q = wsub.add_parser("list", help="the weights table: model, weights, published top-1/top-5, file")
    q.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern of model names, e.g. 'resnet*'")
    q.add_argument("--source", choices=("torchvision", "timm"), default=None)
    q.set_defaults(fn=cmd_list)
    q = wsub.add_parser("convert", help="convert a .pth/.safetensors checkpoint to Keras .weights.h5",
                        description="Convert a torchvision or timm checkpoint into the zoo model's .weights.h5.")
    q.add_argument("file", help="the checkpoint, e.g. resnet18-f37072fd.pth")
    q.add_argument("--model", default=None, help="registry name (default: from the file name)")
    _model_arguments(q)
    q.add_argument("--out", default=None,
                   help="output .weights.h5 (default: FILE.zoo.weights.h5 beside the file, which weights=FILE reads)")
    q.set_defaults(fn=cmd_convert)
    q = wsub.add_parser("fetch", help="download a checkpoint into the Keras cache (online)")
    q.add_argument("model", help="registry name, e.g. resnet18")
    q.add_argument("--weights", default=None, help="'torchvision' (default), 'timm', a tag or source:tag")
    q.add_argument("--dir", default=None, help="cache folder (default: the Keras cache, $KERAS_HOME/models)")
    q.set_defaults(fn=cmd_fetch)
    q = wsub.add_parser("verify", help="check a checkpoint's SHA-256 against the table's")
    q.add_argument("file")
    q.add_argument("--model", default=None, help="with --weights: the entry to check against")
    q.add_argument("--weights", default=None, help="with --model: e.g. IMAGENET1K_V2")
    q.set_defaults(fn=cmd_verify)

    p = sub.add_parser("predict", help="classify images with a pretrained or saved model (top-5 classes)",
                       description="Print the top classes of each IMAGE. MODEL is a registry name (with --weights: "
                       "'torchvision' by default, 'timm', a tag, or a checkpoint file; keras_* wrappers use "
                       "'imagenet') or a saved .keras file (class names from the class_map.json beside it).")
    p.add_argument("model", help="e.g. resnet18, keras_resnet50 or runs/transfer/model.keras")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--weights", default=None, help="weights spec or file (see 'zoo weights list')")
    p.add_argument("--top", type=int, default=5, help="classes per image (default 5)")
    _model_arguments(p)
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("explain", help="Grad-CAM, saliency maps, feature maps or filters of a saved model",
                       description="Explain a saved .keras model's predictions on image files: class activation "
                                   "maps (Grad-CAM, Grad-CAM++), saliency maps (gradient, SmoothGrad, integrated "
                                   "gradients) overlaid on the images, a stage's feature maps, or the first "
                                   "layer's filters, written as PNGs to --out.")
    p.add_argument("model_file", metavar="MODEL_FILE", help="a .keras file (zoo transfer, compare, tune, export)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, resized to the model's input size")
    p.add_argument("--method", choices=EXPLAIN_METHODS, default="gradcam")
    p.add_argument("--layer", default=None, help="the layer to explain (default: the last stage's last conv map)")
    p.add_argument("--stage", default=None, help="feature-maps: the stage whose output is shown (e.g. stage2)")
    p.add_argument("--class-index", type=int, default=None, help="the class to explain (default: the predicted)")
    p.add_argument("--out", default="explain", help="folder for the PNGs (default explain/)")
    p.set_defaults(fn=cmd_explain)
