"""``python -m loadtest.bench``: see loadtest/bench/run_bench.py."""

import sys

from loadtest.bench.run_bench import main

sys.exit(main())
