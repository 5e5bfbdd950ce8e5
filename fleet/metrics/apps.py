from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "fleet.metrics"
    label = "metrics"
    verbose_name = "Prometheus metrics"

    def ready(self) -> None:
        from celery.signals import task_failure

        from .task_failures import count_task_failure

        task_failure.connect(count_task_failure, weak=False, dispatch_uid="fleet-metrics-task-failure")
