"""What every layer uses to run in production: settings, errors, logs, metrics, traces, process tuning."""
