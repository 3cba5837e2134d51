"""The notifications service: audience, email (SendGrid), SMS (Twilio) and compliance."""

from __future__ import annotations

from flask import Flask

from services.notifications.bootstrap import Deps, build
from shared.config import Settings
from shared.service import app_shell


def create_app(settings: Settings | None = None, deps: Deps | None = None) -> Flask:
    """Create the notifications app (gunicorn 'services.notifications:create_app()')."""
    from services.notifications.api import api_blueprint, callbacks_blueprint, public_blueprint
    from services.notifications.webhooks.api import webhooks_blueprint

    deps = deps or build(settings)
    app, api = app_shell(
        "notifications",
        deps.settings,
        deps.engine,
        "Audience, email and SMS delivery, unsubscribe and provider callbacks.",
    )
    app.extensions["kinship_deps"] = deps
    api.register_blueprint(api_blueprint(deps))
    api.register_blueprint(callbacks_blueprint(deps))
    app.register_blueprint(public_blueprint(deps))
    api.register_blueprint(
        webhooks_blueprint(
            deps.engine, deps.verifier, deps.settings, deps.webhooks, lambda: deps.clock()
        )
    )
    return app
