"""`python -m antirelou`."""

from antirelou.cli import main

main()
