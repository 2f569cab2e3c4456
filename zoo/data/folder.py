"""Image folders with one sub-folder per class, checked file by file before any training.

Layouts (as ``keras.utils.image_dataset_from_directory``):

* ``root/<class>/<image>``: validation and test are carved from it, stratified;
* ``root/train/<class>/...`` with optional ``root/val|validation|valid/<class>/...``
  and ``root/test/<class>/...``: missing splits are carved from ``train``;
* ``root`` for training plus a separate ``validation_dir``.

Every file is read and decoded first; corrupt, truncated, empty and non-image
files, empty class folders, class mismatches between splits and mixed channel
counts are collected into one :class:`FolderReport`, so all problems are seen
at once, before training starts.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from zoo.data._common import Fingerprint, convert_channels, split_indices
from zoo.data.tfds_source import DatasetNotAvailableError

__all__ = ["IMAGE_EXTENSIONS", "BadDataError", "FolderReport", "scan_folder", "load_folder"]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "validation", "valid"), "test": ("test",)}
ON_BAD_FILE = ("error", "warn")


class BadDataError(ValueError):
    """A data source has problems; ``.report`` lists all of them."""

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


@dataclass
class ImageFile:
    path: str
    label: int
    channels: int
    height: int
    width: int
    sha256: str


@dataclass
class FolderReport:
    """What a scan of an image folder found.

    Attributes:
        root: the scanned folder.
        class_names: sorted class folder names (label order).
        files: split -> readable :class:`ImageFile` entries (before carving).
        bad_files: ``(path, reason)`` of files that cannot be used.
        empty_classes: class folders without any readable image.
        errors: other problems that stop loading (class mismatches, mixed
            channel counts or sizes without an explicit policy).
        channel_counts: ``{channels: number_of_files}`` over readable files.
    """

    root: str
    class_names: tuple = ()
    files: dict = field(default_factory=dict)
    bad_files: list = field(default_factory=list)
    empty_classes: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    channel_counts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.bad_files or self.empty_classes or self.errors)

    def problems(self) -> list:
        """Every problem, one line each."""
        lines = [f"bad file {path}: {reason}" for path, reason in self.bad_files]
        lines += [f"empty class folder {path}: no readable images" for path in self.empty_classes]
        return lines + list(self.errors)

    def summary(self) -> str:
        """A readable report: counts per split and class, then every problem."""
        counts = ", ".join(f"{s}={len(f)}" for s, f in self.files.items())
        head = (f"Image folder {self.root!r}: {len(self.class_names)} classes "
                f"{list(self.class_names)}, readable files: {counts or 'none'}, "
                f"channels: {dict(sorted(self.channel_counts.items()))}.")
        problems = self.problems()
        if not problems:
            return head + " No problems found."
        return head + f" {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)

    __str__ = summary


def _decode_error(exc):
    """The useful part of a TensorFlow decode error."""
    msg = getattr(exc, "message", str(exc))
    msg = re.sub(r"\{\{[^}]*\}\}\s*", "", msg)
    return re.sub(r"\s*\[Op:\w+\]", "", msg).strip().splitlines()[0]


def _scan_file(path, tf):
    """``(ImageFile fields, None)`` or ``(None, reason)``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, f"cannot read: {e}"
    if not data:
        return None, "empty file (0 bytes)"
    try:
        image = tf.io.decode_image(data, channels=0, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        return None, f"cannot decode ({_decode_error(e)})"
    h, w, c = (int(v) for v in image.shape)
    if h < 1 or w < 1:
        return None, f"image has no pixels ({h}x{w})"
    return (c, h, w, hashlib.sha256(data).hexdigest()), None


def _list_classes(folder):
    return sorted(
        d for d in os.listdir(folder) if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )


def _layout(root, validation_dir):
    """``{split: folder}`` of the folders holding class sub-folders."""
    subdirs = _list_classes(root)
    aliases = {name: split for split, names in SPLIT_FOLDERS.items() for name in names}
    if "train" in subdirs and all(d in aliases for d in subdirs):
        if validation_dir is not None:
            raise ValueError(
                f"{root!r} already has train/ and split folders; do not pass `validation_dir` too. "
                f"Received: validation_dir={validation_dir!r}"
            )
        return {aliases[d]: os.path.join(root, d) for d in subdirs}
    layout = {"train": root}
    if validation_dir is not None:
        layout["validation"] = validation_dir
    return layout


def scan_folder(root, *, validation_dir=None, extensions=IMAGE_EXTENSIONS):
    """Read and decode every file under an image folder; collect all problems in one report.

    Args:
        root: folder of class sub-folders, or of ``train/``, ``val/``, ``test/``
            folders of class sub-folders.
        validation_dir: optional separate folder of class sub-folders.
        extensions: file endings taken as images (case-insensitive); other
            files are reported as bad; hidden files are ignored.

    Returns:
        a :class:`FolderReport` (it does not raise for data problems).

    Raises:
        DatasetNotAvailableError: ``root`` or ``validation_dir`` does not exist.

    Example:
        >>> print(scan_folder("photos").summary())
    """
    import tensorflow as tf

    root = os.fspath(root)
    for name, folder in (("path", root), ("validation_dir", validation_dir)):
        if folder is not None and not os.path.isdir(folder):
            raise DatasetNotAvailableError(
                f"Image folder not found. Received: {name}={os.fspath(folder)!r}"
            )
    layout = _layout(root, None if validation_dir is None else os.fspath(validation_dir))
    report = FolderReport(root=root)
    classes = {split: _list_classes(folder) for split, folder in layout.items()}
    class_names = tuple(classes["train"])
    report.class_names = class_names
    if not class_names:
        report.errors.append(f"no class sub-folders in {layout['train']!r}")
    for split, names in classes.items():
        if split != "train" and set(names) != set(class_names):
            only_train = sorted(set(class_names) - set(names))
            only_here = sorted(set(names) - set(class_names))
            report.errors.append(
                f"class folders of {split} ({layout[split]!r}) differ from train: "
                f"missing {only_train}, extra {only_here}"
            )
    extensions = tuple(e.lower() for e in extensions)
    channel_counts = Counter()
    for split, folder in layout.items():
        report.files[split] = []
        for name in classes[split]:
            label = class_names.index(name) if name in class_names else -1
            class_dir = os.path.join(folder, name)
            readable = 0
            for dirpath, dirnames, filenames in os.walk(class_dir):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for fname in sorted(filenames):
                    if fname.startswith("."):
                        continue
                    path = os.path.join(dirpath, fname)
                    if not fname.lower().endswith(extensions):
                        report.bad_files.append((path, f"not an image file type {list(extensions)}"))
                        continue
                    fields, reason = _scan_file(path, tf)
                    if reason:
                        report.bad_files.append((path, reason))
                        continue
                    readable += 1
                    channel_counts[fields[0]] += 1
                    if label >= 0:
                        report.files[split].append(ImageFile(path, label, *fields))
            if not readable:
                report.empty_classes.append(class_dir)
    report.channel_counts = dict(channel_counts)
    return report


def _check_policies(report, image_size, channels):
    """Add errors for a single class and for mixed channel counts / sizes that no explicit option resolves."""
    if len(report.class_names) == 1:
        report.errors.append(
            f"only one class folder ({report.class_names[0]!r}): a classifier needs at least two classes, "
            "each in its own sub-folder (a single class would score 100% whatever the model)"
        )
    files = [f for fs in report.files.values() for f in fs]
    if channels is None and len(report.channel_counts) > 1:
        examples = {}
        for f in files:
            examples.setdefault(f.channels, f.path)
        shown = ", ".join(f"{c} channels: {n} file(s), e.g. {examples.get(c)}"
                          for c, n in sorted(report.channel_counts.items()))
        report.errors.append(
            f"images mix channel counts ({shown}); pass channels=1 (gray), 3 (RGB) or 4 (RGBA) "
            "to convert them explicitly"
        )
    sizes = Counter((f.height, f.width) for f in files)
    if image_size is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:5])
        report.errors.append(f"images have different sizes ({shown}, ...); pass image_size, e.g. image_size=160")


