from services.notifications.store import metadata
from shared.migrations_env import run

run(metadata)
