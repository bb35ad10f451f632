"""The data steward's admin: regions, grids and the 一标三实 registry, with map widgets.

Geometry fields (``boundary``, ``footprint``, ``location``) are edited on a django-leaflet map
served from local static files; ``LEAFLET_CONFIG["TILES"]`` is empty because nothing may come
from the internet at run time. The registry tables hold millions of rows, so their admins never
draw a ``<select>`` over a big table (raw id inputs instead), never count the whole table on a
page (estimated counts) and join what a list shows in the same query.

Links to grids and regions are derived from the geometry (:mod:`layers.services.linking`): they
are shown read-only and recomputed for the saved row.

A staff user narrowed to part of the city (:mod:`layers.protection.scope`) sees, searches and opens only the
registry rows, events, clusters and grids of their scope (another row's page answers as a missing
one). Scopes themselves are edited here, by superusers only.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.forms import Media
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from leaflet.admin import LeafletAdminWidget, LeafletGeoAdmin

from layers.protection import personal
from layers.protection.access import ADMINISTRATOR
from layers.protection.audit import audit_record, current_request
from layers.protection.scope import Scope

from . import selectors
from .models import (
    Address,
    AuditEntry,
    BoundaryVersion,
    Building,
    Category,
    Compound,
    Department,
    Dwelling,
    Event,
    EventCluster,
    EventTransition,
    Grid,
    KeywordLibrary,
    KeywordRule,
    Person,
    PublicSummary,
    ReaderScope,
    Region,
    ResidentTicket,
    SlaRule,
    Unit,
)
from .services import linking
from .services.events import event_act
from .services.grids import grid_redraw

#: The derived link columns every registry row carries, shown read-only.
LINK_FIELDS = ("grid", "grid_medium", "grid_large", "community", "street", "district_code")

_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered list from the planner's statistics: an exact count(*) over millions
    of rows would cost seconds on every page. Filtered lists (a search, a filter) count exactly."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where:
            return selectors.estimated_count(self.object_list.model)
        return super().count


class ViewOnlyAdmin:
    """An admin that shows rows and never adds, changes or deletes one: the rows are written by
    their services (or by the database, for the audit log) alone."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ScopedAdmin(admin.ModelAdmin):
    """An admin whose rows are narrowed to the staff user's data scope: every list, search,
    change page and raw-id popup reads :meth:`get_queryset`."""

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request)
        scope = request.reader.scope
        return queryset if scope.is_city else self.in_scope(queryset, scope)

    def in_scope(self, queryset, scope: Scope):
        """The rows of ``queryset`` in ``scope``: registry-linked rows by their link columns."""
        return queryset.filter(scope.q())


class BigTableAdmin(ScopedAdmin, LeafletGeoAdmin):
    """Shared settings of the admins over tables of city scale."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


class LinkedAdmin(BigTableAdmin):
    """A registry table whose grid and region links follow from its geometry."""

    #: How :mod:`layers.services.linking` relinks this table.
    link_source: linking.PointSource

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), *LINK_FIELDS)

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        # The admin saves a form in one transaction, so the row and its new links commit together.
        super().save_model(request, obj, form, change)
        self.relink(obj)

    def relink(self, obj) -> None:
        linking.link(self.link_source, where="t.id = %s", params=[obj.pk])


@admin.register(Region)
class RegionAdmin(LeafletGeoAdmin):
    list_display = ("code", "name", "level", "parent", "valid_from")
    list_filter = ("level",)
    search_fields = ("code", "name")
    list_select_related = ("parent",)
    autocomplete_fields = ("parent",)


class GridForm(forms.ModelForm):
    """Checks a redrawn boundary before the redraw service sees it: a valid shape, and a
    ``valid_from`` not before the current boundary's (history runs forwards)."""

    class Meta:
        model = Grid
        fields = ("code", "name", "level", "parent", "community", "boundary", "valid_from", "worker")

    def clean(self) -> dict:
        data = super().clean()
        boundary = data.get("boundary")
        if boundary is not None and "boundary" in self.changed_data:
            if not boundary.valid:
                self.add_error("boundary", _("invalid boundary: %(reason)s") % {"reason": boundary.valid_reason})
            # Forms copy their data onto the instance only after clean(): it still holds the row.
            current = self.instance.valid_from if self.instance.pk else None
            starts = _redraw_date(data.get("valid_from"), "valid_from" in self.changed_data)
            if current and starts < current:
                self.add_error("valid_from", _("before the current boundary's start %(date)s") % {"date": current})
        return data


def _redraw_date(valid_from: dt.date | None, given: bool) -> dt.date:
    """A redrawn boundary holds from the date the steward typed, else from today."""
    return valid_from if given and valid_from else timezone.localdate()


