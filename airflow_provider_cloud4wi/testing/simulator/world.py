"""The static world of the dataset: event type weights, regions (time zones) and their venues."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_cloud4wi.testing.simulator.primitives import _hex_id, _json_str
from airflow_provider_cloud4wi.testing.simulator.protocol import EVENT_TYPES

# Relative frequency of each type, out of 1024 (the low 10 bits of the attribute hash).
_TYPE_WEIGHTS: dict[str, int] = {
    "signup": 24,
    "visit": 150,
    "login": 220,
    "promo": 40,
    "survey": 30,
    "send_email": 100,
    "open_email": 60,
    "click_email": 30,
    "send_sms": 50,
    "click_sms": 20,
    "arriving": 120,
    "geo_visit": 90,
    "geo_arriving": 90,
}
_TYPE_TABLE: tuple[int, ...] = tuple(
    itertools.chain.from_iterable([n] * _TYPE_WEIGHTS[name] for n, name in enumerate(EVENT_TYPES))
)
assert len(_TYPE_TABLE) == 1024
_TYPE_INDEX = {name: n for n, name in enumerate(EVENT_TYPES)}
_GEO_TYPES = frozenset(n for n, name in enumerate(EVENT_TYPES) if name.startswith("geo_"))


@dataclass(frozen=True)
class _RegionSpec:
    """A time zone with its venues: (location name, hotspot count) and geofences."""

    timezone: str
    locations: tuple[tuple[str, int], ...]
    geofences: tuple[tuple[str, str, float, float, int], ...]  # name, ext id, lon, lat, radius


_REGION_SPECS: tuple[_RegionSpec, ...] = (
    _RegionSpec(
        "Europe/Rome",
        (("Caffè Torino", 2), ("Trattoria «Da Nennè»", 1)),
        (
            ("Piazza Castello", "torino-01", 7.686385, 45.071122, 150),
            ("Emi home", "Emilia", 10.517064, 43.675929, 100),
        ),
    ),
    _RegionSpec(
        "Europe/Zurich",
        (("Café Zürich", 2),),
        (("Zürich HB", "zrh-hb", 8.540192, 47.378177, 250),),
    ),
    _RegionSpec(
        "Europe/Berlin",
        (("Ünïcødé Straße", 1), ("Bäckerei Größenwahn", 2)),
        (("Alexanderplatz", "ber-alex", 13.41322, 52.521918, 300),),
    ),
    _RegionSpec(
        "America/Los_Angeles",
        (("Ivan Home", 1), ("Santa Mónica Pier Café", 2)),
        (("Venice Beach", "la-venice", -118.469483, 33.985047, 400),),
    ),
    _RegionSpec(
        "America/New_York",
        (("O'Brien's \"Pub\" \\ Bar", 1), ("Brooklyn Bagels", 1)),
        (("Bryant Park", "nyc-bryant", -73.983766, 40.753597, 200),),
    ),
    _RegionSpec(
        "Asia/Tokyo",
        (("東京 Shibuya", 3), ("大阪 梅田 Station", 1)),
        (("渋谷スクランブル交差点", "tyo-scramble", 139.700464, 35.659487, 80),),
    ),
    _RegionSpec(
        "Asia/Kolkata",
        (("मुंबई Central Lounge", 1),),
        (("Gateway of India", "bom-gateway", 72.834656, 18.921984, 120),),
    ),
    _RegionSpec(
        "Australia/Sydney",
        (("Bondi Beach Kiosk 🏄", 1),),
        (("Circular Quay", "syd-quay", 151.210886, -33.861406, 180),),
    ),
)

_SIGNUP_SOURCES = ("wifi", "wifi", "kiosk", "api")
_APP_VARIANTS = (("com.cloud4wi.toolkit", "android"), ("com.cloud4wi.toolkit", "ios"))
_CAMPAIGNS = (
    ("Saldi d'inverno ❄", "Fino al 50% di sconto"),
    ("Willkommen zurück", "Ihr Kaffee geht auf uns"),
    ("Weekend brunch", 'Book now & get a free "mimosa"'),
)
_SURVEY_ANSWERS = (("★☆☆☆☆", 1), ("★★☆☆☆", 2), ("★★★☆☆", 3), ("★★★★☆", 4), ("★★★★★", 5))
_PROMOS = ("Free Wi-Fi upgrade", "Due cappuccini al prezzo di uno", "Menú del día")


class _Region:
    """A region prepared for rendering: JSON fragments and the UTC offset timeline of its zone."""

    def __init__(self, spec: _RegionSpec, seed_key: int, span: tuple[int, int]) -> None:
        self.timezone = spec.timezone
        self.zone = ZoneInfo(spec.timezone)
        self.hotspot_wheres: list[str] = []  # where objects with a hotspot (login, arriving...)
        self.plain_wheres: list[str] = []  # where objects without hotspot (visit), same order
        for name, hotspots in spec.locations:
            location_id = _hex_id(seed_key, f"location:{name}")
            plain = {"locationId": location_id, "locationName": name}
            for n in range(hotspots):
                hotspot = dict(plain, hotspotId=_hex_id(seed_key, f"hotspot:{name}:{n}"))
                self.hotspot_wheres.append(_json_str(hotspot))
                self.plain_wheres.append(_json_str(plain))
        self.geo_wheres: list[str] = []
        for name, ext_id, lon, lat, radius in spec.geofences:
            geofence = {
                "geofenceName": name,
                "geofenceMetadata": [],
                "geofenceId": _hex_id(seed_key, f"geofence:{name}"),
                "geofenceExtId": ext_id,
                "geofenceJSON": {"type": "Circle", "coordinates": [lon, lat], "radius": radius},
            }
            self.geo_wheres.append(_json_str(geofence))
        self.app_properties = [
            _json_str(
                {
                    "appId": _hex_id(seed_key, f"app:{bundle}:{os_name}", 24),
                    "appBundle": bundle,
                    "projectId": _hex_id(seed_key, f"project:{bundle}", 24),
                    "appOs": os_name,
                }
            )
            for bundle, os_name in _APP_VARIANTS
        ]
        self.span = span
        self.transitions, self.offsets = self._offset_timeline(*span)
        self.fixed_offset: int | None = self.offsets[0] if not self.transitions else None

    def _zone_offset(self, seconds: int) -> int:
        offset = dt.datetime.fromtimestamp(seconds, self.zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())

    def _offset_timeline(self, start: int, end: int) -> tuple[list[int], list[int]]:
        """UTC instants where the zone's offset changes inside [start, end], and the offsets."""
        transitions: list[int] = []
        offsets = [self._zone_offset(start)]
        probe = start
        while probe < end:
            nxt = min(probe + 86400, end)
            if self._zone_offset(nxt) != offsets[-1]:
                low, high = probe, nxt  # offset(low) is the old one, offset(high) the new one
                while high - low > 1:
                    mid = (low + high) // 2
                    if self._zone_offset(mid) == offsets[-1]:
                        low = mid
                    else:
                        high = mid
                transitions.append(high)
                offsets.append(self._zone_offset(high))
            probe = nxt
        return transitions, offsets

    def offset_at(self, seconds: int) -> int:
        """UTC offset in seconds of this region's zone at the epoch second ``seconds``."""
        if self.span[0] <= seconds <= self.span[1]:
            if self.fixed_offset is not None:
                return self.fixed_offset
            return self.offsets[bisect.bisect_right(self.transitions, seconds)]
        return self._zone_offset(seconds)


