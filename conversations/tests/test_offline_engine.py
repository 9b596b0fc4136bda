"""The offline engine: what it reads in a message, and whole conversations through the real turn.

Dialogues go through inbox.receive and turns.run_turn (the engine comes from settings, pinned to
`offline` for tests) with the real tools on the real database. Only the tools of apps that do not
register theirs yet (`search_knowledge`, `schedule_meeting`) are stand-ins declaring the same
capabilities, in a registry of their own.

Golden transcripts: set TALIA_UPDATE_GOLDEN=1 to rewrite conversations/tests/golden/*.txt instead of
comparing (see golden/README.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from django.utils import timezone

from conversations import events, inbox
from conversations.assistant import capabilities, turns
from conversations.assistant.base import HistoryItem, ToolInvocation, TurnContext
from conversations.assistant.executor import ToolExecutor
from conversations.assistant.offline import OfflineEngine
from conversations.assistant.tools import CORE_TOOLS, decline_consent
from conversations.console import presence
from conversations.models import (
    AssistantRun,
    Contact,
    Conversation,
    ConversationStatus,
    Event,
    HandoffRequest,
    Message,
    Sender,
    ToolCall,
)
from conversations.registry import Tool, ToolRegistry
from leads.models import ScheduledEvent
from talia.understanding import (
    declines_field,
    extract_company,
    extract_email,
    extract_name,
    extract_phone,
    find_meeting_time,
    guess_locale,
    is_question,
    parse_yes_no,
    wants_person,
)

GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.fixture
def an_agent_online(agent: Any) -> Any:
    """Ana has the console open, so a handoff is promised a person soon."""
    presence.touch(agent.pk, "specific.test-console")
    yield agent
    presence.leave(agent.pk, "specific.test-console")


# --- Reading a message ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hola, me llamo Ana Pérez", "Ana Pérez"),
        ("me llamo ana pérez y quiero información", "ana pérez"),
        ("Mi nombre es María José García de la Fuente.", "María José García de la Fuente"),
        ("Soy Ana", "Ana"),
        ("Hola, soy Ana Pérez, de Acme", "Ana Pérez"),
        ("My name is John Smith", "John Smith"),
        ("Hi, I'm John Smith from Acme Corp", "John Smith"),
        ("this is Sarah O'Neill", "Sarah O'Neill"),
        # The company a name would swallow stays out of it; compound surnames stay in.
        ("Soy Luis Gómez de Textiles Gómez", "Luis Gómez"),
        ("Soy Luis de Soluciones Norte y quiero una demo", "Luis"),
        ("Soy Ana Pérez de León", "Ana Pérez de León"),
        ("Soy María de la Fuente", "María de la Fuente"),
        # Not names: a place, a role, an adjective, a nationality.
        ("Soy de Madrid", None),
        ("soy el CEO de Acme", None),
        ("soy CEO", None),
        ("soy nuevo por aquí", None),
        ("I'm interested in your plans", None),
        ("I'm Spanish", None),
        ("I'm from Madrid", None),
        ("¿Tienen planes para empresas?", None),
    ],
)
def test_extract_name(text, name):
    assert extract_name(text) == name


@pytest.mark.parametrize(
    ("text", "company"),
    [
        ("Trabajo en Acme Ibérica", "Acme Ibérica"),
        ("trabajo para Globex, en Madrid", "Globex"),
        ("Mi empresa es Initech S.L.", "Initech S.L."),
        ("Soy Ana y trabajo en Pérez y Asociados", "Pérez y Asociados"),
        ("I work at Globex and I'd like a demo", "Globex"),
        ("My company is Initech.", "Initech"),
        ("Hi, I'm John Smith from Acme Corp", "Acme Corp"),
        ("Soy Luis Gómez de Textiles Gómez", "Textiles Gómez"),
        ("Soy Luis de Soluciones Norte y quiero una demo", "Soluciones Norte"),
        ("Soy Ana Pérez de León", None),
        ("Me llamo Ana Pérez de la Fuente", None),
        # Conservative: lower case after a cue is a description, 'from' alone a place.
        ("mi empresa es pequeña", None),
        ("I work for a bank", None),
        ("I'm from Madrid", None),
        ("Soy de Madrid", None),
    ],
)
def test_extract_company(text, company):
    assert extract_company(text) == company


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("escríbeme a Ana.Perez@Example.com.", "Ana.Perez@Example.com"),
        ("my email is john+leads@globex.co.uk, thanks", "john+leads@globex.co.uk"),
        ("ana.perez@example", "ana.perez@example"),  # a candidate; set_email decides it is not valid
        ("sígueme en @acme", None),
        ("no tengo correo", None),
    ],
)
def test_extract_email(text, email):
    assert extract_email(text) == email


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("mi móvil es 600 123 456", "+34600123456"),
        ("llámame al +34 91 123 45 67", "+34911234567"),
        ("my number is +44 20 7946 0958", "+442079460958"),
        ("call me on +1 201 555 0123", "+12015550123"),
        ("somos 25 personas desde 2010", None),
        ("el 14/01 a las 10", None),
    ],
)
def test_extract_phone_in_the_default_region(text, phone):
    assert extract_phone(text, "ES") == phone


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Sí", True),
        ("sí, claro", True),
        ("vale", True),
        ("Ok", True),
        ("de acuerdo", True),
        ("Acepto", True),
        ("no hay problema", True),
        ("Yes, that's fine", True),
        ("sure", True),
        ("No", False),
        ("no, gracias", False),
        ("prefiero que no", False),
        ("I'd rather not", False),
        ("mmm, ¿para qué?", None),
    ],
)
def test_parse_yes_no(text, answer):
    assert parse_yes_no(text) is answer


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("Quiero hablar con una persona", True),
        ("¿Me pasas con un agente?", True),
        ("¿Puedo hablar con alguien del equipo?", True),
        ("humano", True),
        ("I want to talk to a person", True),
        ("Can I speak to a human, please?", True),
        ("real person please", True),
        ("¿Me puede atender un asesor?", True),
        ("quiero un humano", True),
        ("necesito un asesor", True),
        ("operator please", True),
        ("agent, please", True),
        ("I need an agent", True),
        ("necesito un agente de viajes", False),
        ("¿Los asesores trabajan los sábados?", False),
        ("¿Qué es un agente de IA?", False),
        ("I talked to someone yesterday", False),
        ("Me llamo Ana", False),
    ],
)
def test_wants_person_in_either_language(text, wanted):
    assert wants_person(text) is wanted


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("¿Tienen planes para empresas?", True),
        ("cuánto cuesta", True),
        ("What does it cost", True),
        ("how do I sign up", True),
        ("Que sí, vale", False),
        ("Ana Pérez", False),
    ],
)
def test_is_question(text, question):
    assert is_question(text) is question


def test_declines_field():
    assert declines_field("Prefiero no decirlo")
    assert declines_field("no tengo empresa")
    assert declines_field("I'd rather not")
    assert not declines_field("Acme")


@pytest.mark.parametrize(
    ("text", "locale", "days_ahead", "at"),
    [
        ("quiero una demo mañana a las 17:30", "es", 1, time(17, 30)),
        ("¿Podemos vernos pasado mañana a las 10?", "es", 2, time(10, 0)),
        ("una llamada mañana a las 4 de la tarde", "es", 1, time(16, 0)),
        ("a demo tomorrow at 3pm", "en", 1, time(15, 0)),
        ("a call tomorrow at 9:30 am", "en", 1, time(9, 30)),
    ],
)
def test_find_meeting_time_reads_the_day_and_the_time(text, locale, days_ahead, at):
    now = timezone.localtime()
    proposed = find_meeting_time(text, locale, now)
    assert proposed.day == now.date() + timedelta(days=days_ahead)
    assert proposed.at == at


def test_find_meeting_time_does_not_take_the_hour_for_a_month():
    now = timezone.localtime()
    proposed = find_meeting_time("¿Una reunión el martes a las 10?", "es", now)
    assert proposed.day is not None and proposed.day.weekday() == 1
    assert 0 < (proposed.day - now.date()).days <= 7
    assert proposed.at == time(10, 0)


def test_find_meeting_time_without_a_day_or_time():
    assert find_meeting_time("quiero una demo", "es").day is None
    assert find_meeting_time("call me on +34 600 123 456", "en").at is None
    assert find_meeting_time("llamadme por la mañana", "es").day is None  # the morning, not tomorrow


# --- One turn through the real pieces ------------------------------------------------------------------


def registry_with(*extra: Tool) -> ToolRegistry:
    registry = ToolRegistry()
    for tool in [*CORE_TOOLS, *extra]:
        registry.register(tool)
    return registry


class Visitor:
    """A web visitor whose messages go through the real turn (turns.run_turn, engine from settings).

    With `extra_tools` (stand-ins for the tools later apps register) the turn is run by hand with a
    registry of the core tools plus those, since the global registry is not ours to change in a test.
    """

    def __init__(self, session: str, locale: str, *extra_tools: Tool, channel: str = "web") -> None:
        self.session = session
        self.locale = locale
        self.channel = channel
        self.registry = registry_with(*extra_tools) if extra_tools else None

    def says(self, text: str) -> Message | None:
        """Send `text`; the assistant's reply, or None when the assistant stays silent."""
        received = inbox.receive(self.channel, self.session, text, locale=self.locale)
        if self.registry is None:
            run = turns.run_turn(received.message.pk)
        else:
            run = turn_with_tools(received.message.pk, self.registry)
        return run.reply_message if run is not None else None

    @property
    def contact(self) -> Contact:
        return Contact.objects.get(identities__channel=self.channel, identities__value=self.session)

    @property
    def conversation(self) -> Conversation:
        return Conversation.objects.get(contact=self.contact, channel=self.channel)

    def tool_calls(self, name: str | None = None) -> list[ToolCall]:
        calls = ToolCall.objects.filter(run__conversation=self.conversation).order_by("created", "id")
        return list(calls.filter(name=name) if name else calls)


