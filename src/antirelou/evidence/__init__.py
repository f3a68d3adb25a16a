"""Evidence that holds up: a hash-chained log, signed checkpoints, bundles and retention.

Kept light on purpose: `antirelou.settings` imports `antirelou.evidence.settings`, so this
package must not import the rest of the service when it is loaded.
"""
