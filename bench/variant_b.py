"""B, the task a DAG author writes by hand: everything in a list, then one gzip and one upload.

This is the common ``@task`` body: ``requests`` in a loop over the scroll, ``response.json()``,
``events.extend(...)``, then ``"\\n".join(json.dumps(e) for e in events)``, ``gzip.compress``
(its default level, 9) and ``S3Hook.load_bytes``. The credentials come from the same Airflow
connections the operator uses.
"""

from __future__ import annotations

import gzip
import json
from typing import Any


def run(bucket: str, key: str, params: dict[str, Any]) -> tuple[int, int]:
    import requests
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from airflow_provider_cloud4wi._compat import BaseHook

    conn = BaseHook.get_connection("cloud4wi_default")
    base_url = conn.host.rstrip("/")
    org = conn.extra_dejson["organization_id"]
    session = requests.Session()
    token = session.post(
        f"{base_url}/v1/sts/login/services",
        json={"clientKey": conn.login, "clientSecret": conn.password},
        timeout=60,
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base_url}/v1/organizations/{org}/events"

    events: list[dict[str, Any]] = []
    page = session.get(url, params=params, headers=headers, timeout=60).json()
    while page["events"]:
        events.extend(page["events"])
        page = session.get(
            url, params={"scrollId": page["scrollId"], "size": params["size"]}, headers=headers, timeout=60
        ).json()

    body = "\n".join(json.dumps(event) for event in events) + "\n"
    data = gzip.compress(body.encode("utf-8"))
    S3Hook(aws_conn_id="aws_default").load_bytes(data, key=key, bucket_name=bucket, replace=True)
    return len(events), len(data)
