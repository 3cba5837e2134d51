"""The campaigns service: organizations, API keys, coalition campaigns and action alerts."""

from __future__ import annotations

from flask import Flask

from shared.config import Settings


def create_app(settings: Settings | None = None, deps: object | None = None) -> Flask:
    """Create the campaigns Flask app (gunicorn 'services.campaigns:create_app()')."""
    from services.campaigns import api, bootstrap
    from shared import idempotency
    from shared.service import app_shell

    wired = deps if isinstance(deps, bootstrap.Deps) else bootstrap.build(settings)
    app, rest = app_shell(
        "campaigns",
        wired.settings,
        wired.engine,
        "Organizations, API keys, coalition campaigns and action alerts.",
    )
    app.extensions[api.EXTENSION] = wired
    idempotency.install(wired.engine)  # creating POSTs honour Idempotency-Key
    for blueprint in api.BLUEPRINTS:
        rest.register_blueprint(blueprint)
    return app
