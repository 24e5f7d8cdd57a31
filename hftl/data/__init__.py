"""Data loading, column inference, label maps, splits and pre-flight validation."""

from .builtin import BuiltinDataset, builtin_datasets, register_builtin_dataset
from .columns import find_label_column, find_text_columns
from .labels import LabelSpace, build_label_space, encode_labels
from .loading import load_raw_dataset
from .prepare import PreparedData, prepare_data

__all__ = [
    "BuiltinDataset",
    "LabelSpace",
    "PreparedData",
    "build_label_space",
    "builtin_datasets",
    "encode_labels",
    "find_label_column",
    "find_text_columns",
    "load_raw_dataset",
    "prepare_data",
    "register_builtin_dataset",
]
