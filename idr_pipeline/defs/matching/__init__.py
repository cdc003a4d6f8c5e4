"""Probabilistic matching: embeddings, Faiss index, candidate pairs, the match model, scored pairs."""