def turn_with_tools(message_id: UUID, registry: ToolRegistry) -> AssistantRun | None:
    """turns.run_turn with another tool set: the real context, executor and inbox, the offline engine."""
    run = turns.claim_run(message_id)
    if run is None:
        return None
    context = replace(turns.build_context(run), tools=registry.all())
    result = OfflineEngine().run(context, ToolExecutor(run, registry))
    run.reply_message = inbox.send(run.conversation, result.text, sender=Sender.ASSISTANT, metadata=result.metadata)
    run.engine, run.model, run.rounds = OfflineEngine.name, result.model, result.rounds
    run.save(update_fields=["reply_message", "engine", "model", "rounds", "updated"])
    return turns.finish(run, AssistantRun.Status.COMPLETED)


def says(visitor: Visitor, text: str) -> Message:
    reply = visitor.says(text)
    assert reply is not None, f"no reply to {text!r}"
    return reply


def fake_knowledge(results: list[dict[str, str]], queries: list[str]) -> Tool:
    """Stands in for the rag app's search_knowledge tool."""

    def search_knowledge(conversation: Conversation, query: str) -> dict[str, Any]:
        queries.append(query)
        return {"results": results}

    return Tool(
        "search_knowledge",
        "Search the knowledge base.",
        {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
            "additionalProperties": False,
        },
        search_knowledge,
        capability=capabilities.SEARCH_KNOWLEDGE,
    )


