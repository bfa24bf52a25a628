"""Training: MNIST in, a tracked MLflow run and a registered, promotable model out."""
