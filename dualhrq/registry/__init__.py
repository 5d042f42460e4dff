"""The model registry: package a run's fitted pipeline, register it with its lineage, promote and roll back."""
