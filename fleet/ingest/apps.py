from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "fleet.ingest"
    label = "ingest"
