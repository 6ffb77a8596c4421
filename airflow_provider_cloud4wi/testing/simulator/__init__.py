"""A local, deterministic simulator of the Cloud4Wi Explore API (events endpoints).

The simulator is a real HTTP/1.1 server (``http.server.ThreadingHTTPServer``) that speaks the
subset of the Explore API the provider uses: service login/logout with JWTs, the organization and
customer events endpoints with their query parameters and Elasticsearch-style scrolling. It needs
only the standard library and PyJWT; ``orjson`` is used when installed.

Protocol choices where the public documentation is silent
---------------------------------------------------------
* The end of a scroll is a ``200`` page with ``count: 0`` and ``events: []``; asking again keeps
  returning empty pages until the scroll expires.
* An unknown or expired ``scrollId`` gets ``404 {"status": "ERROR", "message": "scrollId not found
  or expired"}``. A scroll expires ``scroll_ttl`` seconds after its last use.
* ``dateStart``/``dateEnd`` filter ``when.createdAt`` (UTC) and are both inclusive. They are
  optional: a missing bound is open. ``dateStart`` after ``dateEnd`` is a ``400``.
* The customer endpoint ignores ``enableScroll`` and ``scrollId`` and never returns a ``scrollId``.
* A continuation (``scrollId``) ignores every other parameter but ``size``, which must then equal
  the scroll's size. ``events`` and ``sortBy`` values and booleans are checked strictly (400).

Control endpoints (no authentication, never faulty): ``GET``/``POST /_simulator/faults`` reads or
replaces the :class:`Faults` (a JSON object of its fields; missing fields take their defaults),
``GET /_simulator/stats`` returns the counters, ``POST /_simulator/stats/reset`` zeroes them and
``GET /_simulator/config`` describes the dataset.

Faults
------
Every fault is off by default and is a field of :class:`Faults` (its docstring says exactly what
each one does): ``SimulatorConfig(faults=Faults(...))``, the fixtures'
``cloud4wi_simulator_factory(faults=Faults(...))``, ``Cloud4WiSimulator.set_faults``, ``POST
/_simulator/faults`` or, on the command line, ``--fault NAME=VALUE`` (repeatable). These have a
flag of their own too (naming a field both ways is an error):

* ``--latency-ms N`` (``latency_ms``): every API request's reply is delayed by N ms. The server
  has a thread per connection, so concurrent requests overlap: k requests at once take about N
  ms, not k * N.
* ``--max-concurrent-requests K`` (``max_concurrent_requests``): a request arriving while K API
  requests are in flight answers ``429`` with ``Retry-After: retry_after`` (1 second unless
  ``--fault retry_after=...``). ``stats["max_requests_in_flight"]`` is the most requests served
  at once since the last reset.
* ``--unauthorized-burst K`` (``unauthorized_burst``): after each login the first K data requests
  made with the new token answer ``401``, then the same token works (an API node that has not
  seen the token yet). ``--unauthorized-burst-rate P`` (``unauthorized_burst_rate``) instead
  gives a login, with probability P, a burst of 1 to 3.
* ``--expired-token-403`` (``expired_token_403``): a data request with an expired token answers
  ``403`` instead of ``401`` (a gateway quirk).
* ``--persistent-401`` (``persistent_401``): login succeeds, every data request answers ``401``.

Module layout (imports go one way, down this list): ``cli`` -> ``server`` (the
:class:`Cloud4WiSimulator`) -> ``events`` (the events endpoints) -> ``transport`` (HTTP server and
handler), ``auth`` (login and JWTs), ``state`` (pages, scrolls, cache, statistics) -> ``dataset``
(selections and orders) -> ``render`` (JSON documents) -> ``timeline`` (index, time, customers,
random material) -> ``world`` (regions, venues, type weights) -> ``config``, ``faults``,
``primitives``, ``protocol`` (constants of the API). The simulator never imports the client
(``airflow_provider_cloud4wi.hooks`` / ``.api``): it is an independent model of the server.

Dataset formula
---------------
Events live on an endless timeline numbered from the Unix epoch; the configured data range only
selects the slice ``data_start <= createdAt < data_end`` of it (so changing the range never
changes an event). With ``E = events_per_hour`` (a multiple of 3) and ``B = E / 3`` bursts per
hour, event ``i`` (0-based, in ``createdAt`` order) has::

    hour  = i // E          # whole hours since 1970-01-01T00:00:00Z
    burst = (i % E) // 3    # bursts of 3 events share one second
    createdAt(i) = hour * 3600 + (burst * 3600) // B      (epoch seconds, UTC)

Burst 0 of every hour sits exactly on the hour boundary, each hour holds exactly ``E`` events,
and every burst puts 3 events in the same second (more when ``B > 3600``). The inverse, the first
index whose ``createdAt >= T``, is ``h, s = divmod(T, 3600); k = ceil(s * B / 3600)`` and then
``h * E + 3 * k`` if ``k < B`` else ``(h + 1) * E``: a date window maps to an index range in
O(1). Everything else about event ``i`` is a function of ``(seed, i)``:

* ``customer slot = i % customers``; the customer id is a seeded 64-bit bijection of the slot,
  so the events of one customer in ``[lo, hi)`` are the arithmetic progression of that residue.
* every customer has a home region (a time zone with its locations and geofences):
  ``region = (slot + shift(seed)) % len(REGIONS)``, so ``businessTime`` (local time) order differs
  from ``utcTime`` order and a region's events are again residues modulo ``customers``.
* random material comes from SHAKE-128 keyed by the seed, one call per block of 1024
  consecutive indices (``block = i >> 10``): 16 bytes per event make the event id (32 hex
  digits, plus a suffix letter, ``l`` location event or ``g`` geofence event, as in the docs'
  example; 128 random bits, so ids are unique in practice) and one 64-bit word ``h`` whose bits
  pick the type (13 types, weighted), the location or geofence, the hotspot, durations and the
  campaign, survey or promo object.

Nothing is stored per event: pages are rendered lazily from indices and a scroll keeps a
generator and a position, so a window of millions of events costs O(1) memory. ``businessTime``
order (``createdAtLocal``, then id) is produced window by window of local time: per region and
per stretch between two daylight-saving transitions the UTC offset is constant, so the events of
a local-time window are index ranges found by arithmetic, sorted a few thousand at a time.
"""

from airflow_provider_cloud4wi.testing.simulator.cli import main
from airflow_provider_cloud4wi.testing.simulator.config import SimulatorConfig
from airflow_provider_cloud4wi.testing.simulator.dataset import EventDataset
from airflow_provider_cloud4wi.testing.simulator.faults import Faults
from airflow_provider_cloud4wi.testing.simulator.primitives import format_api_date
from airflow_provider_cloud4wi.testing.simulator.protocol import (
    DEFAULT_CLIENT_KEY,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ORGANIZATION_ID,
    DEFAULT_PAGE_SIZE,
    EVENT_TYPES,
    MAX_PAGE_SIZE,
)
from airflow_provider_cloud4wi.testing.simulator.server import Cloud4WiSimulator

__all__ = [
    "DEFAULT_CLIENT_KEY",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ORGANIZATION_ID",
    "DEFAULT_PAGE_SIZE",
    "EVENT_TYPES",
    "MAX_PAGE_SIZE",
    "Cloud4WiSimulator",
    "EventDataset",
    "Faults",
    "SimulatorConfig",
    "format_api_date",
    "main",
]
