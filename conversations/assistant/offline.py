"""The built-in offline engine: a bilingual (es/en) rule-based dialogue that needs no network.

It acts only through the same tool calls as the model engines (`call_tool`, i.e. the ToolExecutor), so
every tool path, consent check and event works offline too, and it decides what to say from the
tools' JSON outputs. Its dialogue state travels in the reply's metadata (`{"offline": {...}}`) and comes
back next turn as `TurnContext.last_reply_metadata`; it keeps nothing in memory between turns.

One turn, in order:

1. Greet, if this is the first reply in the conversation.
2. If the last reply asked for consent, read a yes or no: `record_consent(granted=...)`.
3. Notice a wish to talk to a person ("quiero hablar con una persona", "talk to a human"...), or a yes
   to the offer of one; the `request_human` call is made last, after the data below is stored.
4. Extract lead fields from free text whatever was asked: an email, a phone (`phonenumbers`), a name
   ("me llamo ...", "soy Ana", "my name is ...", "I'm Ana") and a company ("trabajo en ...", "I work
   at ..."); a bare answer ("Ana Pérez", "Acme") counts for the field the last reply asked for. Each
   one goes to its `set_*` tool, but only once consent is recorded: before that nothing is stored and
   consent is asked for first (the state notes only that data was held back; if the contact then says
   yes, the fields of that previous message are read again from the history and stored). A value a
   tool refuses gets an apology and the question again.
5. Notice a meeting request with a day and a time (`dateparser` for the day): `schedule_meeting`
   when that tool is registered, otherwise acknowledge the time and say the team will confirm. A
   request without a day or a time asks for what is missing.
6. Answer a question through `search_knowledge` when it is registered, citing the source URL (also
   in `metadata["citations"]`); with no tool or no result, say so and offer a person.
7. Anything else: a field the contact would rather not give is skipped for good; thanks, greetings,
   "¿qué tal?" and goodbyes get a short courtesy; an unclear answer to a question gets "sorry, I did
   not understand" and the question again; other free text goes to the knowledge base like a question.
8. End with at most one question, the next step of the lead dialogue: consent, then the first missing
   of full name, email, phone and company, one at a time; when all are known (or the contact chose
   to skip some), thanks and an offer of further help. After a handoff or a goodbye nothing is asked.

All calls of a turn follow from the message and the stored state, so they count as one tool round,
as a model's parallel tool calls would. Replies are in the contact's locale and come from `TEXTS`;
nothing is random, so the same conversation always reads the same.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import uuid4

import phonenumbers
from dateparser.search import search_dates  # type: ignore[import-untyped]  # no types-dateparser in requirements-dev
from django.conf import settings
from django.utils import timezone

from conversations.assistant.base import CallTool, EngineResult, ToolInvocation, TurnContext
from conversations.models import Contact
from conversations.tools import missing_lead_fields

MODEL = "offline-v1"
LEAD_FIELDS = ("full_name", "email", "phone", "company")
SET_TOOLS = {
    "full_name": ("set_full_name", "full_name"),
    "email": ("set_email", "email"),
    "phone": ("set_phone_number", "phone_number"),
    "company": ("set_company_name", "company"),
}

TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "greeting": "¡Hola! Soy el asistente de TalIA.",
        "consent": (
            "Para que el equipo pueda ayudarte y contactarte después, me gustaría guardar tu nombre, tu correo "
            "electrónico, tu teléfono y tu empresa. Solo los usaremos para responder a tu consulta. "
            "¿Estás de acuerdo?"
        ),
        "consent_first": "Antes de guardar ningún dato necesito tu permiso.",
        "consent_short": "¿Me das permiso para guardar tus datos de contacto?",
        "consent_thanks": "¡Gracias!",
        "consent_declined": "Sin problema: no guardaré ningún dato personal.",
        "consent_failed": "Vaya, no he podido registrar tu respuesta.",
        "consent_why": "Solo para que el equipo pueda responderte y hacer seguimiento de tu consulta, nada más. ¿Estás de acuerdo?",
        "how_can_i_help": "¿En qué puedo ayudarte?",
        "anything_else": "¿Puedo ayudarte en algo más?",
        "ask_full_name": "¿Me dices tu nombre completo?",
        "ask_email": "¿Cuál es tu correo electrónico?",
        "ask_phone": "¿Y un teléfono de contacto?",
        "ask_company": "¿En qué empresa trabajas?",
        "nice_to_meet": "Un placer, {name}.",
        "noted_full_name": "Anotado.",
        "noted_email": "¡Perfecto!",
        "noted_phone": "Anotado.",
        "noted_company": "¡Genial!",
        "lead_complete": "¡Gracias, {name}! Ya tengo todo lo que necesito: el equipo se pondrá en contacto contigo muy pronto.",
        "skipped": "Sin problema.",
        "not_understood": "Perdona, no te he entendido.",
        "invalid_full_name": "Perdona, no he entendido bien tu nombre. ¿Me lo escribes otra vez?",
        "invalid_email": "Vaya, «{value}» no parece un correo válido. ¿Puedes revisarlo?",
        "invalid_phone": (
            "Vaya, «{value}» no parece un teléfono válido. ¿Puedes escribirlo con el prefijo del país? "
            "Por ejemplo: +34 600 123 456."
        ),
        "invalid_company": "Perdona, no he entendido bien el nombre de tu empresa. ¿Me lo escribes otra vez?",
        "handoff": "Te paso con una persona del equipo: se unirá a esta conversación en breve.",
        "handoff_failed": "Vaya, ahora mismo no he podido avisar al equipo. Inténtalo de nuevo en unos minutos, por favor.",
        "handoff_reason": "El contacto ha pedido hablar con una persona.",
        "handoff_reason_unanswered": "El asistente no ha sabido responder: «{question}»",
        "dont_know": "Lo siento, no tengo esa información.",
        "offer_human": "¿Quieres que te pase con una persona del equipo?",
        "offer_declined": "De acuerdo.",
        "answer": "Esto es lo que he encontrado: {snippet}\nFuente: {url}",
        "meeting_ask_when": "¡Claro! ¿Qué día y a qué hora te viene bien?",
        "meeting_ask_time": "¿A qué hora te viene bien el {day}?",
        "meeting_ask_day": "¿Qué día te viene bien a las {time}?",
        "meeting_booked": "¡Hecho! Te he reservado una reunión el {when}.",
        "meeting_noted": "Apunto que te viene bien el {when}. El equipo te confirmará la cita.",
        "meeting_failed": "No he podido reservar ese hueco. ¿Te viene bien otro día u otra hora?",
        "meeting_past": "Esa hora ya ha pasado. ¿Qué otro día y hora te vienen bien?",
        "meeting_topic": "Reunión pedida en el chat",
        "meeting_topic_named": "Reunión con {name}",
        "you_are_welcome": "¡De nada!",
        "doing_well": "¡Muy bien, gracias!",
        "hello_again": "¡Hola de nuevo!",
        "goodbye": "¡Hasta pronto! Si necesitas algo más, escríbeme cuando quieras.",
        "day": "{weekday} {day} de {month}",
        "when": "{day} a las {time}",
        "when_one": "{day} a la {time}",
        "weekdays": "lunes martes miércoles jueves viernes sábado domingo",
        "months": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    },
    "en": {
        "greeting": "Hi! I'm TalIA's assistant.",
        "consent": (
            "So that our team can help you and get back to you, I'd like to store your name, email address, "
            "phone number and company. We'll only use them to follow up on your request. Is that OK with you?"
        ),
        "consent_first": "Before I store any details, I need your permission.",
        "consent_short": "May I store your contact details?",
        "consent_thanks": "Thank you!",
        "consent_declined": "No problem: I won't store any personal details.",
        "consent_failed": "Sorry, I couldn't record your answer.",
        "consent_why": "Only so that our team can answer you and follow up on your request, nothing else. Is that OK with you?",
        "how_can_i_help": "How can I help you?",
        "anything_else": "Is there anything else I can help you with?",
        "ask_full_name": "What's your full name?",
        "ask_email": "What's your email address?",
        "ask_phone": "And a phone number we can reach you on?",
        "ask_company": "Which company do you work for?",
        "nice_to_meet": "Nice to meet you, {name}.",
        "noted_full_name": "Got it.",
        "noted_email": "Perfect.",
        "noted_phone": "Got it.",
        "noted_company": "Great.",
        "lead_complete": "Thanks, {name}! That's everything I need: our team will be in touch very soon.",
        "skipped": "No problem.",
        "not_understood": "Sorry, I didn't quite catch that.",
        "invalid_full_name": "Sorry, I didn't quite get your name. Could you type it again?",
        "invalid_email": "Hmm, “{value}” doesn't look like a valid email address. Could you check it?",
        "invalid_phone": (
            "Hmm, “{value}” doesn't look like a valid phone number. Could you write it with the country code? "
            "For example: +44 20 7946 0958."
        ),
        "invalid_company": "Sorry, I didn't quite get your company's name. Could you type it again?",
        "handoff": "I'm passing you to a member of our team: they'll join this conversation shortly.",
        "handoff_failed": "Sorry, I couldn't reach the team just now. Please try again in a few minutes.",
        "handoff_reason": "The contact asked to talk to a person.",
        "handoff_reason_unanswered": "The assistant could not answer: “{question}”",
        "dont_know": "Sorry, I don't have that information.",
        "offer_human": "Would you like me to put you in touch with someone from our team?",
        "offer_declined": "All right.",
        "answer": "Here's what I found: {snippet}\nSource: {url}",
        "meeting_ask_when": "Sure! What day and time suit you?",
        "meeting_ask_time": "What time suits you on {day}?",
        "meeting_ask_day": "Which day suits you at {time}?",
        "meeting_booked": "Done! I've booked a meeting for {when}.",
        "meeting_noted": "I've noted that {when} suits you. Our team will confirm the appointment.",
        "meeting_failed": "I couldn't book that slot. Would another day or time work for you?",
        "meeting_past": "That time has already passed. What other day and time suit you?",
        "meeting_topic": "Meeting requested in the chat",
        "meeting_topic_named": "Meeting with {name}",
        "you_are_welcome": "You're welcome!",
        "doing_well": "I'm doing well, thanks!",
        "hello_again": "Hello again!",
        "goodbye": "Goodbye! If you need anything else, just write to me here.",
        "day": "{weekday} {day} {month}",
        "when": "{day} at {time}",
        "when_one": "{day} at {time}",
        "weekdays": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
        "months": "January February March April May June July August September October November December",
    },
}
DEFAULT_LOCALE = "es"


# --- Reading the contact's text ------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case without accents and with straight apostrophes: 'Sí, ¿CÓMO?' -> 'si, ¿como?'."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _words(text: str) -> str:
    """Folded, with punctuation turned into single spaces: for matching whole words and phrases."""
    return " ".join(re.sub(r"[^\w'@+]+", " ", fold(text)).split())


_YES = re.compile(
    r"^(?:si|vale|ok|okay|okey|de acuerdo|acepto|claro|por supuesto|adelante|perfecto|dale|correcto|bueno|"
    r"consiento|sin problema|no hay problema|yes|yeah|yep|yup|sure|i agree|agree|agreed|of course|fine|"
    r"go ahead|absolutely|that's ok|that's fine|no problem|please do)\b"
)
_NO = re.compile(
    r"^(?:no|nope|nah|mejor no|prefiero que no|prefiero no|rather not|i'd rather not|i do not|i don't|"
    r"decline|not really)\b|\b(?:no acepto|no estoy de acuerdo|don't agree|do not agree|do not consent)\b"
)


def parse_yes_no(text: str) -> bool | None:
    """A yes (True), a no (False) or neither (None) at the start of the contact's answer."""
    words = _words(text)
    if re.match(r"^(?:no hay problema|no problem)\b", words):
        return True
    if _NO.search(words):
        return False
    if _YES.search(words):
        return True
    return None


