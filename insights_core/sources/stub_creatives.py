"""The demo account's creatives: text and a drawn image, each a pure function of the creative id.

The image is a 600 x 314 PNG (Meta's 1.91:1 link-ad shape) in a four-colour palette: shapes placed
by the id's hash and the title in Pillow's built-in bitmap font, scaled up. Palette mode and the
bitmap font keep it cheap (a couple of milliseconds) and identical on every machine with the same
Pillow; the graph emulator serves the same drawings as its image URLs.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from insights_core.models import Creative

IMAGE_SIZE = (600, 314)
CALLS_TO_ACTION = ("SHOP_NOW", "LEARN_MORE", "SIGN_UP", "GET_OFFER", "ORDER_NOW", "SUBSCRIBE", "DOWNLOAD")
"""Values of Meta's `call_to_action_type`, as the API sends them."""
_HEADLINES = (
    "New season, new favourites",
    "Free shipping this week",
    "20% off your first order",
    "Loved by 10,000 customers",
    "Back in stock",
    "The gift they will love",
    "Made to last",
    "Bundle and save",
)
_BODIES = (
    "Discover the collection everyone is talking about. Limited stock.",
    "Order today and get it by Friday. Easy returns within 30 days.",
    "Join our members and save on every order.",
    "Handmade, sustainable and built for everyday use.",
    "Our best sellers, now in new colours.",
)
_PRODUCTS = ("sneakers", "backpack", "water-bottle", "hoodie", "sunglasses", "gift-card", "candle", "headphones")
_PALETTES = (
    ((24, 54, 110), (255, 196, 61), (237, 85, 59), (250, 250, 250)),
    ((18, 92, 76), (241, 233, 218), (233, 150, 122), (255, 255, 255)),
    ((60, 24, 82), (255, 111, 145), (255, 214, 165), (255, 255, 255)),
    ((236, 240, 243), (52, 152, 219), (231, 76, 60), (33, 33, 33)),
    ((33, 33, 33), (0, 184, 148), (253, 203, 110), (250, 250, 250)),
)


def _digest(creative_id: str) -> bytes:
    return hashlib.blake2b(f"creative:{creative_id}".encode(), digest_size=32).digest()


def stub_creative_text(creative_id: str) -> tuple[str, str, str, str]:
    """(title, body, call to action, link) of a demo creative."""
    h = _digest(creative_id)
    title = _HEADLINES[h[0] % len(_HEADLINES)]
    body = _BODIES[h[1] % len(_BODIES)]
    cta = CALLS_TO_ACTION[h[2] % len(CALLS_TO_ACTION)]
    link = f"https://shop.example.com/{_PRODUCTS[h[3] % len(_PRODUCTS)]}?utm_source=facebook&utm_content={creative_id}"
    return title, body, cta, link


def draw_creative_image(creative_id: str, caption: str | None = None) -> bytes:
    """The PNG of a demo creative: background, a circle, a bar and a triangle, and `caption` (default: its title)."""
    h = _digest(creative_id)
    width, height = IMAGE_SIZE
    palette = _PALETTES[h[4] % len(_PALETTES)]
    image = Image.new("P", IMAGE_SIZE, 0)
    image.putpalette([channel for colour in palette for channel in colour])
    draw = ImageDraw.Draw(image)
    radius = 60 + h[5] % 90
    cx, cy = 80 + h[6] * (width - 160) // 255, 40 + h[7] * (height - 120) // 255
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=1)
    bar_x = h[8] * (width - 120) // 255
    draw.rectangle((bar_x, h[9] % 80, bar_x + 40 + h[10] % 80, height), fill=2)
    apex = h[11] * width // 255
    draw.polygon([(apex, 60 + h[12] % 100), (apex - 90 - h[13] % 60, height), (apex + 90 + h[14] % 60, height)], fill=1)
    text = (caption if caption is not None else stub_creative_text(creative_id)[0])[:40]
    _draw_caption(image, text, colour=3)
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)  # flat colours compress well even at the fastest level
    return out.getvalue()


def _draw_caption(image: Image.Image, text: str, colour: int, scale: int = 3) -> None:
    """`text` in the bitmap font, scaled up without smoothing, on a band across the bottom."""
    font = _bitmap_font()
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("1", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=1)
    mask = mask.resize((mask.width * scale, mask.height * scale), Image.Resampling.NEAREST)
    width, height = image.size
    band_top = height - mask.height - 24
    ImageDraw.Draw(image).rectangle((0, band_top, width, height), fill=0)
    image.paste(colour, (20, band_top + 12, 20 + mask.width, band_top + 12 + mask.height), mask)


@lru_cache(maxsize=1)
def _bitmap_font() -> ImageFont.ImageFont:
    return ImageFont.load_default_imagefont()


def stub_creatives(account_id: str, creative_ids: Sequence[str]) -> list[Creative]:
    """The demo creatives for these ids, images drawn (the stub has no URL to download from)."""
    out = []
    for creative_id in dict.fromkeys(creative_ids):
        title, body, cta, link = stub_creative_text(creative_id)
        out.append(
            Creative(
                creative_id=creative_id,
                account_id=account_id,
                title=title,
                body=body,
                call_to_action=cta,
                link_url=link,
                image_url=None,
                image_bytes=draw_creative_image(creative_id, title),
            )
        )
    return out
