"""Not mysqlclient: a stand-in so that Airflow 3.3.2 starts on PyMySQL (see ../README.md)."""