_PERSON_PATTERNS = [
    re.compile(
        r"\b(?:hablar|habla|hable|pasame|pasarme|pasas|ponme|ponerme|poner|comunicar|contactar)\b[^.?!]*"
        r"\b(?:persona|humano|humana|agente|operador|operadora|asesor|asesora|alguien|comercial)\b"
    ),
    re.compile(r"\b(?:persona real|persona de verdad|un humano|una humana|ser humano|agente humano)\b"),
    re.compile(
        r"\b(?:talk|speak|chat|connect|transfer|put)\b[^.?!]*"
        r"\b(?:person|human|agent|someone|somebody|representative|rep|operator|staff)\b"
    ),
    re.compile(r"\b(?:real person|human being|a human|live agent|live person|actual person)\b"),
    re.compile(r"^\W*(?:humano|agente|persona|operador|human|agent|person|operator|representative)\W*$"),
]


def wants_person(text: str) -> bool:
    """The contact asks to talk to a person, in Spanish or English."""
    folded = fold(text)
    return any(pattern.search(folded) for pattern in _PERSON_PATTERNS)


_QUESTION_WORDS = re.compile(
    r"^(?:qué|cómo|cuánto|cuánta|cuántos|cuántas|cuál|cuáles|dónde|cuándo|quién|quiénes|por qué|"
    r"what|what's|how|where|when|who|why|which|do you|does|did you|can you|can i|could you|is there|"
    r"are there|is it|are you)\b"
)


