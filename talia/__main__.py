"""`python -m talia web|worker|beat|all`: start one production process role (talia/runtime/roles.py)."""

import sys

from talia.runtime.roles import main

sys.exit(main(sys.argv[1:]))
