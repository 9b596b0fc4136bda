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
5. Notice a meeting request with a day and a time (`dateparser` for the day): book it through the
   tool declaring BOOK_MEETING when there is one, otherwise acknowledge the time and say the team
   will confirm. A request without a day or a time asks for what is missing. A booked meeting gets its
   topic (from the request, "… para revisar el proyecto", or asked for next) through UPDATE_MEETING,
   is said back (day, time, topic), and the contact's yes confirms it (a no cancels it and asks again).
6. Answer a question through the tool declaring SEARCH_KNOWLEDGE when there is one, with the whole
   sentences of the top passages that best match it (`passages.py`) and one citation in
   `metadata["citations"]`, shown as a source link by a door that shows citations (the widget) and
   written as "Fuente: <url>" by one that does not but renders links (WhatsApp); with no tool or no
   result, say so and offer a person.
7. Anything else: a field the contact would rather not give is skipped for good; thanks, greetings,
   "¿qué tal?" and goodbyes get a short courtesy; an unclear answer to a question gets "sorry, I did
   not understand" and the question again; other free text goes to the knowledge base like a question.
8. End with at most one question, the next step of the lead dialogue: consent, then the first missing
   of full name, email, phone and company, one at a time; when all are known (or the contact chose
   to skip some), thanks and an offer of further help. After a handoff or a goodbye nothing is asked.

It knows no other app: every tool, the core's own included, is found among the turn's tools by its
declared capability (conversations/assistant/capabilities.py) and called with the arguments documented
there; a capability no tool declares is done without (no lead card without CLOSE_LEAD).

All calls of a turn follow from the message and the stored state, so they count as one tool round,
as a model's parallel tool calls would. Replies are in the contact's locale and come from `TEXTS`;
nothing is random, so the same conversation always reads the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from uuid import uuid4

import phonenumbers
from django.conf import settings
from django.utils import timezone

from conversations import profile
from conversations.assistant import capabilities
from conversations.assistant.base import (
    CallTool,
    EngineResult,
    ProviderError,
    TextStream,
    ToolInvocation,
    TurnContext,
)
from conversations.assistant.offline.passages import Passage, best_sentences, opening
from conversations.assistant.offline.texts import DEFAULT_LOCALE, TEXTS
from conversations.assistant.quoting import unquoted
from conversations.leadfields import LEAD_FIELDS, fields_to_ask
from conversations.models import Contact
from conversations.registry import channel_specs, find_capability
from talia.text import collapse_whitespace, shorten
from talia.understanding import (
    CALL_WORDS,
    HOW_ARE_YOU,
    MEETING_WORDS,
    WHY_ASKED,
    bare_company,
    bare_name,
    declines_field,
    extract_company,
    extract_email,
    extract_name,
    extract_phone,
    find_meeting_time,
    is_goodbye,
    is_question,
    is_small_talk,
    is_thanks,
    is_topic,
    meeting_topic,
    parse_yes_no,
    phone_attempt,
    plain_words,
    wants_person,
)

MODEL = "offline-v1"
# Each lead field: the capability of the tool that stores it and that tool's argument.
SET_TOOLS = {
    "full_name": (capabilities.SET_FULL_NAME, "full_name"),
    "email": (capabilities.SET_EMAIL, "email"),
    "phone": (capabilities.SET_PHONE, "phone_number"),
    "company": (capabilities.SET_COMPANY, "company"),
}


# The last messages of the conversation a turn reads (see OfflineEngine.history_messages).
HISTORY_MESSAGES = 8

# The passages, best first, an answer is looked for in.
MAX_PASSAGES = 3


@dataclass(frozen=True)
class _Answer:
    text: str
    url: str
    title: str


