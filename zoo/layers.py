"""Custom layers (serializable, backend-agnostic: keras.ops only)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


def _bins(size: int, out: int) -> np.ndarray:
    """(out, size) averaging matrix with PyTorch's adaptive-pooling bins.

    Bin i spans [floor(i*size/out), ceil((i+1)*size/out)), which also works
    when ``out > size`` (bins repeat input cells).
    """
    m = np.zeros((out, size), dtype="float32")
    for i in range(out):
        start, end = (i * size) // out, math.ceil((i + 1) * size / out)
        m[i, start:end] = 1.0 / (end - start)
    return m


@keras.saving.register_keras_serializable(package="zoo")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average-pool a channels-last map to a fixed ``output_size``, as ``torch.nn.AdaptiveAvgPool2d``.

    Unlike ``keras.layers.AdaptiveAveragePooling2D`` it also accepts maps
    smaller than the output (torchvision's AlexNet/VGG on small inputs).

    Args:
        output_size: int or ``(height, width)``.
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(int(v) for v in output_size)

    def build(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if h is None or w is None:
            raise ValueError(f"AdaptiveAveragePooling2D needs a known spatial size. Received: input_shape={input_shape}")
        self._identity = (h, w) == self.output_size
        self._ph = _bins(h, self.output_size[0])
        self._pw = _bins(w, self.output_size[1])

    def call(self, inputs):
        if self._identity:
            return inputs
        ph = ops.convert_to_tensor(self._ph, dtype=inputs.dtype)
        pw = ops.convert_to_tensor(self._pw, dtype=inputs.dtype)
        return ops.einsum("ih,bhwc,jw->bijc", ph, inputs, pw)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


@keras.saving.register_keras_serializable(package="zoo")
class Maxout(keras.layers.Layer):
    """Maxout (Goodfellow et al. 2013): the maximum of each group of ``pieces`` consecutive channels.

    The layer before it has ``pieces`` times the units wanted: 2 x 64 channels -> 64.

    Args:
        pieces: channels per output unit.
    """

    def __init__(self, pieces=2, **kwargs):
        super().__init__(**kwargs)
        self.pieces = int(pieces)

    def call(self, inputs):
        shape = ops.shape(inputs)
        grouped = ops.reshape(inputs, (*shape[:-1], shape[-1] // self.pieces, self.pieces))
        return ops.max(grouped, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels // self.pieces)

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces}



@keras.saving.register_keras_serializable(package="zoo")
class TokensToMap(keras.layers.Layer):
    """A transformer's token sequence ``(batch, prefix + h * w, channels)`` as an image ``(batch, h, w, channels)``:
    the first ``prefix`` tokens (ViT's class token) are dropped, the rest laid out row by row.

    Args:
        prefix: tokens before the patch grid.
        grid: ``(h, w)``, the patch grid.
    """

    def __init__(self, prefix=1, grid=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.prefix, self.grid = int(prefix), tuple(int(g) for g in grid)

    @classmethod
    def for_tokens(cls, tokens, image, *, name=None):
        """The layer for a symbolic ``tokens`` tensor of a model whose input images are ``image`` (h, w):
        the patch size is the one that tiles the image exactly into as many patches as there are tokens, less
        the fewest prefix tokens (at most 8); a ValueError says so when no patch size does."""
        count, (height, width) = tokens.shape[1], image
        if count and height and width:
            for prefix in range(0, 9):
                for patch in range(1, min(height, width) + 1):
                    if height % patch == 0 and width % patch == 0 and \
                            (height // patch) * (width // patch) == count - prefix:
                        return cls(prefix, (height // patch, width // patch), name=name)
        raise ValueError(f"cannot tell the patch grid of {count} tokens for a {height}x{width} input "
                         f"(layer {name!r}): give a model with a static input size")

    def call(self, inputs):
        tokens = inputs[:, self.prefix:, :]
        return ops.reshape(tokens, (-1, self.grid[0], self.grid[1], ops.shape(inputs)[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.grid, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "prefix": self.prefix, "grid": list(self.grid)}
