"""Lets `python -m pipeline.analysis.report` run the command line of cli.py, the form the workflow's rule uses."""

import sys

from .cli import main

sys.exit(main())