def fake_scheduler(booked: list[dict[str, str]]) -> Tool:
    """Stands in for the leads app's schedule_meeting tool."""

    def schedule_meeting(
        conversation: Conversation, title: str, start: str, duration_minutes: int | None, notes: str | None
    ) -> dict[str, Any]:
        booked.append({"starts_at": start, "topic": title})
        return {"start": start}

    return Tool(
        "schedule_meeting",
        "Book a meeting.",
        {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "start": {"type": "string"},
                "duration_minutes": {"type": ["integer", "null"]},
                "notes": {"type": ["string", "null"]},
            },
            "required": ["title", "start", "duration_minutes", "notes"],
            "additionalProperties": False,
        },
        schedule_meeting,
        capability=capabilities.BOOK_MEETING,
    )


def assert_complete_lead_and_handoff(visitor: Visitor, expected: dict[str, str]) -> None:
    contact = visitor.contact
    assert {name: getattr(contact, name) for name in expected} == expected
    assert contact.has_consented
    assert Event.objects.filter(contact=contact, name=events.LEAD_CAPTURED.name).count() == 1
    conversation = visitor.conversation
    assert conversation.status == ConversationStatus.QUEUED
    handoff = HandoffRequest.objects.get(conversation=conversation)
    assert handoff.requested_by == HandoffRequest.RequestedBy.ASSISTANT
    assert handoff.status == HandoffRequest.Status.PENDING


# --- Dialogues -----------------------------------------------------------------------------------------


def test_spanish_dialogue_ends_with_a_complete_lead_and_a_handoff(db, an_agent_online):
    ana = Visitor("session-offline-es-1", "es")

    reply = says(ana, "Hola, buenas")
    assert reply.text.startswith("¡Hola! Soy el asistente virtual de TalIA.")
    assert "¿Estás de acuerdo?" in reply.text
    assert reply.metadata["offline"]["asked"] == "consent"

    reply = says(ana, "Vale")
    assert reply.text == "¡Gracias! ¿Me dices tu nombre completo?"

    # Two fields in one sentence, whatever was asked.
    reply = says(ana, "Soy Ana Pérez y trabajo en Acme Ibérica")
    assert reply.text == "Un placer, Ana. ¿Cuál es tu correo electrónico?"

    reply = says(ana, "ana.perez@example.com, y mi móvil es 600 123 456")
    assert reply.text.startswith("¡Gracias, Ana! Ya tengo todo lo que necesito")

    reply = says(ana, "¿Me pasas con una persona, por favor?")
    assert reply.text == "Te paso con una persona del equipo: se unirá a esta conversación en breve."
    assert reply.metadata["offline"]["asked"] is None

    assert_complete_lead_and_handoff(
        ana,
        {
            "full_name": "Ana Pérez",
            "email": "ana.perez@example.com",
            "phone": "+34600123456",
            "company": "Acme Ibérica",
        },
    )
    # While a person is on the way the assistant stays silent.
    assert ana.says("¿Hola?") is None


