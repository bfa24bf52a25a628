"""The Model Registry, shared by training and serving: find a version, follow an alias, load a version's models."""
