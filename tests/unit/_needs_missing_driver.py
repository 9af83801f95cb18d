"""An adapter module whose driver is not installed (for the lazy-import test)."""

import diaspora_async_no_such_driver  # noqa: F401
