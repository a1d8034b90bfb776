"""Management operations (accounts, tokens, models, channels, usage), shared by
the /api endpoints and the CLI. Each takes the Gateway and plain values and
raises ApiError for what a caller got wrong."""
