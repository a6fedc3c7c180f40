"""The emulator's ad creatives: `/adcreatives`, `?ids=` batch reads, and image URLs it serves itself.

Every ad of each seeded account has its own creative (`ad["creative"]["id"]`). Text comes from the
stub's pure function of the creative id; the image is the stub's drawing, served as PNG bytes at
`/creative_images/<id>.png?gen=<n>` — no token needed, like Meta's signed CDN URLs. The creatives
come in the three shapes Graph uses (top-level fields; `object_story_spec.link_data`;
`.video_data` with a thumbnail), so the transform meets each.

Switches: `image_answer` makes every image URL answer 404 ("missing"), an HTML page ("not_image")
or an image over 5 MB ("oversized"); `stop_image_urls()` is what Meta does when URLs expire —
creatives re-read come with new URLs (`gen` + 1), and here those fail too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import urlsplit

from graph_emulator.account import HOSTILE_NAMES, SeededAccount
from graph_emulator.payloads import GraphError, page, parse_list
from insights_core.sources.stub_creatives import draw_creative_image, stub_creative_text

IMAGE_PATH = "/creative_images/"
ImageAnswer = Literal["png", "missing", "not_image", "oversized"]
OVERSIZED_BYTES = 6 * 1024 * 1024


class EmulatedCreatives:
    """The creatives of the seeded accounts, and how their image URLs answer."""

    def __init__(self, accounts: SeededAccount | Iterable[SeededAccount]) -> None:
        served = [accounts] if isinstance(accounts, SeededAccount) else list(accounts)
        self.accounts = {account.account_id: account for account in served}
        self.index = {str(ad["creative"]["id"]): i for a in served for i, ad in enumerate(a.entities["ad"])}
        """Each creative's position among its account's ads (its shape and name follow from it)."""
        self.owner = {str(ad["creative"]["id"]): a for a in served for ad in a.entities["ad"]}
        self.image_answer: ImageAnswer = "png"
        self.url_generation = 0
        self.reads = 0
        """Graph requests for creatives (`?ids=`, a creative node, the adcreatives edge)."""
        self.image_requests = 0
        self._lock = threading.Lock()

    def stop_image_urls(self) -> None:
        """Meta's URLs expired: re-reads return new ones, and every image URL answers 404."""
        with self._lock:
            self.url_generation += 1
            self.image_answer = "missing"

    def expected(self, creative_id: str) -> dict[str, str]:
        """What a correct collector stores for the creative: title, body, call_to_action, link_url."""
        i = self.index[creative_id]
        title, body, cta, link = stub_creative_text(creative_id)
        if self.owner[creative_id].hostile_names:
            title = f"{title} {HOSTILE_NAMES[i % len(HOSTILE_NAMES)]}"
        return {"title": title, "body": body, "call_to_action": cta, "link_url": link}

    def image_bytes(self, creative_id: str) -> bytes:
        return _drawing(creative_id, stub_creative_text(creative_id)[0])

    def creative_json(self, creative_id: str, fields: Sequence[str] | None, host: str) -> dict[str, Any]:
        """The creative as Graph returns it, in one of three shapes (by position)."""
        i, e = self.index[creative_id], self.expected(creative_id)
        url = f"http://{host}{IMAGE_PATH}{creative_id}.png?gen={self.url_generation}&oe=6A1B2C3D"
        cta = {"type": e["call_to_action"], "value": {"link": e["link_url"]}}
        account_number = self.owner[creative_id].account_id.removeprefix("act_")
        item: dict[str, Any] = {"id": creative_id, "account_id": account_number}
        if i % 3 == 0:
            item.update(
                title=e["title"],
                body=e["body"],
                call_to_action_type=e["call_to_action"],
                link_url=e["link_url"],
                image_url=url,
            )
        elif i % 3 == 1:
            link_data = {"name": e["title"], "message": e["body"], "link": e["link_url"], "call_to_action": cta}
            item.update(object_story_spec={"page_id": "1000001", "link_data": {**link_data, "picture": url}})
            item["thumbnail_url"] = url
        else:
            video = {"title": e["title"], "message": e["body"], "call_to_action": cta, "video_id": "42"}
            item.update(object_story_spec={"page_id": "1000001", "video_data": {**video, "image_url": url}})
            item["thumbnail_url"] = url
        return {k: v for k, v in item.items() if k == "id" or fields is None or k in fields}

    def answer(self, parts: list[str], params: dict[str, str], host: str) -> dict[str, Any] | None:
        """The body for a creatives request, or None when the request is not about creatives."""
        fields = parse_list(params.get("fields"))
        if not parts and "ids" in params:
            ids = [i for i in (params["ids"] or "").split(",") if i]
            unknown = [i for i in ids if i not in self.index]
            if unknown:
                raise GraphError(
                    400, 803, f"(#803) Some of the aliases you requested do not exist: {','.join(unknown)}"
                )
            self._count()
            return {i: self.creative_json(i, fields, host) for i in ids}
        if len(parts) == 1 and parts[0] in self.index:
            self._count()
            return self.creative_json(parts[0], fields, host)
        if len(parts) == 2 and parts[0] in self.accounts and parts[1] == "adcreatives":
            self._count()
            limit = int(params.get("limit") or 25)
            items = [self.creative_json(i, fields, host) for i in self.accounts[parts[0]].creative_ids]
            next_base = f"http://{host}/{'/'.join(parts)}?limit={limit}&access_token={params.get('access_token', '')}"
            return page(items, limit, params.get("after"), next_base)
        return None

    def image_response(self, path: str) -> tuple[int, bytes, str] | None:
        """(status, body, content type) for an image URL path, or None for any other path."""
        if not path.startswith(IMAGE_PATH):
            return None
        with self._lock:
            self.image_requests += 1
        creative_id = path.removeprefix(IMAGE_PATH).removesuffix(".png")
        if creative_id not in self.index or self.image_answer == "missing":
            return 404, b"Not Found", "text/plain"
        if self.image_answer == "not_image":
            return 200, b"<html><body>URL signature expired</body></html>", "text/html; charset=utf-8"
        data = self.image_bytes(creative_id)
        if self.image_answer == "oversized":
            data += b"\0" * (OVERSIZED_BYTES - len(data))
        return 200, data, "image/png"

    def _count(self) -> None:
        with self._lock:
            self.reads += 1


def serve_creative_image(handler: BaseHTTPRequestHandler) -> bool:
    """Answer an image URL with raw bytes (the Graph routes answer JSON); False for any other path."""
    creatives: EmulatedCreatives = handler.server.emulator.creatives  # type: ignore[attr-defined]
    answer = creatives.image_response(urlsplit(handler.path).path)
    if answer is None:
        return False
    status, body, content_type = answer
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    return True


@lru_cache(maxsize=256)
def _drawing(creative_id: str, caption: str) -> bytes:
    return draw_creative_image(creative_id, caption)