def is_question(text: str) -> bool:
    stripped = text.strip()
    if stripped.endswith("?") or stripped.startswith("¿"):
        return True
    # Accents are required in Spanish: 'que sí', 'como te decía' start statements.
    return bool(_QUESTION_WORDS.match(stripped.lower().replace("’", "'")))


_THANKS = re.compile(
    r"^(?:(?:muchas |mil )?gracias|thanks|thank you|many thanks|cheers|genial gracias|perfecto gracias)\b"
)


def is_thanks(text: str) -> bool:
    return bool(_THANKS.match(_words(text)))


_SMALL_TALK = re.compile(
    r"\b(?:hola|buenas|buenos dias|buenas tardes|buenas noches|que tal|como estas|como va|hey|hi|hello|"
    r"good morning|good afternoon|good evening|how are you|how's it going)\b"
)


def is_small_talk(text: str) -> bool:
    """Only greetings: 'Hola, ¿qué tal?', 'Hi there' is not (there is more to it)."""
    return not _SMALL_TALK.sub(" ", _words(text)).strip()


_HOW_ARE_YOU = re.compile(r"\b(?:que tal|como estas|como va|how are you|how's it going)\b")
_GOODBYE = re.compile(r"^(?:adios|hasta luego|hasta pronto|chao|chau|bye|goodbye|bye bye|see you)\b")
# "¿Para qué los queréis?" while consent is pending.
_WHY = re.compile(r"\b(?:para que|por que|why|what for)\b")


def is_goodbye(text: str) -> bool:
    return bool(_GOODBYE.match(_words(text)))


_SKIP = re.compile(
    r"^(?:no|nope|paso|ninguna|ninguno|prefiero no|mejor no|no tengo|no quiero|rather not|i'd rather not|"
    r"i don't have|i do not have|i don't want|none|nothing|nada|skip|n a)\b"
)


def declines_field(text: str) -> bool:
    """The contact would rather not give what was asked ('prefiero no decirlo', 'I don't have one')."""
    return bool(_SKIP.match(_words(text)))


# Emails: the tool decides what is valid; this only finds candidates.
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)*", re.UNICODE)


def extract_email(text: str, *, loose: bool = False) -> str | None:
    """The first thing that looks like an email address; `loose` also takes any word with an '@'."""
    match = _EMAIL.search(text)
    if match:
        return match.group(0).rstrip(".")
    if loose:
        for token in text.split():
            if "@" in token:
                return token.strip(".,;:!?()<>«»\"'")
    return None


