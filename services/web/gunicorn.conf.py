# gunicorn configuration of the web demo; every knob is a WEB_* variable.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.kit.gunicorn_hooks import gunicorn_settings
from services.web.settings import DEFAULT_HTTP_THREADS, DEFAULT_PORT, PREFIX, WebSettings

globals().update(
    gunicorn_settings(
        PREFIX,
        DEFAULT_PORT,
        "services.web.app:create_app()",
        validate=lambda env: WebSettings.from_env(env.environ),
        # Web threads mostly wait on the model services, so there are more of them.
        default_http_threads=DEFAULT_HTTP_THREADS,
    )
)
