"""The docker executor: each attempt in its own container of a locally built image."""
