"""Bulk realistic request-log rows for demos and scale benchmarks (COPY on PostgreSQL, else bulk insert)."""

from __future__ import annotations

import json
import random
import secrets
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from accounts.services import user_get_or_create
from analytics.services import rollups_refresh
from providers.catalog import catalog_get
from providers.pricing import cost_of
from routing.models import GatewayRequest

PROMPTS = [
    "Summarise this contract clause for a non-lawyer",
    "Write a haiku about distributed systems",
    "What is the capital of France?",
    "Translate 'good morning' into Japanese and explain the politeness level",
    "Explain the difference between TCP and UDP with an analogy",
    "Draft a polite reply declining a meeting invitation",
    "Refactor this Python function to remove the nested loops",
    "List five risks of deploying on a Friday",
]
COLUMNS = [
    "id",
    "user_id",
    "created_at",
    "completed_at",
    "requested_model",
    "model",
    "provider",
    "catalog_model_id",
    "price_id",
    "messages",
    "prompt_text",
    "response_text",
    "finish_reason",
    "params",
    "stream",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "input_cost_usd",
    "output_cost_usd",
    "total_cost_usd",
    "estimated_cost_usd",
    "cache_savings_usd",
    "latency_ms",
    "status",
    "http_status",
    "error_code",
    "error_message",
    "cached",
    "budget_fitted",
    "selection_mode",
    "models_considered",
    "candidates",
    "client_request_id",
]


class Command(BaseCommand):
    help = "Insert N realistic request-log rows for USER spread over the last D days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", default="demo")
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--no-rollups", action="store_true", help="Skip rebuilding the daily rollups of the days written."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count, days = options["count"], options["days"]
        if count < 1 or days < 1:
            raise CommandError("--count and --days must be positive")
        rng = random.Random(options["seed"])
        user = user_get_or_create(username=options["user"])
        models = [m for m in catalog_get(fresh=True).models if m.rates is not None]
        if not models:
            raise CommandError("the catalog is empty: run seed_catalog first")
        started = time.monotonic()
        now = timezone.now()
        batch = 20_000
        made = 0
        # Oldest first, the order a real log is written in, so rows sit in the table (and its pages) in time
        # order like production data: a benchmark over randomly ordered rows would measure a layout that
        # never occurs.
        ages = sorted((rng.randint(0, days * 86400) for _ in range(count)), reverse=True)
        while made < count:
            chunk = ages[made : made + batch]
            rows = [self._row(rng, user.pk, models, now - timedelta(seconds=age)) for age in chunk]
            self._insert(rows)
            made += len(rows)
        elapsed = time.monotonic() - started
        self.stdout.write(f"Inserted {made} request rows for {user.username} in {elapsed:.1f} s")
        if not options["no_rollups"]:
            # The rows land on past days the periodic job has already rolled up: rebuild those days now.
            result = rollups_refresh(since=(now - timedelta(days=days)).date())
            self.stdout.write(f"Rolled up usage until {result.rolled_until:%Y-%m-%d %H:%M} UTC")

    def _row(self, rng: random.Random, user_id: int, models: list, created: Any) -> list[Any]:
        model = rng.choice(models)
        cached_hit = rng.random() < 0.08
        failed = not cached_hit and rng.random() < 0.04
        prompt = rng.choice(PROMPTS)
        inp = rng.randint(12, 2500)
        out = 0 if failed else rng.randint(5, 900)
        cost = cost_of(model.rates, prompt_tokens=inp, completion_tokens=out)
        zero = Decimal(0)
        latency = rng.randint(2, 40) if cached_hit else int(rng.lognormvariate(6.6, 0.5))
        messages = [{"role": "user", "content": prompt}]
        return [
            "req_" + secrets.token_hex(12),
            user_id,
            created,
            created + timedelta(milliseconds=latency),
            model.model_id,
            model.model_id,
            model.provider,
            model.pk,
            model.price_id,
            json.dumps(messages),
            prompt,
            "" if failed else f"Answer to: {prompt}",
            "" if failed else "stop",
            "{}",
            False,
            inp,
            out,
            inp + out,
            0,
            0,
            zero if cached_hit else cost.input_cost,
            zero if cached_hit else cost.output_cost,
            zero if cached_hit else cost.total,
            cost.total,
            cost.total if cached_hit else zero,
            latency,
            "error" if failed else "success",
            502 if failed else 200,
            "upstream_error" if failed else "",
            "Provider returned 503" if failed else "",
            cached_hit,
            False,
            rng.choice(["manual", "manual", "manual", "cost-optimized", "latency-optimized"]),
            1,
            "[]",
            "",
        ]

    def _insert(self, rows: list[list[Any]]) -> None:
        table = GatewayRequest._meta.db_table
        if connection.vendor == "postgresql":
            copy_sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
            with (
                transaction.atomic(),
                connection.cursor() as cursor,
                cursor.copy(copy_sql) as copy,  # type: ignore[attr-defined]
            ):
                for row in rows:
                    copy.write_row(row)
            return
        GatewayRequest.objects.bulk_create(
            [
                GatewayRequest(
                    **{("user_id" if c == "user_id" else c): v for c, v in zip(COLUMNS, row, strict=True)}
                )
                for row in rows
            ],
            batch_size=2000,
        )
