"""Export jobs: a layer as a file that must be built whole before it is sent (GeoPackage, zipped
Shapefile), built by the export worker (``manage.py run_export_jobs``) off the request path.

The request that asks for the file gets the job at once (202, with its progress and, once
built, a download link); the worker builds the file through a server-side cursor in batches, so
neither a web worker nor the export worker holds the layer in memory. A job belongs to the
account that asked for it: only that account reads its state and downloads its file, with the
fields and data scope the one access decision (:mod:`layers.protection.access`) gives it when the file is
built. Files live in ``MINQING_EXPORT_DIR`` under the job's random folder and are removed
``MINQING_EXPORT_KEEP_HOURS`` after they were built.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    layer = models.CharField("layer", max_length=40)
    format = models.CharField("format", max_length=10)
    #: The request's query parameters as sent (checked when the job was made, read again when
    #: it runs), one value per name.
    query = models.JSONField("query", default=dict, blank=True)
    #: A digest of (layer, format, query): the same account asking for the same file again gets
    #: the job already queued, running or built instead of a second one.
    request_key = models.CharField("request key", max_length=64)
    status = models.CharField("status", max_length=10, choices=Status.choices, default=Status.QUEUED)
    folder = models.UUIDField("folder", default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+", verbose_name="owner")
    created_at = models.DateTimeField("created at", auto_now_add=True)
    started_at = models.DateTimeField("started at", null=True, blank=True)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    attempts = models.PositiveSmallIntegerField("attempts", default=0)
    worker = models.CharField("worker", max_length=100, blank=True)
    rows_done = models.BigIntegerField("rows written", default=0)
    rows_total = models.BigIntegerField("rows", null=True, blank=True)
    file_name = models.CharField("file name", max_length=80, blank=True)
    file_size = models.BigIntegerField("file size (bytes)", null=True, blank=True)
    message = models.TextField("message", blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "id"], name="exportjob_status_id"),
            models.Index(fields=["created_by", "request_key"], name="exportjob_owner_request"),
        ]
        verbose_name = "export job"

    def __str__(self) -> str:
        return f"export {self.pk}: {self.layer}.{self.format} ({self.status})"
