from django.conf import settings


def test_tasks_run_in_process_without_a_broker_setting():
    # The embedded default must need no service: no broker configured means eager tasks.
    assert settings.CELERY_TASK_ALWAYS_EAGER is (not settings.CELERY_BROKER_URL)
