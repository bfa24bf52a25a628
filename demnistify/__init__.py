"""deMNISTify: live recognition of multi-digit handwritten numbers, backed by MLflow."""
