"""The pretrained-weights table (``table.json``) and fetching its files into the Keras cache.

``table.json`` is data, written by ``tools/make_weights_table.py`` from torchvision's
``Weights`` enums and timm's pretrained configs: per checkpoint its model, source, tag,
URL, file name (torchvision's carries the first hex digits of the file's SHA-256),
licence, published ImageNet top-1/top-5, preprocessing and categories.

A weights *spec* names an entry: ``"torchvision"`` or ``"timm"`` (that source's default
for the model), a tag (``"IMAGENET1K_V2"``, ``"tv_in1k"``), or ``"source:tag"``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import socket
import sys
import urllib.parse
from types import MappingProxyType

from zoo.weights.readers import CHECKPOINT_SUFFIXES

__all__ = ["WeightsDownloadError", "keras_cache_dir", "weights_table", "resolve", "fetch", "verify", "expected_sha256",
           "entry_for_digest", "has_classifier", "sha256_file", "is_weights_spec", "cache_dir", "WEIGHTS_FILE_SUFFIXES"]

SOURCES = ("torchvision", "timm")
# A name ending so is a file's, in any case: checkpoints, and Keras' .weights.h5 and .keras files.
WEIGHTS_FILE_SUFFIXES = CHECKPOINT_SUFFIXES + (".h5", ".keras")
CONNECT_TIMEOUT_S = 1.0  # an offline machine fails this fast instead of hanging in a download


class WeightsDownloadError(OSError):
    """A weights file is neither in the cache nor downloadable."""


@functools.lru_cache(maxsize=1)
def weights_table() -> tuple:
    """Every pretrained-weights entry, as read-only mappings, in the table's order."""
    with open(os.path.join(os.path.dirname(__file__), "table.json"), encoding="utf-8") as f:
        rows = json.load(f)["weights"]
    return tuple(MappingProxyType(r) for r in rows)


def cache_dir():
    """Where ``keras.utils.get_file`` caches application weights: ``$KERAS_HOME/models``,
    ``~/.keras/models`` by default (Keras reads ``KERAS_HOME`` once, at import). Keras' own answer once it
    is imported; before, its rule, so that listing the weights imports no framework."""
    keras_home = None
    if "keras" in sys.modules:
        try:
            from keras.src.backend.config import keras_home
        except ImportError:  # private in Keras 3: its rule below if it moves
            keras_home = None
    if keras_home is not None:
        home = keras_home()
    else:
        base = os.path.expanduser("~")
        home = os.environ.get("KERAS_HOME") or os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.join(os.path.expanduser(home), "models")


keras_cache_dir = cache_dir


def is_weights_spec(weights) -> bool:
    """Whether ``weights`` names an entry of the weights table rather than a file: the one rule that decides.

    A file is anything that exists (``"timm_resnet18.safetensors"``, a file named ``"timm"``), a path with a
    separator, or a name ending with a weights file's suffix (:data:`WEIGHTS_FILE_SUFFIXES`, in any case),
    existing or not (then loading says it does not exist). Any other string but ``"imagenet"`` (Keras' own)
    and ``""`` is a name of the table (``"torchvision"``, ``"IMAGENET1K_V2"``, ``"timm:a1_in1k"``,
    ``"resnet50.a1_in1k"``): :func:`resolve` says when it names no entry, and that no such file exists either.
    """
    if not isinstance(weights, str) or weights in ("", "imagenet"):
        return False
    if os.sep in weights or "/" in weights or (os.altsep and os.altsep in weights):
        return False
    return not weights.lower().endswith(WEIGHTS_FILE_SUFFIXES) and not os.path.exists(weights)


def resolve(model_name, spec):
    """The table entry that ``spec`` names for ``model_name``.

    Raises:
        ValueError: no such entry, listing the model's available specs.
    """
    rows = [r for r in weights_table() if r["model"] == model_name]
    source, _, tag = spec.partition(":") if ":" in spec else (None, None, spec)
    if tag in SOURCES and source is None:
        source, tag = tag, None
    if tag and tag.startswith(f"{model_name}."):
        tag = tag[len(model_name) + 1:]
    hits = [r for r in rows if (source is None or r["source"] == source)
            and (r["tag"] == tag if tag else r["default"])]
    if len(hits) != 1:
        available = [f"{r['source']}:{r['tag']}" for r in rows]
        raise ValueError(
            f"No pretrained weights {spec!r} for {model_name!r}, and no file of that name "
            f"({os.path.abspath(spec)} does not exist). "
            + (f"Available names of the weights table: 'torchvision', 'timm', or one of {available}." if rows else
               f"The weights table has entries for {len({r['model'] for r in weights_table()})} models, "
               "torchvision's architectures (`zoo weights list`).")
            + f" Files: a path that exists, or ends with {', '.join(WEIGHTS_FILE_SUFFIXES)}. Received: weights={spec!r}"
        )
    return hits[0]


