"""`python -m socialmae_rt.cli` (e.g. under torchrun): the `socialmae-rt` command."""

import sys

from socialmae_rt.cli import main

sys.exit(main())
