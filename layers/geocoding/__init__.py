"""Geocoding: points to grids and regions (points.py), address text to standard addresses."""
