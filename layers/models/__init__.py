"""Models of the map: regions and grids (``areas``) and the 一标三实 registry (``registry``)."""

from .areas import BoundaryVersion, Grid, Region
from .registry import Address, Building, Compound, Dwelling, Person, Unit

__all__ = ["Address", "BoundaryVersion", "Building", "Compound", "Dwelling", "Grid", "Person", "Region", "Unit"]
