"""A test-only Django app (added to INSTALLED_APPS by talia.testing.plugin) that plugs channels in.

It is what a real channel app does in its ready(), so the core is tested the way channels use it:
- "voice": a stand-in for the door not built yet, pulled like web chat (no provider), so tests can open
  conversations on it. A test that needs a provider re-registers one with `swap()`. ("whatsapp" is the
  real channels_whatsapp spec; tests that must not reach Twilio swap its deliverer the same way.)
- "fake" (`channels.fake_spec()`, plugged in per test with `swap()` so it is not listed where other tests
  count channels): a pushed channel whose deliverer is `FakeDeliverer`: it records what it sends, or raises what
  the test queued, and returns provider ids "FAKE-<seq>".
"""
