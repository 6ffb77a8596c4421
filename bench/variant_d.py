"""D, dlt: its ``rest_api`` source following ``scrollId``, filesystem destination on the same bucket, jsonl.

Runs in its own virtualenv (bench/.work/dlt-venv, made by :mod:`bench.dlt_env`): ``dlt[filesystem]``
pulls ``s3fs``/``aiobotocore``, which pin a botocore older than the one Airflow's Amazon provider
needs here, and ``simplejson``, which ``requests`` would then use for every ``.json()`` (B's too).

The pipeline is what a dlt user writes: login for a bearer token, one resource whose paginator
reads the next ``scrollId`` from the body and sends it as a query parameter (dlt keeps the first
query's parameters too, which the API ignores on a continuation), ``stop_after_empty_page``, and
``pipeline.run(..., loader_file_format="jsonl")`` into ``s3://bucket/...`` on moto. dlt's defaults
otherwise: nested objects are flattened into columns (``max_table_nesting`` unset), files are
gzip-compressed, extract, normalize and load all run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

from bench.common import AWS_REGION, PAGE_SIZE, WORK_DIR, events_path
from bench.variant_c import login


def run(
    base_url: str,
    moto_url: str,
    bucket: str,
    key: str,
    params: dict[str, Any],
    nesting: int | None = None,
) -> tuple[int, int, str]:
    import dlt
    import requests
    from dlt.sources.rest_api import rest_api_source

    with requests.Session() as session:
        token = login(session, base_url)
    run_id = uuid.uuid4().hex[:10]
    prefix = key.rsplit("/", 1)[0]
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "auth": {"type": "bearer", "token": token},
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "scrollId",
                    "cursor_param": "scrollId",
                    "stop_after_empty_page": True,
                },
            },
            "resources": [
                {
                    "name": "events",
                    "endpoint": {
                        "path": events_path().lstrip("/"),
                        "params": {**params, "size": PAGE_SIZE},
                        "data_selector": "events",
                    },
                }
            ],
        },
        name="cloud4wi",
        **({"max_table_nesting": nesting} if nesting is not None else {}),
    )
    destination = dlt.destinations.filesystem(
        bucket_url=f"s3://{bucket}/{prefix}",
        credentials={
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "endpoint_url": moto_url,
            "region_name": AWS_REGION,
        },
    )
    pipelines_dir = WORK_DIR / "dlt-pipelines" / run_id
    pipeline = dlt.pipeline(
        pipeline_name="cloud4wi_bench",
        destination=destination,
        dataset_name=f"run_{run_id}",
        pipelines_dir=str(pipelines_dir),
    )
    info = pipeline.run(source, loader_file_format="jsonl")
    info.raise_on_failed_jobs()
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    events = int(counts.get("events", 0))
    child_rows = sum(v for k, v in counts.items() if k != "events" and not k.startswith("_dlt"))
    uploaded = _bucket_bytes(moto_url, bucket, f"{prefix}/run_{run_id}")
    shutil.rmtree(pipelines_dir, ignore_errors=True)
    note = f"dlt {dlt.__version__}; tables {sorted(k for k in counts if not k.startswith('_dlt'))}"
    if child_rows:
        note += f"; {child_rows} rows in child tables"
    return events, uploaded, note


def _bucket_bytes(moto_url: str, bucket: str, prefix: str) -> int:
    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": moto_url, "region_name": AWS_REGION},
    )
    try:
        return int(fs.du(f"{bucket}/{prefix}"))
    except OSError:
        return 0


os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