@admin.register(Grid)
class GridAdmin(ScopedAdmin, LeafletGeoAdmin):
    form = GridForm
    list_display = ("code", "name", "level", "parent", "community", "worker", "valid_from")
    list_filter = ("level",)
    search_fields = ("code", "name")
    list_select_related = ("parent", "community", "worker")
    autocomplete_fields = ("parent", "community", "worker")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        """Who works a grid decides who reads its residents and cases: a permission, set by
        administrators only (every change is audited, layers.protection.audit)."""
        readonly = tuple(super().get_readonly_fields(request, obj))
        reader = request.reader
        if reader.superuser or ADMINISTRATOR in reader.roles:
            return readonly
        return (*readonly, "worker")

    def save_model(self, request: HttpRequest, obj: Grid, form, change: bool) -> None:
        """A redrawn boundary goes through ``layers.services.grids.grid_redraw``, which keeps
        the old shape as a :class:`BoundaryVersion` and relinks the registry rows around both;
        a new grid links the rows inside it."""
        if change and "boundary" in form.changed_data:
            obj.valid_from = _redraw_date(obj.valid_from, "valid_from" in form.changed_data)
            # The service reads the old shape from the database, so it runs before our save;
            # the save then writes the other fields of the form (the boundary is already equal).
            grid_redraw(grid=obj, boundary=obj.boundary, valid_from=obj.valid_from, source=f"admin:{request.user}")
        super().save_model(request, obj, form, change)
        if not change:
            linking.relink_area(obj.boundary.envelope.wkt)

    def in_scope(self, queryset, scope: Scope):
        return queryset.filter(scope.grid_q())


class _BoundaryMap(LeafletAdminWidget):
    template_name = "leaflet/admin/widget.html"
    geom_type = "MULTIPOLYGON"
    modifiable = False


@admin.register(BoundaryVersion)
class BoundaryVersionAdmin(ViewOnlyAdmin, admin.ModelAdmin):
    """History is read-only: shapes are archived by the redraw service, never edited here."""

    list_display = ("subject", "code", "level", "valid_from", "valid_to", "source")
    list_filter = ("subject", "level")
    search_fields = ("code",)
    readonly_fields = ("boundary_map",)
    fields = ("subject", "code", "level", "valid_from", "valid_to", "source", "boundary_map")

    @admin.display(description="边界 Boundary")
    def boundary_map(self, obj: BoundaryVersion) -> SafeString:
        # A view-only admin would print the polygon as WKT; draw it on a non-editable map.
        widget = _BoundaryMap()
        # The widget's inline script carries the response's CSP nonce (mapserver.security).
        request = current_request()
        widget.csp_nonce = getattr(request, "csp_nonce", None)
        return widget.render("boundary", obj.boundary, attrs={"id": "id_boundary"})

    @property
    def media(self) -> Media:
        # View-only pages build no form widgets, so the map's scripts are added here.
        return super().media + _BoundaryMap().media


@admin.register(Compound)
class CompoundAdmin(LinkedAdmin):
    link_source = linking.COMPOUND
    list_display = ("code", "name", "grid", "street", "district_code")
    search_fields = ("code", "name")
    list_select_related = ("grid", "street")


@admin.register(Building)
class BuildingAdmin(LinkedAdmin):
    link_source = linking.BUILDING
    list_display = ("code", "name", "use", "floors", "compound", "grid", "district_code")
    list_filter = ("use",)
    search_fields = ("code", "name")
    list_select_related = ("compound", "grid")
    raw_id_fields = ("compound",)


@admin.register(Address)
class AddressAdmin(LinkedAdmin):
    link_source = linking.ADDRESS
    list_display = ("code", "full_text", "road", "door_number", "grid", "street", "district_code")
    search_fields = ("code", "full_text")
    list_select_related = ("grid", "street")
    raw_id_fields = ("building",)

    def relink(self, obj: Address) -> None:
        # Dwellings and persons take the links of their address, so they follow it.
        super().relink(obj)
        for source in (linking.DWELLING, linking.PERSON):
            linking.link(source, where="t.address_id = %s", params=[obj.pk])


@admin.register(Dwelling)
class DwellingAdmin(LinkedAdmin):
    link_source = linking.DWELLING
    list_display = ("code", "use", "occupancy", "area_m2", "address", "grid", "district_code")
    list_filter = ("use", "occupancy")
    search_fields = ("code",)
    list_select_related = ("address", "grid")
    raw_id_fields = ("building", "address")