def test_english_dialogue_ends_with_a_complete_lead_and_a_handoff(db, an_agent_online):
    john = Visitor("session-offline-en-1", "en")

    reply = says(john, "Hi there")
    assert reply.text.startswith("Hi! I'm the virtual assistant of TalIA.")
    assert "Is that OK with you?" in reply.text

    reply = says(john, "Yes, that's fine. My name is John Smith, I work at Globex")
    assert reply.text == "Thank you! Nice to meet you, John. What's your email address?"

    reply = says(john, "john.smith@globex.com")
    assert reply.text == "Perfect. And a phone number we can reach you on?"

    reply = says(john, "+44 20 7946 0958")
    assert reply.text.startswith("Thanks, John! That's everything I need")

    reply = says(john, "Can I talk to a real person?")
    assert reply.text == "I'm passing you to a member of our team: they'll join this conversation shortly."

    assert_complete_lead_and_handoff(
        john,
        {"full_name": "John Smith", "email": "john.smith@globex.com", "phone": "+442079460958", "company": "Globex"},
    )
    assert HandoffRequest.objects.get(conversation=john.conversation).reason == "The contact asked to talk to a person."


def test_every_change_goes_through_a_recorded_tool_call(db):
    ana = Visitor("session-offline-es-2", "es")
    first = says(ana, "Hola")
    says(ana, "Sí")
    says(ana, "Ana Pérez")

    calls = ana.tool_calls()
    assert [call.name for call in calls] == ["record_consent", "set_full_name"]
    assert all(call.call_id.startswith("offline_") and call.status == ToolCall.Status.OK for call in calls)
    assert calls[1].arguments == {"full_name": "Ana Pérez"}
    runs = AssistantRun.objects.filter(conversation=ana.conversation).order_by("created")
    assert [(run.engine, run.model, run.rounds) for run in runs] == [
        ("offline", "offline-v1", 0),
        ("offline", "offline-v1", 1),
        ("offline", "offline-v1", 1),
    ]
    assert runs[0].reply_message == first


def test_an_invalid_email_gets_an_apology_and_is_asked_again(db):
    ana = Visitor("session-offline-es-3", "es")
    says(ana, "Hola")
    says(ana, "Sí, me llamo Ana Pérez")

    reply = says(ana, "ana.perez@example")

    assert reply.text == "Vaya, «ana.perez@example» no parece un correo válido. ¿Puedes revisarlo?"
    assert reply.metadata["offline"]["asked"] == "email"
    assert ana.contact.email == ""
    assert ana.tool_calls("set_email")[0].status == ToolCall.Status.ERROR

    reply = says(ana, "perdona: ana.perez@example.com")
    assert reply.text == "¡Perfecto! ¿Y un teléfono de contacto?"
    assert ana.contact.email == "ana.perez@example.com"


def test_an_invalid_phone_gets_an_apology_in_english(db):
    john = Visitor("session-offline-en-2", "en")
    says(john, "Hello")
    says(john, "ok")
    says(john, "John Smith")
    says(john, "john@globex.com")

    reply = says(john, "12345 678")

    assert reply.text.startswith("Hmm, “12345 678” doesn't look like a valid phone number.")
    assert reply.metadata["offline"]["asked"] == "phone"
    assert john.contact.phone == ""


def test_personal_data_before_consent_is_not_stored(db):
    ana = Visitor("session-offline-es-4", "es")

    reply = says(ana, "Hola, soy Ana Pérez, mi correo es ana@example.com y mi teléfono 600 123 456")

    assert "Antes de guardar ningún dato necesito tu permiso." in reply.text
    assert reply.metadata["offline"]["asked"] == "consent"
    contact = ana.contact
    assert (contact.full_name, contact.email, contact.phone, contact.consent_given_at) == ("", "", "", None)
    assert ana.tool_calls() == []
    assert not Event.objects.filter(name=events.LEAD_CAPTURED.name).exists()
    assert "held_data" in reply.metadata["offline"]  # that there was data, not the data itself

    # Once consent is given, what the contact wrote just before is used, and only then stored.
    reply = says(ana, "Sí")
    assert [call.name for call in ana.tool_calls()] == [
        "record_consent",
        "set_full_name",
        "set_email",
        "set_phone_number",
    ]
    assert reply.text == "¡Gracias! Un placer, Ana. ¿En qué empresa trabajas?"
    contact = ana.contact
    assert (contact.full_name, contact.email, contact.phone) == ("Ana Pérez", "ana@example.com", "+34600123456")


