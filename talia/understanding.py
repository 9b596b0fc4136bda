"""Reading the contact's text: yes/no, intents, lead fields and meeting times, in Spanish and English."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import phonenumbers
from dateparser.search import search_dates  # type: ignore[import-untyped,unused-ignore]  # no stubs; mypy caches disagree
from django.conf import settings
from django.utils import timezone

from talia.text import collapse_whitespace


def fold(text: str) -> str:
    """Lower case without accents and with straight apostrophes: 'Sí, ¿CÓMO?' -> 'si, ¿como?'."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def plain_words(text: str) -> str:
    """Folded, with punctuation turned into single spaces: for matching whole words and phrases."""
    return collapse_whitespace(re.sub(r"[^\w'@+]+", " ", fold(text)))


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
    words = plain_words(text)
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
    re.compile(
        r"^\W*(?:humano|agente|persona|operador|asesor|human|agent|person|operator|representative)"
        r"(?:\W+(?:por favor|please|pls|now|ya|ahora))?\W*$"
    ),
    # "¿Me puede atender un asesor?", "que me atienda una persona".
    re.compile(
        r"\b(?:atender|atenderme|atienda|atiende|atiendan|atenderia)\b[^.?!]*"
        r"\b(?:persona|humano|humana|agente|operador|operadora|asesor|asesora|alguien|comercial)\b"
    ),
    # "Quiero un humano", "necesito un asesor", "I need an agent", "get me a human".
    re.compile(
        r"\b(?:quiero|necesito|prefiero|quisiera|busco)\s+(?:a\s+)?(?:un|una|el|la|al)?\s*"
        r"(?:humano|humana|persona|agente|asesor|asesora|operador|operadora)\b(?!\s+de\b)"
    ),
    re.compile(
        r"\b(?:i want|i need|i'd like|get me|give me|can i get|can i have)\s+(?:to\s+\w+\s+(?:to|with)\s+)?"
        r"(?:a|an|the|some)?\s*(?:human|person|agent|operator|representative|real person)\b"
    ),
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
    return bool(_THANKS.match(plain_words(text)))


_SMALL_TALK = re.compile(
    r"\b(?:hola|buenas|buenos dias|buenas tardes|buenas noches|que tal|como estas|como va|hey|hi|hello|"
    r"good morning|good afternoon|good evening|how are you|how's it going)\b"
)


def is_small_talk(text: str) -> bool:
    """Only greetings: 'Hola, ¿qué tal?', 'Hi there' is not (there is more to it)."""
    return not _SMALL_TALK.sub(" ", plain_words(text)).strip()


HOW_ARE_YOU = re.compile(r"\b(?:que tal|como estas|como va|how are you|how's it going)\b")
_GOODBYE = re.compile(r"^(?:adios|hasta luego|hasta pronto|chao|chau|bye|goodbye|bye bye|see you)\b")
# "¿Para qué los queréis?" while consent is pending.
WHY_ASKED = re.compile(r"\b(?:para que|por que|why|what for)\b")


def is_goodbye(text: str) -> bool:
    return bool(_GOODBYE.match(plain_words(text)))


_SKIP = re.compile(
    r"^(?:no|nope|paso|ninguna|ninguno|prefiero no|mejor no|no tengo|no quiero|rather not|i'd rather not|"
    r"i don't have|i do not have|i don't want|none|nothing|nada|skip|n a)\b"
)


def declines_field(text: str) -> bool:
    """The contact would rather not give what was asked ('prefiero no decirlo', 'I don't have one')."""
    return bool(_SKIP.match(plain_words(text)))


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


def phone_attempt(text: str) -> str | None:
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


# Words that make what follows "de" a business, not a surname: "Luis de Textiles Gómez".
_BUSINESS_WORDS = frozenset(
    {
        "asesores", "asesoria", "asociados", "consultores", "consultoria", "consulting", "corp", "digital",
        "distribuciones", "group", "grupo", "inc", "industrias", "ingenieria", "inmobiliaria", "labs", "ltd",
        "sa", "servicios", "sistemas", "sl", "soluciones", "solutions", "systems", "tech", "tecnologia",
        "textil", "textiles", "transportes",
    }
)  # fmt: skip
_DE_SPLIT = re.compile(r"\s(?:de|del)\s(?!(?:la|las|los|el)\s)")


def _company_in_name(name: str) -> tuple[str, str | None]:
    """Split 'Luis Gómez de Textiles Gómez' into the person and the company the name swallowed.

    What follows a "de" is a company when it names a business ("de Soluciones Norte") or, after a given
    name and a surname, is two words or more ("Luis Gómez de Textiles Gómez"); one word after a surname is
    a compound surname ("Ana Pérez de León"), and "de la", "del" start one ("María de la Fuente").
    """
    for split in _DE_SPLIT.finditer(name):
        person, tail = name[: split.start()], name[split.end() :]
        tail_words = [fold(word).strip(".") for word in tail.split()]
        business = any(word.replace(".", "") in _BUSINESS_WORDS for word in tail_words)
        if business or (len(person.split()) >= 2 and len(tail_words) >= 2):
            return person, tail
    return name, None


