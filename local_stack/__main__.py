"""`python -m local_stack up` is the same as `local-stack up`."""

import sys

from local_stack.cli import main

sys.exit(main())
