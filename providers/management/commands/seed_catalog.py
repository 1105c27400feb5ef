"""Loads the shipped catalog; idempotent, and never overwrites an admin's later edits."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from providers.services import catalog_seed


class Command(BaseCommand):
    help = "Create the four providers and the seeded models with prices (only what is missing)."

    def handle(self, *args: Any, **options: Any) -> None:
        report = catalog_seed()
        self.stdout.write(
            f"Catalog: {report.providers_created} providers, {report.models_created} models, "
            f"{report.prices_created} prices created."
        )
