import services.notifications.webhooks.store  # noqa: F401  (its tables join the metadata)
from services.notifications.store import metadata
from shared.migrations_env import run

run(metadata)
