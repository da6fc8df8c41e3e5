"""Outputs of a run: rasters, vector layers, maps, reports."""
