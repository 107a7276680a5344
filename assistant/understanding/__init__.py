"""Understanding: one shopper utterance -> typed constraint edits, intent and safety verdict."""