def test_declined_consent_is_recorded_and_nothing_is_stored_afterwards(db):
    ana = Visitor("session-offline-es-5", "es")
    says(ana, "Hola")

    reply = says(ana, "No, prefiero que no")
    assert reply.text == "Sin problema: no guardaré ningún dato personal. ¿En qué puedo ayudarte?"
    assert ana.tool_calls("record_consent")[0].arguments == {"granted": False}
    assert reply.metadata["offline"] == {"asked": None, "consent_declined": True}

    # The no stands: data offered later is not stored, and consent is not asked for again.
    reply = says(ana, "mi correo es ana@example.com")
    assert reply.text.startswith("Como preferiste que no guarde datos personales, no he anotado esos.")
    assert "¿Estás de acuerdo?" not in reply.text
    assert ana.contact.email == "" and ana.contact.consent_state == "declined"
    assert ana.tool_calls("set_email") == []


def test_a_no_in_the_widget_notice_counts_in_the_dialogue(db):
    received = inbox.receive("web", "session-offline-es-banner-no", "Hola", locale="es")
    decline_consent(received.contact.pk)

    run = turns.run_turn(received.message.pk)

    assert run is not None and run.reply_message is not None
    assert "¿Estás de acuerdo?" not in run.reply_message.text
    assert run.reply_message.metadata["offline"]["consent_declined"] is True


def test_asking_why_before_consenting_gets_an_explanation_and_a_shorter_question_after(db):
    ana = Visitor("session-offline-es-13", "es")
    says(ana, "Hola")

    reply = says(ana, "¿Para qué los queréis?")
    assert reply.text.startswith("Solo para que el equipo pueda responderte")
    assert reply.metadata["offline"]["asked"] == "consent"

    reply = says(ana, "hmm")
    assert reply.text == "Perdona, no te he entendido. ¿Me das permiso para guardar tus datos de contacto?"
    assert ana.tool_calls() == []


def test_small_talk_and_goodbye_keep_the_thread(db):
    john = Visitor("session-offline-en-5", "en")
    says(john, "Hi")
    says(john, "yes")

    assert says(john, "how are you?").text == "I'm doing well, thanks! What's your full name?"
    assert says(john, "hello").text == "Hello again! What's your full name?"
    assert says(john, "bye").text == "Goodbye! If you need anything else, just write to me here."
    assert john.tool_calls("set_full_name") == []


def test_a_field_the_contact_would_rather_not_give_is_skipped(db):
    ana = Visitor("session-offline-es-6", "es")
    for text in ("Hola", "vale", "Ana Pérez", "ana@example.com", "600123456"):
        says(ana, text)

    reply = says(ana, "Prefiero no decirlo")

    assert reply.text == "Sin problema. ¿Puedo ayudarte en algo más?"
    assert reply.metadata["offline"]["skipped"] == ["company"]
    # The next turn does not ask for it again.
    assert says(ana, "Gracias").text == "¡De nada! ¿Puedo ayudarte en algo más?"


def test_a_bare_answer_that_is_not_a_name_is_asked_again(db):
    ana = Visitor("session-offline-es-7", "es")
    says(ana, "Hola")
    says(ana, "sí")

    reply = says(ana, "mmm 1234")

    assert reply.text == "Perdona, no te he entendido. ¿Me dices tu nombre completo?"
    assert ana.tool_calls("set_full_name") == []


def test_a_question_is_answered_from_the_knowledge_base_with_its_source(db):
    queries: list[str] = []
    source = {
        "url": "https://example.com/precios",
        "title": "Precios",
        "snippet": "El plan Básico cuesta 19 € al mes. El plan Empresa cuesta 49 € al mes por agente…",
        "content": "Precios\nEl plan Básico cuesta 19 € al mes. El plan Empresa cuesta 49 € al mes por agente e "
        "incluye WhatsApp. Los precios no incluyen IVA.",
    }
    ana = Visitor("session-offline-es-8", "es", fake_knowledge([source], queries))

    reply = says(ana, "Hola, ¿cuánto cuesta el plan para empresas?")

    assert queries == ["Hola, ¿cuánto cuesta el plan para empresas?"]
    # The sentence that answers, whole, figures intact; the source is a link under the message.
    assert reply.text.startswith(
        "¡Hola! Soy el asistente virtual de TalIA. Esto es lo que he encontrado: "
        "El plan Empresa cuesta 49 € al mes por agente e incluye WhatsApp. Para que el equipo pueda ayudarte"
    )
    assert "https://" not in reply.text
    assert reply.metadata["citations"] == [{"url": "https://example.com/precios", "title": "Precios"}]
    # After the answer, the lead dialogue goes on.
    assert reply.metadata["offline"]["asked"] == "consent"


