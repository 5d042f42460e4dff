"""DualHRQ: hierarchical reasoning models for systematic trading research."""

__version__ = "0.1.0"
