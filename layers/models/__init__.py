"""Models of the map: regions and grids (``areas``), the 一标三实 registry (``registry``) and
events with their closed loop (``events``)."""

from .areas import BoundaryVersion, Grid, Region
from .events import (
    Category,
    Department,
    Event,
    EventCluster,
    EventTransition,
    Family,
    KeywordRule,
    Level,
    SlaRule,
)
from .registry import Address, Building, Compound, Dwelling, Person, Unit

__all__ = [
    "Address",
    "BoundaryVersion",
    "Building",
    "Category",
    "Compound",
    "Department",
    "Dwelling",
    "Event",
    "EventCluster",
    "EventTransition",
    "Family",
    "Grid",
    "KeywordRule",
    "Level",
    "Person",
    "Region",
    "SlaRule",
    "Unit",
]
