// The dev phone's call tab: places a simulated call on TalIA through the page's JSON endpoints
// (channels_voice/devphone.py signs and posts the webhooks server-side) and reads TalIA's <Say> lines
// aloud with the browser's speech synthesis when there is one (headless browsers may have none).
(function () {
  "use strict";
  const root = document.getElementById("call-phone");
  if (!root) { return; }
  const text = root.dataset;
  const thread = document.getElementById("call-thread");
  const state = document.getElementById("call-state");
  const problem = document.getElementById("call-problem");
  const twiml = document.getElementById("call-twiml");
  const input = document.getElementById("call-text");
  const sayButton = document.getElementById("call-say");
  const startButton = document.getElementById("call-start");
  const hangupButton = document.getElementById("call-hangup");
  const speakBox = document.getElementById("call-speak");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  let callSid = "";

  function line(words, cls, meta) {
    const div = document.createElement("div");
    div.className = "line " + cls;
    div.textContent = words;  // textContent: whatever was said is shown as text, never as markup
    const small = document.createElement("div");
    small.className = "meta";
    small.textContent = meta;
    div.appendChild(small);
    thread.appendChild(div);
    thread.scrollTop = thread.scrollHeight;
  }

  function speak(said) {
    if (!speakBox.checked || !("speechSynthesis" in window) || typeof SpeechSynthesisUtterance === "undefined") { return; }
    for (const s of said) {
      const utterance = new SpeechSynthesisUtterance(s.text);
      if (s.language) { utterance.lang = s.language; }
      window.speechSynthesis.speak(utterance);
    }
  }

  function listening(on, ended) {
    input.disabled = sayButton.disabled = !on;
    hangupButton.disabled = ended || !callSid;
    startButton.disabled = Boolean(callSid) && !ended;
    state.textContent = ended ? text.textEnded : (on ? text.textListening : "");
    if (on) { input.focus(); }
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await answer.json(); } catch (e) { data = {error: {message: "HTTP " + answer.status}}; }
    return {ok: answer.ok, data: data};
  }

  function heard(data) {
    if (data.twiml) { twiml.textContent = data.twiml.join("\n\n"); }
    for (const s of data.said || []) { line(s.text, "talia", "TalIA · " + s.language); }
    speak(data.said || []);
    if (data.hung_up) { line(text.textHungUp, "talia", ""); }
  }

  function failed(data) {
    problem.textContent = (data.error && data.error.message) || "?";
  }

  startButton.addEventListener("click", async function () {
    problem.textContent = "";
    thread.replaceChildren();
    twiml.textContent = "";
    state.textContent = text.textRinging;
    startButton.disabled = true;
    const result = await post(root.dataset.startUrl, {number: document.getElementById("call-number").value});
    if (result.data.call_sid) { callSid = result.data.call_sid; }
    if (!result.ok) { failed(result.data); }
    heard(result.data);
    listening(Boolean(result.data.listening), !callSid);
  });

  document.getElementById("call-compose").addEventListener("submit", async function (event) {
    event.preventDefault();
    const words = input.value;
    if (!words.trim()) { return; }
    problem.textContent = "";
    line(words, "caller", text.textYou);
    input.value = "";
    input.disabled = sayButton.disabled = true;
    state.textContent = text.textThinking;
    const result = await post(root.dataset.sayUrl, {call_sid: callSid, text: words});
    if (!result.ok) { failed(result.data); }
    heard(result.data);
    listening(Boolean(result.data.listening), false);
  });

  hangupButton.addEventListener("click", async function () {
    if ("speechSynthesis" in window) { window.speechSynthesis.cancel(); }
    const result = await post(root.dataset.hangupUrl, {call_sid: callSid});
    if (!result.ok) { failed(result.data); } else { line(text.textDuration, "caller", result.data.status); }
    callSid = "";
    listening(false, true);
    startButton.disabled = false;
  });
})();
