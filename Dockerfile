# catalyst-monitor container: `monitor run` as a non-root user, state in the /app/data volume,
# secrets only from the environment (`docker run --env-file /etc/catalyst-monitor/env`, see deploy/env.example).
# scripts/check_deploy.py replays these COPY steps and the install on a machine without a Docker engine.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONITOR_LOG_FORMAT=json \
    MPLCONFIGDIR=/app/data/cache/matplotlib \
    PATH=/opt/venv/bin:$PATH

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin catalyst

# The package (non-editable), then the app: config, rules, bundled samples and ticker map.
COPY pyproject.toml README.md /src/
COPY monitor /src/monitor
RUN python -m venv /opt/venv && /opt/venv/bin/pip install /src && rm -rf /src

WORKDIR /app
COPY config.toml /app/
COPY rules /app/rules
COPY models /app/models
COPY data/samples /app/data/samples
COPY data/company_tickers.json /app/data/
RUN chown -R catalyst:catalyst /app/data

USER catalyst
# The store (data/monitor.db), ticker cache and digests. A new named volume starts as a copy of the
# image's data/ (samples, ticker map); a bind mount must be given those files first.
VOLUME ["/app/data"]

# Exit 1 when a source has not succeeded within its [health] window.
HEALTHCHECK --interval=5m --timeout=30s --start-period=2m --retries=2 CMD ["monitor", "status", "--json"]

# SIGTERM (docker stop) lets running jobs finish: give it time, e.g. `docker stop -t 180`.
STOPSIGNAL SIGTERM
CMD ["monitor", "run"]
