"""Data layer: typed catalog/interactions, loaders for demo and user data, leakage-safe splits."""

from __future__ import annotations

from retrieval.data.schema import Catalog, Dataset, DataValidationError, Interactions, Item

__all__ = ["Catalog", "DataValidationError", "Dataset", "Interactions", "Item"]
