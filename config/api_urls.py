"""/v1 routes, wired by dotted path to each app's API module."""

from django.http import HttpRequest, HttpResponseBase
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from config.api_errors import not_found


@csrf_exempt
def api_not_found(request: HttpRequest) -> HttpResponseBase:
    return not_found(request)


urlpatterns: list = [
    path("", include("routing.api.urls")),
    path("analytics/", include("analytics.urls")),
    path("", include("budgets.urls")),
    path("", include("providers.urls")),
]

# Last: any other path under /v1 (a typo, a trailing slash) is a 404 in the envelope, whatever DEBUG says,
# because handler404 only answers when DEBUG is off and clients parse every /v1 error the same way.
urlpatterns.append(re_path(r"^.*$", api_not_found, name="v1-unknown"))
