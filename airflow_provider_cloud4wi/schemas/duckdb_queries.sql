-- Generated from airflow_provider_cloud4wi/schemas/model.py: do not edit.
-- Regenerate with: python -m airflow_provider_cloud4wi.schemas

-- name: events_per_type_per_hour
-- Events per type per UTC hour.
SELECT event.type AS event_type,
       date_trunc('hour', "when".createdAt AT TIME ZONE 'UTC') AS hour_utc,
       count(*) AS events
FROM cloud4wi_events
GROUP BY ALL
ORDER BY hour_utc, event_type;

-- name: visits_per_location
-- Visits per location, with their average duration.
SELECT "where".locationId AS location_id,
       "where".locationName AS location_name,
       count(*) AS visits,
       avg(event.visit.duration) AS avg_duration
FROM cloud4wi_events
WHERE event.type = 'visit'
GROUP BY ALL
ORDER BY visits DESC, location_id;
