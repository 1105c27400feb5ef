"""ASGI entry point: /v1 runs through a lean async middleware stack; everything else through the full one.

Django's session, CSRF, message and static-file middleware are sync or thread-hopping: each costs a trip
through a thread pool per request. The API needs none of them (API keys, JSON), so /v1 gets its own
handler with only the request-id middleware, and the hot path stays on the event loop.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

site_application = get_asgi_application()

from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

API_MIDDLEWARE = ["config.middleware.RequestIdMiddleware"]


class ApiASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        with override_settings(MIDDLEWARE=API_MIDDLEWARE):
            super().load_middleware(is_async=is_async)


api_application = ApiASGIHandler()


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http" and scope["path"].startswith("/v1/"):
        await api_application(scope, receive, send)
    else:
        await site_application(scope, receive, send)


from config.tracing import tracing_setup  # noqa: E402

tracing_setup()