@admin.register(Person)
class PersonAdmin(LinkedAdmin):
    """Persons show only the masked ID number and phone; the ciphertexts and digests never
    appear. Persons arrive through the importer, which protects their personal data, so they
    are not added here and their personal columns are read-only."""

    link_source = linking.PERSON
    list_display = ("name", "id_number_masked", "phone_masked", "gender", "residence", "address", "grid")
    list_filter = ("residence", "gender")
    search_fields = ("name",)
    list_select_related = ("address", "grid")
    raw_id_fields = ("dwelling", "address")
    # The age, never the birth date: the birth date is the very part of the ID number its mask
    # hides, so the two side by side would rebuild it.
    fields = (
        "name",
        "id_number_masked",
        "phone_masked",
        "gender",
        "age",
        "residence",
        "care_tags",
        "dwelling",
        "address",
        *LINK_FIELDS,
    )
    readonly_fields = ("name", "id_number_masked", "phone_masked", "gender", "age")

    @admin.display(description="年龄 Age")
    def age(self, obj: Person) -> int:
        return personal.age_on(obj.birth_date, timezone.localdate())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        """A full 18-character ID number is matched through its keyed digest (the clear number
        is not stored), for readers who may reveal ID numbers only, and each such search is
        audited like a reveal: for anyone else it would be a lookup oracle. Anything else
        searches names."""
        term = search_term.strip().upper()
        if _ID_NUMBER.match(term):
            if not request.reader.may_reveal:
                messages.warning(request, _("searching by ID number needs the reveal permission"))
                return queryset.none(), False
            # Any configured key: rows not yet rewritten by a key rotation are found too.
            found = queryset.filter(id_number_digest__in=personal.digests(term))
            audit_record(
                action="reveal.search",
                target="person:id_number",
                detail={"field": "id_number", "masked": personal.mask_id_number(term), "found": found.count()},
            )
            return found, False
        return super().get_search_results(request, queryset, search_term)


@admin.register(Unit)
class UnitAdmin(LinkedAdmin):
    link_source = linking.UNIT
    list_display = ("credit_code", "name", "kind", "address_text", "grid", "district_code")
    list_filter = ("kind",)
    search_fields = ("credit_code", "name")
    list_select_related = ("grid",)
    raw_id_fields = ("address",)


# --- Events: the taxonomy and keyword library are edited here; events are read-mostly ----------


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_en", "active")
    list_filter = ("active",)
    search_fields = ("code", "name")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "family", "department", "min_level")
    list_filter = ("family", "min_level")
    search_fields = ("code", "name")
    list_select_related = ("department",)


@admin.register(SlaRule)
class SlaRuleAdmin(admin.ModelAdmin):
    list_display = ("family", "level", "hours")
    list_editable = ("hours",)
    list_filter = ("family",)


@admin.register(KeywordRule)
class KeywordRuleAdmin(admin.ModelAdmin):
    """关键字库 as dispatch reads it: shown here, changed only through a draft on ``/rules/``
    that someone else approves after a replay (the approved version writes these rows)."""

    list_display = ("keyword", "department", "category", "priority", "active")
    list_filter = ("active", "department", "category__family")
    search_fields = ("keyword",)
    list_select_related = ("department", "category")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(KeywordLibrary)
class KeywordLibraryAdmin(admin.ModelAdmin):
    """The keyword library's versions, read-only: drafts are made and decided on ``/rules/``."""

    list_display = ("id", "number", "status", "author_label", "created_at", "decided_by_label", "decided_at")
    list_filter = ("status",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class EventTransitionInline(admin.TabularInline):
    """The log is append-only in the database too: shown, never edited here."""

    model = EventTransition
    fields = ("at", "action", "from_status", "to_status", "actor_label", "reason", "data")
    readonly_fields = fields
    ordering = ("at", "id")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(BigTableAdmin):
    """Events change through the closed loop (layers.services.events.event_act), which logs each
    step; here they are read, with the reporter's contact masked. Not deletable: the log would be
    orphaned."""

    list_display = ("id", "channel", "external_id", "category", "status", "department", "responsible_level",
                    "deadline", "received_at", "needs_location")  # fmt: skip
    list_filter = ("status", "channel", "category__family", "needs_location", "joint_handling", "responsible_level")
    # A resident quotes their ticket number (XL…) on the phone: found by it as by an external id.
    search_fields = ("external_id", "resident_ticket__ticket")
    list_select_related = ("category", "department")
    raw_id_fields = ("category", "department", "cluster", "matched_address")
    date_hierarchy = "received_at"
    inlines = (EventTransitionInline,)
    readonly_fields = (
        "channel", "external_id", "category", "description", "reporter_name_masked", "reporter_phone_masked",
        "location_input", "address_text", "geocode_method", "geocode_confidence", "geocode_precision",
        "matched_address", "needs_location", "status", "department", "responsible_level", "joint_handling",
        "escalation_level", "deadline", "reported_at", "received_at", "resolved_at", "closed_at", "satisfaction",
        "reopen_count", "cluster", "dispatch_trace", "version", *LINK_FIELDS,
    )  # fmt: skip
    exclude = ("reporter_name_cipher", "reporter_phone_cipher", "reporter_phone_digest", "description_cipher")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Event, form, change: bool) -> None:
        """The one editable field is the point: a point placed on the map is a manual location
        (the ``locate`` step: links, dispatch, cluster and a log row), not a bare save."""
        if "location" in form.changed_data and obj.location is not None:
            event_act(
                event=obj,
                action="locate",
                reader=request.reader,
                actor=request.user,
                reason="admin map",
                data={"lon": obj.location.x, "lat": obj.location.y},
            )


