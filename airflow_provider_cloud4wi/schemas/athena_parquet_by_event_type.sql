-- Generated from airflow_provider_cloud4wi/schemas/model.py: do not edit.
-- Regenerate with: python -m airflow_provider_cloud4wi.schemas
-- Replace my-bucket with your bucket (twice). Keep each format under a prefix of its own:
-- Athena reads every object below LOCATION, whatever its extension.
CREATE EXTERNAL TABLE IF NOT EXISTS cloud4wi_events_parquet_by_event_type (
  `customerId` string,
  `organizationId` string,
  `event` struct<type:string,id:string,visit:struct<startAt:timestamp,startAtLocal:timestamp,timezone:string,duration:bigint,properties:struct<appId:string,appBundle:string,projectId:string,appOs:string>>,signup:struct<source:string>,email:struct<campaignId:string,campaignName:string,subject:string,url:string>,sms:struct<campaignId:string,campaignName:string,text:string,url:string>,survey:struct<surveyId:string,surveyName:string,question:string,answer:string,score:bigint>,promo:struct<promoId:string,promoName:string,callToAction:string>>,
  `where` struct<locationId:string,locationName:string,hotspotId:string,geofenceId:string,geofenceName:string,geofenceExtId:string,geofenceJSON:struct<type:string,coordinates:array<double>,radius:double>>,
  `when` struct<createdAt:timestamp,createdAtLocal:timestamp,timezone:string>,
  `raw` string
)
PARTITIONED BY (`organization_id` string, `date` string, `event_type` string)
STORED AS PARQUET
LOCATION 's3://my-bucket/cloud4wi/events/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.organization_id.type' = 'injected',
  'projection.date.type' = 'date',
  'projection.date.format' = 'yyyy-MM-dd',
  'projection.date.range' = '2020-01-01,NOW',
  'projection.date.interval' = '1',
  'projection.date.interval.unit' = 'DAYS',
  'projection.event_type.type' = 'enum',
  'projection.event_type.values' = 'signup,visit,login,promo,survey,send_email,open_email,click_email,send_sms,click_sms,arriving,geo_visit,geo_arriving,unknown',
  'storage.location.template' = 's3://my-bucket/cloud4wi/events/organization_id=${organization_id}/date=${date}/event_type=${event_type}/'
);
