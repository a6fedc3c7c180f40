"""What managers act on: budget pacing, creative fatigue, anomalies, forecasts and the alerts about them.

Detectors (`pacing`, `fatigue`, `anomalies`, `forecast`) are pure functions over frames that
`reads` takes from a store; `rules` turns their findings into alerts; `alert_store` keeps alert
state (first/last seen, acknowledgements, mutes, deliveries) in a SQLite file both the worker and
the dashboard write; `channels` delivers them; `after_sync` is the worker's one entry point.
"""