@dataclass
class DialogueState:
    """What the offline engine remembers between turns, stored in the reply's metadata."""

    # consent | full_name | email | phone | company | human | meeting | meeting_topic | meeting_confirm
    asked: str | None = None
    consent_declined: bool = False
    skipped: list[str] = field(default_factory=list)  # lead fields the contact chose not to give
    question: str = ""  # the question it could not answer, for the handoff reason
    meeting_day: str = ""  # ISO date of a meeting still missing its time
    meeting_time: str = ""  # HH:MM of a meeting still missing its day
    meeting_when: str = ""  # the proposed meeting's day and time in words, to say back to the contact
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
            meeting_when=str(stored.get("meeting_when", "")),
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
        for name in ("question", "meeting_day", "meeting_time", "meeting_when"):
            if getattr(self, name):
                stored[name] = getattr(self, name)
        return stored


class OfflineEngine:
    """The built-in rule-based engine; see the module docstring for what one turn does."""

    name = "offline"
    writes_structured = False
    # What it reads of the history: whether it has spoken before (the last reply's state is read apart
    # when it is older) and the contact's message before this one.
    history_messages: int | None = HISTORY_MESSAGES

    def run(self, context: TurnContext, call_tool: CallTool, stream: TextStream | None = None) -> EngineResult:
        # Its replies are whole at once: nothing to stream.
        return _Turn(context, call_tool).play()

    def structured(self, instructions: str, text: str, name: str, schema: dict[str, Any]) -> str:
        raise ProviderError("The offline engine has no model for structured output.", retryable=False)