class ReadOnlyEventPartAdmin(ViewOnlyAdmin, ScopedAdmin):
    """A row that belongs to one event, read here within the event's scope and changed only by
    its service (the residents' follow-up link, the moderation page)."""

    def in_scope(self, queryset, scope: Scope):
        return queryset.filter(event__in=Event.objects.filter(scope.q()))


@admin.register(ResidentTicket)
class ResidentTicketAdmin(ReadOnlyEventPartAdmin):
    """Residents' tickets (the token's digest is never shown)."""

    list_display = ("ticket", "event", "created_at", "answer", "answered_at")
    search_fields = ("ticket",)
    raw_id_fields = ("event",)
    exclude = ("token_digest",)


@admin.register(PublicSummary)
class PublicSummaryAdmin(ReadOnlyEventPartAdmin):
    """Public summaries: written and moderated on /moderation/ (not the author), read here."""

    list_display = ("id", "event", "status", "author", "written_at", "moderator", "moderated_at")
    list_filter = ("status",)
    search_fields = ("text",)
    raw_id_fields = ("event", "author", "moderator")


@admin.register(EventCluster)
class EventClusterAdmin(BigTableAdmin):
    list_display = ("id", "category", "event_count", "first_seen", "last_seen")
    list_filter = ("category__family",)
    list_select_related = ("category",)
    raw_id_fields = ("category",)

    def in_scope(self, queryset, scope: Scope):
        # A cluster carries no links of its own: it is in scope when one of its events is.
        return queryset.filter(pk__in=Event.objects.filter(scope.q()).values("cluster_id"))


class ReaderScopeForm(forms.ModelForm):
    """A scope names what its level asks for and nothing else: the city nothing, a region level
    regions of that level, the level 'grids' grids."""

    class Meta:
        model = ReaderScope
        fields = ("user", "level", "regions", "grids", "note")

    def clean(self) -> dict:
        data = super().clean()
        level, regions, grids = data.get("level"), data.get("regions"), data.get("grids")
        if level is None:
            return data
        wanted = ReaderScope.REGION_LEVEL.get(level)
        wrong = [r for r in regions or () if r.level != wanted]
        if wanted is None and regions:
            self.add_error("regions", _("regions do not go with the level '%(level)s'") % {"level": level})
        elif wrong:
            names = ", ".join(str(r) for r in wrong)
            self.add_error("regions", _("not a %(level)s: %(names)s") % {"level": wanted, "names": names})
        if wanted and not regions:
            self.add_error("regions", _("choose at least one %(level)s") % {"level": wanted})
        if level == ReaderScope.Level.GRIDS and not grids:
            self.add_error("grids", _("choose at least one grid"))
        if level != ReaderScope.Level.GRIDS and grids:
            self.add_error("grids", _("grids only go with the level 'grids'"))
        return data


@admin.register(ReaderScope)
class ReaderScopeAdmin(admin.ModelAdmin):
    """Who reads which part of the city. Changing a scope changes what a user may read, so only
    superusers see or edit scopes; a change reaches the map within MINQING_READER_ROLES_SECONDS."""

    form = ReaderScopeForm
    list_display = ("user", "level", "areas", "note", "updated_at")
    list_filter = ("level",)
    search_fields = ("user__username", "note")
    autocomplete_fields = ("user", "regions", "grids")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("user").prefetch_related("regions", "grids")

    @admin.display(description="区划/网格 Areas")
    def areas(self, obj: ReaderScope) -> str:
        return ", ".join([r.code for r in obj.regions.all()] + [g.code for g in obj.grids.all()]) or "—"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.reader.superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.reader.superuser

    has_add_permission = has_module_permission
    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission


@admin.register(AuditEntry)
class AuditEntryAdmin(ViewOnlyAdmin, admin.ModelAdmin):
    """The audit log, read-only for holders of ``layers.view_auditentry`` (administrators): the
    database refuses changes anyway. ``manage.py verify_audit_log`` checks its chain."""

    list_display = ("seq", "at", "actor", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor", "target")
    date_hierarchy = "at"
    readonly_fields = ("seq", "at", "actor_id", "actor", "action", "target", "detail", "prev_hash", "hash")
    show_full_result_count = False
