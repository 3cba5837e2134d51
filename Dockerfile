# One image for every Kinship process: the three APIs (gunicorn), their workers and migrations.
#   docker build -t kinship:0.1.0 .
#   The image runs with KINSHIP_ENV=production, which refuses to start without a real hash key,
#   a PostgreSQL database for the service and the public address its links start with
#   (docs/configuration.md); the workers need the broker too. E.g. in an env file:
#     KINSHIP_HASH_KEY=<python3 -c 'import secrets; print(secrets.token_urlsafe(32))'>
#     KINSHIP_PUBLIC_BASE_URL=https://act.example.org
#     CAMPAIGNS_DATABASE_URL=postgresql://...   KAFKA_BOOTSTRAP_SERVERS=broker:9092
#   docker run --env-file kinship.env kinship:0.1.0 kinship migrate campaigns
#   docker run --env-file kinship.env -p 8000:8000 kinship:0.1.0     # campaigns API on :8000
#   docker run --env-file kinship.env kinship:0.1.0 python -m services.petitions.worker
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, named by pyproject.toml at the lock's versions (constraints.txt), so code
# changes reuse this layer.
COPY pyproject.toml README.md constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install pip==26.3 \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY shared ./shared
COPY services ./services
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
# Editable, so migrations are found beside the code (services/<name>/migrations).
RUN pip install --no-deps -c constraints.txt --build-constraint constraints.txt -e . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin kinship \
    && mkdir -p /app/var /tmp/prometheus \
    && chown kinship /app/var /tmp/prometheus

USER 10001
ENV PORT=8000 \
    KINSHIP_ENV=production \
    KINSHIP_VAR_DIR=/app/var
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"

CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "services.campaigns:create_app()"]
