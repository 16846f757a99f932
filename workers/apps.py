from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"

    def ready(self) -> None:
        # The retraining loop's tasks live beside workers.tasks; importing registers them.
        from annotate.schedules import create_default_schedules
        from workers import loop_tasks  # noqa: F401

        # Default beat rows (editable in the admin) after `migrate`: see annotate.schedules.
        post_migrate.connect(create_default_schedules, sender=self)
