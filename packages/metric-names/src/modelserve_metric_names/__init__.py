"""Every metric name and label set, declared once: `predictor`, `loadtest`, `chaos`.

Imported by the code that records the metrics and by the dashboards that query them. Plain
constants with no dependencies, so `dashboards` installs without the serving stack."""
