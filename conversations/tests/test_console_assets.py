"""The console's script and templates: valid JavaScript, no HTML or code parsing, data reaches the script
only through data attributes or json_script, and every element and string the script looks for exists."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import translation

from conversations import inbox, state
from conversations.console.sidebar import contact_sidebar
from conversations.models import Channel, Contact, QuickReply

SCRIPT = settings.BASE_DIR / "static" / "console" / "console.js"
KIT = settings.BASE_DIR / "static" / "console" / "kit.js"  # shared with the leads dashboard
TEMPLATES = settings.BASE_DIR / "templates" / "conversations"
PAGES = ["console.html", "conversation.html", "monitor.html"]
ALL_TEMPLATES = [
    *PAGES,
    "_conversation_list.html",
    "_whisper_alert.html",
    "_offer_prompt.html",
    "_contact_sidebar.html",
    "../leads/_contact_panel.html",
]

# Ways to turn a string into markup or code; the console builds every node itself.
FORBIDDEN = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"]


def script() -> str:
    return SCRIPT.read_text(encoding="utf-8") + KIT.read_text(encoding="utf-8")


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [SCRIPT, KIT], ids=lambda path: path.name)
def test_console_script_is_valid_javascript(path):
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js is needed to check {path}: install it (apt-get install nodejs).")

    result = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("sink", FORBIDDEN)
def test_console_script_never_parses_html_or_code(sink):
    assert sink not in script()


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_templates_load_i18n(name):
    assert re.search(r"{%\s*load\b[^%]*\bi18n\b", template(name))


@pytest.mark.parametrize("name", PAGES)
def test_pages_load_the_console_assets(name):
    source = template(name)

    assert """<link rel="stylesheet" href="{% static 'console/console.css' %}">""" in source
    # The shared kit first: console.js takes its helpers from it.
    assert (
        """<script src="{% static 'console/kit.js' %}" defer></script>
<script src="{% static 'console/console.js' %}" defer></script>"""
        in source
    )
    assert re.search(r"{%\s*extends\s+\"base.html\"\s*%}", source)


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_templates_put_nothing_inside_script_blocks_or_event_attributes(name):
    source = template(name)

    for body in re.findall(r"<script\b[^>]*>(.*?)</script>", source, flags=re.DOTALL | re.IGNORECASE):
        assert "{{" not in body and "{%" not in body
        assert not body.strip(), "inline scripts: keep code in console.js and data in data-* or json_script"
    assert not re.search(r"\son[a-z]+\s*=", source, flags=re.IGNORECASE)


@pytest.mark.parametrize("name", PAGES)
def test_pages_hand_data_to_the_script_through_data_attributes(name):
    source = template(name)

    assert 'id="console"' in source
    assert re.search(r"data-[a-z-]+=\"{[{%]", source) or "json_script" in source


def test_every_element_the_script_looks_up_exists_in_a_template():
    markup = "".join(template(name) for name in ALL_TEMPLATES)
    ids = set(re.findall(r"""\bid="([\w-]+)""", markup))
    # The list include names its list and empty text after the list id it is given.
    for list_id in re.findall(r"""list_id="([\w-]+)""", markup):
        ids |= {list_id, f"{list_id}-empty"}

    wanted = set(re.findall(r"""\$\('([\w-]+)'\)""", script()))

    assert wanted, "the script looks elements up with $('id')"
    assert wanted <= ids, f"missing ids: {sorted(wanted - ids)}"


def test_every_string_the_script_shows_is_translated_in_a_template():
    markup = "".join(template(name) for name in PAGES)
    keys = set(re.findall(r"""data-key="([\w.]+)\"""", markup))

    wanted = set(re.findall(r"""\bt\('([\w.]+)'""", script()))

    assert wanted, "the script takes its text from t('key')"
    assert wanted <= keys, f"missing strings: {sorted(wanted - keys)}"


# --- The conversation page template, rendered with the context its view provides ---------------------


@pytest.fixture
def queued_web_chat(db):
    received = inbox.receive(Channel.WEB, "session-marta-0001", "Quiero <script>alert(1)</script> precios", locale="es")
    state.request_handoff(received.conversation, requested_by="contact")
    received.conversation.refresh_from_db()
    return received.conversation


