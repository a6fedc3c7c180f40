"""Number and date formatting for pages. Pure; a missing value (None, NaN) is always shown as "—"."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence

import pandas as pd

DASH = "—"
CURRENCY_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "JPY": "¥",
    "BRL": "R$",
    "MXN": "MX$",
    "AUD": "A$",
    "CAD": "CA$",
}


_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_PATTERNS = re.compile(r"(?<=[:@])|(?<=www)(?=\.)", re.IGNORECASE)
WORD_JOINER = "\u2060"
"""Invisible, and not a word character: it splits `http://`, `www.`, `a@b` and `:name:` for Streamlit's
markdown, which links URLs and e-mail addresses and swaps `:shortcodes:` in the text after escapes
are resolved (so a backslash cannot stop those)."""


def literal(value: object) -> str:
    """`value` as markdown that Streamlit shows character for character, never as markup.

    Names, statuses and messages come from Meta (whoever can rename an ad writes them) or from
    what a visitor typed; headings, captions, alerts, metric values and link labels all render
    markdown, so an image there is fetched by every viewer's browser and a link is clickable.
    Every ASCII punctuation character is backslash-escaped (CommonMark allows it for all of them,
    and it also stops Streamlit's `:color[...]` directives and `$` math); control characters,
    which could start a new block, become spaces; a WORD_JOINER after each `:` and `@` and inside
    `www.` stops the link and shortcode passes that run on the text itself.
    """
    text = _CONTROL.sub(" ", "" if value is None else str(value))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _TEXT_PATTERNS.sub(WORD_JOINER, text))


def plotly_literal(value: object) -> str:
    """`value` as plotly text: plotly renders a subset of HTML (`<a href>`, `<b>`) in titles,
    tick labels and hover text, and decodes entities only after it has split the tags."""
    return html.escape("" if value is None else str(value), quote=False)


def is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]  # the stubs know scalars only; any object works
    except (TypeError, ValueError):
        return False


def _as_float(value: object) -> float:
    """A present cell as a float: any number (Python, numpy, Decimal) or numeric text; else it raises."""
    return float(value)  # type: ignore[arg-type]  # cells are untyped: float() is the check


def _as_timestamp(value: object) -> pd.Timestamp:
    """A present cell as a Timestamp: a datetime, date, datetime64 or ISO text; else it raises."""
    return pd.Timestamp(value)  # type: ignore[arg-type]  # cells are untyped: Timestamp() is the check


def format_money(value: object, currency: str | None = "USD") -> str:
    if is_missing(value):
        return DASH
    amount = _as_float(value)
    symbol = CURRENCY_SYMBOLS.get(currency or "", "")
    sign = "-" if amount < 0 else ""
    text = f"{abs(amount):,.2f}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency or ''}".rstrip()


def format_int(value: object) -> str:
    return DASH if is_missing(value) else f"{round(_as_float(value)):,}"


def format_number(value: object, decimals: int = 2) -> str:
    return DASH if is_missing(value) else f"{_as_float(value):,.{decimals}f}"


def format_percent(value: object, decimals: int = 2) -> str:
    """`value` is already a percentage (CTR = clicks / impressions * 100)."""
    return DASH if is_missing(value) else f"{_as_float(value):,.{decimals}f}%"


def format_multiple(value: object, decimals: int = 2) -> str:
    """A ratio read as "times" (ROAS: revenue / spend): 2.38×."""
    return DASH if is_missing(value) else f"{_as_float(value):,.{decimals}f}×"


def format_point_change(current: object, previous: object, decimals: int = 2) -> str | None:
    """The change of a percentage (CTR, conversion rate) in percentage points, "+0.40 pts"; None without both.

    A CTR going from 1.0% to 1.4% rose by 0.4 points (and by 40 percent): points say what moved.
    """
    if is_missing(current) or is_missing(previous):
        return None
    change = round(_as_float(current) - _as_float(previous), decimals) + 0.0
    return f"{change:+.{decimals}f} pts"


def format_change(value: object) -> str | None:
    """A change in percent for `st.metric(delta=...)`; None (no delta shown) when there is nothing to compare."""
    if is_missing(value):
        return None
    change = round(_as_float(value), 1) + 0.0  # + 0.0 turns -0.0 into 0.0: a tiny fall is no "↓ -0.0%"
    return f"{change:+.1f}%"


def format_duration(seconds: object) -> str:
    if is_missing(seconds):
        return DASH
    total = _as_float(seconds)
    if total < 60:
        return f"{total:.1f} s"
    minutes, secs = divmod(round(total), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def format_timestamp(value: object) -> str:
    """A UTC timestamp (naive means UTC, as stored) shown as `YYYY-MM-DD HH:MM UTC`."""
    if is_missing(value):
        return DASH
    stamp = _as_timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def format_age(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, round(seconds))} s ago"
    if seconds < 5400:
        return f"{round(seconds / 60)} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


ENUM_WORDS: dict[str, str] = {
    # objectives (ODAX and legacy)
    "OUTCOME_SALES": "Sales",
    "OUTCOME_TRAFFIC": "Traffic",
    "OUTCOME_AWARENESS": "Awareness",
    "OUTCOME_ENGAGEMENT": "Engagement",
    "OUTCOME_LEADS": "Leads",
    "OUTCOME_APP_PROMOTION": "App promotion",
    "CONVERSIONS": "Conversions",
    "BRAND_AWARENESS": "Brand awareness",
    "VIDEO_VIEWS": "Video views",
    "MESSAGES": "Messages",
    "PRODUCT_CATALOG_SALES": "Catalog sales",
    # statuses (configured and effective)
    "ACTIVE": "Active",
    "PAUSED": "Paused",
    "DELETED": "Deleted",
    "ARCHIVED": "Archived",
    "CAMPAIGN_PAUSED": "Paused (campaign)",
    "ADSET_PAUSED": "Paused (ad set)",
    "IN_PROCESS": "In process",
    "WITH_ISSUES": "With issues",
    "PENDING_REVIEW": "Pending review",
    "DISAPPROVED": "Disapproved",
    "PREAPPROVED": "Pre-approved",
    "PENDING_BILLING_INFO": "Pending billing info",
    # optimization goals and billing events
    "OFFSITE_CONVERSIONS": "Website conversions",
    "LINK_CLICKS": "Link clicks",
    "LANDING_PAGE_VIEWS": "Landing page views",
    "IMPRESSIONS": "Impressions",
    "REACH": "Reach",
    "LEAD_GENERATION": "Leads",
    "QUALITY_LEAD": "Quality leads",
    "POST_ENGAGEMENT": "Post engagement",
    "PAGE_LIKES": "Page likes",
    "THRUPLAY": "ThruPlay",
    "VALUE": "Conversion value",
    "APP_INSTALLS": "App installs",
    "AD_RECALL_LIFT": "Ad recall lift",
    "TWO_SECOND_CONTINUOUS_VIDEO_VIEWS": "2-second video views",
    "CONVERSATIONS": "Conversations",
}
"""Meta's enum values in the words Ads Manager uses; `enum_label` spells any other one out."""

ENUM_COLUMNS = frozenset(
    {
        "objective",
        "effective_status",
        "status",
        "configured_status",
        "optimization_goal",
        "billing_event",
        "bid_strategy",
    }
)
"""Columns holding Meta enums: shown as words on the pages, exported as Meta sent them."""

_ENUM = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


def enum_label(value: object) -> str:
    """A Meta enum as words: OUTCOME_SALES -> Sales, ADSET_PAUSED -> Paused (ad set), and an unknown
    SOME_NEW_VALUE -> Some new value. Anything that is not an upper-case enum is returned as it is;
    missing is "—". The result is plain text: pages still pass it through `literal` for markdown."""
    if is_missing(value):
        return DASH
    text = str(value)
    if text in ENUM_WORDS:
        return ENUM_WORDS[text]
    if not _ENUM.fullmatch(text):
        return text
    words = text.removeprefix("OUTCOME_").replace("_", " ").lower()
    return words[:1].upper() + words[1:]


def role_text(role: str | None, roles: Sequence[str]) -> str:
    """A user's role in one cell: the one in force (the highest), the others listed after it."""
    others = [r for r in roles if r != role]
    if role is None:
        return "no role"
    return f"{role} (also {', '.join(others)})" if others else role


METRIC_KINDS: dict[str, str] = {
    "spend": "money",
    "revenue": "money",
    "cpc": "money",
    "cpm": "money",
    "cost_per_conversion": "money",
    "prev_spend": "money",
    "prev_revenue": "money",
    "impressions": "int",
    "clicks": "int",
    "reach": "int",
    "unique_clicks": "int",
    "conversions": "number",
    "ctr": "percent",
    "conversion_rate": "percent",
    "roas": "multiple",
    "frequency": "ratio",
    "roas_change": "change",
    "spend_change": "change",
    "efficiency_score": "score",
    **dict.fromkeys(ENUM_COLUMNS, "enum"),
    "date": "date",
    "date_start": "date",
    "date_end": "date",
    "since": "date",
    "until": "date",
    "sync_timestamp": "timestamp",
}
"""How each known column is shown; columns not listed are shown as they are."""

METRIC_LABELS: dict[str, str] = {
    "spend": "Spend",
    "impressions": "Impressions",
    "clicks": "Clicks",
    "conversions": "Conversions",
    "revenue": "Revenue",
    "ctr": "CTR",
    "cpc": "CPC",
    "cpm": "CPM",
    "roas": "ROAS",
    "cost_per_conversion": "Cost per conversion",
    "conversion_rate": "Conversion rate",
    "reach": "Reach",
    "unique_clicks": "Unique clicks",
    "frequency": "Frequency",
}


COLUMN_LABELS: dict[str, str] = {
    **METRIC_LABELS,
    "name": "Name",
    "objective": "Objective",
    "optimization_goal": "Optimization goal",
    "billing_event": "Billing event",
    "effective_status": "Status",
    "status": "Status",
    "entity_id": "Id",
    "campaign_id": "Campaign id",
    "campaign_name": "Campaign",
    "adset_name": "Ad set",
    "adset_id": "Ad set id",
    "ad_id": "Ad id",
    "account_id": "Account",
    "date": "Date",
    "date_start": "Date",
    "date_end": "Date end",
    "sync_timestamp": "Started (UTC)",
    "sync_type": "Type",
    "mode": "Mode",
    "since": "From",
    "until": "To",
    "entity_type": "Scope",
    "total_duration_seconds": "Duration (s)",
    "rows_read": "Rows read",
    "rate_limit_hits": "Rate-limit hits",
    "sync_id": "Sync id",
    "first_error": "First error",
    "campaigns_processed": "Campaigns",
    "campaigns_errors": "Campaign errors",
    "adsets_processed": "Ad sets",
    "adsets_errors": "Ad set errors",
    "ads_processed": "Ads",
    "ads_errors": "Ad errors",
    "level": "Level",
    "days_synced": "Days stored",
    "window_days": "Window (days)",
    "coverage_pct": "Coverage",
    "roas_change": "ROAS change",
    "efficiency_score": "Efficiency",
    "username": "User",
    "email": "Email",
    "role": "Role",
    "roles": "Roles",
    "requested_by": "Requested by",
    "created_at": "Created",
    "request": "Request",
    "error": "Error",
    "id": "Id",
}
"""Column headers for shown tables (exports keep the raw column names)."""


def format_value(value: object, kind: str, currency: str | None = "USD") -> str:
    if kind == "money":
        return format_money(value, currency)
    if kind == "int":
        return format_int(value)
    if kind == "percent":
        return format_percent(value)
    if kind == "ratio":
        return format_number(value, 2)
    if kind == "multiple":
        return format_multiple(value)
    if kind == "enum":
        return enum_label(value)
    if kind == "number":
        return format_number(value, 0 if not is_missing(value) and _as_float(value) == int(_as_float(value)) else 2)
    if kind == "change":
        return format_change(value) or DASH
    if kind == "score":
        return format_number(value, 1)
    if kind == "timestamp":
        return format_timestamp(value)
    if kind == "date":
        return DASH if is_missing(value) else _as_timestamp(value).strftime("%Y-%m-%d")
    return DASH if is_missing(value) else str(value)


def _guess_kind(values: pd.Series) -> str | None:
    if pd.api.types.is_datetime64_any_dtype(values):
        return "timestamp"
    present = values.dropna()
    if len(present) and isinstance(present.iloc[0], dt.datetime):
        return "timestamp"
    if len(present) and isinstance(present.iloc[0], dt.date):
        return "date"
    return None


def display_frame(
    frame: pd.DataFrame,
    currency: str | None = "USD",
    kinds: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A copy of `frame` with every known metric column formatted as text ("—" for missing) and labelled."""
    kinds = {**METRIC_KINDS, **(kinds or {})}
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        kind = kinds.get(column) or _guess_kind(values)
        out[column] = (
            [format_value(v, kind, currency) for v in values]
            if kind
            else values.map(lambda v: DASH if is_missing(v) else v)
        )
    return out.rename(columns={**COLUMN_LABELS, **(labels or {})})


PEER_METRIC_KINDS = {"ctr": "percent", "cpc": "money", "roas": "multiple"}


def better_than_text(share: object) -> str:
    """The peer percentile in words: "better than 62% of peers"."""
    return DASH if is_missing(share) else f"better than {round(_as_float(share))}% of peers"


def format_peer_comparison(comparison: pd.DataFrame, currency: str | None = "USD") -> pd.DataFrame:
    """`scoring.peer_comparison` as text: each row in its metric's format, the rank said in words.

    The difference from the median of a percentage (CTR) is in points; of a money or ROAS value in
    its own unit, with the relative difference in percent beside it.
    """
    rows = []
    for row in comparison.to_dict("records"):
        kind = PEER_METRIC_KINDS.get(row["metric"], "ratio")
        if kind == "percent":
            difference = format_point_change(row["value"], row["peer_median"]) or DASH
        elif is_missing(row["difference"]):
            difference = DASH
        else:
            sign = "+" if _as_float(row["difference"]) >= 0 else "-"
            difference = sign + format_value(abs(_as_float(row["difference"])), kind, currency)
        rows.append(
            {
                "Metric": METRIC_LABELS.get(row["metric"], row["metric"]),
                "This ad": format_value(row["value"], kind, currency),
                "Peer median": format_value(row["peer_median"], kind, currency),
                "vs median": difference,
                "vs median (%)": format_value(row["difference_pct"], "change"),
                "Percentile": format_value(row["percentile"], "score"),
                "Among peers": better_than_text(row["better_than_pct"]),
                "Peers": format_int(row["peers"]),
            }
        )
    return pd.DataFrame(rows)
