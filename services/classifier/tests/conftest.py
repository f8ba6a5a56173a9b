from __future__ import annotations

import pytest

from services.classifier.app import create_app


def loaded_app(classifier_weights, **environ):
    """The classifier app with the model loaded synchronously (no gunicorn)."""
    base = {"CLASSIFIER_WEIGHTS": str(classifier_weights), "CLASSIFIER_TORCH_THREADS": "1"}
    return create_app({**base, **environ}, load_in_background=False)


@pytest.fixture(scope="module")
def app(classifier_weights):
    return loaded_app(
        classifier_weights,
        MAX_BODY_MB="2",
        CLASSIFIER_MAX_MEGAPIXELS="4",
        CLASSIFIER_MAX_IMAGES="4",
    )


@pytest.fixture()
def client(app):
    return app.test_client()
