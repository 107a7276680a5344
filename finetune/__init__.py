"""Fine-tuning: LoRA data generation, training, evaluation, LLM reranking."""