def extract_phone(text: str, region: str) -> str | None:
    """The first valid phone number in the text, in E.164 ('600 123 456' in ES -> '+34600123456')."""
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    return None


_DIGITS = re.compile(r"\+?\d[\d\s().-]{4,}\d")


def _phone_attempt(text: str) -> str | None:
    """A run of digits the contact meant as a phone number, valid or not."""
    match = _DIGITS.search(text)
    return match.group(0).strip() if match else None


# Names ----------------------------------------------------------------------------------------------------

_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*\.?")
# Lower-case words that join the parts of a name: María de la Fuente, Ludwig van Beethoven.
_PARTICLES = frozenset(
    {"de", "del", "la", "las", "los", "y", "da", "das", "do", "dos", "di", "du", "van", "von", "der", "le"}
)
# Words that end a name or show a text is not one.
_NOT_NAMES = re.compile(
    r"hola|hello|hi|hey|buenas|buenos|gracias|thanks|thank|you|si|no|yes|ok|okay|vale|claro|quiero|want|"
    r"prefiero|rather|not|que|what|why|por|para|el|un|una|is|es|my|mi|me|i|yo|the|a|an|and|pero|but|sure|"
    r"nope|porque|because|tengo|have|soy|am|llamo|name|nombre|como|how|tu|your|su|his|her|our|nuestra|"
    r"nuestro|empresa|company|trabajo|work|quisiera|would|like|interesado|interesada|interested|busco|"
    r"looking|aqui|here|en|at|from|of|in|with|con|sin|este|esta|this|that|ese|esa|correo|email|telefono|"
    r"phone|llamame|call|bien|good|fine|spanish|english|british|american|french|german|italian|portuguese|"
    r"mexican|canadian|it|it's|its|that's|mine|number|numero|movil|mobile|cell|here's|bye|adios|chao|nada|nothing|hmm"
)

_EXPLICIT_NAME_CUES = re.compile(
    r"(?i:\b(?:me llamo|mi nombre(?: completo)? es|my (?:full )?name is|my name's))\s*[:,]?\s+"
)
_SOFT_NAME_CUES = re.compile(r"(?i:\b(?:soy|i'm|i’m|i am|this is))\s+")


def _looks_capitalised(word: str) -> bool:
    """'Ana', 'O'Neill', 'J.'; not 'ana', nor an acronym like 'CEO'."""
    return word[0].isupper() and not (len(word) > 2 and word.isupper())


def _name_from(rest: str, *, capitalised: bool) -> tuple[str, str] | None:
    """The name at the start of `rest` and what follows it, or None.

    With `capitalised`, every word but the particles must start with a capital letter: after a soft cue
    ('soy', 'I'm') that is what tells 'soy Ana' from 'soy de Madrid' or 'I'm interested'.
    """
    names: list[str] = []
    pending: list[str] = []
    consumed = words = 0
    for match in re.finditer(r"\S+", rest):
        token = match.group(0)
        bare = token.rstrip(",;:!?")
        ends = bare != token
        if bare.endswith(".") and not re.fullmatch(r"[^\W\d_]\.", bare):  # an initial keeps its dot
            bare, ends = bare[:-1], True
        if not _NAME_TOKEN.fullmatch(bare):
            break
        folded = fold(bare).rstrip(".")
        if folded in _PARTICLES and names:
            pending.append(bare)
        elif _NOT_NAMES.fullmatch(folded) or folded in _PARTICLES or (capitalised and not _looks_capitalised(bare)):
            break
        else:
            names += [*pending, bare]
            pending = []
            consumed = match.end()
            words += 1
        if ends or words >= 5:
            break
    if not names:
        return None
    return " ".join(names), rest[consumed:]


def extract_name(text: str) -> str | None:
    """A name the contact introduces: 'me llamo Ana Pérez', 'soy Ana', 'my name is Ana', 'I'm Ana'."""
    found = _name_with_rest(text)
    return found[0] if found else None


def _name_with_rest(text: str) -> tuple[str, str] | None:
    for cues, capitalised in ((_EXPLICIT_NAME_CUES, False), (_SOFT_NAME_CUES, True)):
        for cue in cues.finditer(text):
            found = _name_from(text[cue.end() :], capitalised=capitalised)
            if found:
                return found
    return None


def _bare_name(text: str) -> str | None:
    """The whole answer as a name, when the last reply asked for one: 'Ana Pérez', 'ana pérez'."""
    value = re.sub(r"^(?i:(?:soy|me llamo|mi nombre es|es|i'm|i am|my name is|it's))(?:\s+|$)", "", text.strip())
    value = value.strip(" .,;:!¡")
    if not 1 <= len(value.split()) <= 8:
        return None
    found = _name_from(value, capitalised=False)
    return found[0] if found and found[0] == value else None


# Companies ---------------------------------------------------------------------------------------------

