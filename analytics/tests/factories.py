"""factory-boy factories for request-log rows."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.tests.factories import UserFactory
from routing.models import Attempt, GatewayRequest


class GatewayRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GatewayRequest

    id = factory.LazyFunction(lambda: "req_" + secrets.token_hex(12))
    user = factory.SubFactory(UserFactory)
    created_at = factory.LazyFunction(timezone.now)
    completed_at = factory.LazyAttribute(lambda o: o.created_at + timedelta(milliseconds=o.latency_ms))
    requested_model = factory.SelfAttribute("model")
    model = "gpt-4o-mini"
    provider = "openai"
    prompt_text = "What is the capital of France?"
    messages = factory.LazyAttribute(lambda o: [{"role": "user", "content": o.prompt_text}])
    response_text = "The capital of France is Paris."
    finish_reason = "stop"
    input_tokens = 23
    output_tokens = 8
    total_tokens = factory.LazyAttribute(lambda o: o.input_tokens + o.output_tokens)
    input_cost_usd = Decimal("0.00000345")
    output_cost_usd = Decimal("0.0000048")
    total_cost_usd = factory.LazyAttribute(lambda o: o.input_cost_usd + o.output_cost_usd)
    latency_ms = 1234
    status = GatewayRequest.Status.SUCCESS


class AttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attempt

    request = factory.SubFactory(GatewayRequestFactory)
    index = 0
    model = factory.SelfAttribute("request.model")
    provider = factory.SelfAttribute("request.provider")
    status = "success"
    status_code = 200
    latency_ms = 1230
