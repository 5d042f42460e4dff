"""Pattern library: multi-scale window encoding, a VQ codebook, a point-in-time FAISS index and its lifecycle,
and retrieval from it at run time behind a fail-open circuit breaker."""
