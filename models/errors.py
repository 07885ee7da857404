"""The models package's own error."""


class CatalogError(ValueError):
    """An unknown catalog pipeline or variant; the message names the choices."""
