"""File readers, validators, one importer per kind, the demo-city generator and their commands."""
