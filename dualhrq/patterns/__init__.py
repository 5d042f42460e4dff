"""Pattern library: multi-scale window detection, a VQ codebook, a point-in-time FAISS index and its lifecycle."""
