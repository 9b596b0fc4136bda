"""The integrations app's models, one module per area, gathered here for Django."""
