"""The data and its rules: regions and grids, the 一标三实 registry, selectors and services."""
