"""The TwiML TalIA answers calls with, built with the twilio package (never by hand), and what it says.

Every `<Say>` uses a voice that speaks the caller's language, and every `<Gather>` listens in it. The
actions are paths relative to the webhook Twilio called, carrying in their query string what the next
request needs (the seq of the message the prompt followed, the silences so far, the waits so far), so a
retried request finds the same answer.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from twilio.twiml.voice_response import VoiceResponse

GATHER_PATH = "/api/voice/gather"
WAIT_PATH = "/api/voice/wait"

# Language of <Say> and <Gather>, and an Amazon Polly voice that speaks it, per locale.
VOICES = {
    "es": {"language": "es-MX", "voice": "Polly.Mia-Neural"},
    "en": {"language": "en-US", "voice": "Polly.Joanna-Neural"},
}

PHRASES = {
    "es": {
        "disclosure": (
            "Hola, gracias por llamar. Te atiende un asistente de inteligencia artificial de TalIA."
            " Esta llamada no se graba. ¿En qué puedo ayudarte?"
        ),
        "disclosure_recorded": (
            "Hola, gracias por llamar. Te atiende un asistente de inteligencia artificial de TalIA."
            " Esta llamada se graba. ¿En qué puedo ayudarte?"
        ),
        "holding": "Un momento, por favor.",
        "slow": "Perdona, estoy tardando más de lo normal. ¿Me lo puedes repetir?",
        "still_there": "¿Sigues ahí? Dime en qué puedo ayudarte.",
        "goodbye_silence": "No te oigo bien. Gracias por llamar; vuelve a llamarnos cuando quieras. ¡Adiós!",
        "callback": "Una persona del equipo te devolverá la llamada en este número lo antes posible. ¡Gracias por llamar!",
        "transfer": "Te paso con una persona del equipo. Un momento, por favor.",
        "transfer_failed": "Ahora no ha sido posible. Una persona del equipo te llamará lo antes posible. ¡Adiós!",
        "fallback": "Perdona, se ha cortado la conexión. Sigo aquí: dime, ¿en qué puedo ayudarte?",
    },
    "en": {
        "disclosure": (
            "Hello, thanks for calling. You are speaking with an artificial intelligence assistant from TalIA."
            " This call is not recorded. How can I help you?"
        ),
        "disclosure_recorded": (
            "Hello, thanks for calling. You are speaking with an artificial intelligence assistant from TalIA."
            " This call is recorded. How can I help you?"
        ),
        "holding": "One moment, please.",
        "slow": "Sorry, this is taking longer than usual. Could you say that again?",
        "still_there": "Are you still there? Tell me how I can help.",
        "goodbye_silence": "I can't hear you. Thanks for calling; call us again any time. Goodbye!",
        "callback": "A person from our team will call you back on this number as soon as possible. Thanks for calling!",
        "transfer": "I'm putting you through to a person from our team. One moment, please.",
        "transfer_failed": "That wasn't possible right now. A person from our team will call you back soon. Goodbye!",
        "fallback": "Sorry, the connection dropped. I'm still here: how can I help you?",
    },
}


def _locale(locale: str) -> str:
    return locale if locale in VOICES else "es"


def phrase(locale: str, name: str) -> str:
    return PHRASES[_locale(locale)][name]


def disclosure(locale: str, recorded: bool = False) -> str:
    """The configured disclosure, or the built-in one, which says whether the call is `recorded`."""
    configured = settings.TALIA_VOICE_DISCLOSURE_EN if _locale(locale) == "en" else settings.TALIA_VOICE_DISCLOSURE_ES
    return configured or phrase(locale, "disclosure_recorded" if recorded else "disclosure")


def _url(path: str, **query: int) -> str:
    return f"{path}?{urlencode(query)}"


def say(response: VoiceResponse, locale: str, text: str) -> None:
    response.say(text, **VOICES[_locale(locale)])


def gather(response: VoiceResponse, locale: str, after: int, silences: int = 0) -> None:
    """Listen for the caller's next words; Twilio posts them (or nothing, on silence) to the action."""
    response.gather(
        input="speech",
        language=VOICES[_locale(locale)]["language"],
        action=_url(GATHER_PATH, after=after, silences=silences),
        method="POST",
        speech_timeout="auto",
        action_on_empty_result=True,
    )


