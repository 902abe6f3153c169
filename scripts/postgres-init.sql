-- docker-compose: a database for kassebro's posting journal beside Airflow's metadata DB.
CREATE DATABASE kassebro OWNER airflow;
