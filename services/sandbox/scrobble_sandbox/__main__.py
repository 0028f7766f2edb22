"""`python -m scrobble_sandbox [--host H] [--port P]`."""

import sys

from scrobble_sandbox.main import main

sys.exit(main())
