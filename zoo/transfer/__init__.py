"""Transfer learning: freeze, unfreeze, replace the head, load weights, fine-tune, cached features.

The recipe taught in introductory courses: pick a model trained on a similar
task, load its weights, freeze most of it, put a head that matches the new
task on top, train the head (transfer learning), then optionally unfreeze the
top blocks and train them with a lower learning rate (fine-tuning).

One module per job: ``stages`` (stages, blocks, freeze/unfreeze,
trainability), ``heads`` (feature extractor, replace_head), ``checkpoints``
(load_weights; the multi-scale feature models of :mod:`zoo.models.features`), ``recipes`` (fine_tune, train_head_on_features).
"""

from zoo.models.features import feature_info, feature_units, multi_scale_model
from zoo.transfer.checkpoints import LoadReport, load_model, load_weights
from zoo.transfer.heads import HEAD_TASKS, feature_extractor, replace_head
from zoo.transfer.recipes import FineTuneResult, TransferResult, fine_tune, train_head_on_features
from zoo.transfer.stages import Trainability, freeze, list_stages, stage_of, trainability, unfreeze, unit_of

__all__ = [
    "HEAD_TASKS",
    "FineTuneResult",
    "LoadReport",
    "Trainability",
    "TransferResult",
    "feature_extractor",
    "feature_info",
    "feature_units",
    "fine_tune",
    "freeze",
    "list_stages",
    "load_model",
    "load_weights",
    "multi_scale_model",
    "replace_head",
    "stage_of",
    "train_head_on_features",
    "trainability",
    "unfreeze",
    "unit_of",
]
