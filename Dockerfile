# One image for web, worker and beat (the command differs) and for the example agent.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    FLEET_VAR_DIR=/var/lib/iommu-fleet FLEET_STATIC_ROOT=/srv/iommu-fleet/static \
    PROMETHEUS_MULTIPROC_DIR=/run/iommu-fleet/prometheus
WORKDIR /srv/iommu-fleet/app

COPY pyproject.toml README.md ./
COPY agent ./agent
COPY fleet ./fleet
COPY templates ./templates
COPY static ./static
COPY deploy ./deploy
COPY docs ./docs
COPY manage.py ./
RUN pip install --no-cache-dir '.[server]' \
    && useradd --system --home-dir /var/lib/iommu-fleet --shell /usr/sbin/nologin fleet \
    && mkdir -p /var/lib/iommu-fleet /run/iommu-fleet/prometheus /srv/iommu-fleet/static \
    && FLEET_PRODUCTION=1 FLEET_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && chown -R fleet:fleet /var/lib/iommu-fleet /run/iommu-fleet

USER fleet
EXPOSE 8000
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "fleet.wsgi"]