@pytest.mark.parametrize(
    ("channel", "identity", "source_line"),
    [("whatsapp", "+34600000321", "\nFuente: https://example.com/horario\n"), ("voice", "+34600000322", None)],
)
def test_a_door_without_source_links_gets_the_address_in_the_text_unless_it_cannot_show_links(
    db, channel, identity, source_line
):
    source = {
        "url": "https://example.com/horario",
        "title": "Horario",
        "content": "Horario: de lunes a viernes de 9:30 a 18:00. Los sábados abrimos de 10 a 14 h. "
        "El domingo cerramos.",
    }
    ana = Visitor(identity, "es", fake_knowledge([source], []), channel=channel)

    reply = says(ana, "¿Abren el domingo?")

    assert "Esto es lo que he encontrado: El domingo cerramos." in reply.text
    if source_line:
        assert source_line in reply.text
    else:  # spoken: no address read out
        assert "https://" not in reply.text and "Fuente" not in reply.text
    assert reply.metadata["citations"] == [{"url": "https://example.com/horario", "title": "Horario"}]


def test_a_passage_found_by_meaning_alone_is_quoted_from_its_first_whole_sentences(db):
    long_sentence = "Nuestro equipo de odontología infantil " + "trabaja con mucho cuidado " * 20 + "cada día."
    source = {
        "url": "https://example.com/ninos",
        "title": "Niños",
        "content": f"Odontopediatría\n{long_sentence} Segunda frase que no cabe.",
    }
    ana = Visitor("session-offline-es-meaning", "es", fake_knowledge([source], []))

    reply = says(ana, "¿Atienden a críos pequeños?")

    answer = reply.text.split("Esto es lo que he encontrado: ", 1)[1].split(" Para que el equipo", 1)[0]
    # No word in common: the opening sentence, cut at a word boundary because it alone is too long.
    assert answer.startswith("Nuestro equipo de odontología infantil trabaja") and answer.endswith("…")
    assert answer[:-1].split()[-1] in {"trabaja", "con", "mucho", "cuidado"}
    assert "Odontopediatría" not in answer


def test_a_question_the_knowledge_base_cannot_answer_offers_a_person(db, an_agent_online):
    ana = Visitor("session-offline-es-9", "es", fake_knowledge([], []))
    says(ana, "Hola")

    reply = says(ana, "¿Tenéis integración con SAP?")
    assert reply.text == "Lo siento, no tengo esa información. ¿Quieres que te pase con una persona del equipo?"
    assert "citations" not in reply.metadata

    reply = says(ana, "Sí, por favor")
    assert reply.text == "Te paso con una persona del equipo: se unirá a esta conversación en breve."
    handoff = HandoffRequest.objects.get(conversation=ana.conversation)
    assert handoff.reason == "El asistente no ha sabido responder: «¿Tenéis integración con SAP?»"


def test_an_unclear_answer_to_the_offer_of_a_person_repeats_the_offer(db):
    ana = Visitor("session-offline-es-14", "es")
    says(ana, "Hola")
    says(ana, "¿Tenéis API?")

    reply = says(ana, "hmm")
    assert reply.text == "Perdona, no te he entendido. ¿Quieres que te pase con una persona del equipo?"

    says(ana, "sí")
    assert HandoffRequest.objects.get(conversation=ana.conversation).reason.endswith("«¿Tenéis API?»")


def test_declining_the_offer_of_a_person_goes_back_to_the_dialogue(db):
    john = Visitor("session-offline-en-3", "en")
    says(john, "Hi")
    says(john, "What integrations do you have?")

    reply = says(john, "no thanks")

    assert reply.text.startswith("All right. So that our team can help you")
    assert john.conversation.status == ConversationStatus.BOT


def test_a_meeting_request_without_the_scheduling_tool_is_acknowledged(db):
    ana = Visitor("session-offline-es-10", "es", fake_knowledge([], []))  # core tools, no schedule_meeting
    says(ana, "Hola")

    reply = says(ana, "¿Podemos hacer una reunión el martes a las 10?")

    assert "Apunto que te viene bien el martes " in reply.text
    assert "a las 10:00. El equipo te confirmará la cita." in reply.text
    assert ana.tool_calls() == []


