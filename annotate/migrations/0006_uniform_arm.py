from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0005_campaign_validators"),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="arm",
            field=models.CharField(
                choices=[("active", "Active"), ("uniform", "Uniform control")],
                default="active",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="uniform_fraction",
            field=models.FloatField(
                default=0.0,
                help_text="Share of every generation's K drawn uniformly at random from the "
                "pool: the control arm that shows whether active selection pays (new campaigns "
                "get 0.1).",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("uniform_fraction__gte", 0), ("uniform_fraction__lte", 1)),
                name="campaign_uniform_fraction_0_1",
            ),
        ),
    ]
