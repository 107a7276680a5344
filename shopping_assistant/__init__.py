"""The ``shopping-assistant`` console command: one entry point over the UI, the HTTP API, a
terminal chat, fine-tuning, the benchmarks and the datasets (``shopping_assistant.cli``)."""