def sha256_file(path):
    """The SHA-256 of a file's content, in hex.

    Computed once per version of the file in a process: a build with table weights checks the fetched file,
    then stamps its conversion with the same digest (a 500 MB checkpoint took ~1 s each time). The version is
    the file's inode, size and its modification *and* status-change times in nanoseconds; any write changes
    the status-change time, which no ``os.utime`` can set back.
    """
    st = os.stat(path)
    return _sha256(os.path.realpath(path), (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))


@functools.lru_cache(maxsize=32)
def _sha256(path, version):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def has_classifier(entry) -> bool:
    """Whether ``entry``'s checkpoint holds a usable ImageNet classifier. Torchvision publishes features-only
    weights (vgg16 ``IMAGENET1K_FEATURES``: "missing values in the classifier module") with NaN accuracy, which
    the table keeps as ``null``; every other entry has its published top-1."""
    return entry["top1"] is not None


def expected_sha256(entry):
    """The SHA-256 the table publishes for ``entry``'s file: the full digest when it has one, else the first hex
    digits (torchvision's file names carry them); ``None`` when nothing is published (timm's files)."""
    return (entry["sha256"] or entry["sha256_prefix"] or None) if entry else None


def _name_sha256(path):
    """The hex digits a file name claims as the start of its SHA-256 (torchvision's ``NAME-HASH.pth``), or ``None``."""
    match = re.search(r"-([a-f0-9]{6,64})\.", os.path.basename(path))
    return match.group(1) if match else None


def entry_for_digest(digest):
    """The table entry whose published SHA-256 is ``digest`` (its full hash, or its prefix when it has no full
    hash), or ``None``: a file of the table known by its content, whatever its name."""
    hits = [r for r in weights_table() if (r["sha256"] == digest if r["sha256"] else
                                            bool(r["sha256_prefix"]) and digest.startswith(r["sha256_prefix"]))]
    return hits[0] if hits else None


def verify(path, entry=None):
    """Check a weights file's actual SHA-256 against the table's for ``entry`` (its full hash, or its prefix
    when the table has no full hash), and against the hex digits its own name claims (``NAME-HASH.pth``).

    A name is never evidence that the content is published: a file renamed to its own hash prefix passes the
    name's check only, and without ``entry`` nothing here says it is the table's (:func:`entry_for_digest`).

    Returns:
        The file's full SHA-256.

    Raises:
        ValueError: the digest differs (the file is damaged or not the published one).
    """
    digest = sha256_file(path)
    for expected, whose in ((expected_sha256(entry), "published in the weights table"),
                            (_name_sha256(path), "carried by its file name")):
        if expected and not digest.startswith(expected):
            raise ValueError(f"Weights file {path!r} has SHA-256 {digest[:16]}..., expected {expected[:16]}... "
                             f"({whose}): it is damaged or not the published file. Delete it and fetch it again.")
    return digest


def fetch(entry, *, directory=None):
    """The local path of ``entry``'s file: from the cache if there (no network), else downloaded.

    Raises:
        WeightsDownloadError: not cached and not downloadable (offline), naming the file,
            its URL and the folder to put it in.
    """
    directory = directory or cache_dir()
    path = os.path.join(directory, entry["file_name"])
    if os.path.exists(path):
        verify(path, entry)
        return path
    host = urllib.parse.urlparse(entry["url"]).hostname
    try:
        socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise WeightsDownloadError(
            f"Cannot download {entry['file_name']!r} ({entry['source']} {entry['tag']} weights of "
            f"{entry['model']!r}) from {entry['url']}: {e}. Without network access, fetch the file elsewhere "
            f"and put it in {directory!r} (the Keras cache, $KERAS_HOME/models), or pass its path as weights=."
        ) from None
    import keras

    os.makedirs(directory, exist_ok=True)
    downloaded = keras.utils.get_file(entry["file_name"], origin=entry["url"], cache_dir=os.path.dirname(directory),
                                      cache_subdir=os.path.basename(directory))
    verify(downloaded, entry)
    return downloaded
