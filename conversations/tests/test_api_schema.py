"""The console and staff APIs document themselves: every operation in /api/schema/ that needs a signed-in
agent or supervisor has a summary and typed bodies, and the console's errors say their message in English
and, for the agent, in the request's language."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from conversations import inbox, state
from conversations.models import Channel, Label
from conversations.tests.console_helpers import api, signed_in

pytestmark = pytest.mark.django_db

BODY_METHODS = {"post", "put", "patch"}
# Actions that take no body: the URL says everything.
BODILESS = {"claim", "close", "take-over", "hand-back", "process-conversations", "accept", "decline"}


def operations(schema: dict[str, Any], under: str = "/") -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith(under)
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def console_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return operations(schema, "/console/api/")


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def typed(schema: dict[str, Any], content: dict[str, Any]) -> bool:
    """Every media type of a body names an object with properties (not `{}` or a free-form object)."""
    return bool(content) and all(
        resolve(schema, media.get("schema", {})).get("properties") for media in content.values()
    )


def undocumented(schema: dict[str, Any], public: frozenset[str] = frozenset()) -> list[str]:
    """What is missing from each operation not in `public` (the anonymous visitor's "METHOD path"s)."""
    problems = []
    for path, method, operation in operations(schema):
        if f"{method.upper()} {path}" in public:
            continue
        where = f"{method.upper()} {path}"
        if not operation.get("summary"):
            problems.append(f"{where}: no summary")
        takes_body = method in BODY_METHODS and path.rsplit("/", 1)[-1] not in BODILESS
        if takes_body and not typed(schema, operation.get("requestBody", {}).get("content", {})):
            problems.append(f"{where}: no request body schema")
        success = [body for status, body in operation.get("responses", {}).items() if status.startswith("2")]
        if not success or not all(typed(schema, body.get("content", {})) for body in success):
            problems.append(f"{where}: no typed 2xx response")
    return problems


def test_every_console_and_staff_operation_has_a_summary_and_typed_bodies(client):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    # What an anonymous visitor is shown is the public part (the web chat's, the schema itself); the rest
    # needs a signed-in agent or supervisor.
    anonymous = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    public = frozenset(f"{method.upper()} {path}" for path, method, _ in operations(anonymous))
    staff = {f"{method.upper()} {path}" for path, method, _ in operations(schema)} - public

    assert len(console_operations(schema)) >= 18  # the console's, the presence, the leads app's moves
    assert {
        "POST /console/api/conversations/{conversation_id}/lead-stage",
        "POST /console/api/leads/{card_id}/move",
        "POST /api/rag/ingest",
        "GET /api/voice/calls",
        "GET /api/v1/whatsapp/conversations",
        "POST /api/v1/conversations/analyze",
    } <= staff
    assert undocumented(schema, public) == []


def test_the_check_names_an_operation_without_its_schema():
    """The check itself: an operation the way drf-spectacular shows an undecorated APIView is caught."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    path = "/console/api/conversations/{conversation_id}/notes"
    schema["paths"][path]["post"] = {"responses": {"200": {"description": "No response body"}}}

    assert undocumented({"paths": {path: schema["paths"][path]}, "components": schema["components"]}) == [
        f"POST {path}: no summary",
        f"POST {path}: no request body schema",
        f"POST {path}: no typed 2xx response",
    ]


def test_the_console_operations_are_listed_only_to_staff(client, make_agent):
    anonymous = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    agent = signed_in(make_agent("ana")).get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    assert "/api/webchat/messages" in anonymous
    assert not [path for path in anonymous if path.startswith("/console/api/")]
    assert "/console/api/conversations/{conversation_id}/claim" in agent
    assert signed_in(make_agent("bruno")).get("/api/docs/").status_code == 200


@pytest.fixture
def queued():
    conversation = inbox.receive(Channel.WEB, "schema-session-0001", "Hola", assistant_turn=False).conversation
    state.request_handoff(conversation, requested_by="contact")
    return conversation


def test_a_console_error_is_in_english_with_the_agents_language_beside_it(queued, make_agent):
    api(signed_in(make_agent("ana", first_name="Ana")), queued, "claim")
    late = signed_in(make_agent("bruno")).post(
        f"/console/api/conversations/{queued.pk}/claim", HTTP_ACCEPT_LANGUAGE="es"
    )

    assert late.status_code == 409
    assert late.json()["error"] == {
        "code": "already_claimed",
        "message": "Ana took it first.",
        "localized": {"message": "Ana la ha atendido antes."},
    }


def test_invalid_fields_are_in_english_with_the_agents_language_beside_them(queued, make_agent):
    refused = signed_in(make_agent("ana")).patch(
        f"/console/api/conversations/{queued.pk}/contact",
        data=json.dumps({"email": "lucia@"}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="es",
    )

    error = refused.json()["error"]
    assert refused.status_code == 400 and error["code"] == "invalid"
    assert (error["message"], error["fields"]) == (
        "Some fields are invalid.",
        {"email": ["Enter a valid email address."]},
    )
    assert error["localized"]["fields"]["email"] != error["fields"]["email"]
    assert error["localized"]["fields"]["email"][0].startswith("Introduce")


def test_drfs_own_refusals_are_in_english_too(make_agent, client):
    anonymous = client.get("/console/api/presence", HTTP_ACCEPT_LANGUAGE="es")
    wrong = signed_in(make_agent("ana")).delete("/console/api/presence", HTTP_ACCEPT_LANGUAGE="es")

    assert anonymous.status_code == 403
    assert anonymous.json()["error"]["message"] == "Authentication credentials were not provided."
    assert anonymous.json()["error"]["localized"]["message"] != anonymous.json()["error"]["message"]
    assert wrong.status_code == 405 and wrong.json()["error"]["message"] == 'Method "DELETE" not allowed.'


def as_json_schema(schema: dict[str, Any], node: Any) -> Any:
    """An OpenAPI 3.0 schema as a strict JSON Schema: references inlined, `nullable` as a null type, and no
    key the documentation does not name (so a response cannot carry more than its schema says)."""
    if isinstance(node, list):
        return [as_json_schema(schema, item) for item in node]
    if not isinstance(node, dict):
        return node
    node = resolve(schema, node)
    converted = {key: as_json_schema(schema, value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
    if "properties" in node:
        converted.setdefault("additionalProperties", False)
    return converted


def conforms(schema: dict[str, Any], path: str, method: str, response: Any) -> list[str]:
    documented = schema["paths"][path][method]["responses"][str(response.status_code)]
    body = as_json_schema(schema, documented["content"]["application/json"]["schema"])
    validator = jsonschema.Draft202012Validator(body)
    return [f"{method.upper()} {path}: {error.message}" for error in validator.iter_errors(response.json())]


def test_the_console_answers_what_its_schema_says(queued, make_agent):
    """A conversation worked through the API: every success body matches its documented schema exactly."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ana = make_agent("ana", first_name="Ana")
    client = signed_in(ana)
    label = Label.objects.create(name="Presupuesto", colour="#2e7d32")
    base = f"/console/api/conversations/{queued.pk}"
    item = "/console/api/conversations/{conversation_id}"

    def call(method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        send = getattr(client, method)
        if body is None:
            return send(f"{base}/{action}")
        return send(f"{base}/{action}", data=json.dumps(body), content_type="application/json")

    answers = [
        ("post", "claim", call("post", "claim")),
        ("post", "messages", call("post", "messages", {"text": "Hola, soy Ana"})),
        ("get", "messages", call("get", "messages")),
        ("post", "notes", call("post", "notes", {"text": "Quiere presupuesto"})),
        ("get", "notes", call("get", "notes")),
        ("put", "labels", call("put", "labels", {"labels": [label.pk]})),
        ("patch", "contact", call("patch", "contact", {"full_name": "Lucía Pérez", "email": "lucia@example.com"})),
        ("post", "lead-stage", call("post", "lead-stage", {"stage": "qualified"})),
        ("post", "close", call("post", "close")),
    ]
    presence = [client.put("/console/api/presence", {"state": "away"}, content_type="application/json")]
    presence.append(client.get("/console/api/presence"))

    assert [(action, answer.status_code) for _, action, answer in answers if answer.status_code >= 300] == []
    problems = [p for method, action, answer in answers for p in conforms(schema, f"{item}/{action}", method, answer)]
    problems += conforms(schema, "/console/api/presence", "put", presence[0])
    problems += conforms(schema, "/console/api/presence", "get", presence[1])
    assert problems == []
