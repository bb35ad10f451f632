"""Thin views, one module per surface: parse → select or act → serialise → respond."""
