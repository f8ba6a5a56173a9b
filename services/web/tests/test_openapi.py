"""The OpenAPI document stays true to the routes and stays structurally valid."""

from services.web import openapi
from services.web.app import create_app
from services.web.tests.fakes import FakeModelServices


def served_document() -> dict:
    """The document as served while both (canned) model services answer."""
    return openapi.live_document(FakeModelServices().list_models("test"))


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def resolve(document: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def all_refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


def test_every_web_route_is_documented_at_its_public_path():
    document = openapi.OPENAPI_DOCUMENT
    app = create_app({})
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule in openapi.UNDOCUMENTED_WEB_ROUTES:
            continue
        public = openapi.PUBLIC_PATHS_OF_WEB_ROUTES.get(rule.rule, rule.rule)
        assert public in document["paths"], f"{rule.rule} ({public}) is not in the document"
        documented = {method.upper() for method in document["paths"][public]}
        assert rule.methods - {"HEAD", "OPTIONS"} <= documented, rule.rule


def test_the_model_apis_and_health_endpoints_behind_nginx_are_documented():
    paths = served_document()["paths"]
    assert "post" in paths["/v1/detect"] and "post" in paths["/v1/classify"]
    for service in ("detector", "classifier", "web"):
        for endpoint in ("healthz", "readyz", "metrics"):
            assert f"/{service}/{endpoint}" in paths
    assert "/healthz" in paths and "/v1/models" in paths
    detect_parameters = {p["name"] for p in paths["/v1/detect"]["post"]["parameters"]}
    assert detect_parameters == {"conf_threshold", "iou_threshold", "max_detections", "render"}


def test_document_is_structurally_valid_openapi_3_1():
    document = served_document()
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["paths"]
    for path, item in document["paths"].items():
        assert path.startswith("/")
        assert item and set(item) <= HTTP_METHODS, path
        for method, operation in item.items():
            responses = operation["responses"]
            assert responses, (path, method)
            for status, response in responses.items():
                assert status == "default" or (len(status) == 3 and status.isdigit())
                response = resolve(document, response["$ref"]) if "$ref" in response else response
                assert response["description"], (path, method, status)
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in {"query", "header", "path", "cookie"}
                assert "schema" in parameter
            for sample in operation["x-codeSamples"]:
                assert sample["source"].startswith("curl ")
    for ref in all_refs(document):
        resolve(document, ref)


def test_error_schema_lists_every_documented_error_code():
    codes = [code for _, code, _ in openapi.ERROR_CODES]
    assert len(codes) == len(set(codes))
    schema = openapi.OPENAPI_DOCUMENT["components"]["schemas"]["Error"]
    assert set(schema["properties"]["error"]["properties"]["code"]["enum"]) == set(codes)


def test_served_document_is_the_module_document_with_the_services_parameters(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json == served_document()
    (top_k,) = response.json["paths"]["/v1/classify"]["post"]["parameters"]
    assert top_k["schema"] == {"type": "integer", "default": 5, "minimum": 1, "maximum": 1000}


def test_a_service_that_does_not_answer_keeps_its_path_with_a_note():
    only_classifier = [
        e for e in FakeModelServices().list_models("t") if e["service"] != "detector"
    ]
    detect = openapi.live_document(only_classifier)["paths"]["/v1/detect"]["post"]
    assert detect["parameters"] == [] and "did not answer" in detect["description"]
