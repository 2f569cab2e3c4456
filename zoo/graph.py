"""Reading a functional model's graph: the one module that touches Keras' private graph attributes.

Keras 3 has no public API for "which layer produced this tensor" or "the calls
of a model in order"; these helpers read ``_nodes_by_depth``,
``_inbound_nodes``, ``_keras_history`` and ``Sequential._functional`` here
only, so that a change in Keras is mended in one place.
"""

from __future__ import annotations

import keras

__all__ = ["graph_calls", "inbound_layers", "producer"]


def graph_calls(model):
    """Yield ``(layer, input_tensors, output_tensors)`` for each call in ``model``'s graph, inputs first."""
    if isinstance(model, keras.Sequential):
        model = model._functional if getattr(model, "_functional", None) is not None else model
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:
        raise TypeError(
            f"`model` must be a built functional or Sequential keras.Model. Received: {type(model).__name__}"
        )
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            op = node.operation
            if isinstance(op, keras.layers.InputLayer):
                continue
            yield op, list(node.input_tensors), list(node.output_tensors)


def producer(tensor):
    """The layer (or operation) whose call produced a symbolic ``tensor``."""
    return tensor._keras_history.operation


def inbound_layers(layer) -> list:
    """The layers whose outputs feed ``layer``'s first call (``[]`` for an unconnected or input layer)."""
    if not layer._inbound_nodes:
        return []
    return [producer(t) for t in layer._inbound_nodes[0].input_tensors]
