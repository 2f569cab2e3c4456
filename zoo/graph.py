"""Reading a functional model's graph: the one module that touches Keras' private graph attributes.

Keras 3 has no public API for "which layer produced this tensor" or "the calls
of a model in order"; these helpers read ``_nodes_by_depth``,
``_inbound_nodes``, ``_keras_history`` and ``Sequential._functional`` here
only, so that a change in Keras is mended in one place. :func:`dry_weight_count`
likewise is the one user of Keras' list of deferred variables.
"""

from __future__ import annotations

import math

import keras

__all__ = ["dry_weight_count", "graph_calls", "inbound_layers", "producer"]


def dry_weight_count(build, *, trainable_only=False):
    """How many weights (``trainable_only``: trainable weights) ``build()`` would create, found without
    allocating any of them.

    Inside ``keras.StatelessScope(initialize_variables=False)`` Keras creates every variable
    without its value and keeps it in a global list of deferred variables, to be initialised
    later; the model is built there, its weights' shapes counted, and the variables it left in that
    list dropped, so that none is ever initialised. Building a ResNet-152 at width 64 (2.4e11
    weights) this way takes well under a second and no memory.
    """
    from keras.src.backend.common import global_state

    pending = global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)
    before = len(pending)
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = build()
        return sum(math.prod(v.shape) for v in (model.trainable_weights if trainable_only else model.weights))
    finally:
        del pending[before:]


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
