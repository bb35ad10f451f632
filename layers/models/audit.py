"""The audit log: an append-only, hash-chained record of who did what to people's data.

Rows are written only by the database function ``layers_audit_append`` (migration
``0009_audit_log``), called at commit time for every entry queued in a transaction; a trigger
refuses UPDATE, DELETE and TRUNCATE. Each row's ``hash`` is the SHA-256 of the previous row's
hash followed by the row's canonical content (:func:`layers.protection.audit.entry_content`), so altering,
inserting or deleting a row breaks the chain at that row (``manage.py verify_audit_log``).

The permissions that guard personal data live here too: ``layers.reveal_personal_data`` (see
one ID number or phone in clear, with a purpose) and ``layers.export_personal_data`` (export
a layer's personal fields, with a purpose). Both are audited on use.
"""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    """One audited action. ``seq`` counts from 1 without gaps; ``target`` names what was acted
    on (``person:12``, ``event:7``, ``layer:events``, ``user:gridworker``); ``detail`` holds the
    rest as JSON (never a clear ID number or phone)."""

    seq = models.BigIntegerField("序号 sequence", primary_key=True)
    at = models.DateTimeField("时间 time")
    #: The acting user's id when there is one (no constraint: users may be deleted, the log stays).
    actor_id = models.BigIntegerField("用户编号 user id", null=True, blank=True)
    actor = models.CharField("操作人 actor", max_length=150)
    action = models.CharField("动作 action", max_length=40)
    target = models.CharField("对象 target", max_length=200)
    detail = models.JSONField("详情 detail", default=dict)
    prev_hash = models.CharField("前一哈希 previous hash", max_length=64)
    hash = models.CharField("哈希 hash", max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["action", "at"], name="auditentry_action_at")]
        # Nobody adds, changes or deletes entries through Django: only viewing is a permission.
        default_permissions = ("view",)
        permissions = [
            ("reveal_personal_data", "查看个人信息明文 Can reveal an ID number or phone in clear"),
            ("export_personal_data", "导出个人信息 Can export personal fields of a layer"),
        ]
        verbose_name = verbose_name_plural = "审计日志 Audit log"

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor} {self.action} {self.target}"


class AuditChainHead(models.Model):
    """The last sequence number and hash of the chain: one row, locked by every append so that
    concurrent writers queue instead of forking the chain, and compared by the verifier so that
    rows deleted from the end are found too."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        default_permissions = ()
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="auditchainhead_single_row")]

    def __str__(self) -> str:
        return f"head {self.seq}"
