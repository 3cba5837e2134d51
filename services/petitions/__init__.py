"""The petitions service: petitions, signatures once per person, exact counters, exports."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from services.petitions.bootstrap import Deps, build
from shared.config import Settings
from shared.ratelimit import RateLimits
from shared.service import app_shell

# Petition texts in 20 locales fit; anything bigger is not a petition.


def create_app(settings: Settings | None = None, deps: Deps | None = None) -> Flask:
    """Create the petitions app (gunicorn 'services.petitions:create_app()')."""
    from services.petitions.api import build_blueprint

    deps = deps or build(settings)
    app, api = app_shell(
        "petitions",
        deps.settings,
        deps.engine,
        "Petitions in several languages sharing one counter; signatures once per person.",
    )
    app.extensions["petitions_deps"] = deps
    if deps.config.proxy_hops:
        # Only behind a known number of proxies is X-Forwarded-For the client's address.
        hops = deps.config.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    def limits(text: str, scope: str, message: str) -> RateLimits:
        storage = deps.config.ratelimit_storage_uri
        return RateLimits(text, storage, scope, message, deps.settings.hash_key)

    sign_limits = limits(deps.config.sign_limits, "sign", "Too many signatures from this address")
    export_limits = limits(deps.config.export_limits, "export", "Too many exports with this key")
    api.register_blueprint(build_blueprint(deps, sign_limits, export_limits))
    return app
