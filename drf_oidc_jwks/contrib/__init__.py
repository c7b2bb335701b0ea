"""Optional add-ons, each an app of its own that a project opts into through ``INSTALLED_APPS``."""
