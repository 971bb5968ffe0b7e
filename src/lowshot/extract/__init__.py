"""Raw inputs -> features: pluggable encoders registered in ``ENCODERS`` (``text``)."""
