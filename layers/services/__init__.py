"""Writes: keyword-only, typed, atomic. Bulk paths are SQL (COPY, INSERT … SELECT)."""