_COMPANY_CUES = re.compile(
    r"(?i:\b(?:trabajo (?:en|para)(?: la empresa| la compañía)?|(?:mi|nuestra|la) empresa (?:es|se llama)|"
    r"de la empresa|i work (?:at|for)|(?:my|our|the) company(?:'s name)? is|my company's name is))\s*[:,]?\s+"
)
# Right after a name: "I'm Ana from Acme". Alone, "from Madrid" says nothing about a company.
_COMPANY_AFTER_NAME = re.compile(r"^\s*,?\s*(?i:from|de la empresa)\s+")
# A connector followed by a lower-case word (or English "I") starts a new clause: "Globex and I'd like".
_COMPANY_END = re.compile(r"[,;!?\n]|\.(?:\s|$)|\s(?:y|and|pero|but|donde|where)\s(?=[a-záéíóúñ]|I\b)")
_COMPANY_LEGAL_SUFFIX = re.compile(r"\b(?:[A-Za-z]\.)+$")  # S.L., S.A., S.A.U.


def _company_from(rest: str, *, capitalised: bool) -> str | None:
    match = _COMPANY_END.search(rest)
    value = rest[: match.start()] if match else rest
    if match and match.group(0).startswith(".") and _COMPANY_LEGAL_SUFFIX.search(value + "."):
        value += "."
    value = " ".join(value.split()).strip("\"'«»“”")
    if not value or len(value.split()) > 6 or len(value) > 100:
        return None
    if capitalised and not (value[0].isupper() or value[0].isdigit()):
        return None
    return value


def extract_company(text: str) -> str | None:
    """A company the contact names: 'trabajo en Acme', 'I work for Acme', 'I'm Ana from Acme'."""
    for cue in _COMPANY_CUES.finditer(text):
        company = _company_from(text[cue.end() :], capitalised=True)
        if company:
            return company
    found = _name_with_rest(text)
    if found:
        after = _COMPANY_AFTER_NAME.match(found[1])
        if after:
            return _company_from(found[1][after.end() :], capitalised=True)
    return None


_BARE_COMPANY_PREFIX = re.compile(
    r"^(?i:(?:trabajo (?:en|para)|la empresa (?:es|se llama)|se llama|es|en|para|i work (?:at|for)|"
    r"the company is|it's called|it's|it is|at|for|from))\s+"
)


def _bare_company(text: str) -> str | None:
    value = _BARE_COMPANY_PREFIX.sub("", text.strip()).strip(" ,;:!¡")
    if value.endswith(".") and not _COMPANY_LEGAL_SUFFIX.search(value):
        value = value[:-1]
    if not value or "?" in value or "@" in value or len(value.split()) > 8 or len(value) > 100:
        return None
    words = _words(value).split()
    if not words or words[0] in {"no", "si", "yes", "ok", "vale", "gracias", "thanks", "hola", "hi", "hello"}:
        return None
    return value


# Meetings ------------------------------------------------------------------------------------------------

_MEETING_WORDS = re.compile(r"\b(?:reunion|reunirnos|cita|demo|demostracion|videollamada|meeting|appointment|meet)\b")
# Weaker: "call me on 600..." gives a phone; only with a day or time is it a meeting.
_CALL_WORDS = re.compile(r"\b(?:llamada|llamar|llamarme|llamame|llamadme|call|phone call)\b")
_DAY_WORDS = re.compile(
    r"lunes|martes|mi[ée]rcoles|jueves|viernes|s[áa]bado|domingo|hoy|ma[ñn]ana|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|today|tomorrow|enero|febrero|marzo|abril|mayo|junio|julio|agosto|"
    r"septiembre|octubre|noviembre|diciembre|january|february|march|april|may|june|july|august|september|"
    r"october|november|december|\d{1,2}[/-]\d{1,2}"
)
_TIME_PATTERNS = [
    re.compile(
        r"\ba (?:la|las) (?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?(?:\s*(?:h|horas)\b)?(?P<half> y media)?"
        r"(?:\s*(?:de la (?P<part>ma[ñn]ana|tarde|noche)|(?P<meridiem>am|pm|a\.m\.|p\.m\.)))?"
    ),
    re.compile(r"\bat (?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?(?:\s*(?P<meridiem>am|pm|a\.m\.|p\.m\.))?"),
    re.compile(r"\b(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<meridiem>am|pm|a\.m\.|p\.m\.)"),
    re.compile(r"\b(?P<hour>\d{1,2})[:h](?P<minute>\d{2})\b"),
    re.compile(r"\b(?P<noon>mediod[íi]a|noon|midday)\b"),
]


@dataclass(frozen=True)
class MeetingTime:
    day: date | None
    at: time | None


def _find_time(text: str) -> tuple[time | None, str]:
    """The time of day in lower-case `text`, and the text without it (so '10' is not read as a month)."""
    for pattern in _TIME_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        rest = text[: match.start()] + " " + text[match.end() :]
        groups = match.groupdict()
        if groups.get("noon"):
            return time(12, 0), rest
        hour, minute = int(groups["hour"]), int(groups.get("minute") or 0)
        if groups.get("half"):
            minute = 30
        part = groups.get("part") or ""
        meridiem = (groups.get("meridiem") or "").replace(".", "")
        if meridiem == "pm" or part in {"tarde", "noche"}:
            hour = hour + 12 if hour < 12 else hour
        elif meridiem == "am" or part:
            hour = 0 if hour == 12 else hour
        elif 1 <= hour <= 7:
            hour += 12  # "a las 4" for a meeting means the afternoon
        if hour > 23 or minute > 59:
            return None, rest
        return time(hour, minute), rest
    return None, text


