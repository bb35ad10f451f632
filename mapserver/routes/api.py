"""The JSON API's core: its schema, who am I, locating and geocoding, events and their actions,
personal data revealed one value at a time, the layer catalog, hot spots and early warnings.

The areas' own APIs (the wall's dashboard, the grid worker's tablet, the residents', the
stewards', the situation report's) are with their pages in the areas' modules."""

from django.urls import path

from ..schema import SchemaView
from ..views import catalog, events, geocode, heat, home, locate, personal

app_name = "api"

urlpatterns = [
    # The schema is public: intake systems read it before they have a token.
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/whoami", home.WhoAmI.as_view(), name="whoami"),
    path("api/locate", locate.Locate.as_view(), name="locate"),
    path("api/geocode", geocode.Geocode.as_view(), name="geocode"),
    path("api/events", events.EventList.as_view(), name="events"),
    path("api/events/<int:event_id>", events.EventDetail.as_view(), name="event"),
    path("api/events/<int:event_id>/actions", events.EventActions.as_view(), name="event-actions"),
    # Personal data revealed one value at a time, with a purpose; each reveal is audited.
    path("api/events/<int:event_id>/reveal", personal.EventReveal.as_view(), name="event-reveal"),
    path("api/persons/<int:person_id>/reveal", personal.PersonReveal.as_view(), name="person-reveal"),
    path("api/layers", catalog.LayerCatalog.as_view(), name="layers"),
    path("api/hotspots", heat.Hotspots.as_view(), name="hotspots"),
    path("api/early-warnings", heat.EarlyWarnings.as_view(), name="early-warnings"),
]