def start_recording(response: VoiceResponse, status_callback: str) -> None:
    """Twilio records the call from here on (`<Start><Recording>`), both legs in one file, and posts the
    recording's status to `status_callback` (an absolute URL) when it completes or has no audio."""
    response.start().recording(
        recording_status_callback=status_callback,
        recording_status_callback_method="POST",
        recording_status_callback_event="completed absent",
        track="both",
    )


def greeting(locale: str, after: int, recording_callback: str | None = None) -> VoiceResponse:
    """The answer to a new call: the AI disclosure first; then, when `recording_callback` is given, the
    recording starts (after the caller was told); then listen."""
    response = VoiceResponse()
    say(response, locale, disclosure(locale, recorded=recording_callback is not None))
    if recording_callback is not None:
        start_recording(response, recording_callback)
    gather(response, locale, after)
    return response


def stream_greeting(
    locale: str, stream_url: str, parameters: dict[str, str], after: int, recording_callback: str | None = None
) -> VoiceResponse:
    """The answer to a new call in realtime mode: the AI disclosure first (and the recording started after
    it, as in `greeting`), then the call's audio bridged over `<Connect><Stream>` (no query string on its
    URL: what the bridge needs goes in `<Parameter>`s).

    Twilio runs what follows `<Connect>` only once the bridge closes the stream without having replaced
    the call's TwiML (Twilio's REST API failing too): then the call goes on in speech turns, never silent.
    """
    response = VoiceResponse()
    say(response, locale, disclosure(locale, recorded=recording_callback is not None))
    if recording_callback is not None:
        start_recording(response, recording_callback)
    connect = response.connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    _fall_back(response, locale, after)
    return response


def fallback(locale: str, after: int) -> VoiceResponse:
    """The realtime bridge failed: apologise and go on with speech turns (gather mode)."""
    response = VoiceResponse()
    _fall_back(response, locale, after)
    return response


def _fall_back(response: VoiceResponse, locale: str, after: int) -> None:
    say(response, locale, phrase(locale, "fallback"))
    gather(response, locale, after)


def reply(locale: str, text: str, after: int) -> VoiceResponse:
    response = VoiceResponse()
    say(response, locale, text)
    gather(response, locale, after)
    return response


def hold(locale: str, after: int, waits: int) -> VoiceResponse:
    """The reply is not ready: a short holding phrase, then wait again in a new request."""
    response = VoiceResponse()
    say(response, locale, phrase(locale, "holding"))
    response.redirect(_url(WAIT_PATH, after=after, waits=waits), method="POST")
    return response


def too_slow(locale: str, after: int) -> VoiceResponse:
    response = VoiceResponse()
    say(response, locale, phrase(locale, "slow"))
    gather(response, locale, after)
    return response


def silence(locale: str, after: int, silences: int) -> VoiceResponse:
    """Nothing heard: ask once more; the second time, say goodbye and hang up."""
    response = VoiceResponse()
    if silences >= 2:
        say(response, locale, phrase(locale, "goodbye_silence"))
        response.hangup()
    else:
        say(response, locale, phrase(locale, "still_there"))
        gather(response, locale, after, silences)
    return response


def handed_over(locale: str, said: str = "") -> VoiceResponse:
    """A person has the conversation: transfer the call there, or tell the caller a person calls back."""
    response = VoiceResponse()
    if said:
        say(response, locale, said)
    if number := settings.TALIA_VOICE_TRANSFER_NUMBER:
        say(response, locale, phrase(locale, "transfer"))
        response.dial(number)
        # Only reached when the transfer did not connect.
        say(response, locale, phrase(locale, "transfer_failed"))
    else:
        say(response, locale, phrase(locale, "callback"))
    response.hangup()
    return response


def render(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")
