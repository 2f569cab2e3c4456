"""``zoo evaluate``: accuracy, loss, per-class accuracy, confusion and throughput of a saved or pretrained model
on a labelled set, with a results CSV row."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from zoo.cli.args import parse_kwargs


def _folder_path(data):
    return data[len("folder:"):] if data.startswith("folder:") else None


def _bundle(args, **kw):
    """The data set of ``--data`` with every file or example in the split that is evaluated: a folder without
    train/val/test sub-folders is evaluated whole."""
    import zoo.data

    options = {**parse_kwargs(args.data_option), **kw}
    folder = _folder_path(args.data)
    if folder is not None and not os.path.isdir(folder):
        raise FileNotFoundError(f"No such image folder: {folder!r} (from --data {args.data})")
    whole = folder is not None and "train" not in os.listdir(folder)
    if whole:
        options.setdefault("validation_split", 0.0)
        options.setdefault("test_split", 0.0)
    bundle = zoo.data.load(args.data, batch_size=args.batch_size, **options)
    split = args.split or ("train" if whole else "test" if "test" in bundle.splits else "validation")
    if split not in bundle.splits:
        raise ValueError(f"{args.data} has no {split!r} split (splits: {list(bundle.splits)}). Received: "
                         f"--split={args.split!r}")
    return bundle, split, "all files" if whole else f"its {split} split"


def _relabelled(batches, indices):
    return ((x, indices[np.asarray(y).reshape(-1)]) for x, y in batches)


def _saved_model(args):
    """A saved ``.keras`` model, and its data read as it was trained: its input size and channels, in [0, 1]."""
    import zoo
    from zoo.cli.weights import _class_names
    from zoo.evaluation import class_indices

    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"No such model file: {args.model!r}")
    model = zoo.load_model(args.model, compile=False)
    shape = tuple(model.input_shape[1:])
    image = len(shape) == 3 and None not in shape
    bundle, split, what = _bundle(args, **({"image_size": tuple(shape[:2]), "channels": shape[2]} if image else {}))
    names = _class_names(args.model, model.output_shape[-1])
    indices, how = class_indices(bundle.class_names, names, class_map=args.class_map)
    batches = _relabelled(bundle.dataset(split).as_numpy_iterator(), indices)
    return model, batches, names, {"data": f"{args.data} ({what})", "fingerprint": bundle.fingerprint,
                                   "model": os.path.basename(args.model), "notes": (how,)}


def _folder_batches(files, entry, resize, crop, batch_size):
    """Image files in batches, read as torchvision evaluates (shorter side resized, centre crop) and normalised
    with ``entry``'s mean and standard deviation; labels are the folders' indices."""
    from zoo.weights import normalization, read_images

    normalize = normalization(entry)
    for i in range(0, len(files), batch_size):
        chunk = files[i:i + batch_size]
        x = np.asarray(normalize(read_images([f.path for f in chunk], resize=resize, crop=crop)))
        yield x, np.array([f.label for f in chunk])


def _pretrained(args):
    """A registry model with table weights (or a checkpoint file), and the data read as its weights' entry
    says: shorter side resized, centre crop, the entry's mean and standard deviation."""
    import zoo
    from zoo import weights as pretrained
    from zoo.cli.weights import _default_spec, _entry_for_file
    from zoo.data import scan_folder
    from zoo.data._common import Fingerprint
    from zoo.evaluation import class_indices

    card = zoo.get_card(args.model)  # an unknown name fails here, before any data is read
    if card.family == "keras_applications":
        raise ValueError(f"zoo evaluate takes the zoo's own models with table weights, or a saved .keras file; "
                         f"{args.model!r} wraps keras.applications. Received: model={args.model!r}")
    spec = args.weights or _default_spec(args.model)
    local = not pretrained.is_weights_spec(spec)
    own = _entry_for_file(spec) if local else pretrained.resolve(args.model, spec)  # the table's entry, if any
    entry = own or pretrained.resolve(args.model, _default_spec(args.model))  # whose preprocessing is used
    p = entry["preprocessing"]
    crop = args.image_size or p["crop"]
    resize = round(crop * p["resize"] / p["crop"])
    names = pretrained.imagenet_classes() if args.num_classes == 1000 else tuple(
        f"class {i}" for i in range(args.num_classes))
    folder = _folder_path(args.data)
    notes = []
    if folder is not None:
        report = scan_folder(folder)
        if not report.ok:
            raise ValueError(report.summary())
        split = args.split or ("test" if "test" in report.files else "validation" if "validation" in report.files
                               else "train")
        files = report.files.get(split) or []
        if not files:
            raise ValueError(f"{args.data} has no {split!r} images. Received: --split={args.split!r}")
        indices, how = class_indices(report.class_names, names, class_map=args.class_map)
        batches = _folder_batches(files, entry, resize, crop, args.batch_size)
        listing = [(os.path.relpath(f.path, folder), f.label, f.sha256) for f in files]
        fingerprint = Fingerprint("evaluate-folder", listing, resize, crop, p["mean"], p["std"]).hexdigest()
        what = f"{len(files)} images of {split}" if split != "train" else f"{len(files)} images"
    else:
        bundle, split, what = _bundle(args, image_size=crop, channels=3)
        indices, how = class_indices(bundle.class_names, names, class_map=args.class_map)
        batches = pretrained.normalize_dataset(bundle.dataset(split), entry).as_numpy_iterator()
        fingerprint = bundle.fingerprint
        notes.append(f"images resized to {crop}x{crop} by the data loader, not the weights' resize to {resize} and "
                     f"centre crop {crop}: the published figures used the latter")
    notes.append(how)
    model = zoo.build(args.model, weights=spec, num_classes=args.num_classes, input_shape=(crop, crop, 3),
                      **parse_kwargs(args.arg))
    published = None
    if own is not None and args.num_classes == 1000 and not args.arg:  # the published network, as published
        published = {k: own[k] for k in ("top1", "top5") if own.get(k) is not None} or None
    if own is None:
        notes.append(f"preprocessing of {entry['source']}:{entry['tag']} (the file is not in the weights table)")
    if published and crop != p["crop"]:
        notes.append(f"evaluated at {crop}x{crop}; the published figures are at {p['crop']}x{p['crop']}")
    about = {"data": f"{args.data} ({what})", "fingerprint": fingerprint, "model": args.model,
             "weights": spec if local else f"{entry['source']}:{entry['tag']}", "published": published,
             "notes": tuple(notes)}
    return model, _relabelled(batches, indices), names, about


