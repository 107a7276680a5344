"""Planning: an understood turn -> a ``Plan`` (cards from catalog data, the prompt, the fallback)."""
