"""Observation: the events of a run, the user's hooks that hear them, and OpenTelemetry spans.

The public names are re-exported from `extractor`; import from `extractor.observe.events` and
`extractor.observe.otel` inside the package."""