def find_meeting_time(text: str, locale: str, now: datetime | None = None) -> MeetingTime:
    """The day and the time of day a contact proposes, each None when not given.

    Times are read with our own patterns ('a las 10', 'at 3pm', '17:30') because dateparser takes
    'el martes a las 10' for October; the day goes to dateparser, keeping only future days that name a
    weekday, a month, today/tomorrow or a d/m date.
    """
    now = timezone.localtime(now or timezone.now())
    lowered = text.lower()
    email = extract_email(lowered)
    if email:
        lowered = lowered.replace(email, " ")
    for match in phonenumbers.PhoneNumberMatcher(lowered, settings.TALIA_DEFAULT_PHONE_REGION):
        lowered = lowered.replace(match.raw_string, " ")
    at, rest = _find_time(lowered)
    rest = re.sub(r"\b(?:por|de|en) la ma[ñn]ana\b", " ", rest)  # "in the morning", not "tomorrow"
    day: date | None = None
    if re.search(r"\bpasado ma[ñn]ana\b|\bday after tomorrow\b", rest):
        day = now.date() + timedelta(days=2)
    else:
        found = search_dates(
            rest,
            languages=[locale],
            settings={"PREFER_DATES_FROM": "future", "DATE_ORDER": "DMY", "RELATIVE_BASE": now.replace(tzinfo=None)},
        )
        for phrase, moment in found or []:
            if _DAY_WORDS.search(phrase) and moment.date() >= now.date():
                day = moment.date()
                break
    return MeetingTime(day, at)


# --- The engine -------------------------------------------------------------------------------------------


@dataclass
class DialogueState:
    """What the offline engine remembers between turns, stored in the reply's metadata."""

    asked: str | None = None  # consent | full_name | email | phone | company | human | meeting
    consent_declined: bool = False
    skipped: list[str] = field(default_factory=list)  # lead fields the contact chose not to give
    question: str = ""  # the question it could not answer, for the handoff reason
    meeting_day: str = ""  # ISO date of a meeting still missing its time
    meeting_time: str = ""  # HH:MM of a meeting still missing its day
    held_data: bool = False  # the last message had lead data, not stored for lack of consent

    @classmethod
    def load(cls, metadata: dict[str, Any]) -> DialogueState:
        stored = metadata.get("offline")
        if not isinstance(stored, dict):
            return cls()
        return cls(
            asked=stored.get("asked") if isinstance(stored.get("asked"), str) else None,
            consent_declined=bool(stored.get("consent_declined")),
            skipped=[name for name in stored.get("skipped", []) if name in LEAD_FIELDS],
            question=str(stored.get("question", "")),
            meeting_day=str(stored.get("meeting_day", "")),
            meeting_time=str(stored.get("meeting_time", "")),
            held_data=bool(stored.get("held_data")),
        )

    def dump(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"asked": self.asked}
        if self.consent_declined:
            stored["consent_declined"] = True
        if self.skipped:
            stored["skipped"] = self.skipped
        if self.held_data:
            stored["held_data"] = True
        for name in ("question", "meeting_day", "meeting_time"):
            if getattr(self, name):
                stored[name] = getattr(self, name)
        return stored


class OfflineEngine:
    """The built-in rule-based engine; see the module docstring for what one turn does."""

    name = "offline"

    def run(self, context: TurnContext, call_tool: CallTool) -> EngineResult:
        return _Turn(context, call_tool).play()


