"""Benchmark of airflow-provider-cloud4wi against the hand-written task, the raw limit and dlt."""
