"""Pages of the request log: one page of the filtered rows and its total, from the rollups when the filters are
rollup dimensions, else counted up to a cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet, Sum

from analytics.filters import RequestFilter, shared_filters
from analytics.models import DailyUsage
from analytics.usage import rollups_rolled_until
from routing.models import GatewayRequest


@dataclass
class Page:
    """One page of rows and the total they are part of. A total that is a lower bound (counting stopped at the
    cap) says so; such a page also knows whether another page follows it, having fetched one row more."""

    rows: list[Any]
    total: int
    page: int
    per_page: int
    total_is_lower_bound: bool = False
    more: bool = False  # a lower-bound page: a row beyond this page exists

    @property
    def total_pages(self) -> int:
        """The pages `total` fills: exact, or with a lower-bound total the pages known to exist."""
        return -(-self.total // self.per_page)

    @property
    def has_previous(self) -> bool:
        return 1 < self.page <= self.total_pages + 1

    @property
    def has_next(self) -> bool:
        return self.page < self.total_pages or self.more

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.rows) - 1 if self.rows else 0

    def nearby_pages(self, width: int = 2) -> list[int | None]:
        """Page numbers for links: first, last and a window around the current page; None marks a gap. With a
        lower-bound total there is no last page to offer: the window ends in a gap."""
        if self.total_pages == 0:
            return []
        wanted = {1, *range(self.page - width, self.page + width + 1)}
        if not self.total_is_lower_bound:
            wanted.add(self.total_pages)
        pages = sorted(p for p in wanted if 1 <= p <= self.total_pages)
        out: list[int | None] = []
        for number in pages:
            if out and out[-1] is not None and number - out[-1] > 1:  # type: ignore[operator]
                out.append(None)
            out.append(number)
        if self.total_is_lower_bound:
            out.append(None)
        return out


def page_of(queryset: QuerySet, *, page: int, per_page: int, total: int | None = None) -> Page:
    """One page of rows and its total: `total` when the caller knows it (a page past its end is empty and costs
    no row query), else the rows counted up to ROUTER_SEARCH_COUNT_CAP (see page_counted)."""
    if total is None:
        return page_counted(queryset, page=page, per_page=per_page, cap=settings.ROUTER_SEARCH_COUNT_CAP)
    offset = (page - 1) * per_page
    rows = list(queryset[offset : offset + per_page]) if offset < total else []
    return Page(rows=rows, total=total, page=page, per_page=per_page)


def page_counted(queryset: QuerySet, *, page: int, per_page: int, cap: int) -> Page:
    """One page and the rows counted, but no further than `cap`: counting every match of a broad search over
    millions of rows takes seconds, and "of 10,000+" serves a reader as well as "of 1,903,114" would. The count is
    one statement over any cap + 1 matches (a LIMIT'ed subquery, unordered, so the planner may stop early);
    beyond the cap the total is a lower bound, and any page may still be asked for: it shows its rows if it
    has any, and raises the bound to its last row (or makes it exact, if it turns out to be the last page)."""
    offset = (page - 1) * per_page
    fetched: list[Any] | None = None
    if offset >= cap:  # a page past the cap: its own rows tell more than the count could, so no count
        fetched = list(queryset[offset : offset + per_page + 1])
    counted = None if fetched else queryset.order_by().values("pk")[: cap + 1].count()
    if counted is not None and counted <= cap:
        rows = list(queryset[offset : offset + per_page]) if offset < counted else []
        return Page(rows=rows, total=counted, page=page, per_page=per_page)
    if fetched is None:
        fetched = list(queryset[offset : offset + per_page + 1])  # one more: does another page follow?
    rows, more = fetched[:per_page], len(fetched) > per_page
    if rows and not more:  # the last page: now the total is known
        return Page(rows=rows, total=offset + len(rows), page=page, per_page=per_page)
    total = max(cap, offset + len(rows)) if rows else cap  # past the end: no row to say how many precede
    return Page(rows=rows, total=total, page=page, per_page=per_page, total_is_lower_bound=True, more=more)


def request_page(*, filters: RequestFilter, rows: Q, page: int, per_page: int) -> Page:
    """A page of the filtered log (filters validated by the caller, over request_list(rows=rows)). The total
    comes from the rollups plus the live tail when the filters are rollup dimensions, so an unsearched list
    of millions of rows does not count them one by one; a search (or a filter the rollups don't hold) counts
    the matching rows up to ROUTER_SEARCH_COUNT_CAP, beyond which the total is a lower bound."""
    total = _total_from_rollups(filters, rows=rows)
    return page_of(filters.qs, page=page, per_page=per_page, total=total)


def _total_from_rollups(filters: RequestFilter, *, rows: Q) -> int | None:
    data = filters.form.cleaned_data
    start, end = data.get("start_date"), data.get("end_date")
    status, cached = data.get("status") or None, data.get("cached")
    if (data.get("search") or "").strip() or isinstance(start, datetime) or isinstance(end, datetime):
        return None
    if status and cached is not None:
        return None  # the rollups hold no status x cache cross-tab
    watermark = rollups_rolled_until()
    if watermark is None:
        return None
    watermark_day = watermark.astimezone(UTC).date()
    rolled = DailyUsage.objects.filter(
        rows, shared_filters(data), date__lte=min(watermark_day, end) if end else watermark_day
    )
    if start:
        rolled = rolled.filter(date__gte=start)
    sums = rolled.aggregate(n=Sum("requests"), ok=Sum("successes"), hits=Sum("cache_hits"))
    requests, successes, hits = sums["n"] or 0, sums["ok"] or 0, sums["hits"] or 0
    if status:
        total = successes if status == GatewayRequest.Status.SUCCESS else requests - successes
    elif cached is not None:
        total = hits if cached else requests - hits
    else:
        total = requests
    if end is None or end >= watermark_day:
        total += filters.qs.filter(created_at__gte=watermark).count()
    return total
