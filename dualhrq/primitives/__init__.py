"""The bottom layer: pure functions on arrays and rows that every other package may use.

Modules here import only numpy, scipy, polars, the standard library and
:mod:`dualhrq.errors`, never another ``dualhrq`` package.
"""
