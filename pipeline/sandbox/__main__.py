"""`python -m pipeline.sandbox --port 8000`: run the sandbox standalone."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
