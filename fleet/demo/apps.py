from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "fleet.demo"
    label = "demo"
