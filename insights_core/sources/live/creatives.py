"""Ad creatives from the Marketing API: batched reads by id, and a pure JSON -> Creative transform.

Graph reads up to 50 objects in one request (`GET /?ids=a,b,...&fields=...`), so a sync asks for
creatives 50 at a time instead of once per ad. Requests go through the SDK session of
`api.connect_api`, so they are paced, counted and retried like every other (`throttle.RetryPolicy`).

Where the text and image sit depends on how the creative was made: top-level fields (`title`,
`body`, `image_url`, `link_url`) for older or simple creatives, `object_story_spec.link_data` or
`.video_data` for page-post creatives. `thumbnail_url` is the fallback image; it is asked for at
600 x 314 (by default Meta sends 64 x 64).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from insights_core.errors import EntityError
from insights_core.models import Creative
from insights_core.sources.live.api import GraphApi

log = logging.getLogger("meta_insights.live")

CREATIVE_FIELDS = (
    "id",
    "title",
    "body",
    "call_to_action_type",
    "link_url",
    "object_story_spec",
    "image_url",
    "thumbnail_url",
)
IDS_PER_REQUEST = 50
"""Graph's limit for `?ids=` reads."""
THUMBNAIL_SIZE = (600, 314)


def fetch_creatives_json(api: GraphApi, creative_ids: Sequence[str]) -> Iterator[Mapping[str, Any]]:
    """Raw creative objects, IDS_PER_REQUEST per request. A request that fails for reasons other than
    the token or permissions (those raise FatalSyncError) is logged and its creatives left out."""
    ids = list(dict.fromkeys(creative_ids))
    for start in range(0, len(ids), IDS_PER_REQUEST):
        chunk = ids[start : start + IDS_PER_REQUEST]
        params = {
            "ids": ",".join(chunk),
            "fields": ",".join(CREATIVE_FIELDS),
            "thumbnail_width": THUMBNAIL_SIZE[0],
            "thumbnail_height": THUMBNAIL_SIZE[1],
        }
        try:
            answer = api.call("GET", ("",), params=params).json()
        except EntityError as exc:
            log.warning("%d creatives not read: %s", len(chunk), exc)
            continue
        if isinstance(answer, Mapping):
            yield from (record for record in answer.values() if isinstance(record, Mapping))


def creative_from_json(record: Mapping[str, Any], account_id: str) -> Creative | None:
    """A Creative from Graph's JSON (None without an id). Pure: tested on recorded payloads."""
    creative_id = _text(record.get("id"))
    if creative_id is None:
        return None
    spec = _mapping(record.get("object_story_spec"))
    story = next(
        (_mapping(spec[k]) for k in ("link_data", "video_data", "template_data") if isinstance(spec.get(k), Mapping)),
        {},
    )
    cta = _mapping(story.get("call_to_action"))
    cta_value = _mapping(cta.get("value"))
    return Creative(
        creative_id=creative_id,
        account_id=account_id,
        title=_first(record.get("title"), story.get("name"), story.get("title")),
        body=_first(record.get("body"), story.get("message")),
        call_to_action=_first(record.get("call_to_action_type"), cta.get("type")),
        link_url=_first(record.get("link_url"), story.get("link"), cta_value.get("link")),
        image_url=_first(
            record.get("image_url"), story.get("picture"), story.get("image_url"), record.get("thumbnail_url")
        ),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _first(*values: object) -> str | None:
    return next((text for text in map(_text, values) if text is not None), None)


def _text(value: object) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    return None