def render_page(conversation, user, **context):
    request = RequestFactory().get(f"/console/conversations/{conversation.id}/")
    request.user = user
    defaults = {
        "conversation": conversation,
        "history": conversation.messages.select_related("agent").order_by("seq"),
        "brief": {
            "reason": "Asks for <b>prices</b>",
            "summary": "Wants a quote.",
            "lead": {"full_name": "Marta <i>Ruiz</i>", "email": "", "phone": "", "company": ""},
        },
        "is_mine": False,
        "can_claim": True,
        "quick_replies": QuickReply.objects.all(),
        "sidebar": contact_sidebar(request, conversation),
    }
    with translation.override("en"):
        return render_to_string("conversations/conversation.html", defaults | context, request=request)


def test_conversation_page_escapes_messages_brief_and_lead(queued_web_chat, agent):
    Contact.objects.filter(pk=queued_web_chat.contact_id).update(full_name="Marta <i>Ruiz</i>")
    queued_web_chat.refresh_from_db()
    body = render_page(queued_web_chat, agent)

    assert "Quiero &lt;script&gt;alert(1)&lt;/script&gt; precios" in body
    assert "Asks for &lt;b&gt;prices&lt;/b&gt;" in body
    assert "Marta &lt;i&gt;Ruiz&lt;/i&gt;" in body
    assert "<script>alert(1)" not in body
    assert f'data-conversation-id="{queued_web_chat.id}"' in body


def test_queued_conversation_offers_a_claim_button_and_no_composer(queued_web_chat, agent):
    body = render_page(queued_web_chat, agent)

    assert 'id="claim-button"' in body
    assert 'id="composer"' not in body


def test_own_conversation_has_the_composer_and_quick_replies(queued_web_chat, agent):
    QuickReply.objects.create(shortcut="hours", locale="en", text="We open 9 to 5 & on <Saturdays>.")

    body = render_page(queued_web_chat, agent, is_mine=True, can_claim=False)

    assert 'id="composer"' in body
    assert 'id="claim-button"' not in body
    assert 'data-shortcut="hours"' in body
    assert "We open 9 to 5 &amp; on &lt;Saturdays&gt;." in body


def test_script_answers_the_visitors_request_to_end_the_chat():
    source = script()

    assert "'end.requested'" in source
    assert "apiUrl(id, 'end-request')" in source
    assert "{ accept }" in source


def test_own_conversation_has_a_hidden_end_request_alert(queued_web_chat, agent):
    body = render_page(queued_web_chat, agent, is_mine=True, can_claim=False)

    assert 'id="end-request" role="alert" hidden' in body
    assert "The visitor wants to end the chat." in body
    assert 'id="end-accept">End the chat<' in body
    assert 'id="end-decline">Keep chatting<' in body
    assert 'data-end-requested="false"' in body


def test_end_request_alert_is_only_for_the_agent_who_has_the_conversation(queued_web_chat, agent):
    body = render_page(queued_web_chat, agent)

    assert 'id="end-request"' not in body


def test_conversation_page_shows_notes_escaped_and_a_whisper_form_for_supervisors(queued_web_chat, agent):
    from conversations.models import InternalNote

    InternalNote.objects.create(conversation=queued_web_chat, author=agent, text="Check <b>invoice</b>")
    state.claim_conversation(queued_web_chat, agent)
    queued_web_chat.refresh_from_db()

    for_agent = render_page(queued_web_chat, agent, notes=queued_web_chat.notes.all())
    for_supervisor = render_page(queued_web_chat, agent, notes=queued_web_chat.notes.all(), can_whisper=True)

    assert "Check &lt;b&gt;invoice&lt;/b&gt;" in for_agent and "<b>invoice" not in for_agent
    assert 'id="note-form"' in for_agent and 'id="whisper-form"' not in for_agent
    assert 'id="whisper-form"' in for_supervisor


@pytest.mark.parametrize(
    "helper",
    ["const t = ", "const h = ", "const show = ", "const store = ", "function csrfToken", "async function api"],
)
def test_staff_pages_share_one_copy_of_each_helper(helper):
    """console.js and leads' dashboard.js take these from kit.js instead of each keeping a copy."""
    scripts = {path.name: path.read_text(encoding="utf-8") for path in (settings.BASE_DIR / "static").glob("*/*.js")}
    scripts.pop("widget.js")  # the visitor's widget is a separate, self-contained script

    assert [name for name, source in scripts.items() if helper in source] == ["kit.js"]
