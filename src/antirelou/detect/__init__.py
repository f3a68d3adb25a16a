"""Text and number analysis for the raid detectors (placeholder until the full version lands)."""