class _Turn:
    def __init__(self, context: TurnContext, call_tool: CallTool) -> None:
        self.context = context
        self.call_tool = call_tool
        self.locale = context.locale if context.locale in TEXTS else DEFAULT_LOCALE
        self.text = context.message.text.strip()
        self.previous = DialogueState.load(context.last_reply_metadata)
        # A no given in the widget's notice counts as one given here: nobody asks again.
        declined = self.previous.consent_declined or context.contact.consent_state == "declined"
        self.state = DialogueState(consent_declined=declined, skipped=list(self.previous.skipped))
        self.parts: list[str] = []
        self.calls = 0
        self.citations: list[dict[str, str]] = []
        self.contact = context.contact
        self.business = profile.current()

    # Helpers

    def say(self, key: str, **values: Any) -> None:
        self.parts.append(TEXTS[self.locale][key].format(**values))

    def call(self, capability: str, **arguments: Any) -> dict[str, Any]:
        """Call the tool declaring `capability`; a missing one answers like a tool that refused."""
        tool = find_capability(self.context.tools, capability)
        if tool is None:
            return {"ok": False, "error": f"No tool provides {capability}."}
        self.calls += 1
        invocation = ToolInvocation(
            call_id=f"offline_{uuid4().hex[:12]}", name=tool.name, arguments=json.dumps(arguments, ensure_ascii=False)
        )
        try:
            output = json.loads(self.call_tool(invocation))
        except ValueError:
            return {"ok": False, "error": "The tool output is not JSON."}
        return output if isinstance(output, dict) else {"ok": False, "error": "Unexpected tool output."}

    def can(self, capability: str) -> bool:
        return find_capability(self.context.tools, capability) is not None

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
            self.greet()

        answer = parse_yes_no(self.text) if asked in {"consent", "human"} else None
        granted_now = False
        if asked == "consent" and answer is not None and not self.consented:
            granted_now = self.answer_consent(answer)
        elif asked == "human" and answer is False:
            self.say("offer_declined")
        handoff = wants_person(self.text) or (asked == "human" and answer is True)

        found, stored, needs_consent = self.store_lead_fields(asked, answer=answer, granted_now=granted_now)
        meeting = not handoff and (self.follow_up_meeting(asked) or self.handle_meeting(asked))
        question = (
            not (handoff or meeting) and answer is None and is_question(self.text) and not is_small_talk(self.text)
        )
        if question and asked == "consent" and not self.consented and WHY_ASKED.search(plain_words(self.text)):
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
        words = plain_words(self.text)
        if asked in LEAD_FIELDS and self.consented and declines_field(self.text):
            self.state.skipped.append(asked)
            self.say("skipped")
        elif is_thanks(self.text):
            self.say("you_are_welcome")
        elif is_goodbye(self.text):
            self.say("goodbye")
        elif is_small_talk(self.text):
            if HOW_ARE_YOU.search(words):
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
        output = self.call(capabilities.RECORD_CONSENT, granted=granted)
        if not output.get("ok"):
            self.say("consent_failed")
            return False
        if granted:
            # What the tool just stored, mirrored here instead of read back: consent changes no lead field.
            self.contact.consent_given_at = self.contact.consent_given_at or timezone.now()
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
            phone = phone_attempt(without_email)
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
            rest = collapse_whitespace(rest).strip(" ,;:")
            chatter = is_small_talk(rest) or is_thanks(rest) or is_goodbye(rest)
            if rest and not (chatter or declines_field(rest) or wants_person(rest)):
                bare = bare_name(rest) if asked == "full_name" else bare_company(rest) if asked == "company" else None
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
            if self.state.consent_declined:  # a no stands: nothing stored, and nobody asks again
                self.say("data_not_stored")
                return True, False, False
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
            self.say(f"invalid_{refused}", value=shorten(value, 60))
            self.state.asked = refused
        return True, bool(stored), False

    def previous_user_text(self) -> str:
        """The contact's message before this one, from the history the turn was given."""
        earlier = [item.text for item in self.context.history[:-1] if item.role == "user"]
        return earlier[-1] if earlier else ""

    def missing(self) -> list[str]:
        """The lead fields still unknown, leaving out those the contact chose not to give."""
        return [name for name in fields_to_ask(self.contact) if name not in self.state.skipped]

    def first_name(self) -> str:
        return self.contact.full_name.split()[0] if self.contact.full_name else ""

    def handle_meeting(self, asked: str | None) -> bool:
        """A meeting request: book it, acknowledge it or ask for what is missing. True if there was one."""
        words = plain_words(self.text)
        strong = bool(MEETING_WORDS.search(words))
        weak = bool(CALL_WORDS.search(words))
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
        if self.can(capabilities.BOOK_MEETING):
            topic = meeting_topic(self.text, self.locale)
            name = self.contact.full_name
            placeholder = TEXTS[self.locale]["meeting_topic_named"].format(name=name) if name else ""
            output = self.call(
                capabilities.BOOK_MEETING,
                title=topic or placeholder or TEXTS[self.locale]["meeting_topic"],
                start=starts_at.isoformat(),
                duration_minutes=None,
                notes=None,
            )
            if not output.get("ok"):
                self.say("meeting_failed")
                self.state.asked = "meeting"
            elif not self.can(capabilities.UPDATE_MEETING):
                self.say("meeting_booked", when=when)
            elif topic:
                self.confirm_back(when, topic)
            else:
                self.say("meeting_booked_ask_topic", when=when)
                self.state.asked = "meeting_topic"
                self.state.meeting_when = when
        else:
            self.say("meeting_noted", when=when)
        return True

    def follow_up_meeting(self, asked: str | None) -> bool:
        """The answer to "what about?" or to "is that right?" for the meeting just proposed; True if it was."""
        when = self.previous.meeting_when
        if asked == "meeting_topic":
            if find_meeting_time(self.text, self.locale).day or find_meeting_time(self.text, self.locale).at:
                return False  # another day or time: a new request
            if is_topic(self.text) and not declines_field(self.text):
                topic = self.text.strip().rstrip(".!")
                topic = topic[0].upper() + topic[1:]
                if self.call(capabilities.UPDATE_MEETING, title=topic, decision=None).get("ok"):
                    self.confirm_back(when, topic)
                    return True
            self.confirm_back(when, "")
            return True
        if asked == "meeting_confirm":
            agreed = parse_yes_no(self.text)
            if agreed is None:
                return False
            output = self.call(capabilities.UPDATE_MEETING, title=None, decision="confirm" if agreed else "cancel")
            if not output.get("ok"):
                self.say("meeting_failed")
                self.state.asked = "meeting"
            elif agreed:
                self.say("meeting_confirmed", when=when)
            else:
                self.say("meeting_cancelled")
                self.state.asked = "meeting"
            return True
        return False

    def confirm_back(self, when: str, topic: str) -> None:
        """Say the proposed meeting back to the contact and ask them to confirm it."""
        if topic:
            self.say("meeting_confirm_question", when=when, topic=topic)
        else:
            self.say("meeting_confirm_question_untitled", when=when)
        self.state.asked = "meeting_confirm"
        self.state.meeting_when = when

    def format_day(self, day: date) -> str:
        texts = TEXTS[self.locale]
        return texts["day"].format(
            weekday=texts["weekdays"].split()[day.weekday()], day=day.day, month=texts["months"].split()[day.month - 1]
        )

    def format_when(self, moment: datetime) -> str:
        key = "when_one" if moment.hour == 1 else "when"
        return TEXTS[self.locale][key].format(day=self.format_day(moment.date()), time=_clock(moment.time()))

    def answer_question(self) -> None:
        if self.can(capabilities.SEARCH_KNOWLEDGE):
            output = self.call(capabilities.SEARCH_KNOWLEDGE, query=self.text)
            results = output.get("results") if output.get("ok") else None
            found = (
                [hit for hit in results if isinstance(hit, dict) and hit.get("url")]
                if isinstance(results, list)
                else []
            )
            if found and (answer := self.best_answer(found)):
                self.say("answer", snippet=answer.text)
                spec = channel_specs.get(self.context.conversation.channel)
                if spec is None or (spec.renders_links and not spec.shows_citations):
                    # No source link under the message: the address goes in the text.
                    self.parts[-1] += "\n" + TEXTS[self.locale]["answer_source"].format(url=answer.url)
                self.citations.append({"url": answer.url, "title": answer.title})
                return
        self.say("dont_know")
        self.say("offer_human")
        self.state.asked = "human"
        self.state.question = self.text[:300]

    def best_answer(self, hits: list[dict[str, Any]]) -> _Answer | None:
        """The best sentences of the found passages and the page they come from (page text arrives quoted
        for models; this engine shows it to the contact as it is)."""
        texts = [unquoted(str(hit.get("content") or hit.get("snippet") or "")) for hit in hits[:MAX_PASSAGES]]
        passages = [Passage(text, rank) for rank, text in enumerate(texts) if text]
        if not passages:
            return None
        text, rank = best_sentences(self.text, passages)
        if not text:  # found by meaning, not by its words: the opening of the best passage
            text, rank = opening(passages[0].text), 0
        hit = hits[rank]
        return _Answer(text, str(hit["url"]), unquoted(str(hit.get("title", ""))))

    def hand_off(self) -> None:
        if self.previous.asked == "human" and self.previous.question and not wants_person(self.text):
            reason = TEXTS[self.locale]["handoff_reason_unanswered"].format(question=self.previous.question)
        else:
            reason = TEXTS[self.locale]["handoff_reason"]
        output = self.call(capabilities.REQUEST_HUMAN, reason=reason)
        if not output.get("ok"):
            self.say("handoff_failed")
        elif output.get("out_of_hours"):
            back = self.business.next_opening()
            self.parts.append(
                self.business.out_of_hours.get(self.locale)
                or TEXTS[self.locale]["out_of_hours"].format(
                    back=TEXTS[self.locale]["back_at"].format(when=self.format_when(back))
                    if back
                    else TEXTS[self.locale]["back_later"]
                )
            )
        else:
            self.say("handoff_nobody_online" if output.get("agents_online") == 0 else "handoff")
        self.state.asked = None

    def greet(self) -> None:
        """The profile's own greeting in the contact's language, or the built-in one with its names."""
        own = self.business.greetings.get(self.locale)
        if own:
            self.parts.append(own)
        elif self.business.assistant_name:
            self.say("greeting_named", name=self.business.assistant_name, business=self.business.business_name)
        else:
            self.say("greeting", business=self.business.business_name)

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
            if self.can(capabilities.CLOSE_LEAD):  # the card for the team, when an app provides one
                who = f"{contact.full_name} ({contact.company})" if contact.company else contact.full_name
                summary = TEXTS[self.locale]["lead_summary"].format(who=who)
                self.call(capabilities.CLOSE_LEAD, summary=summary, stage=None, value=None)
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
    return shorten(text, limit)
