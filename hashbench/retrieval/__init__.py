"""Retrieval: binary codes, Hamming ranking and exact retrieval metrics."""
