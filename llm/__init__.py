"""The LLM layer: model registry and loading, the in-process chat model, choice scoring, JSON output,
the listwise prompt format shared by training and serving, the LLM reranker, the OpenAI-compatible
backend and server, and process set-up. Imports only ``retrieval`` and ``prompts`` below it."""
