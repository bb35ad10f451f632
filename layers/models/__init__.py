"""Models of the map: regions and grids (``areas``), the 一标三实 registry (``registry``) and
events with their closed loop (``events``), the residents' tickets and public summaries
(``residents``), the keyword library's versions and the monthly reports (``judgement``), and who may read which part of the city (``scope``)."""

from .areas import BoundaryVersion, Grid, Region
from .audit import AuditChainHead, AuditEntry
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
from .exports import ExportJob
from .intake import IdempotencyKey
from .judgement import JudgementReport, KeywordLibrary
from .photos import EventPhoto
from .registry import Address, Building, Compound, Dwelling, Person, Unit
from .registry_work import RegistryTask, Visit
from .residents import PublicSummary, ResidentTicket
from .scope import ReaderScope

__all__ = [
    "Address",
    "AuditChainHead",
    "AuditEntry",
    "BoundaryVersion",
    "Building",
    "Category",
    "Compound",
    "Department",
    "Dwelling",
    "Event",
    "EventCluster",
    "EventPhoto",
    "EventTransition",
    "ExportJob",
    "Family",
    "Grid",
    "IdempotencyKey",
    "JudgementReport",
    "KeywordLibrary",
    "KeywordRule",
    "Level",
    "Person",
    "PublicSummary",
    "ReaderScope",
    "Region",
    "RegistryTask",
    "ResidentTicket",
    "SlaRule",
    "Unit",
    "Visit",
]
