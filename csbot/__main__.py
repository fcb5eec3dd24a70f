"""`python -m csbot` is the same as the `csbot` command."""

from csbot.cli import main

raise SystemExit(main())
