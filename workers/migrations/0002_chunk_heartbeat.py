from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="scoringchunk",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
