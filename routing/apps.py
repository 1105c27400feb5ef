"""The gateway: routing, the request log, comparisons and batches."""

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from routing.metrics import register_collectors

        register_collectors()
