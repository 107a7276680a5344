"""Data layer: typed catalog/interactions, loaders for demo and user data, leakage-safe splits."""

from __future__ import annotations

from retrieval.data.registry import DEFAULT_DATASET, available_datasets, load_dataset, register_dataset
from retrieval.data.schema import Catalog, Dataset, DataValidationError, Interactions, Item
from retrieval.data.splits import Split, leave_one_out, temporal_split

__all__ = [
    "DEFAULT_DATASET",
    "Catalog",
    "DataValidationError",
    "Dataset",
    "Interactions",
    "Item",
    "Split",
    "available_datasets",
    "leave_one_out",
    "load_dataset",
    "register_dataset",
    "temporal_split",
]
