# The kassebro image: the official Airflow image plus kassebro and its pinned requirements.
# The build context is the repository less .dockerignore (no virtualenv, demo home, caches or .env).
FROM apache/airflow:3.3.2-python3.11
USER root
# The named volumes docker-compose mounts here start as copies of these directories: owned by
# airflow and group 0 (Airflow runs as AIRFLOW_UID:0), so any AIRFLOW_UID can write them.
RUN mkdir -p /opt/kassebro-data /opt/kassebro-secrets \
 && chown airflow:0 /opt/kassebro-data /opt/kassebro-secrets \
 && chmod 0775 /opt/kassebro-data \
 && chmod 0770 /opt/kassebro-secrets
COPY --chown=airflow:0 . /opt/kassebro
USER airflow
# The project itself is installed (not only its requirements): that puts the `kassebro` console
# script on PATH (airflow-init runs `kassebro pools sync`) and registers its provider.
RUN pip install --no-cache-dir -r /opt/kassebro/requirements.txt \
 && pip install --no-cache-dir --no-deps -e /opt/kassebro \
 && kassebro pools show --config /opt/kassebro/config
ENV KASSEBRO_CONFIG=/opt/kassebro/config
