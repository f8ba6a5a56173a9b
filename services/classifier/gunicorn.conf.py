# gunicorn configuration of the classifier; every knob is a CLASSIFIER_* variable.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.classifier.settings import DEFAULT_PORT, PREFIX, ClassifierSettings
from services.kit.gunicorn_hooks import gunicorn_settings

globals().update(
    gunicorn_settings(
        PREFIX,
        DEFAULT_PORT,
        "services.classifier.app:create_app()",
        validate=lambda env: ClassifierSettings.from_env(env.environ),
    )
)
