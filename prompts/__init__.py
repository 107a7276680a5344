"""Versioned prompt templates (EN + ZH) and their loader."""
