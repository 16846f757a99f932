from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0010_audit_event"),
    ]

    operations = [
        migrations.AddField(
            model_name="problem",
            name="ground_truth_status",
            field=models.CharField(
                choices=[
                    ("ok", "OK"),
                    ("suspect", "Suspect (a lead should check it)"),
                    ("confirmed", "Confirmed by a lead"),
                ],
                default="ok",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="problem",
            name="ground_truth_note",
            field=models.TextField(
                blank=True, help_text="Why the ground truth was flagged, or who confirmed it."
            ),
        ),
    ]
