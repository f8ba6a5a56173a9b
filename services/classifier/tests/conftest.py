from __future__ import annotations

import pytest

from services.classifier.app import create_app


@pytest.fixture(scope="module")
def app(classifier_weights):
    """The classifier app with the model loaded synchronously (no gunicorn)."""
    environ = {
        "CLASSIFIER_WEIGHTS": str(classifier_weights),
        "CLASSIFIER_TORCH_THREADS": "1",
        "MAX_BODY_MB": "2",
        "CLASSIFIER_MAX_MEGAPIXELS": "4",
        "CLASSIFIER_MAX_IMAGES": "4",
    }
    return create_app(environ, load_in_background=False)


@pytest.fixture()
def client(app):
    return app.test_client()
