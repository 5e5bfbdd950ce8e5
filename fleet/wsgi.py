"""WSGI entry point: the agent endpoints go through a lean handler, everything else through Django's."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")
dashboard = get_wsgi_application()  # sets Django up before the agent handler is imported

from fleet.ingest.agent_handler import AgentWSGIHandler, is_agent_path  # noqa: E402

agent = AgentWSGIHandler()


def application(environ, start_response):
    if is_agent_path(environ.get("PATH_INFO", "")):
        return agent(environ, start_response)
    return dashboard(environ, start_response)
