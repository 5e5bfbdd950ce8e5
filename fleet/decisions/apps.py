from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "fleet.decisions"
    label = "decisions"
