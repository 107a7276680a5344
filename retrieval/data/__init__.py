"""Data layer: typed catalog/interactions, loaders for demo and user data, leakage-safe splits."""

from __future__ import annotations

from retrieval.data.registry import (
    DEFAULT_DATASET,
    FORMATS,
    available_datasets,
    detect_format,
    load_dataset,
    register_dataset,
)
from retrieval.data.schema import Catalog, Dataset, DataValidationError, Interactions, Item
from retrieval.data.splits import Split, leave_one_out, temporal_split
from retrieval.data.tables import ColumnMapping

__all__ = [
    "DEFAULT_DATASET",
    "FORMATS",
    "Catalog",
    "ColumnMapping",
    "DataValidationError",
    "Dataset",
    "Interactions",
    "Item",
    "Split",
    "available_datasets",
    "detect_format",
    "leave_one_out",
    "load_dataset",
    "register_dataset",
    "temporal_split",
]
