"""What the city publishes: the catalog of layers every surface serves (tiles, OGC API, exports)
and the monthly situation report drawn as HTML and PDF."""
