-- Generated from airflow_provider_cloud4wi/schemas/model.py: do not edit.
-- Regenerate with: python -m airflow_provider_cloud4wi.schemas

-- name: events_per_type_per_hour
-- Events per type per UTC hour.
SELECT event.type AS event_type,
       date_trunc('hour', from_iso8601_timestamp("when".createdAt) AT TIME ZONE 'UTC') AS hour_utc,
       count(*) AS events
FROM cloud4wi_events_jsonl
WHERE organization_id = '<cid>'
  AND "date" BETWEEN '2024-05-01' AND '2024-05-07'
GROUP BY 1, 2
ORDER BY 2, 1;

-- name: visits_per_location
-- Visits per location, with their average duration. With a by_event_type table, add AND event_type = 'visit'.
SELECT "where".locationId AS location_id,
       "where".locationName AS location_name,
       count(*) AS visits,
       avg(event.visit.duration) AS avg_duration
FROM cloud4wi_events_jsonl
WHERE organization_id = '<cid>'
  AND "date" BETWEEN '2024-05-01' AND '2024-05-07'
  AND event.type = 'visit'
GROUP BY 1, 2
ORDER BY 3 DESC, 1;
