-- Generated from airflow_provider_cloud4wi/schemas/model.py: do not edit.
-- Regenerate with: python -m airflow_provider_cloud4wi.schemas
-- SET VARIABLE cloud4wi_events_glob = 's3://my-bucket/cloud4wi/events/**/*.parquet';
CREATE OR REPLACE VIEW cloud4wi_events AS
SELECT * REPLACE (CAST("date" AS DATE) AS "date")
FROM read_parquet(getvariable('cloud4wi_events_glob'), hive_partitioning = true, hive_types_autocast = false);
