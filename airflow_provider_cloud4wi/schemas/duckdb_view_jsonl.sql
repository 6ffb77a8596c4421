-- Generated from airflow_provider_cloud4wi/schemas/model.py: do not edit.
-- Regenerate with: python -m airflow_provider_cloud4wi.schemas
-- SET VARIABLE cloud4wi_events_glob = 's3://my-bucket/cloud4wi/events/**/*.jsonl.gz';
CREATE OR REPLACE VIEW cloud4wi_events AS
SELECT * REPLACE (CAST("date" AS DATE) AS "date")
FROM read_json(
  getvariable('cloud4wi_events_glob'),
  format = 'newline_delimited',
  hive_partitioning = true, hive_types_autocast = false,
  columns = {
    "customerId": 'VARCHAR',
    "organizationId": 'VARCHAR',
    "event": 'STRUCT("type" VARCHAR, "id" VARCHAR, "visit" STRUCT("startAt" TIMESTAMPTZ, "startAtLocal" TIMESTAMP, "timezone" VARCHAR, "duration" BIGINT, "properties" STRUCT("appId" VARCHAR, "appBundle" VARCHAR, "projectId" VARCHAR, "appOs" VARCHAR)), "signup" STRUCT("source" VARCHAR), "email" STRUCT("campaignId" VARCHAR, "campaignName" VARCHAR, "subject" VARCHAR, "url" VARCHAR), "sms" STRUCT("campaignId" VARCHAR, "campaignName" VARCHAR, "text" VARCHAR, "url" VARCHAR), "survey" STRUCT("surveyId" VARCHAR, "surveyName" VARCHAR, "question" VARCHAR, "answer" VARCHAR, "score" BIGINT), "promo" STRUCT("promoId" VARCHAR, "promoName" VARCHAR, "callToAction" VARCHAR))',
    "where": 'STRUCT("locationId" VARCHAR, "locationName" VARCHAR, "hotspotId" VARCHAR, "geofenceId" VARCHAR, "geofenceName" VARCHAR, "geofenceExtId" VARCHAR, "geofenceMetadata" JSON, "geofenceJSON" STRUCT("type" VARCHAR, "coordinates" DOUBLE[], "radius" DOUBLE))',
    "when": 'STRUCT("createdAt" TIMESTAMPTZ, "createdAtLocal" TIMESTAMP, "timezone" VARCHAR)'
  }
);