def test_a_meeting_request_is_booked_through_schedule_meeting_when_registered(db):
    booked: list[dict[str, str]] = []
    john = Visitor("session-offline-en-4", "en", fake_scheduler(booked))
    for text in ("Hi", "yes", "I'm John Smith"):
        says(john, text)

    reply = says(john, "I'd like a demo tomorrow at 10am")

    tomorrow = timezone.localdate() + timedelta(days=1)
    starts_at = datetime.combine(tomorrow, time(10, 0), tzinfo=timezone.get_default_timezone())
    assert booked == [{"starts_at": starts_at.isoformat(), "topic": "Meeting with John Smith"}]
    assert reply.text.startswith(
        f"Done! I've pencilled in a meeting for {tomorrow:%A} {tomorrow.day} {tomorrow:%B} at 10:00; our team will "
        "confirm it."
    )
    # Then it goes on with what is missing.
    assert reply.text.endswith("What's your email address?")


def test_a_meeting_request_without_a_time_asks_for_it(db):
    ana = Visitor("session-offline-es-11", "es")
    says(ana, "Hola")

    reply = says(ana, "Me gustaría una demo")
    assert reply.text == "¡Claro! ¿Qué día y a qué hora te viene bien?"

    reply = says(ana, "mañana")
    assert reply.text.startswith("¿A qué hora te viene bien el ")
    assert reply.metadata["offline"]["asked"] == "meeting"

    reply = says(ana, "a las 11:30")
    assert reply.text.endswith("a las 11:30. ¿De qué tema quieres hablar?")
    event = ScheduledEvent.objects.get(conversation=ana.conversation)  # booked as proposed by the real tool
    assert (timezone.localtime(event.start).time(), event.status) == (time(11, 30), "proposed")
    assert event.title == "Reunión pedida en el chat"

    # The topic comes after the day and time: it becomes the meeting's title, said back to be confirmed.
    reply = says(ana, "Revisión del proyecto")
    assert reply.text.startswith("Te confirmo: reunión el ")
    assert reply.text.endswith("a las 11:30 sobre «Revisión del proyecto». ¿Es correcto?")
    event.refresh_from_db()
    assert (event.title, event.status) == ("Revisión del proyecto", "proposed")

    reply = says(ana, "Sí, perfecto")
    assert reply.text.startswith("¡Perfecto! Reunión confirmada el ")
    event.refresh_from_db()
    assert event.status == "confirmed"
    assert [e.payload["status"] for e in Event.objects.filter(name="meeting_updated").order_by("created")] == [
        "proposed",
        "confirmed",
    ]


def test_a_meeting_with_its_topic_is_said_back_and_a_no_cancels_it(db):
    john = Visitor("session-offline-en-meeting", "en")
    says(john, "Hi")

    reply = says(john, "Can we have a meeting tomorrow at 10am to discuss the pricing?")
    assert reply.text.endswith("at 10:00 about “The pricing”. Is that right?")
    event = ScheduledEvent.objects.get(conversation=john.conversation)
    assert (event.title, event.status) == ("The pricing", "proposed")

    reply = says(john, "No")
    assert reply.text == "All right, I've cancelled it. What other day and time suit you?"
    event.refresh_from_db()
    assert event.status == "cancelled"


def test_a_contact_who_consented_in_the_widget_is_asked_for_the_first_missing_field(db):
    received = inbox.receive("web", "session-offline-es-12", "Hola", locale="es")
    Contact.objects.filter(pk=received.contact.pk).update(consent_given_at=timezone.now(), full_name="Ana Pérez")

    run = turns.run_turn(received.message.pk)

    assert run is not None and run.reply_message is not None
    assert run.reply_message.text == "¡Hola! Soy el asistente virtual de TalIA. ¿Cuál es tu correo electrónico?"


def test_the_engine_answers_a_tool_error_it_did_not_expect_politely(db):
    """Unit level: a call_tool that returns an error for everything still yields a sensible reply."""
    contact = Contact(locale="en")
    conversation = Conversation(contact=contact, channel="web")
    message = Message(conversation=conversation, seq=1, channel="web", text="I want to talk to a person")
    calls: list[ToolInvocation] = []

    def failing(invocation: ToolInvocation) -> str:
        calls.append(invocation)
        return json.dumps({"ok": False, "error": "The tool failed; tell the contact and offer a person."})

    context = TurnContext(
        conversation=conversation,
        contact=contact,
        message=message,
        locale="en",
        history=[HistoryItem("user", message.text)],
        unseen=[HistoryItem("user", message.text)],
        previous_response_id="",
        tools=list(CORE_TOOLS),  # the engine finds request_human among its tools by capability
        last_reply_metadata={},
    )
    result = OfflineEngine().run(context, failing)

    assert [call.name for call in calls] == ["request_human"]
    assert json.loads(calls[0].arguments) == {"reason": "The contact asked to talk to a person."}
    assert (
        result.text
        == "Hi! I'm the virtual assistant of TalIA. Sorry, I couldn't reach the team just now. Please try again in a few minutes."
    )
    assert (result.model, result.response_id, result.rounds) == ("offline-v1", "", 1)


