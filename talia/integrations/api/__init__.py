"""The integrator API under /api/v1/ (docs/api.md): token-authenticated, for CRMs and back offices."""
