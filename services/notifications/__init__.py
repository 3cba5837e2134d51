"""The notifications service: audience, email (SendGrid), SMS (Twilio) and compliance."""

from __future__ import annotations

import logging

from flask import Flask

from services.notifications.bootstrap import Deps, build
from shared.config import Settings
from shared.service import app_shell

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, deps: Deps | None = None) -> Flask:
    """Create the notifications app (gunicorn 'services.notifications:create_app()')."""
    from services.notifications.api import (
        api_blueprint,
        callbacks_blueprint,
        document_public_pages,
        public_blueprint,
    )
    from services.notifications.webhooks.api import webhooks_blueprint
    from shared import idempotency

    deps = deps or build(settings)
    app, api = app_shell(
        "notifications",
        deps.settings,
        deps.engine,
        "Audience, email and SMS delivery, unsubscribe and provider callbacks.",
    )
    app.extensions["kinship_deps"] = deps
    idempotency.install(deps.engine)  # erasures and webhook endpoints honour Idempotency-Key
    if deps.settings.production:
        for problem in deps.config.production_warnings(deps.settings):
            log.warning("setting looks wrong for production", extra={"problem": problem})
    api.register_blueprint(api_blueprint(deps))
    api.register_blueprint(callbacks_blueprint(deps))
    app.register_blueprint(public_blueprint(deps))
    document_public_pages(api.spec, app)
    api.register_blueprint(
        webhooks_blueprint(
            deps.engine, deps.verifier, deps.settings, deps.webhooks, lambda: deps.clock()
        )
    )
    return app
