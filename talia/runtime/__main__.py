import sys

from talia.runtime.supervisor import main

sys.exit(main())