def _write_confusion(path, result):
    import csv

    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *result.class_names])
        for name, row in zip(result.class_names, result.confusion):
            writer.writerow([name, *row.tolist()])


def cmd_evaluate(args):
    import zoo

    if args.batch_size < 1:
        raise ValueError(f"`--batch-size` must be at least 1. Received: --batch-size={args.batch_size}")
    model, batches, names, about = _saved_model(args) if args.model.endswith(".keras") else _pretrained(args)
    result = zoo.evaluate(model, batches, class_names=names)
    result = dataclasses.replace(result, **{**about, "notes": about["notes"] + result.notes})
    print(result.summary())
    if args.confusion:
        _write_confusion(args.confusion, result)
        print(f"wrote the confusion matrix to {args.confusion}")
    print(f"appended the results row to {result.append_csv(args.results)}")
    return 0


def register(sub):
    from zoo.cli.weights import _model_arguments

    p = sub.add_parser("evaluate", help="top-1/top-5 accuracy, loss, per-class accuracy, confusion, throughput",
                       description="Evaluate a saved .keras model (its data read at its input size and channels, in "
                       "[0, 1]) or a registry model with pretrained weights (read with the weights' resize, crop and "
                       "normalisation; the published top-1/top-5 printed beside the measured ones) on a labelled "
                       "set: an embedded name, tfds:NAME or folder:PATH (one sub-folder per class, e.g. an "
                       "ImageNet validation folder). Appends a results row to --results.")
    p.add_argument("model", help="a .keras file or a registry name, e.g. resnet18")
    p.add_argument("--data", required=True, help="digits, tfds:NAME, folder:PATH, ...")
    p.add_argument("--weights", default=None, help="registry models: 'torchvision' (default), 'timm', a tag, or a "
                   "checkpoint file (see 'zoo weights list')")
    p.add_argument("--split", default=None, choices=("train", "validation", "test"),
                   help="the split evaluated (default: test, else validation; a folder without split folders: all)")
    p.add_argument("--class-map", default=None, metavar="FILE",
                   help="JSON {folder name: class index or class name} when the folder names are not the model's "
                        "classes")
    _model_arguments(p)
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="dataset option, e.g. split_seed=1 (JSON value)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--confusion", default=None, metavar="CSV", help="write the full confusion matrix here")
    p.add_argument("--results", default="evaluations.csv", help="results CSV a row is appended to "
                   "(default evaluations.csv)")
    p.set_defaults(fn=cmd_evaluate)
