"""Summarisation layer: sentence splitting, extractive (MiniLM) and abstractive (seq2seq)."""
