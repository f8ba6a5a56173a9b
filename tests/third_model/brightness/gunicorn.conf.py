# gunicorn configuration of the third model; every knob is a BRIGHTNESS_* variable.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from services.kit.gunicorn_hooks import gunicorn_settings
from tests.third_model.brightness.model import DEFAULT_PORT, PREFIX, BrightnessSettings

globals().update(
    gunicorn_settings(
        PREFIX,
        DEFAULT_PORT,
        "tests.third_model.brightness.app:create_app()",
        validate=lambda env: BrightnessSettings.from_env(env.environ),
    )
)