class _Turn:
    def __init__(self, context: TurnContext, call_tool: CallTool) -> None:
        self.context = context
        self.call_tool = call_tool
        self.locale = context.locale if context.locale in TEXTS else DEFAULT_LOCALE
        self.text = context.message.text.strip()
        self.previous = DialogueState.load(context.last_reply_metadata)
        self.state = DialogueState(consent_declined=self.previous.consent_declined, skipped=list(self.previous.skipped))
        self.parts: list[str] = []
        self.calls = 0
        self.citations: list[dict[str, str]] = []
        self.contact = context.contact

    # Helpers

    def say(self, key: str, **values: Any) -> None:
        self.parts.append(TEXTS[self.locale][key].format(**values))

    def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        self.calls += 1
        invocation = ToolInvocation(
            call_id=f"offline_{uuid4().hex[:12]}", name=name, arguments=json.dumps(arguments, ensure_ascii=False)
        )
        try:
            output = json.loads(self.call_tool(invocation))
        except ValueError:
            return {"ok": False, "error": "The tool output is not JSON."}
        return output if isinstance(output, dict) else {"ok": False, "error": "Unexpected tool output."}

    def has_tool(self, name: str) -> bool:
        return any(tool.name == name for tool in self.context.tools)

    def refresh_contact(self) -> Contact:
        self.contact = Contact.objects.get(pk=self.context.contact.pk)
        return self.contact

    @property
    def consented(self) -> bool:
        return self.contact.has_consented or not settings.TALIA_REQUIRE_CONSENT

    # The turn

    def play(self) -> EngineResult:
        asked = self.previous.asked
        first_turn = not self.context.last_reply_metadata.get("offline") and not any(
            item.role == "assistant" for item in self.context.history
        )
        if first_turn:
            self.say("greeting")

        answer = parse_yes_no(self.text) if asked in {"consent", "human"} else None
        granted_now = False
        if asked == "consent" and answer is not None and not self.consented:
            granted_now = self.answer_consent(answer)
        elif asked == "human" and answer is False:
            self.say("offer_declined")
        handoff = wants_person(self.text) or (asked == "human" and answer is True)

        found, stored, needs_consent = self.store_lead_fields(asked, answer=answer, granted_now=granted_now)
        meeting = not handoff and self.handle_meeting(asked)
        question = (
            not (handoff or meeting) and answer is None and is_question(self.text) and not is_small_talk(self.text)
        )
        if question and asked == "consent" and not self.consented and _WHY.search(_words(self.text)):
            self.say("consent_why")
            self.state.asked = "consent"
            question = False
        elif not (handoff or meeting or question or found or answer is not None):
            question = self.react_to_the_rest(asked, first_turn=first_turn)
        if question:
            self.answer_question()

        if handoff:
            self.hand_off()
        elif self.state.asked is None and not is_goodbye(self.text):
            self.next_step(stored=stored, needs_consent=needs_consent)

        metadata: dict[str, Any] = {"offline": self.state.dump()}
        if self.citations:
            metadata["citations"] = self.citations
        return EngineResult(
            text=_join(self.parts),
            model=MODEL,
            response_id="",
            rounds=1 if self.calls else 0,
            metadata=metadata,
        )

    def react_to_the_rest(self, asked: str | None, *, first_turn: bool) -> bool:
        """A message with no data and no request in it. True when it should go to the knowledge base."""
        words = _words(self.text)
        if asked in LEAD_FIELDS and self.consented and declines_field(self.text):
            self.state.skipped.append(asked)
            self.say("skipped")
        elif is_thanks(self.text):
            self.say("you_are_welcome")
        elif is_goodbye(self.text):
            self.say("goodbye")
        elif is_small_talk(self.text):
            if _HOW_ARE_YOU.search(words):
                self.say("doing_well")
            elif not first_turn:
                self.say("hello_again")
        elif first_turn:
            pass
        elif asked == "human":
            self.say("not_understood")
            self.say("offer_human")
            self.state.asked = "human"
            self.state.question = self.previous.question
        elif asked in {"consent", *LEAD_FIELDS} or len(words.split()) < 2:
            self.say("not_understood")
        else:
            return True  # a request in its own words: the knowledge base may still know
        return False

    def answer_consent(self, granted: bool) -> bool:
        """Record the answer to the consent question; True if consent was given now."""
        output = self.call("record_consent", granted=granted)
        if not output.get("ok"):
            self.say("consent_failed")
            return False
        if granted:
            self.refresh_contact()
            self.state.consent_declined = False
            self.say("consent_thanks")
            return True
        self.state.consent_declined = True
        self.say("consent_declined")
        return False

    def found_lead_fields(self, text: str, asked: str | None, *, answer_consumed: bool) -> dict[str, str]:
        """The lead fields in `text`; a bare answer fills the field the last reply asked for."""
        region = settings.TALIA_DEFAULT_PHONE_REGION
        found: dict[str, str] = {}
        email = extract_email(text, loose=asked == "email")
        if email is None and asked == "email" and len(text.split()) == 1 and "." in text:
            email = text.strip()  # 'ana.example.com': meant as an email; the tool will say it is not one
        if email:
            found["email"] = email
        without_email = text.replace(email, " ") if email else text
        phone = extract_phone(without_email, region)
        if phone is None and asked == "phone":
            phone = _phone_attempt(without_email)
        if phone:
            found["phone"] = phone
        if name := extract_name(text):
            found["full_name"] = name
        if company := extract_company(text):
            found["company"] = company
        if asked in LEAD_FIELDS and asked not in found and not answer_consumed and not is_question(text):
            rest = without_email
            for match in phonenumbers.PhoneNumberMatcher(rest, region):
                rest = rest.replace(match.raw_string, " ")
            rest = " ".join(rest.split()).strip(" ,;:")
            chatter = is_small_talk(rest) or is_thanks(rest) or is_goodbye(rest)
            if rest and not (chatter or declines_field(rest) or wants_person(rest)):
                bare = _bare_name(rest) if asked == "full_name" else _bare_company(rest) if asked == "company" else None
                if bare:
                    found[asked] = bare
        return found

    def store_lead_fields(
        self, asked: str | None, *, answer: bool | None, granted_now: bool
    ) -> tuple[bool, bool, bool]:
        """Send each field found to its tool. Returns (any found, any stored, consent needed first)."""
        found = self.found_lead_fields(self.text, asked, answer_consumed=answer is not None)
        if granted_now and self.previous.held_data:
            # The contact offered data, was asked for consent first and has just given it.
            found = {**self.found_lead_fields(self.previous_user_text(), None, answer_consumed=False), **found}
        if not found:
            return False, False, False
        if not self.consented:
            self.state.held_data = True  # that there was data, not the data
            return True, False, True
        stored: list[str] = []
        refused: str | None = None
        for name in LEAD_FIELDS:
            if name not in found:
                continue
            tool, argument = SET_TOOLS[name]
            output = self.call(tool, **{argument: found[name]})
            if output.get("ok"):
                stored.append(name)
                if name in self.state.skipped:
                    self.state.skipped.remove(name)
            elif refused is None:
                refused = name
        self.refresh_contact()
        if "full_name" in stored and self.missing():
            self.say("nice_to_meet", name=self.first_name())
        elif stored and (self.missing() or refused):
            self.say(f"noted_{stored[-1]}")
        if refused:
            value = found[refused]
            self.say(f"invalid_{refused}", value=value if len(value) <= 60 else value[:57] + "...")
            self.state.asked = refused
        return True, bool(stored), False

    def previous_user_text(self) -> str:
        """The contact's message before this one, from the history the turn was given."""
        earlier = [item.text for item in self.context.history[:-1] if item.role == "user"]
        return earlier[-1] if earlier else ""

    def missing(self) -> list[str]:
        """The lead fields still unknown, leaving out those the contact chose not to give."""
        return [name for name in missing_lead_fields(self.contact) if name not in self.state.skipped]

    def first_name(self) -> str:
        return self.contact.full_name.split()[0] if self.contact.full_name else ""

    def handle_meeting(self, asked: str | None) -> bool:
        """A meeting request: book it, acknowledge it or ask for what is missing. True if there was one."""
        words = _words(self.text)
        strong = bool(_MEETING_WORDS.search(words))
        weak = bool(_CALL_WORDS.search(words))
        if not (strong or weak or asked == "meeting"):
            return False
        proposed = find_meeting_time(self.text, self.locale)
        if not (proposed.day or proposed.at):
            if strong and not is_question(self.text):
                self.say("meeting_ask_when")
                self.state.asked = "meeting"
                return True
            return False
        day = proposed.day or (date.fromisoformat(self.previous.meeting_day) if self.previous.meeting_day else None)
        at = proposed.at or (time.fromisoformat(self.previous.meeting_time) if self.previous.meeting_time else None)
        if day is None or at is None:
            self.state.meeting_day = day.isoformat() if day else ""
            self.state.meeting_time = at.strftime("%H:%M") if at else ""
            if day:
                self.say("meeting_ask_time", day=self.format_day(day))
            else:
                self.say("meeting_ask_day", time=_clock(at) if at else "")
            self.state.asked = "meeting"
            return True
        starts_at = datetime.combine(day, at, tzinfo=timezone.get_default_timezone())
        if starts_at <= timezone.now():
            self.say("meeting_past")
            self.state.asked = "meeting"
            return True
        when = self.format_when(starts_at)
        if self.has_tool("schedule_meeting"):
            name = self.contact.full_name
            topic = TEXTS[self.locale]["meeting_topic_named"].format(name=name) if name else ""
            output = self.call(
                "schedule_meeting",
                starts_at=starts_at.isoformat(),
                topic=topic or TEXTS[self.locale]["meeting_topic"],
            )
            if output.get("ok"):
                self.say("meeting_booked", when=when)
            else:
                self.say("meeting_failed")
                self.state.asked = "meeting"
        else:
            self.say("meeting_noted", when=when)
        return True

    def format_day(self, day: date) -> str:
        texts = TEXTS[self.locale]
        return texts["day"].format(
            weekday=texts["weekdays"].split()[day.weekday()], day=day.day, month=texts["months"].split()[day.month - 1]
        )

    def format_when(self, moment: datetime) -> str:
        key = "when_one" if moment.hour == 1 else "when"
        return TEXTS[self.locale][key].format(day=self.format_day(moment.date()), time=_clock(moment.time()))

    def answer_question(self) -> None:
        if self.has_tool("search_knowledge"):
            output = self.call("search_knowledge", query=self.text)
            results = output.get("results") if output.get("ok") else None
            best = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else None
            if best and best.get("snippet") and best.get("url"):
                self.say("answer", snippet=_shorten(str(best["snippet"])), url=best["url"])
                self.citations.append({"url": str(best["url"]), "title": str(best.get("title", ""))})
                return
        self.say("dont_know")
        self.say("offer_human")
        self.state.asked = "human"
        self.state.question = self.text[:300]

    def hand_off(self) -> None:
        if self.previous.asked == "human" and self.previous.question and not wants_person(self.text):
            reason = TEXTS[self.locale]["handoff_reason_unanswered"].format(question=self.previous.question)
        else:
            reason = TEXTS[self.locale]["handoff_reason"]
        output = self.call("request_human", reason=reason)
        self.say("handoff" if output.get("ok") else "handoff_failed")
        self.state.asked = None

    def next_step(self, *, stored: bool, needs_consent: bool) -> None:
        """End with the next question of the lead dialogue."""
        if not self.consented:
            if needs_consent or not self.state.consent_declined:
                if needs_consent:
                    self.say("consent_first")
                # The full text once; right after it, a short reminder is enough.
                self.say("consent_short" if self.previous.asked == "consent" and not needs_consent else "consent")
                self.state.asked = "consent"
            elif self.parts and self.parts[-1] != TEXTS[self.locale]["consent_declined"]:
                self.say("anything_else")
            else:
                self.say("how_can_i_help")
            return
        missing = self.missing()
        if missing:
            self.say(f"ask_{missing[0]}")
            self.state.asked = missing[0]
            return
        contact = self.contact
        if stored and contact.full_name and (contact.email or contact.phone):
            self.say("lead_complete", name=self.first_name())
        self.say("anything_else")


def _clock(at: time) -> str:
    """'9:30', '17:00': how a time of day is written in both languages."""
    return f"{at.hour}:{at.minute:02d}"


def _join(parts: list[str]) -> str:
    """One reply; after a part that spans lines (an answer and its source) the next starts a new line."""
    text = ""
    for previous, part in zip(["", *parts], parts, strict=False):
        if text:
            text += "\n" if "\n" in previous else " "
        text += part
    return text


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
