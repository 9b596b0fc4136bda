"""Integrations: TalIA's events published to the sinks a business configures, and the integrator API.

- `sinks`: the contract every sink keeps (the envelope, `Sink`, `DeliveryFailed`) and the registry of
  sink providers each sink module fills in.
- `models`: one module per area (deliveries, webhooks, calendars, API tokens), gathered in the package.
This app sits on top of the others (it reads conversations and leads); nothing of ours imports it.
"""
