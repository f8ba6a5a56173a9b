# gunicorn configuration of the detector; every knob is a DETECTOR_* variable.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.detector.settings import DEFAULT_PORT, PREFIX, validate
from services.kit.gunicorn_hooks import gunicorn_settings

globals().update(
    gunicorn_settings(
        PREFIX,
        DEFAULT_PORT,
        "services.detector.app:create_app()",
        validate=lambda env: validate(env.environ),
    )
)
