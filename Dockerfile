# The kassebro image: the official Airflow image plus kassebro and its pinned requirements.
FROM apache/airflow:3.3.2-python3.11
USER root
COPY --chown=airflow:0 . /opt/kassebro
USER airflow
RUN pip install --no-cache-dir -r /opt/kassebro/requirements.txt \
 && pip install --no-cache-dir --no-deps -e /opt/kassebro
ENV KASSEBRO_CONFIG=/opt/kassebro/config