def type_objects(seed_key: int) -> dict[int, list[str]]:
    """JSON members (``"<object>":{...}``) of the types whose object does not depend on time.

    :param seed_key: the mixed seed the object ids derive from.
    :return: per type number, the variants an event of that type picks from.
    """
    out: dict[int, list[str]] = {}
    out[_TYPE_INDEX["signup"]] = [_json_str({"signup": {"source": s}})[1:-1] for s in _SIGNUP_SOURCES]
    for kind in ("email", "sms"):
        for action in ("send", "open", "click"):
            name = f"{action}_{kind}"
            if name not in _TYPE_INDEX:
                continue
            variants = []
            for campaign, subject in _CAMPAIGNS:
                body: dict[str, Any] = {
                    "campaignId": _hex_id(seed_key, f"campaign:{kind}:{campaign}", 24),
                    "campaignName": campaign,
                    "subject" if kind == "email" else "text": subject,
                }
                if action == "click":
                    body["url"] = f"https://example.com/c/{body['campaignId'][:8]}?utm_source={kind}"
                variants.append(_json_str({kind: body})[1:-1])
            out[_TYPE_INDEX[name]] = variants
    survey_id = _hex_id(seed_key, "survey:satisfaction", 24)
    out[_TYPE_INDEX["survey"]] = [
        _json_str(
            {
                "survey": {
                    "surveyId": survey_id,
                    "surveyName": "Guest satisfaction",
                    "question": "How was your visit?",
                    "answer": answer,
                    "score": score,
                }
            }
        )[1:-1]
        for answer, score in _SURVEY_ANSWERS
    ]
    out[_TYPE_INDEX["promo"]] = [
        _json_str(
            {
                "promo": {
                    "promoId": _hex_id(seed_key, f"promo:{name}", 24),
                    "promoName": name,
                    "callToAction": f"https://example.com/promo/{n}",
                }
            }
        )[1:-1]
        for n, name in enumerate(_PROMOS)
    ]
    return out
