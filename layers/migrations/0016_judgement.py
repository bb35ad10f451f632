"""The keyword library's versions, the version that routed each case, and the monthly reports.

The rules already in the keyword library become version 1, approved by the migration, so that
every later change is a draft measured against it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def library_version_one(apps, schema_editor):
    KeywordRule = apps.get_model("layers", "KeywordRule")
    KeywordLibrary = apps.get_model("layers", "KeywordLibrary")
    rows = KeywordRule.objects.select_related("department", "category").order_by("-priority", "keyword", "id")
    if not rows.exists() or KeywordLibrary.objects.exists():
        return
    rules = [
        {
            "keyword": r.keyword,
            "department": r.department.code,
            "priority": r.priority,
            "category": r.category.code if r.category_id else None,
            "active": r.active,
        }
        for r in rows
    ]
    now = timezone.now()
    KeywordLibrary.objects.create(
        number=1,
        status="approved",
        rules=rules,
        note="关键字库初始版本 (the library as it stood)",
        author_label="migration",
        created_at=now,
        updated_at=now,
        decided_by_label="migration",
        decided_at=now,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("layers", "0015_residents"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="rule_version",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True, verbose_name="关键字库版本"),
        ),
        migrations.CreateModel(
            name="JudgementReport",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("area_code", models.CharField(max_length=12, verbose_name="区划编码")),
                ("area_name", models.CharField(max_length=100, verbose_name="区划名称")),
                ("month", models.DateField(verbose_name="月份")),
                ("generated_at", models.DateTimeField(verbose_name="生成时间")),
                ("figures", models.JSONField(default=dict, verbose_name="数据")),
                ("pdf_path", models.CharField(blank=True, max_length=300)),
                ("html_path", models.CharField(blank=True, max_length=300)),
            ],
            options={
                "verbose_name": "研判报告 Judgement report",
                "verbose_name_plural": "研判报告 Judgement report",
                "ordering": ["-month", "area_code"],
                "constraints": [
                    models.UniqueConstraint(fields=("area_code", "month"), name="judgementreport_area_month")
                ],
            },
        ),
        migrations.CreateModel(
            name="KeywordLibrary",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveIntegerField(blank=True, null=True, unique=True, verbose_name="版本号")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("draft", "草稿"),
                            ("approved", "现行"),
                            ("superseded", "已替换"),
                            ("discarded", "已放弃"),
                        ],
                        default="draft",
                        max_length=10,
                        verbose_name="状态",
                    ),
                ),
                ("rules", models.JSONField(default=list, verbose_name="规则")),
                ("note", models.CharField(blank=True, max_length=300, verbose_name="变更说明")),
                ("author_label", models.CharField(blank=True, max_length=150, verbose_name="起草人")),
                ("created_at", models.DateTimeField(verbose_name="起草时间")),
                ("updated_at", models.DateTimeField(verbose_name="修改时间")),
                ("decided_by_label", models.CharField(blank=True, max_length=150, verbose_name="审批人")),
                ("decided_at", models.DateTimeField(blank=True, null=True, verbose_name="审批时间")),
                ("replay", models.JSONField(blank=True, null=True, verbose_name="回放结果")),
                ("replay_digest", models.CharField(blank=True, max_length=64)),
                (
                    "author",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="起草人",
                    ),
                ),
                (
                    "base",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="layers.keywordlibrary",
                        verbose_name="基于",
                    ),
                ),
                (
                    "decided_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="审批人",
                    ),
                ),
            ],
            options={
                "verbose_name": "关键字库版本 Keyword library version",
                "verbose_name_plural": "关键字库版本 Keyword library version",
                "ordering": ["-id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("status", "approved")), fields=("status",), name="keywordlibrary_one_live"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("number__isnull", True), ("status__in", ["approved", "superseded"]), _connector="OR"
                        ),
                        name="keywordlibrary_number_when_approved",
                    ),
                ],
            },
        ),
        migrations.RunPython(library_version_one, migrations.RunPython.noop),
    ]
