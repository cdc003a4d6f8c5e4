"""Dagster definitions of the candidates stage: profile embeddings, Faiss index, candidate pairs."""
