"""Basemap sources, tile maths, raster rendering and map exports (built in the map-server issue)."""
