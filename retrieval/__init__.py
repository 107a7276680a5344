"""Retrieval and ranking: data, embeddings, Chroma + BM25 hybrid search, collaborative scorers, fusion."""
