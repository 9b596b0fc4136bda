"""A test-only Django app (added to INSTALLED_APPS by talia.testing.plugin) that plugs channels in.

It is what a real channel app does in its ready(), so the core is tested the way channels use it:
- the real channels ("web", "whatsapp", "voice") are registered by their own apps; a test that needs a
  different provider re-registers one with `swap()` (tests that must not reach Twilio swap WhatsApp's
  deliverer that way).
- "fake" (`channels.fake_spec()`, plugged in per test with `swap()` so it is not listed where other tests
  count channels): a pushed channel whose deliverer is `FakeDeliverer`: it records what it sends, or raises what
  the test queued, and returns provider ids "FAKE-<seq>".
"""
