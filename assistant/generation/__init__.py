"""Generation: a ``Plan`` -> the streamed, grounded reply text (cards, streaming guard, repair)."""
