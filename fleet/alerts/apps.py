from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "fleet.alerts"
    label = "alerts"
    verbose_name = "Alert webhooks"
