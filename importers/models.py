"""Import jobs: a file a data steward uploaded, what to do with it, and how it went.

A job is a dry run or a commit of one file by one importer (:data:`importers.kinds.IMPORTERS`).
The import page creates a dry run; the steward reads its counts, rejection report and map
preview, then asks for the commit, a second job on the same file. The worker
(``manage.py run_import_jobs``) claims queued jobs in order and runs them in the background, so
a job goes on when the browser closes; its progress, counts and outcome are on the row. The
file and the job's outputs (rejection report, map preview) live in ``MINQING_IMPORT_DIR`` under
the job's random folder name, never under a name the client chose.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ImportJob(models.Model):
    class Action(models.TextChoices):
        DRY_RUN = "dry_run", "试运行 Dry run"
        COMMIT = "commit", "提交 Commit"

    class Status(models.TextChoices):
        QUEUED = "queued", "排队 Queued"
        RUNNING = "running", "运行中 Running"
        SUCCEEDED = "succeeded", "成功 Succeeded"
        FAILED = "failed", "失败 Failed"

    #: Statuses a job does not leave.
    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    kind = models.CharField("类型", max_length=40)
    action = models.CharField("操作", max_length=10, choices=Action.choices)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.QUEUED)
    #: Parameters of the importer (keywords of its ``__init__``), as the page sent them.
    options = models.JSONField("参数", default=dict, blank=True)
    #: What the steward accepted for a commit: ``max_rejected`` ("25" rows or "2.5%") and
    #: ``topology`` (commit grids even when they bring topology problems).
    accepted = models.JSONField("接受", default=dict, blank=True)
    #: The dry run a commit follows (they share the file).
    dry_run = models.ForeignKey(
        "self", models.PROTECT, null=True, blank=True, related_name="commits", verbose_name="试运行"
    )
    folder = models.UUIDField("目录", default=uuid.uuid4, editable=False)
    #: The file's name as uploaded (shown and named in reports; never used as a path).
    file_name = models.CharField("文件名", max_length=200)
    #: The stored file's name inside the job's folder (``source`` + the checked suffix).
    stored_name = models.CharField("存储名", max_length=40)
    file_size = models.BigIntegerField("大小(字节)")
    file_sha256 = models.CharField("SHA-256", max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+", verbose_name="提交人"
    )
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    started_at = models.DateTimeField("开始时间", null=True, blank=True)
    finished_at = models.DateTimeField("结束时间", null=True, blank=True)
    #: Times a worker started it (a job whose worker died is started again, up to a limit).
    attempts = models.PositiveSmallIntegerField("尝试次数", default=0)
    #: ``host:pid`` of the worker running it.
    worker = models.CharField("工作进程", max_length=100, blank=True)
    #: ``{"stage": …, "done": rows, "total": rows or null, "stages": [finished stage names]}``.
    progress = models.JSONField("进度", default=dict, blank=True)
    counts = models.JSONField("计数", default=dict, blank=True)
    #: Notes of the importer, the first rejections, and the topology problems (without shapes).
    summary = models.JSONField("摘要", default=dict, blank=True)
    #: 0 succeeded; otherwise the exit status of the import commands for the same outcome.
    exit_code = models.SmallIntegerField("退出码", null=True, blank=True)
    failure_kind = models.CharField("失败类型", max_length=20, blank=True)
    message = models.TextField("信息", blank=True)
    has_report = models.BooleanField("有拒绝报告", default=False)
    has_preview = models.BooleanField("有地图预览", default=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "id"], name="importjob_status_id")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action="dry_run", dry_run__isnull=True)
                | models.Q(action="commit", dry_run__isnull=False),
                name="importjob_commit_follows_a_dry_run",
            )
        ]
        verbose_name = verbose_name_plural = "导入任务 Import job"

    def __str__(self) -> str:
        return f"import {self.pk}: {self.action} {self.kind} {self.file_name} ({self.status})"
