"""Photos attached to events by grid workers in the field (the grid page).

The file lives under ``MEDIA_ROOT`` (``events/<event id>/<random>.<ext>``); the row says what it
is (content type and size as checked by Pillow at upload), who sent it and when. Files are never
served as public media: ``/api/grid/photos/<id>`` reads them after checking the reader's scope.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .events import Event


def photo_path(photo: EventPhoto, filename: str) -> str:
    """Where a photo's file goes: a random name (nothing of the client's file name, which may
    hold a person's name) under its event's folder, with the extension of its checked type."""
    extension = EventPhoto.EXTENSIONS[photo.content_type]
    return f"events/{photo.event_id}/{uuid.uuid4().hex}.{extension}"


class EventPhoto(models.Model):
    """A photo of an event: JPEG, PNG or WebP, at most ``MINQING_PHOTO_MAX_BYTES``."""

    class ContentType(models.TextChoices):
        JPEG = "image/jpeg", "JPEG"
        PNG = "image/png", "PNG"
        WEBP = "image/webp", "WebP"

    #: File name extension per content type.
    EXTENSIONS = {ContentType.JPEG: "jpg", ContentType.PNG: "png", ContentType.WEBP: "webp"}

    event = models.ForeignKey(Event, models.CASCADE, related_name="photos", verbose_name="事件")
    file = models.FileField("文件", upload_to=photo_path, max_length=200)
    content_type = models.CharField("类型", max_length=12, choices=ContentType.choices)
    size = models.PositiveIntegerField("大小(字节)")
    width = models.PositiveIntegerField("宽(像素)")
    height = models.PositiveIntegerField("高(像素)")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="上传人"
    )
    uploaded_at = models.DateTimeField("上传时间")
    #: The id the tablet gave the upload when it queued it; a resent upload finds the stored row.
    client_id = models.CharField("客户端编号", max_length=64, blank=True)

    class Meta:
        ordering = ["event_id", "uploaded_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "client_id"], condition=~Q(client_id=""), name="eventphoto_event_client_id_unique"
            )
        ]
        verbose_name = verbose_name_plural = "事件照片 Event photo"

    def __str__(self) -> str:
        return f"photo {self.pk} of event {self.event_id}"
