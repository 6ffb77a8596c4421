"""The one description of a Cloud4Wi event document that every shipped table definition comes from.

Field names are the API's own. Each field says whether the public Events page documents it (in its
data example) or whether it is the shape the simulator assumes for an object the page names but
never shows (``email``, ``sms``, ``survey``, ``promo``). Nothing here is needed to land events:
the documents are landed exactly as sent, and a field this description does not know is simply
not typed (it stays in the Parquet ``raw`` column and in the JSON Lines text).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from airflow_provider_cloud4wi.api.protocol import EVENT_TYPES

__all__ = [
    "EVENT_FIELDS",
    "KEY_PREFIX",
    "KNOWN_EVENT_TYPES",
    "PARTITIONS",
    "PARTITIONS_BY_EVENT_TYPE",
    "Field",
    "Kind",
    "iter_leaves",
]


class Kind(str, Enum):
    """What a field holds, independently of any engine's type names."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    #: An ISO 8601 instant in UTC (``when.createdAt``).
    TIMESTAMP = "timestamp"
    #: A wall-clock time in the event's time zone. The API writes it with a ``Z`` suffix although
    #: it is not UTC (``createdAtLocal: 2022-07-21T11:41:09Z`` beside ``timezone: America/Los_Angeles``).
    LOCAL_TIMESTAMP = "local_timestamp"
    NUMBER_LIST = "number_list"
    STRUCT = "struct"
    #: Documented with no element or member to type it by (``geofenceMetadata: []``): kept as JSON
    #: where the engine has a JSON type, left to ``raw`` in Parquet.
    JSON = "json"


@dataclass(frozen=True)
class Field:
    """
    One member of the event document.

    :param name: the API's name for it.
    :param kind: what it holds.
    :param description: what it means, as the table definitions show it.
    :param fields: the members of a :attr:`Kind.STRUCT`.
    :param documented: False when the public docs never show the field (the simulator's shape).
    :param required: every event carries it (the JSON Schema requires it).
    """

    name: str
    kind: Kind
    description: str
    fields: tuple[Field, ...] = ()
    documented: bool = True
    required: bool = False


def _s(name: str, description: str, *, documented: bool = True, required: bool = False) -> Field:
    return Field(name, Kind.STRING, description, documented=documented, required=required)


def _struct(name: str, description: str, *fields: Field, documented: bool = True) -> Field:
    return Field(name, Kind.STRUCT, description, fields, documented=documented)


#: Every event type the transfers know; the API may add others, which land like any event.
KNOWN_EVENT_TYPES: tuple[str, ...] = EVENT_TYPES

_UNDOCUMENTED = "Not shown in the public docs: the shape the simulator assumes."


def _campaign(channel: str, text_field: str, text_description: str) -> Field:
    return _struct(
        channel,
        f"The campaign {channel} of send_/open_/click_{channel} events. {_UNDOCUMENTED}",
        _s("campaignId", "Campaign id.", documented=False),
        _s("campaignName", "Campaign name.", documented=False),
        _s(text_field, text_description, documented=False),
        _s("url", "The trackable link clicked (click events).", documented=False),
        documented=False,
    )


_VISIT = _struct(
    "visit",
    "The visit of visit, geo_visit and geo_arriving events.",
    Field("startAt", Kind.TIMESTAMP, "When the visit started, UTC."),
    Field("startAtLocal", Kind.LOCAL_TIMESTAMP, "When the visit started, wall clock of `timezone`."),
    _s("timezone", "IANA time zone of the visit."),
    Field("duration", Kind.INTEGER, "Length of the visit (absent on arriving events)."),
    _struct(
        "properties",
        "The mobile app that reported a geofence event.",
        _s("appId", "App id."),
        _s("appBundle", "App bundle id."),
        _s("projectId", "Project id."),
        _s("appOs", "android or ios."),
    ),
)

_EVENT = Field(
    "event",
    Kind.STRUCT,
    "What happened: the type, the event id and the type's own object.",
    (
        _s("type", "Event type: " + ", ".join(KNOWN_EVENT_TYPES) + " (new types may appear).", required=True),
        _s("id", "Event id, unique.", required=True),
        _VISIT,
        _struct("signup", "The signup of signup events.", _s("source", "Where the contact signed up.")),
        _campaign("email", "subject", "Email subject."),
        _campaign("sms", "text", "SMS text."),
        _struct(
            "survey",
            f"The answer of survey events. {_UNDOCUMENTED}",
            _s("surveyId", "Survey id.", documented=False),
            _s("surveyName", "Survey name.", documented=False),
            _s("question", "The question.", documented=False),
            _s("answer", "The answer given.", documented=False),
            Field("score", Kind.INTEGER, "The answer's score.", documented=False),
            documented=False,
        ),
        _struct(
            "promo",
            f"The promo of promo events. {_UNDOCUMENTED}",
            _s("promoId", "Promo id.", documented=False),
            _s("promoName", "Promo name.", documented=False),
            _s("callToAction", "The call to action clicked.", documented=False),
            documented=False,
        ),
    ),
    required=True,
)

_WHERE = _struct(
    "where",
    "Where it happened: a location (and hotspot) or, for geo_ events, a geofence.",
    _s("locationId", "Location id."),
    _s("locationName", "Location name."),
    _s("hotspotId", "Hotspot id."),
    _s("geofenceId", "Geofence id."),
    _s("geofenceName", "Geofence name."),
    _s("geofenceExtId", "Geofence external id."),
    Field("geofenceMetadata", Kind.JSON, "Geofence metadata (documented only as an empty list)."),
    _struct(
        "geofenceJSON",
        "Geofence shape, GeoJSON-like.",
        _s("type", "Shape type, e.g. Circle."),
        Field("coordinates", Kind.NUMBER_LIST, "Longitude, latitude."),
        Field("radius", Kind.NUMBER, "Radius of a circle."),
    ),
)

_WHEN = Field(
    "when",
    Kind.STRUCT,
    "When it happened.",
    (
        Field(
            "createdAt",
            Kind.TIMESTAMP,
            "When the event was created, UTC: the export window's clock.",
            required=True,
        ),
        Field("createdAtLocal", Kind.LOCAL_TIMESTAMP, "createdAt on the wall clock of `timezone`."),
        _s("timezone", "IANA time zone of the place."),
    ),
    required=True,
)

#: The members of an event document, in the order the tables show them.
EVENT_FIELDS: tuple[Field, ...] = (
    _s("customerId", "The contact's id.", required=True),
    _s("organizationId", "The organization (cid); absent on geo_ events."),
    _EVENT,
    _WHERE,
    _WHEN,
)

#: Where the default object keys start (``transfers/base.py``'s default key).
KEY_PREFIX = "cloud4wi/events"
#: The Hive-style levels of the default key, outermost first.
PARTITIONS: tuple[str, ...] = ("organization_id", "date")
#: The levels with ``partition_by="event_type"``.
PARTITIONS_BY_EVENT_TYPE: tuple[str, ...] = ("organization_id", "date", "event_type")


def iter_leaves(fields: tuple[Field, ...] = EVENT_FIELDS, prefix: str = "") -> Iterator[tuple[str, Field]]:
    """
    Yield ``(dotted path, field)`` for every field that is not a struct.

    :param fields: the fields to walk; default: the whole event.
    :param prefix: the dotted path of their parent.
    """
    for field in fields:
        path = f"{prefix}{field.name}"
        if field.kind is Kind.STRUCT:
            yield from iter_leaves(field.fields, path + ".")
        else:
            yield path, field
