"""The web console: sign-in, tokens (with billing modes), models and prices,
usage with a chart and CSV, the billing-mode advisor, and admin pages.

Served by the gateway itself, server-rendered with a little vanilla JS::

    web = create_web(session_secret(settings.secret_key, settings.data_dir))
    routes.append(console_mount(web))
"""

from tollway.web.app import ConsoleMount, console_mount, create_web
from tollway.web.secret import SecretKeyError, session_secret

__all__ = ["ConsoleMount", "SecretKeyError", "console_mount", "create_web", "session_secret"]
