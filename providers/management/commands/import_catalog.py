"""Adds or updates models and prices from a LiteLLM-format price map (a file path or an http(s) URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.services import catalog_import, price_map_load


class Command(BaseCommand):
    help = "Import model_prices_and_context_window.json (LiteLLM format) for our four providers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="path or http(s) URL of the price map")
        parser.add_argument(
            "--activate-new", action="store_true", help="make newly added models active (default: inactive)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source: str = options["source"]
        try:
            if source.startswith(("http://", "https://")):
                response = httpx.get(source, timeout=30, follow_redirects=True)
                response.raise_for_status()
                text = response.text
            else:
                text = Path(source).read_text(encoding="utf-8")
            price_map = price_map_load(text)
        except (OSError, ValueError, httpx.HTTPError) as exc:
            raise CommandError(f"cannot read price map {source}: {exc}") from exc
        report = catalog_import(price_map=price_map, activate_new=options["activate_new"])
        self.stdout.write(
            f"Imported: {len(report.models_created)} models added, {len(report.models_updated)} updated, "
            f"{len(report.prices_created)} new price rows, {report.skipped} skipped."
        )
