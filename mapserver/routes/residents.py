"""The residents' side (小兰帮办): report, follow and rate a case; the public map and its feeds;
the moderation queue of the cases' public summaries."""

from django.urls import path

from ..views import moderation, public, residents

app_name = "residents"

urlpatterns = [
    path("report/", residents.report_page, name="report"),
    path("report/follow/", residents.follow_page, name="report-follow"),
    path("api/resident/categories", residents.ResidentCategories.as_view(), name="api-categories"),
    path("api/resident/place", residents.ResidentPlace.as_view(), name="api-place"),
    path("api/resident/geocode", residents.ResidentGeocode.as_view(), name="api-geocode"),
    path("api/resident/reports", residents.ResidentReports.as_view(), name="api-reports"),
    path("api/resident/case", residents.ResidentCase.as_view(), name="api-case"),
    path("api/resident/answer", residents.ResidentAnswer.as_view(), name="api-answer"),
    path("api/resident/photos", residents.ResidentPhotos.as_view(), name="api-photos"),
    path("api/resident/photos/<int:photo_id>", residents.ResidentPhoto.as_view(), name="api-photo"),
    path("public/", public.public_page, name="public"),
    path("public/embed/", public.embed_page, name="public-embed"),
    path("public/feed.json", public.feed_json, name="public-feed-json"),
    path("public/feed.rss", public.feed_rss, name="public-feed-rss"),
    path("api/public/month", public.PublicMonth.as_view(), name="api-public-month"),
    path("api/public/cells", public.PublicCells.as_view(), name="api-public-cells"),
    path("api/public/cases", public.PublicCases.as_view(), name="api-public-cases"),
    path("moderation/", moderation.moderation_page, name="moderation"),
    path("moderation/events/<int:event_id>/summary", moderation.summary_propose, name="moderation-propose"),
    path("moderation/summaries/<int:summary_id>/decide", moderation.summary_decide, name="moderation-decide"),
]
