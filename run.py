#!/usr/bin/env python3
"""Entry point: ``python run.py --help``."""

import sys
from pathlib import Path

# Run from a plain checkout too (the package lives under src/).
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from data_collector.cli import main

if __name__ == "__main__":
    sys.exit(main())
