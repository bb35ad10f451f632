"""Operations: liveness, readiness and Prometheus metrics (``mapserver/metrics.py``)."""

from django.urls import path

from .. import metrics

app_name = "operations"

urlpatterns = [
    path("healthz", metrics.healthz, name="healthz"),
    path("readyz", metrics.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]
