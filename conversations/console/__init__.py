"""The agent console: what agents and supervisors do and see (actions, staff API, pages, sockets,
presence, permissions). Other apps use its public pieces: permissions and presence."""
