"""Type-check Airflow DAGs before they run."""
