"""Events' descriptions with the ID numbers and phones in them masked (layers.protection.personal.
mask_free_text); the text as written moves to ``description_cipher``, encrypted, for an audited
reveal. Existing rows are rewritten in batches; only rows with a run of digits long enough to be
a phone are read."""

from django.db import migrations, models

BATCH = 2_000


def mask_descriptions(apps, schema_editor) -> None:
    from layers.protection import personal

    Event = apps.get_model("layers", "Event")
    candidates = Event.objects.filter(description__regex=r"[0-9０-９]{3}[- ]?[0-9０-９]{4}").order_by("pk")
    last = 0
    while True:
        rows = list(candidates.filter(pk__gt=last).values_list("pk", "description")[:BATCH])
        if not rows:
            return
        changed = []
        for pk, text in rows:
            shown = personal.mask_free_text(text)
            if shown != text:
                changed.append(Event(pk=pk, description=shown, description_cipher=personal.encrypt(text)))
        Event.objects.bulk_update(changed, ["description", "description_cipher"])
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("layers", "0011_application_role")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="description_cipher",
            field=models.TextField(blank=True, default="", db_default="", editable=False),
        ),
        migrations.RunPython(mask_descriptions, migrations.RunPython.noop),
    ]
