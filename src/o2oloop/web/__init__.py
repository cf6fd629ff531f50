"""People's pages: the framework (templates, sessions, CSRF, i18n) and the merchant console.

Other domains add their pages as routers of their own that use `web.framework` and put
their templates under `web/templates/<area>/`.
"""
