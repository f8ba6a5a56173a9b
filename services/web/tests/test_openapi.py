"""The OpenAPI document stays true to the routes and stays structurally valid."""

from services.web import openapi
from services.web.app import create_app

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
        if rule.endpoint == "static":
            continue
        public = openapi.PUBLIC_PATHS_OF_WEB_ROUTES.get(rule.rule, rule.rule)
        assert public in document["paths"], f"{rule.rule} ({public}) is not in the document"
        documented = {method.upper() for method in document["paths"][public]}
        assert rule.methods - {"HEAD", "OPTIONS"} <= documented, rule.rule


def test_the_model_apis_and_health_endpoints_behind_nginx_are_documented():
    paths = openapi.OPENAPI_DOCUMENT["paths"]
    assert "post" in paths["/v1/detect"] and "post" in paths["/v1/classify"]
    for service in ("detector", "classifier", "web"):
        for endpoint in ("healthz", "readyz", "metrics"):
            assert f"/{service}/{endpoint}" in paths
    assert "/healthz" in paths and "/v1/models" in paths
    detect_parameters = {p["name"] for p in paths["/v1/detect"]["post"]["parameters"]}
    assert detect_parameters == {"conf_threshold", "iou_threshold", "max_detections", "render"}


def test_document_is_structurally_valid_openapi_3_1():
    document = openapi.OPENAPI_DOCUMENT
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


def test_served_document_is_the_module_document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json == openapi.OPENAPI_DOCUMENT
