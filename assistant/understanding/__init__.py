"""Understanding: one shopper message -> the understood turn (intent, constraints, safety verdict)."""