# --- Golden transcripts --------------------------------------------------------------------------------

BASE_CONVERSATIONS = {
    "es": [
        "Hola",
        "Sí, de acuerdo",
        "Ana Pérez",
        "ana.perez@example.com",
        "600 123 456",
        "Acme Ibérica",
        "¿Cuánto cuesta el plan para empresas?",
        "Quiero hablar con una persona",
    ],
    "en": [
        "Hello",
        "Yes, that's fine",
        "John Smith",
        "john.smith@example.com",
        "+44 20 7946 0958",
        "Globex",
        "How much is the business plan?",
        "I'd like to talk to a person",
    ],
}


def render_transcript(conversation: Conversation) -> str:
    """The conversation as readable text: who said what and which tools ran, without ids or times."""
    lines = [f"# Offline engine, base conversation ({conversation.contact.locale}). See README.md to update."]
    for message in conversation.messages.order_by("seq"):
        speaker = "visitor" if message.sender == Sender.CONTACT else message.sender
        text = message.text.replace("\n", "\n" + " " * (len(speaker) + 2))
        lines.append(f"{speaker}: {text}")
        if message.sender == Sender.CONTACT and hasattr(message, "assistant_run"):
            for call in message.assistant_run.tool_calls.order_by("created", "id"):
                arguments = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
                lines.append(f"  tool {call.name} {arguments} -> {call.status}")
    lines.append(f"-- status: {Conversation.objects.get(pk=conversation.pk).status}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("locale", ["es", "en"])
def test_golden_transcript_of_the_base_conversation(db, an_agent_online, locale):
    visitor = Visitor(f"session-offline-golden-{locale}", locale)
    for text in BASE_CONVERSATIONS[locale]:
        says(visitor, text)

    transcript = render_transcript(visitor.conversation)

    path = GOLDEN_DIR / f"offline_{locale}.txt"
    if os.environ.get("TALIA_UPDATE_GOLDEN") == "1":
        path.write_text(transcript, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with TALIA_UPDATE_GOLDEN=1 to create it"
    assert transcript == path.read_text(encoding="utf-8")


def test_the_assistant_introduces_itself_for_the_business(db, settings):
    settings.TALIA_BUSINESS_NAME = "Clínica Sonrisas"
    received = inbox.receive("web", "session-business-01", "Hola", locale="es")

    run = turns.run_turn(received.message.pk)

    assert run is not None and run.reply_message is not None
    assert run.reply_message.text.startswith("¡Hola! Soy el asistente virtual de Clínica Sonrisas.")


def test_with_nobody_online_the_handoff_says_so_honestly(db):
    visitor = Visitor("session-offline-nobody-online", "es")

    reply = visitor.says("Quiero hablar con una persona")

    assert reply is not None
    assert "ahora mismo no hay nadie conectado" in reply.text
    assert visitor.conversation.status == ConversationStatus.QUEUED
    assert visitor.tool_calls("request_human")[0].output["agents_online"] == 0


def test_a_name_given_with_the_company_is_stored_as_both_and_neither_is_asked_again(db):
    luis = Visitor("session-offline-es-luis", "es")
    says(luis, "Hola")
    says(luis, "vale")

    reply = says(luis, "Soy Luis Gómez de Textiles Gómez")

    contact = luis.contact
    assert (contact.full_name, contact.company) == ("Luis Gómez", "Textiles Gómez")
    # What is still missing is asked for, never the name or the company again.
    assert reply.metadata["offline"]["asked"] == "email"
    says(luis, "luis@textilesgomez.es")
    assert says(luis, "600123456").metadata["offline"]["asked"] is None


def test_asking_for_an_advisor_is_a_handoff(db, an_agent_online):
    ana = Visitor("session-offline-es-asesor", "es")
    says(ana, "Hola")

    says(ana, "¿Me puede atender un asesor?")

    assert Conversation.objects.get(pk=ana.conversation.pk).status == ConversationStatus.QUEUED


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("Hola, me llamo Ana García y quiero que me llaméis.", "es"),
        ("¿Qué horario tenéis los sábados?", "es"),
        ("Hi, can you tell me the opening hours please?", "en"),
        ("I would like to book a cleaning for my son", "en"),
        ("Sí", None),
        ("OK", None),
        ("Ana García", None),
    ],
)
def test_guess_locale_only_when_the_words_clearly_say(text, locale):
    assert guess_locale(text) == locale
