from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "fleet.api"
    label = "api"
    verbose_name = "Read API"
