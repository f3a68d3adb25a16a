"""antirelou: a decoy phone number that says no, once, and survives raids."""