def load_folder(path, *, validation_dir, on_bad_file, image_size, channels, validation_split,
                test_split, split_seed, cache):
    """Scan, check and build unbatched pipelines of an image folder.

    Returns:
        ``(pipelines, sizes, meta, fingerprint, options, report)``.

    Raises:
        BadDataError: any problem, all listed (bad files only when ``on_bad_file="error"``).
    """
    import tensorflow as tf

    report = scan_folder(path, validation_dir=validation_dir)
    _check_policies(report, image_size, channels)
    fatal = report.empty_classes or report.errors or (report.bad_files and on_bad_file == "error")
    if fatal:
        hint = ("" if not report.bad_files or on_bad_file == "warn"
                else "\nPass on_bad_file='warn' (zoo: --data-option on_bad_file=warn) to skip bad files with a "
                     "warning; an empty class folder stays an error.")
        raise BadDataError(report.summary() + hint, report)
    if report.bad_files:
        warnings.warn(f"Skipping {len(report.bad_files)} bad file(s). {report.summary()}", UserWarning,
                      stacklevel=3)
    files = dict(report.files)
    first = files["train"][0]
    image_size = tuple(image_size) if image_size is not None else (first.height, first.width)
    channels = channels or first.channels
    missing = {"validation": validation_split if "validation" not in files else 0.0,
               "test": test_split if "test" not in files else 0.0}
    if missing["validation"] or missing["test"]:
        train = files["train"]
        idx = split_indices([f.label for f in train], validation_split=missing["validation"],
                            test_split=missing["test"], seed=split_seed)
        for split in ("train", "validation", "test"):
            if split == "train" or missing[split]:
                files[split] = [train[i] for i in idx[split]]

    def load_image(file_path, label, source_channels):
        data = tf.io.read_file(file_path)
        image = tf.io.decode_image(data, channels=0, dtype=tf.float32, expand_animations=False)
        branches = [
            (lambda c=c: convert_channels(tf.ensure_shape(image, (None, None, c)), c, channels,
                                          lambda p: tf.concat(p, axis=-1)))
            for c in (1, 2, 3, 4)
        ]
        image = tf.switch_case(source_channels - 1, branches)
        image = tf.image.resize(image, image_size, method="bilinear")
        return tf.ensure_shape(tf.clip_by_value(image, 0.0, 1.0), (*image_size, channels)), label

    if cache is None:
        total = sum(len(f) for f in files.values())
        cache = total * image_size[0] * image_size[1] * channels * 4 < 512 * 2**20
    pipelines, sizes, listing = {}, {}, []
    for split in ("train", "validation", "test"):
        entries = files.get(split) or []
        if not entries:
            continue
        ds = tf.data.Dataset.from_tensor_slices((
            [f.path for f in entries],
            np.array([f.label for f in entries], dtype=np.int32),
            np.array([f.channels for f in entries], dtype=np.int32),
        ))
        ds = ds.map(load_image, num_parallel_calls=tf.data.AUTOTUNE)
        pipelines[split] = ds.cache() if cache else ds
        sizes[split] = len(entries)
        listing += [(split, os.path.relpath(f.path, path), f.label, f.sha256) for f in entries]
    meta = {"task": "multiclass", "class_names": report.class_names, "input_shape": (*image_size, channels)}
    fp = Fingerprint("folder", listing, list(image_size), channels, list(report.class_names))
    options = {"path": os.fspath(path), "image_size": list(image_size), "channels": channels,
               "validation_dir": validation_dir, "on_bad_file": on_bad_file,
               "cache": bool(cache), "skipped_files": [p for p, _ in report.bad_files]}
    return pipelines, sizes, meta, fp.hexdigest(), options, report
