"""Seed a demo: an admin, an agent, quick replies, the demo business's assistant profile (Clínica Sonrisas,
whose website is the bundled demo site) and a demo conversation. Safe to run again: a profile someone
already has is left as it is.

The demo visitor's session id is random: a session id is the key to a web conversation's history, so a
fixed one would let anybody read the demo chat (and anything an agent adds to it). A database seeded
before this rule had the fixed id `demo-visitor-0001`; a re-run replaces it with a random one.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.crypto import get_random_string

from conversations import inbox, state
from conversations.console.permissions import AGENTS_GROUP_NAME
from conversations.models import (
    AssistantProfile,
    Channel,
    ContactIdentity,
    HandoffRequest,
    Message,
    QuickReply,
    Sender,
)

LEGACY_DEMO_IDENTITY = "demo-visitor-0001"
DEMO_SOURCE = "seed_demo"
QUICK_REPLIES = [
    ("hola", "es", "¡Hola! Soy parte del equipo. ¿En qué puedo ayudarte?"),
    ("hello", "en", "Hi! I'm part of the team. How can I help?"),
    ("gracias", "es", "Gracias por escribirnos. ¿Hay algo más en lo que pueda ayudarte?"),
    ("thanks", "en", "Thanks for reaching out. Is there anything else I can help with?"),
]


# The demo site's own opening hours (templates/rag/demo_site/es_horario_y_ubicacion.html).
DEMO_PROFILE = {
    "business_name": "Clínica Sonrisas",
    "assistant_name": "Sofía",
    "instructions_es": (
        "Trata al paciente de usted. Ante fiebre alta con la cara hinchada, o dificultad para tragar o respirar, "
        "di que vaya a urgencias del hospital o llame al 112."
    ),
    "instructions_en": (
        "Be warm and formal. With a high fever and a swollen face, or trouble swallowing or breathing, tell them "
        "to go to the hospital's emergency department or call 112."
    ),
    "time_zone": "Europe/Madrid",
    "business_hours": {
        **{day: [["09:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "sat": [["10:00", "14:00"]],
    },
    "reply_minutes": 5,
}


class Command(BaseCommand):
    help = "Create the demo admin and agent accounts (passwords printed once), quick replies and a demo conversation."

    def handle(self, *args: Any, **options: Any) -> None:
        created = []
        with transaction.atomic():
            agents, _ = Group.objects.get_or_create(name=AGENTS_GROUP_NAME)
            admin_password = self._user("admin", staff=True, superuser=True, first_name="Admin")
            agent_password = self._user("agent", staff=False, superuser=False, first_name="Ana", group=agents)
            for shortcut, locale, text in QUICK_REPLIES:
                QuickReply.objects.get_or_create(shortcut=shortcut, locale=locale, defaults={"text": text})
            if not AssistantProfile.objects.exists():
                AssistantProfile.objects.create(**DEMO_PROFILE)
        for username, password in (("admin", admin_password), ("agent", agent_password)):
            if password:
                created.append((username, password))
        self._demo_conversation()
        if created:
            self.stdout.write(self.style.SUCCESS("Demo accounts created. These passwords are shown only once:"))
            for username, password in created:
                self.stdout.write(f"    {username:<6} {password}")
            self.stdout.write("Forgot one? `.venv/bin/python manage.py changepassword <username>`.")
        else:
            self.stdout.write("Demo data already present.")

    def _user(
        self, username: str, *, staff: bool, superuser: bool, first_name: str, group: Group | None = None
    ) -> str | None:
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            return None
        password = get_random_string(16)
        user = user_model.objects.create_user(
            username=username, password=password, first_name=first_name, is_staff=staff, is_superuser=superuser
        )
        if group is not None:
            user.groups.add(group)
        return password

    def _demo_conversation(self) -> None:
        ContactIdentity.objects.filter(channel=Channel.WEB, value=LEGACY_DEMO_IDENTITY).update(value=demo_session_id())
        if Message.objects.filter(channel=Channel.WEB, metadata__source=DEMO_SOURCE).exists():
            return
        session_id = demo_session_id()
        received = inbox.receive(
            Channel.WEB,
            session_id,
            "Hola, quiero saber los precios del plan para empresas.",
            {"source": DEMO_SOURCE},
            locale="es",
            display_name="Lucía (demo)",
        )
        conversation = received.conversation
        inbox.send(
            conversation,
            "¡Hola Lucía! Con gusto te ayudo. ¿Para cuántas personas sería el plan?",
            sender=Sender.ASSISTANT,
        )
        inbox.receive(Channel.WEB, session_id, "Unas 40 personas. ¿Puedo hablar con alguien del equipo?", locale="es")
        state.request_handoff(
            conversation, requested_by=HandoffRequest.RequestedBy.CONTACT, reason="Quiere hablar con una persona"
        )


def demo_session_id() -> str:
    """A widget-shaped session id nobody can guess (192 random bits)."""
    return f"demo-{secrets.token_urlsafe(24)}"
