"""研判: the monthly situation report, and the dispatch keyword library, whose drafts are
replayed against past cases before they go live."""

from django.urls import path, re_path

from ..views import judgement, rules

app_name = "judgement"

urlpatterns = [
    path("judgement/", judgement.judgement_page, name="page"),
    path("api/judgement/report", judgement.JudgementReport.as_view(), name="api-report"),
    path("rules/", rules.rules_page, name="rules"),
    path("rules/drafts/save", rules.rules_draft_save, name="rules-draft-save"),
    path("rules/<int:library_id>/", rules.rules_version_page, name="rules-version"),
    # replay, approve or discard (the pattern admits no other action: the rest are 404s)
    re_path(
        r"^rules/(?P<library_id>[0-9]+)/(?P<action>replay|approve|discard)$",
        rules.rules_draft_act,
        name="rules-draft-act",
    ),  # fmt: skip
    path("api/rules", rules.RuleLibrary.as_view(), name="api-rules"),
    path("api/rules/<int:library_id>", rules.RuleVersion.as_view(), name="api-rules-version"),
    path("api/rules/<int:library_id>/replay", rules.RuleReplay.as_view(), name="api-rules-replay"),
    path("api/rules/<int:library_id>/approve", rules.RuleApprove.as_view(), name="api-rules-approve"),
    path("api/rules/<int:library_id>/discard", rules.RuleDiscard.as_view(), name="api-rules-discard"),
]