def _name_with_rest(text: str) -> tuple[str, str] | None:
    """The name the contact introduces and the text after it; a company the name swallowed ("soy Luis
    Gómez de Textiles Gómez") goes back into that text as "de la empresa <company>"."""
    for cues, capitalised in ((_EXPLICIT_NAME_CUES, False), (_SOFT_NAME_CUES, True)):
        for cue in cues.finditer(text):
            found = _name_from(text[cue.end() :], capitalised=capitalised)
            if found:
                person, company = _company_in_name(found[0])
                return (person, f" de la empresa {company}{found[1]}") if company else found
    return None


def bare_name(text: str) -> str | None:
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
    value = collapse_whitespace(value).strip("\"'«»“”")
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


def bare_company(text: str) -> str | None:
    value = _BARE_COMPANY_PREFIX.sub("", text.strip()).strip(" ,;:!¡")
    if value.endswith(".") and not _COMPANY_LEGAL_SUFFIX.search(value):
        value = value[:-1]
    if not value or "?" in value or "@" in value or len(value.split()) > 8 or len(value) > 100:
        return None
    words = plain_words(value).split()
    if not words or words[0] in {"no", "si", "yes", "ok", "vale", "gracias", "thanks", "hola", "hi", "hello"}:
        return None
    return value


# Meetings ------------------------------------------------------------------------------------------------

MEETING_WORDS = re.compile(r"\b(?:reunion|reunirnos|cita|demo|demostracion|videollamada|meeting|appointment|meet)\b")
# Weaker: "call me on 600..." gives a phone; only with a day or time is it a meeting.
CALL_WORDS = re.compile(r"\b(?:llamada|llamar|llamarme|llamame|llamadme|call|phone call)\b")
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


# Meeting topics --------------------------------------------------------------------------------------------

MAX_TOPIC_WORDS = 8
_TOPIC_CUE = re.compile(
    r"(?i)\b(?:para hablar (?:de|sobre)|para tratar|para|sobre|acerca de|to talk about|to discuss|about|regarding)\s+"
)


def is_topic(text: str) -> bool:
    """A short statement that could name a meeting: not a question, a yes/no, a date or contact details."""
    words = text.split()
    return (
        0 < len(words) <= MAX_TOPIC_WORDS
        and not is_question(text)
        and parse_yes_no(text) is None
        and extract_email(text) is None
        and not any(character.isdigit() for character in text)
    )


def meeting_topic(text: str, locale: str) -> str:
    """The topic a meeting request names ("… el viernes a las 10 para revisar el proyecto"), or ''."""
    for cue in _TOPIC_CUE.finditer(text):
        rest = text[cue.end() :].strip(" .!?¿¡,;")
        if not is_topic(rest):
            continue
        when = find_meeting_time(rest, locale)
        if not (when.day or when.at):
            return rest[0].upper() + rest[1:]
    return ""


# Language ------------------------------------------------------------------------------------------------

_SPANISH_WORDS = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "que",
        "y",
        "en",
        "un",
        "una",
        "por",
        "para",
        "con",
        "es",
        "son",
        "quiero",
        "tengo",
        "puedo",
        "hola",
        "gracias",
        "si",
        "no",
        "muy",
        "pero",
        "como",
        "cuando",
        "donde",
        "mi",
        "me",
        "te",
        "su",
        "esta",
        "este",
        "estoy",
        "tienen",
        "hay",
    ]  # noqa: SIM905
)
_ENGLISH_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "to",
        "in",
        "is",
        "are",
        "i",
        "you",
        "my",
        "me",
        "we",
        "it",
        "that",
        "this",
        "for",
        "with",
        "can",
        "could",
        "would",
        "want",
        "have",
        "has",
        "hello",
        "thanks",
        "yes",
        "no",
        "please",
        "what",
        "when",
        "where",
        "how",
        "do",
        "does",
    ]  # noqa: SIM905
)


def guess_locale(text: str) -> str | None:
    """'es' or 'en' when the words of `text` clearly say which (a few function words, a margin of two);
    None when the text is too short or mixed to tell."""
    words = plain_words(text).split()
    spanish = sum(word in _SPANISH_WORDS for word in words)
    english = sum(word in _ENGLISH_WORDS for word in words)
    if spanish >= english + 2:
        return "es"
    if english >= spanish + 2:
        return "en"
    return None
